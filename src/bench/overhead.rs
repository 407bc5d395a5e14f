//! Section 1 (and the driver half of section 2): CreateSnapshot then
//! DeleteSnapshot of one volume, one at a time, N times; each call's latency
//! as the CO sees it (validation, quota, records, dispatch to the node
//! executor, its LVM step, the wait on the record).
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Serialize;

use super::Latency;
use super::harness::{Target, snapshot_request};
use crate::proto::v1 as csi;

/// Calls before the measured ones (connection, caches, SQLite pages).
pub const WARMUP: usize = 3;

#[derive(Debug, Clone, Serialize)]
pub struct OverheadRow {
    /// The store (and LVM) under the driver.
    pub store: String,
    pub lvm: String,
    pub create: Latency,
    pub delete: Latency,
    /// Create + delete of one snapshot.
    pub round_trip: Latency,
    /// Calls over [`SLOW`]: on the instant fake LVM, a change the node
    /// executor missed and its resync caught.
    pub slow_calls: usize,
}

/// A create or delete slower than this on the fake LVM waited for
/// something other than the driver's own work.
pub const SLOW: Duration = Duration::from_millis(250);

/// The raw samples, for the real-LVM comparison.
pub struct Samples {
    pub create: Vec<Duration>,
    pub delete: Vec<Duration>,
}

impl Samples {
    pub fn row(&self, store: &str, lvm: &str) -> OverheadRow {
        let both: Vec<Duration> = self
            .create
            .iter()
            .zip(&self.delete)
            .map(|(c, d)| *c + *d)
            .collect();
        OverheadRow {
            store: store.into(),
            lvm: lvm.into(),
            create: Latency::of(&self.create),
            delete: Latency::of(&self.delete),
            round_trip: Latency::of(&both),
            slow_calls: self
                .create
                .iter()
                .chain(&self.delete)
                .filter(|d| **d > SLOW)
                .count(),
        }
    }
}

/// Creates a volume of `volume_bytes` in `project`, then runs `WARMUP`
/// unmeasured and `n` measured create/delete pairs. `before_measured` runs
/// once after the warm-up (e.g. to reset a profile). Returns the samples and
/// the volume's id (the caller deletes it).
pub async fn measure(
    target: &mut Target,
    label: &str,
    project: &str,
    volume_bytes: i64,
    n: usize,
    mut before_measured: impl FnMut(),
) -> anyhow::Result<(Samples, String)> {
    let volume = target
        .create_volume(&format!("bench-{label}-vol"), volume_bytes, project)
        .await?;
    let mut samples = Samples {
        create: Vec::with_capacity(n),
        delete: Vec::with_capacity(n),
    };
    for i in 0..WARMUP + n {
        if i == WARMUP {
            before_measured();
        }
        let (c, d) = pair(target, &format!("bench-{label}-{i}"), &volume, project).await?;
        if i >= WARMUP {
            samples.create.push(c);
            samples.delete.push(d);
        }
    }
    Ok((samples, volume))
}

/// One CreateSnapshot (which must answer ready_to_use) and its DeleteSnapshot.
async fn pair(
    target: &mut Target,
    name: &str,
    volume: &str,
    project: &str,
) -> anyhow::Result<(Duration, Duration)> {
    let t0 = Instant::now();
    let snap = target
        .clients
        .controller
        .create_snapshot(snapshot_request(name, volume, project))
        .await
        .with_context(|| format!("CreateSnapshot {name}"))?
        .into_inner()
        .snapshot
        .context("CreateSnapshot answered no snapshot")?;
    let created = t0.elapsed();
    anyhow::ensure!(
        snap.ready_to_use,
        "CreateSnapshot {name} answered ready_to_use=false (the node did not finish in time)"
    );
    let t1 = Instant::now();
    target
        .clients
        .controller
        .delete_snapshot(csi::DeleteSnapshotRequest {
            snapshot_id: snap.snapshot_id.clone(),
            ..Default::default()
        })
        .await
        .with_context(|| format!("DeleteSnapshot {}", snap.snapshot_id))?;
    Ok((created, t1.elapsed()))
}

/// Section 1 on one target: measure, clean up, one table row.
pub async fn run(
    target: &mut Target,
    store: &str,
    lvm: &str,
    n: usize,
) -> anyhow::Result<OverheadRow> {
    let label = store.split_whitespace().next().unwrap_or("store");
    let project = format!("bench-overhead-{label}");
    let (samples, volume) = measure(target, label, &project, 4 << 20, n, || {}).await?;
    target.delete_volume(&volume).await?;
    if let Some(fake) = &target.fake {
        fake.clear_calls();
    }
    Ok(samples.row(store, lvm))
}
