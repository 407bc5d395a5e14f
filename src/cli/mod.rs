//! The `lvsnap` command line: one binary, clap subcommands, every flag also
//! readable from an `LVSNAP_…` environment variable.
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

mod admin;
#[cfg(feature = "bench")]
mod bench;
mod check;
mod classes;
mod client;
mod serve;

use crate::config::DEFAULT_DRIVER_NAME;

#[derive(Debug, Parser)]
#[command(
    name = "lvsnap",
    version,
    about = "CSI driver for LVM volumes and snapshots with Cinder's semantics"
)]
pub struct Cli {
    /// Log output format.
    #[arg(long, env = "LVSNAP_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// Log filter (tracing `EnvFilter` syntax), e.g. `info` or `lvsnap=debug`.
    #[arg(long, env = "LVSNAP_LOG_LEVEL", default_value = "info", global = true)]
    pub log_level: String,
    #[command(subcommand)]
    pub command: TopCommand,
}

/// The serving and admin commands, plus `bench` (kept apart so the serving
/// code's exhaustive matches on [`Command`] do not see it).
#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum TopCommand {
    #[command(flatten)]
    Driver(Command),
    /// Measure the driver: controller overhead, real LVM, concurrency with
    /// quota, ListSnapshots at scale, footprint (see docs/performance.md).
    /// Built only with the `bench` feature.
    #[cfg(feature = "bench")]
    Bench(bench::BenchCmd),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum Command {
    /// Serve CSI Identity + Controller: validation, placement, quota, records.
    Controller(ControllerCmd),
    /// Serve CSI Identity + Node: run LVM on this host's volume group.
    Node(NodeCmd),
    /// Controller and node in one process on one socket, records in SQLite.
    AllInOne(AllInOneCmd),
    /// Print the CustomResourceDefinitions as YAML (or write one file each).
    Crd(CrdCmd),
    /// Call a running driver over CSI (for operators and the quickstart).
    Client(client::ClientCmd),
    /// Cinder-like admin commands on all-in-one's SQLite (--state-dir) or
    /// Kubernetes (--kubeconfig, --kubernetes).
    #[command(flatten)]
    Admin(admin::AdminCommand),
    /// Check StorageClass / VolumeSnapshotClass parameters (YAML, e.g. `helm
    /// template` output) as the CSI sidecars and lvsnap will treat them.
    CheckClasses(check::CheckClassesArgs),
}

/// Flags every serving mode takes.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// CSI endpoint, a Unix socket: unix:///path/to/csi.sock
    #[arg(
        long,
        env = "LVSNAP_ENDPOINT",
        default_value = "unix:///run/lvsnap/csi.sock"
    )]
    pub endpoint: String,
    /// The CSI driver name reported by GetPluginInfo.
    #[arg(long, env = "LVSNAP_DRIVER_NAME", default_value = DEFAULT_DRIVER_NAME)]
    pub driver_name: String,
    /// Serve Prometheus metrics (`/metrics`) and `/healthz` over HTTP on
    /// HOST:PORT, e.g. 0.0.0.0:9090. Unset: no metrics are kept.
    #[arg(long, env = "LVSNAP_METRICS_ADDRESS")]
    pub metrics_address: Option<String>,
    /// Testing only: abort the process at this point (see `failpoint::points`)
    /// to prove a crash leaks no quota and loses no LV.
    #[cfg(feature = "testing")]
    #[arg(long, env = "LVSNAP_FAILPOINT", hide = true)]
    pub failpoint: Option<String>,
}

/// Flags of the node side (node and all-in-one).
#[derive(Debug, Clone, Args)]
pub struct NodeArgs {
    /// This node's id (in Kubernetes: spec.nodeName). Required.
    #[arg(long, env = "LVSNAP_NODE_ID")]
    pub node_id: Option<String>,
    /// The LVM volume group lvsnap manages on this node: the default device
    /// class, named after it. Required unless --device-class is given.
    #[arg(long, env = "LVSNAP_VG")]
    pub vg: Option<String>,
    /// A device class (repeatable; `;` between several in the environment):
    /// name=fast,vg=vg-nvme[,thinPool=pool0,overprovisionRatio=4][,spareGb=1]
    /// [,stripes=2,stripeSize=64Ki | ,type=raid1,mirrors=1][,default=true].
    /// StorageClasses choose one with the parameter deviceClass.
    #[arg(
        long = "device-class",
        env = "LVSNAP_DEVICE_CLASSES",
        value_delimiter = ';'
    )]
    pub device_classes: Vec<String>,
    /// A file of device classes, one --device-class value per line (blank
    /// lines and lines starting with # are skipped), after the flags'.
    #[arg(long, env = "LVSNAP_DEVICE_CLASS_FILE")]
    pub device_class_file: Option<PathBuf>,
    /// Directory for the node's state (and all-in-one's SQLite database).
    #[arg(long, env = "LVSNAP_STATE_DIR", default_value = "/var/lib/lvsnap")]
    pub state_dir: PathBuf,
    /// Words put before every LVM command, e.g. "nsenter --target=1 --mount
    /// --uts --ipc --net --pid --" to run the host's LVM from a container.
    #[arg(long, env = "LVSNAP_LVM_COMMAND_PREFIX", default_value = "")]
    pub lvm_command_prefix: String,
    /// Extra environment for LVM commands, KEY=VALUE,KEY=VALUE (e.g.
    /// DM_DISABLE_UDEV=1 on hosts without udev). LC_ALL=C is always set.
    #[arg(long, env = "LVSNAP_LVM_ENV", default_value = "")]
    pub lvm_env: String,
    /// Per-command timeout for LVM (e.g. 120s).
    #[arg(long, env = "LVSNAP_LVM_TIMEOUT", default_value = "120s")]
    pub lvm_timeout: String,
    /// Thin pool (in --vg) for new volumes; unset: thick (linear) volumes.
    #[arg(long, env = "LVSNAP_THIN_POOL")]
    pub thin_pool: Option<String>,
    /// Remove LVs tagged by lvsnap that no record claims (default: report
    /// them). Only with a complete view (every listing succeeded), never an
    /// open LV, never one younger than --orphan-grace.
    #[arg(long, env = "LVSNAP_REAP_ORPHANS")]
    pub reap_orphans: bool,
    /// An orphan LV younger than this (by lv_time) is never reaped.
    #[arg(long, env = "LVSNAP_ORPHAN_GRACE", default_value = "10m")]
    pub orphan_grace: String,
    /// How often the node reports its VG capacity and resyncs its records
    /// (it also does after every change).
    #[arg(long, env = "LVSNAP_CAPACITY_INTERVAL", default_value = "60s")]
    pub capacity_interval: String,
    /// How often the node reads its LVs' fill (one `lvs`): the metrics'
    /// values, thick snapshot autoextend, invalidated snapshots.
    #[arg(long, env = "LVSNAP_FILL_INTERVAL", default_value = "10s")]
    pub fill_interval: String,
}

#[derive(Debug, Args)]
pub struct CrdCmd {
    /// Write one `<name>.yaml` per CRD into this directory instead of stdout
    /// (how deploy/helm/lvsnap/crds/ is generated).
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
}

/// Flags of the controller side (controller and all-in-one): Cinder's quota.
#[derive(Debug, Clone, Args)]
pub struct ControllerArgs {
    /// Default limits per project, on top of Cinder's (snapshots=10,
    /// gigabytes=1000, volumes=10; per-type keys like snapshots_<type>
    /// default to -1 = unlimited). A project's LvsQuota overrides them.
    #[arg(
        long,
        env = "LVSNAP_DEFAULT_QUOTA",
        default_value = "snapshots=10,gigabytes=1000,volumes=10"
    )]
    pub default_quota: String,
    /// Charge snapshots only against `snapshots`, not `gigabytes` (Cinder's
    /// no_snapshot_gb_quota).
    #[arg(long, env = "LVSNAP_NO_SNAPSHOT_GB_QUOTA")]
    pub no_snapshot_gb_quota: bool,
    /// How long an uncommitted reservation lives before the sweep rolls it
    /// back (e.g. 86400s, 24h).
    #[arg(long, env = "LVSNAP_RESERVATION_EXPIRE", default_value = "86400s")]
    pub reservation_expire: String,
    /// Recount a project's usage from the records after this many
    /// reservations (Cinder's until_refresh; 0 = never).
    #[arg(long, env = "LVSNAP_QUOTA_UNTIL_REFRESH", default_value_t = 0)]
    pub quota_until_refresh: i64,
    /// Recount usage older than this (Cinder's max_age; 0s = never).
    #[arg(long, env = "LVSNAP_QUOTA_MAX_AGE", default_value = "0s")]
    pub quota_max_age: String,
    /// The project charged when a request names no namespace.
    #[arg(long, env = "LVSNAP_DEFAULT_PROJECT", default_value = "default")]
    pub default_project: String,
    /// How long CreateSnapshot/CreateVolume/Delete* wait for the node before
    /// answering "not yet" (ready_to_use=false or ABORTED) so the CO retries;
    /// keep it well under the sidecars' RPC timeout (1 min by default).
    #[arg(long, env = "LVSNAP_CREATE_TIMEOUT", default_value = "20s")]
    pub create_timeout: String,
    /// How long soft-deleted records (Cinder's `deleted=1` rows) are kept
    /// before they are purged.
    #[arg(long, env = "LVSNAP_DELETED_RETENTION", default_value = "168h")]
    pub deleted_retention: String,
    /// How often expired reservations are settled, failed creates nobody
    /// asked for again released, and soft-deleted records past their
    /// retention purged.
    #[arg(long, env = "LVSNAP_SWEEP_INTERVAL", default_value = "60s")]
    pub sweep_interval: String,
    /// A create that failed on its node and that the CO does not ask for
    /// again (it never got the id, so it can never delete it) is released
    /// (record deleted, quota freed) this long after it failed.
    #[arg(long, env = "LVSNAP_FAILED_CREATE_GRACE", default_value = "15m")]
    pub failed_create_grace: String,
    /// A node whose LvsNode heartbeat is older than this gets no new
    /// volumes, and deletes aimed at it answer UNAVAILABLE naming it.
    #[arg(long, env = "LVSNAP_NODE_STALE_AFTER", default_value = "5m")]
    pub node_stale_after: String,
    /// Kubernetes: run the sweeps only while holding the Lease
    /// `--leader-election-name` (several controller replicas, one sweeper).
    #[arg(long, env = "LVSNAP_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    /// The Lease's namespace (default: the pod's, from POD_NAMESPACE, else
    /// the kubeconfig's).
    #[arg(long, env = "LVSNAP_LEADER_ELECTION_NAMESPACE")]
    pub leader_election_namespace: Option<String>,
    #[arg(
        long,
        env = "LVSNAP_LEADER_ELECTION_NAME",
        default_value = "lvsnap-controller"
    )]
    pub leader_election_name: String,
    /// This replica's identity in the Lease (default: $HOSTNAME, the pod name).
    #[arg(long, env = "LVSNAP_LEADER_ELECTION_IDENTITY")]
    pub leader_election_identity: Option<String>,
    /// How long a leader that stopped renewing keeps the Lease.
    #[arg(long, env = "LVSNAP_LEADER_ELECTION_DURATION", default_value = "15s")]
    pub leader_election_duration: String,
}

#[derive(Debug, Args)]
pub struct ControllerCmd {
    #[command(flatten)]
    pub serve: ServeArgs,
    #[command(flatten)]
    pub controller: ControllerArgs,
}

#[derive(Debug, Args)]
pub struct NodeCmd {
    #[command(flatten)]
    pub serve: ServeArgs,
    #[command(flatten)]
    pub node: NodeArgs,
}

#[derive(Debug, Args)]
pub struct AllInOneCmd {
    #[command(flatten)]
    pub serve: ServeArgs,
    #[command(flatten)]
    pub controller: ControllerArgs,
    #[command(flatten)]
    pub node: NodeArgs,
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, naming the flag at fault where there is one.
            eprintln!("lvsnap: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

#[allow(clippy::infallible_destructuring_match)] // without `bench` one arm is left
fn run(cli: Cli) -> anyhow::Result<()> {
    let command = match cli.command {
        #[cfg(feature = "bench")]
        TopCommand::Bench(cmd) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            return runtime.block_on(bench::run(cmd));
        }
        TopCommand::Driver(command) => command,
    };
    match command {
        Command::Crd(CrdCmd { out_dir: None }) => {
            print!("{}", crate::records::crd_yaml()?);
            Ok(())
        }
        Command::Crd(CrdCmd { out_dir: Some(dir) }) => {
            std::fs::create_dir_all(&dir)?;
            for (name, yaml) in crate::records::crd_files()? {
                std::fs::write(dir.join(&name), yaml)?;
                println!("wrote {}", dir.join(&name).display());
            }
            Ok(())
        }
        Command::Admin(cmd) => current_thread()?.block_on(admin::run(cmd)),
        Command::CheckClasses(args) => check::run(args),
        Command::Client(cmd) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(client::run(cmd))
        }
        command => {
            // Checked now, installed once the flags are validated: a startup
            // error is then one line, not a log trail.
            let filter = tracing_subscriber::EnvFilter::try_new(&cli.log_level).map_err(|e| {
                anyhow::anyhow!(
                    "--log-level: {:?} is not a valid filter: {e}",
                    cli.log_level
                )
            })?;
            let logging = Logging {
                format: cli.log_format,
                filter,
            };
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(serve::run(command, logging))
        }
    }
}

fn current_thread() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// Logging settings, installed by the serving modes after validation.
pub struct Logging {
    format: LogFormat,
    filter: tracing_subscriber::EnvFilter,
}

impl Logging {
    fn install(self) {
        use std::io::IsTerminal;
        // Colour only for a person at a terminal: `kubectl logs` and files
        // get plain text.
        let builder = tracing_subscriber::fmt()
            .with_env_filter(self.filter)
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr);
        match self.format {
            LogFormat::Text => builder.init(),
            LogFormat::Json => builder.json().init(),
        }
    }
}
