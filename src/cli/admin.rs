//! Cinder-like admin views of the records (all-in-one's SQLite store):
//! `lvsnap snapshot-list` prints what `cinder snapshot-list` prints, and
//! `lvsnap quota-show` a project's limits and usage.
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use crate::quota::{QuotaConfig, QuotaEngine, system_clock};
use crate::store::{SnapshotFilter, SqliteStore, Store};

#[derive(Debug, Args)]
pub struct AdminArgs {
    /// The all-in-one state directory holding lvsnap.db.
    #[arg(long, env = "LVSNAP_STATE_DIR", default_value = "/var/lib/lvsnap")]
    pub state_dir: PathBuf,
    /// Include soft-deleted records.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct QuotaShowArgs {
    #[arg(long, env = "LVSNAP_STATE_DIR", default_value = "/var/lib/lvsnap")]
    pub state_dir: PathBuf,
    /// The project (namespace).
    #[arg(default_value = "default")]
    pub project: String,
}

fn open(dir: &std::path::Path) -> anyhow::Result<Arc<dyn Store>> {
    if !dir.join("lvsnap.db").exists() {
        anyhow::bail!("--state-dir: no lvsnap.db in {}", dir.display());
    }
    Ok(Arc::new(SqliteStore::open(dir)?))
}

/// Renders rows as a `+---+` table like the OpenStack clients do.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut width: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = format!(
        "+{}+\n",
        width
            .iter()
            .map(|w| "-".repeat(w + 2))
            .collect::<Vec<_>>()
            .join("+")
    );
    let render = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&width)
            .map(|(c, w)| format!(" {c:<w$} "))
            .collect();
        format!("|{}|\n", padded.join("|"))
    };
    let mut out = line.clone();
    out.push_str(&render(header.iter().map(|h| h.to_string()).collect()));
    out.push_str(&line);
    for row in rows {
        out.push_str(&render(row.clone()));
    }
    out.push_str(&line);
    out
}

pub(super) async fn snapshot_list(args: AdminArgs) -> anyhow::Result<()> {
    let store = open(&args.state_dir)?;
    let filter = SnapshotFilter {
        include_deleted: args.all,
        ..Default::default()
    };
    let rows: Vec<Vec<String>> = store
        .list_snapshots(&filter, None, usize::MAX)
        .await?
        .into_iter()
        .map(|s| {
            vec![
                s.name,
                s.spec.source_volume_id,
                s.status.life.status.as_str().to_string(),
                s.spec.display_name,
                s.spec.volume_size.to_string(),
            ]
        })
        .collect();
    print!(
        "{}",
        table(&["ID", "Volume ID", "Status", "Name", "Size"], &rows)
    );
    Ok(())
}

pub(super) async fn quota_show(args: QuotaShowArgs) -> anyhow::Result<()> {
    let store = open(&args.state_dir)?;
    let quota = QuotaEngine::new(store, QuotaConfig::default(), system_clock());
    let (limits, status) = quota.show(&args.project).await?;
    let mut keys: Vec<&String> = limits.keys().chain(status.usage.keys()).collect();
    keys.sort();
    keys.dedup();
    let rows: Vec<Vec<String>> = keys
        .into_iter()
        .map(|k| {
            let u = status.usage.get(k).cloned().unwrap_or_default();
            vec![
                k.clone(),
                u.in_use.to_string(),
                u.reserved.to_string(),
                limits.get(k).copied().unwrap_or(-1).to_string(),
            ]
        })
        .collect();
    print!("{}", table(&["Type", "In_use", "Reserved", "Limit"], &rows));
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn table_renders_like_the_openstack_clients() {
        let t = super::table(&["ID", "Size"], &[vec!["abc".into(), "1".into()]]);
        assert_eq!(
            t,
            "+-----+------+\n| ID  | Size |\n+-----+------+\n| abc | 1    |\n+-----+------+\n"
        );
    }
}
