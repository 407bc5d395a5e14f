//! The Cinder-like admin commands, on either store: all-in-one's SQLite
//! (`--state-dir`; safe against a running all-in-one: WAL, busy timeout)
//! or Kubernetes (`--kubeconfig PATH`, or `--kubernetes` for the in-cluster
//! service account / KUBECONFIG). Reads print tables like the OpenStack
//! clients (`--output json|yaml` for scripts); writes go through the same
//! store operations the driver uses (`modify_*`, `set_quota_limits`), so a
//! `force-delete` marks the record and its node removes the LV.
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand, ValueEnum};

mod actions;
mod groups;
mod render;
mod views;

use crate::quota::{QuotaConfig, QuotaEngine, system_clock};
use crate::store::{KubeStore, SqliteStore, Store};

/// How a command prints what it read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
    Yaml,
}

/// Where the records are.
#[derive(Debug, Clone, Args)]
pub struct Backend {
    /// all-in-one's state directory (its lvsnap.db): the default store.
    #[arg(long, env = "LVSNAP_STATE_DIR", default_value = "/var/lib/lvsnap")]
    pub state_dir: PathBuf,
    /// Use the records in Kubernetes through this kubeconfig.
    #[arg(long, conflicts_with = "kubernetes")]
    pub kubeconfig: Option<PathBuf>,
    /// Use the records in Kubernetes: in-cluster service account, else
    /// KUBECONFIG or ~/.kube/config.
    #[arg(long)]
    pub kubernetes: bool,
    /// table (like the OpenStack clients), json or yaml.
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// Default quota limits, as the controller's --default-quota (shown
    /// where a project's LvsQuota leaves a key out).
    #[arg(
        long,
        env = "LVSNAP_DEFAULT_QUOTA",
        default_value = "snapshots=10,gigabytes=1000,volumes=10"
    )]
    pub default_quota: String,
}

/// Record listings.
#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub backend: Backend,
    /// Include soft-deleted records.
    #[arg(long)]
    pub all: bool,
    /// Only this project's.
    #[arg(long)]
    pub project: Option<String>,
    /// Only records in this status (e.g. error).
    #[arg(long)]
    pub status: Option<String>,
}

/// One record.
#[derive(Debug, Clone, Args)]
pub struct IdArgs {
    #[command(flatten)]
    pub backend: Backend,
    /// The record id (a volume, snapshot or group snapshot id, as CSI handed it out).
    pub id: String,
}

#[derive(Debug, Clone, Args)]
pub struct QuotaShowArgs {
    #[command(flatten)]
    pub backend: Backend,
    /// The project (namespace).
    #[arg(default_value = "default")]
    pub project: String,
}

#[derive(Debug, Clone, Args)]
pub struct QuotaUpdateArgs {
    #[command(flatten)]
    pub backend: Backend,
    /// The project (namespace).
    pub project: String,
    #[arg(long)]
    pub snapshots: Option<i64>,
    #[arg(long)]
    pub gigabytes: Option<i64>,
    #[arg(long)]
    pub volumes: Option<i64>,
    /// Any other key, e.g. snapshots_fast=5 (repeatable); -1 = unlimited.
    #[arg(long = "set", value_name = "KEY=LIMIT")]
    pub set: Vec<String>,
    /// Remove a key from the project's limits (back to the default).
    #[arg(long = "unset", value_name = "KEY")]
    pub unset: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct ResetStateArgs {
    #[command(flatten)]
    pub backend: Backend,
    pub id: String,
    /// The status to set: available, error, error_deleting (volumes also
    /// in-use). To remove a record use force-delete.
    #[arg(long, default_value = "available")]
    pub state: String,
}

/// The admin commands.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// List snapshot records like `cinder snapshot-list`.
    SnapshotList(ListArgs),
    /// Show one snapshot record like `cinder snapshot-show`.
    SnapshotShow(IdArgs),
    /// List group snapshot records like `cinder group-snapshot-list`.
    GroupSnapshotList(ListArgs),
    /// Show one group snapshot record like `cinder group-snapshot-show`.
    GroupSnapshotShow(IdArgs),
    /// List volume records like `cinder list`.
    VolumeList(ListArgs),
    /// Show one volume record like `cinder show`.
    VolumeShow(IdArgs),
    /// Show a project's quota limits and usage (`cinder quota-usage`).
    QuotaShow(QuotaShowArgs),
    /// Set a project's quota limits, keeping its usage (`cinder quota-update`).
    QuotaUpdate(QuotaUpdateArgs),
    /// Set a record's status by hand (`cinder reset-state`): no LVM or quota change.
    ResetState(ResetStateArgs),
    /// Delete a record whatever its status (`cinder force-delete`): it is
    /// marked `deleting`, and its node removes the LV and releases the quota.
    ForceDelete(IdArgs),
}

impl Backend {
    /// The store the flags name.
    pub async fn open(&self) -> anyhow::Result<Arc<dyn Store>> {
        if self.kubernetes || self.kubeconfig.is_some() {
            let client = crate::store::kube_client(self.kubeconfig.as_deref()).await?;
            return Ok(Arc::new(KubeStore::new(client)));
        }
        let dir = &self.state_dir;
        if !dir.join("lvsnap.db").exists() {
            anyhow::bail!(
                "--state-dir: no lvsnap.db in {} (use --kubeconfig or --kubernetes for a cluster)",
                dir.display()
            );
        }
        Ok(Arc::new(SqliteStore::open(dir)?))
    }

    /// The quota engine over `store` with the flags' defaults.
    pub fn quota(&self, store: Arc<dyn Store>) -> anyhow::Result<QuotaEngine> {
        let defaults = QuotaConfig::parse_defaults(&self.default_quota)
            .map_err(|e| anyhow::anyhow!("--default-quota: {e}"))?;
        let config = QuotaConfig {
            defaults,
            ..QuotaConfig::default()
        };
        Ok(QuotaEngine::new(store, config, system_clock()))
    }
}

/// Runs an admin command, printing to stdout.
pub async fn run(cmd: AdminCommand) -> anyhow::Result<()> {
    let out = match cmd {
        AdminCommand::SnapshotList(a) => views::snapshot_list(&a).await?,
        AdminCommand::SnapshotShow(a) => views::snapshot_show(&a).await?,
        AdminCommand::GroupSnapshotList(a) => groups::group_snapshot_list(&a).await?,
        AdminCommand::GroupSnapshotShow(a) => groups::group_snapshot_show(&a).await?,
        AdminCommand::VolumeList(a) => views::volume_list(&a).await?,
        AdminCommand::VolumeShow(a) => views::volume_show(&a).await?,
        AdminCommand::QuotaShow(a) => views::quota_show(&a.backend, &a.project).await?,
        AdminCommand::QuotaUpdate(a) => actions::quota_update(&a).await?,
        AdminCommand::ResetState(a) => actions::reset_state(&a).await?,
        AdminCommand::ForceDelete(a) => actions::force_delete(&a).await?,
    };
    print!("{out}");
    Ok(())
}
