//! Section 4: ListSnapshots paging (500 per page) through 1 000 and 10 000
//! records; the store's size on disk and this process's memory at each size.
//! The records are written straight through the `Store` trait (one
//! transaction each, as CreateSnapshot writes them), not cut by
//! CreateSnapshot: the figure is the listing, and 10 000 creates would only
//! measure section 1 again.
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Serialize;

use super::harness::{NODE, Target};
use super::{Latency, Memory, memory_of};
use crate::proto::v1 as csi;
use crate::records::{Lifecycle, LvsSnapshotSpec, LvsSnapshotStatus, SnapshotState, now_rfc3339};
use crate::store::{Record, Store};

pub const PAGE: i32 = 500;

#[derive(Debug, Clone, Serialize)]
pub struct ScaleRow {
    pub records: usize,
    pub pages: usize,
    pub page: Latency,
    pub walk_ms: f64,
    /// Records written per second through the Store trait to get here.
    pub insert_per_s: f64,
    /// lvsnap.db + -wal + -shm, bytes.
    pub store_bytes: u64,
    /// This process (driver, executor and bench client) after the walk.
    pub memory: Memory,
}

#[derive(Debug, Clone, Serialize)]
pub struct Scale {
    pub store: String,
    pub how: String,
    pub rows: Vec<ScaleRow>,
}

/// A snapshot record as CreateSnapshot leaves it once the node cut it.
pub fn record(i: usize, volume: &str) -> Record<LvsSnapshotSpec, LvsSnapshotStatus> {
    let name = format!("bench-scale-{i:06}");
    let id = crate::controller::record_id("snapshot", &name);
    let lv_name = format!("_snapshot-{id}");
    Record::new(
        id.clone(),
        LvsSnapshotSpec {
            id,
            csi_name: name.clone(),
            source_volume_id: volume.into(),
            project: "bench-scale".into(),
            user: None,
            display_name: name,
            display_description: String::new(),
            metadata: Default::default(),
            volume_type: "benchvg".into(),
            volume_size: 1,
            cow_size_bytes: Some(4 << 20),
            autoextend: None,
            node: NODE.into(),
            vg: "benchvg".into(),
            device_class: None,
            lv_name,
            group_snapshot_id: None,
            quota_reservations: Vec::new(),
            quota_charged: [("snapshots".to_string(), 1), ("gigabytes".to_string(), 1)]
                .into_iter()
                .collect(),
        },
        LvsSnapshotStatus {
            life: Lifecycle {
                status: SnapshotState::Available,
                progress: "100%".into(),
                created_at: now_rfc3339(),
                ..Default::default()
            },
            ready_to_use: true,
            size_bytes: 4 << 20,
        },
    )
}

/// Bytes of the SQLite database and its WAL and shared-memory files.
pub fn store_bytes(state_dir: &Path) -> u64 {
    ["lvsnap.db", "lvsnap.db-wal", "lvsnap.db-shm"]
        .iter()
        .filter_map(|f| std::fs::metadata(state_dir.join(f)).ok())
        .map(|m| m.len())
        .sum()
}

/// Walks every page of ListSnapshots; returns each page's time and the
/// number of entries.
pub async fn walk(
    client: &mut crate::proto::v1::controller_client::ControllerClient<tonic::transport::Channel>,
) -> anyhow::Result<(Vec<Duration>, usize)> {
    let (mut pages, mut entries, mut token) = (Vec::new(), 0, String::new());
    loop {
        let t = Instant::now();
        let r = client
            .list_snapshots(csi::ListSnapshotsRequest {
                max_entries: PAGE,
                starting_token: token.clone(),
                ..Default::default()
            })
            .await
            .context("ListSnapshots")?
            .into_inner();
        pages.push(t.elapsed());
        entries += r.entries.len();
        if r.next_token.is_empty() {
            return Ok((pages, entries));
        }
        token = r.next_token;
    }
}

/// Grows the store to each of `sizes` and walks it; a walk that does not
/// return every record is a failure.
pub async fn run(
    target: &mut Target,
    store_label: &str,
    sizes: &[usize],
    failures: &mut Vec<String>,
) -> anyhow::Result<Scale> {
    let store: Arc<dyn Store> = target
        .store
        .clone()
        .context("the scale section needs the driver's store")?;
    let state_dir = target
        .dir
        .as_ref()
        .map(|d| d.path.join("state"))
        .context("the scale section runs in-process")?;
    let volume = target
        .create_volume("bench-scale-vol", 4 << 20, "bench-scale")
        .await?;
    let mut rows = Vec::new();
    let mut have = 0;
    for &size in sizes {
        let t = Instant::now();
        for i in have..size {
            store.insert_snapshot(&record(i, &volume)).await?;
        }
        let inserted = size.saturating_sub(have);
        let insert_per_s = inserted as f64 / t.elapsed().as_secs_f64().max(1e-9);
        have = have.max(size);
        let t = Instant::now();
        let (pages, entries) = walk(&mut target.clients.controller).await?;
        let walk = t.elapsed();
        if entries != have {
            failures.push(format!(
                "scale: ListSnapshots walked {entries} entries of {have} records"
            ));
        }
        rows.push(ScaleRow {
            records: have,
            pages: pages.len(),
            page: Latency::of(&pages),
            walk_ms: super::ms(walk),
            insert_per_s,
            store_bytes: store_bytes(&state_dir),
            memory: memory_of("self")?,
        });
    }
    Ok(Scale {
        store: store_label.into(),
        how: "records written straight through the Store trait (status available), \
              then ListSnapshots over gRPC, max_entries 500"
            .into(),
        rows,
    })
}
