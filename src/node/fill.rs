//! The node's fill watch: every `--fill-interval`, ONE `lvs` of the volume
//! group, from which it
//! - keeps the last thin pool and snapshot fill for the metrics (a scrape
//!   reads [`FillReport`], never LVM);
//! - extends a thick snapshot's copy-on-write area that crossed its
//!   record's autoextend threshold (`lvextend` on the snapshot, capped at
//!   what its origin can use; quota is not charged, as Cinder charges the
//!   volume size); no room in the VG: an Event, once, and the metric;
//! - marks `error` the record of a snapshot LVM invalidated (its COW area
//!   overflowed: the data is gone), with an Event.
use std::collections::HashMap;
use std::time::Instant;

use super::executor::Executor;
use super::fill_report::{FillReport, FillState, PoolFill, SnapshotFill};
use crate::lvm::{ErrorKind, LvInfo, max_cow_bytes};
use crate::records::{FailureCode, SnapshotState};
use crate::store::{Kind, Phase, SnapshotFilter, SnapshotRecord};

impl Executor {
    /// The shared fill report.
    pub fn fill(&self) -> FillState {
        self.fill.clone()
    }

    pub(super) fn update_fill(&self, f: impl FnOnce(&mut FillReport)) {
        if let Ok(mut r) = self.fill.write() {
            f(&mut r);
        }
    }

    /// Runs the fill watch until the task is dropped.
    pub async fn watch_fill(self) {
        let mut tick = tokio::time::interval(self.settings.fill_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if self.failpoints.halted() {
                return;
            }
            self.refresh_fill().await;
        }
    }

    /// One pass: one `lvs`, then act on what it shows.
    pub async fn refresh_fill(&self) {
        let mut lvs = Vec::new();
        for vg in self.settings.vgs() {
            match self.lvm.lvs(&vg).await {
                Ok(more) => lvs.extend(more),
                Err(e) => {
                    tracing::warn!(%vg, error = %e, "fill watch: cannot list the LVs; keeping the last values");
                    return;
                }
            }
        }
        let pools = lvs
            .iter()
            .filter(|lv| lv.attr.is_thin_pool())
            .map(|lv| PoolFill {
                vg: lv.vg.clone(),
                name: lv.name.to_string(),
                data_percent: lv.data_percent,
                metadata_percent: lv.metadata_percent,
            })
            .collect();
        let thick: Vec<(String, &LvInfo)> = lvs
            .iter()
            .filter(|lv| lv.attr.is_thick_snapshot())
            .filter_map(|lv| Some((lv.record_ids().first()?.to_string(), lv)))
            .collect();
        let snapshots = thick
            .iter()
            .map(|(id, lv)| SnapshotFill {
                id: id.clone(),
                lv: lv.name.to_string(),
                cow_used_percent: lv.snap_percent.or(lv.data_percent),
                cow_size_bytes: lv.size_bytes,
                invalid: lv.attr.is_snapshot_invalid(),
            })
            .collect();
        self.update_fill(|r| {
            r.vg_name = self.settings.vg.clone();
            r.refreshed = Some(Instant::now());
            r.thin_pools = pools;
            r.snapshots = snapshots;
        });
        if thick.is_empty() {
            return;
        }
        let records = match self
            .store
            .list_snapshots(
                &SnapshotFilter {
                    node: Some(self.settings.node_id.clone()),
                    ..Default::default()
                },
                None,
                usize::MAX,
            )
            .await
        {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "fill watch: cannot list this node's snapshots; no autoextend this pass");
                return;
            }
        };
        let records: HashMap<&str, &SnapshotRecord> =
            records.iter().map(|r| (r.name.as_str(), r)).collect();
        for (id, lv) in &thick {
            let Some(r) = records.get(id.as_str()) else {
                continue;
            };
            if r.status.life.deleted || r.status.life.status != SnapshotState::Available {
                continue;
            }
            if lv.attr.is_snapshot_invalid() {
                self.invalidated(r, lv).await;
            } else {
                self.autoextend(r, lv).await;
            }
        }
    }

    async fn autoextend(&self, r: &SnapshotRecord, lv: &LvInfo) {
        let policy = r.spec.autoextend.unwrap_or_default();
        let used = lv.snap_percent.or(lv.data_percent).unwrap_or(0.0);
        let Some(origin) = lv.origin_size_bytes else {
            return;
        };
        let Some(target) = policy.target(used, lv.size_bytes, max_cow_bytes(origin)) else {
            return;
        };
        // Extending a snapshot reloads its origin: not while a group holds it frozen.
        let outcome = {
            let _shared = self.frozen_gate.read().await;
            self.lvm.extend(&r.spec.vg, &lv.name, target).await
        };
        let key = match &outcome {
            Ok(_) => "extended",
            Err(e) if e.kind() == ErrorKind::InsufficientSpace => "no_space",
            Err(_) => "failed",
        };
        self.update_fill(|f| *f.autoextend.entry(key).or_default() += 1);
        let first_warning = |id: &str| {
            self.fill_memory
                .warned
                .lock()
                .map(|mut w| w.insert(id.to_string()))
                .unwrap_or(true)
        };
        match outcome {
            Ok(grown) => {
                if let Ok(mut w) = self.fill_memory.warned.lock() {
                    w.remove(&r.name);
                }
                let note = format!(
                    "{}/{}: copy-on-write area {used:.1}% used (threshold {}%): grown from {} to {} bytes",
                    r.spec.vg, lv.name, policy.threshold, lv.size_bytes, grown.size_bytes
                );
                self.notify(Kind::Snapshot, &r.name, Phase::CowExtended, note)
                    .await;
            }
            Err(e) if first_warning(&r.name) => {
                let note = format!(
                    "{}/{}: copy-on-write area {used:.1}% used and cannot grow: {e}; LVM invalidates the snapshot when it is full",
                    r.spec.vg, lv.name
                );
                self.notify(Kind::Snapshot, &r.name, Phase::CowExtendFailed, note)
                    .await;
            }
            Err(e) => tracing::warn!(snapshot = %r.name, error = %e, "autoextend failed again"),
        }
    }

    async fn invalidated(&self, r: &SnapshotRecord, lv: &LvInfo) {
        let msg = format!(
            "LVM invalidated snapshot {}/{}: its copy-on-write area ({} bytes) overflowed; the snapshot's data is lost (delete it)",
            r.spec.vg, lv.name, lv.size_bytes
        );
        if self.fail_check(r, FailureCode::Internal, msg.clone()).await {
            self.notify(Kind::Snapshot, &r.name, Phase::SnapshotInvalidated, msg)
                .await;
        }
    }
}
