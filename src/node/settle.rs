//! Settling the node's records against its volume group (on start, then
//! at every resync): records whose LV vanished become `error`, LVs tagged
//! by lvsnap that no record claims are reported, and reaped only with
//! `--reap-orphans`. Both act only on a complete view: this node's volume
//! listing, its snapshot listing and the LV listing all succeeded in the
//! same pass. A failed or forbidden listing is never "no records": nothing
//! is removed or marked, and the caller retries with back-off. A reap also
//! needs the LV closed, older than `--orphan-grace`, and its record
//! confirmed absent by a direct read just before.
use std::collections::HashSet;

use chrono::Utc;

use super::executor::Executor;
use crate::lvm::{LvInfo, LvmError};
use crate::records::{FailureCode, LifeState, Operation, SnapshotState, VolumeState};
use crate::store::{Kind, Phase, SnapshotFilter, StoreError, VolumeFilter};
use crate::store::{Tracked, modify};

/// Why a settle pass did nothing.
#[derive(Debug, thiserror::Error)]
pub enum SettleError {
    #[error("cannot list this node's records: {0}")]
    Records(#[source] StoreError),
    #[error("cannot list the volume group's LVs: {0}")]
    Lvm(#[source] LvmError),
}

/// What a settle pass found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settled {
    /// Records marked `error` because their LV vanished.
    pub vanished: Vec<String>,
    /// LVs tagged by lvsnap that no record of this node claims.
    pub orphans: Vec<String>,
    /// Those of them removed (`--reap-orphans`).
    pub reaped: Vec<String>,
}

impl Executor {
    /// One settle pass; see the module docs.
    pub async fn settle(&self) -> Result<Settled, SettleError> {
        let result = self.settle_once().await;
        if let Ok(s) = &result {
            let left = s.orphans.len().saturating_sub(s.reaped.len());
            self.update_fill(|f| f.orphans = Some(left));
        }
        if let Err(e) = &result {
            tracing::warn!(error = %e, "settling skipped: no complete view of records and LVs; nothing removed or marked");
        }
        result
    }

    async fn settle_once(&self) -> Result<Settled, SettleError> {
        let node = Some(self.settings.node_id.clone());
        // Records first, then LVs: a record `available` in the listing had
        // its LV before it, so an LV missing afterwards really vanished.
        let volumes = self
            .store
            .list_volumes(
                &VolumeFilter {
                    node: node.clone(),
                    ..Default::default()
                },
                None,
                usize::MAX,
            )
            .await
            .map_err(SettleError::Records)?;
        let snapshots = self
            .store
            .list_snapshots(
                &SnapshotFilter {
                    node,
                    ..Default::default()
                },
                None,
                usize::MAX,
            )
            .await
            .map_err(SettleError::Records)?;
        let vgs = self.settings.vgs();
        let mut lvs = Vec::new();
        for vg in &vgs {
            lvs.extend(self.lvm.lvs(vg).await.map_err(SettleError::Lvm)?);
        }
        let present: HashSet<(&str, &str)> = lvs
            .iter()
            .map(|l| (l.vg.as_str(), l.name.as_str()))
            .collect();
        let mut out = Settled::default();

        let mine = |vg: &str| vgs.iter().any(|v| v == vg);
        for v in volumes.iter().filter(|v| mine(&v.spec.vg)) {
            if v.status.life.status == VolumeState::Available
                && !present.contains(&(v.spec.vg.as_str(), v.spec.lv_name.as_str()))
                && self.fail_check(v, FailureCode::NotFound, vanished(v)).await
            {
                out.vanished.push(v.name.clone());
            }
        }
        for s in snapshots.iter().filter(|s| mine(&s.spec.vg)) {
            if s.status.life.status == SnapshotState::Available
                && !present.contains(&(s.spec.vg.as_str(), s.spec.lv_name.as_str()))
                && self.fail_check(s, FailureCode::NotFound, vanished(s)).await
            {
                out.vanished.push(s.name.clone());
            }
        }

        let claimed: HashSet<&str> = volumes
            .iter()
            .map(|v| v.name.as_str())
            .chain(snapshots.iter().map(|s| s.name.as_str()))
            .collect();
        for lv in &lvs {
            for id in lv.record_ids() {
                let id = id.to_string();
                if claimed.contains(id.as_str()) {
                    continue;
                }
                out.orphans.push(lv.name.to_string());
                if self.reap(lv, &id).await {
                    out.reaped.push(lv.name.to_string());
                }
            }
        }
        Ok(out)
    }

    /// `available` → `error` with `code` and `msg` (a failure the node's
    /// check found: the LV vanished, LVM invalidated a snapshot) if still
    /// so. Returns whether this call marked it.
    pub(super) async fn fail_check<R: Tracked>(
        &self,
        r: &R,
        code: FailureCode,
        msg: String,
    ) -> bool {
        let why = msg.clone();
        let marked = R::modify(
            self.store.as_ref(),
            r.id(),
            modify(move |r: &mut R| {
                if r.life().status == R::State::AVAILABLE && !r.life().deleted {
                    r.set_error();
                    r.life_mut().fail(Operation::Check, code, &msg);
                }
                Ok(())
            }),
        )
        .await;
        match marked {
            Ok(Some(m)) if m.life().status == R::State::ERROR => {
                tracing::error!(kind = R::KIND.as_str(), record = %r.id(), lv = r.lv_name(), reason = %why, "marked error");
                true
            }
            Ok(_) => false,
            Err(e) => {
                tracing::warn!(record = %r.id(), error = %e, reason = %why, "cannot mark a record error");
                false
            }
        }
    }

    /// Removes orphan `lv` (tagged with record `id`) if reaping is on and
    /// there is proof: closed, old enough, and no live record of this node
    /// with that id on a direct read. Returns whether it was removed.
    async fn reap(&self, lv: &LvInfo, id: &str) -> bool {
        let vg = &lv.vg;
        let tag = format!("lvsnap.io/id={id}");
        if !self.settings.reap_orphans {
            tracing::warn!(lv = %lv.name, %tag, "LV tagged by lvsnap has no record (left alone; --reap-orphans removes it)");
            return false;
        }
        if lv.attr.open {
            tracing::warn!(lv = %lv.name, %tag, "orphan LV is open: not reaped");
            return false;
        }
        let grace =
            chrono::Duration::from_std(self.settings.orphan_grace).unwrap_or(chrono::Duration::MAX);
        let old_enough = lv.created.is_some_and(|t| Utc::now() - t >= grace);
        if !old_enough {
            tracing::warn!(lv = %lv.name, %tag, created = ?lv.created, "orphan LV is younger than --orphan-grace (or of unknown age): not reaped yet");
            return false;
        }
        if !self.confirmed_unclaimed(id).await {
            return false;
        }
        // Removing a snapshot reloads its origin: not while a group holds it frozen.
        let removed = {
            let _shared = self.frozen_gate.read().await;
            self.lvm.remove(vg, &lv.name).await
        };
        match removed {
            Ok(_) => {
                let note = format!(
                    "removed orphan LV {vg}/{} ({tag}): no record claims it",
                    lv.name
                );
                self.notify(
                    Kind::Node,
                    &self.settings.node_id,
                    Phase::OrphanReaped,
                    note,
                )
                .await;
                true
            }
            Err(e) => {
                tracing::error!(lv = %lv.name, %tag, error = %e, "orphan removal failed");
                false
            }
        }
    }

    /// A direct read of both kinds: no live record of this node has `id`.
    /// Any error is no proof.
    async fn confirmed_unclaimed(&self, id: &str) -> bool {
        let node = self.settings.node_id.as_str();
        let store = crate::store::direct(&self.store);
        let volume = store.get_volume(id).await;
        let snapshot = store.get_snapshot(id).await;
        match (volume, snapshot) {
            (Ok(v), Ok(s)) => {
                let v = v.is_some_and(|v| !v.status.life.deleted && v.spec.node == node);
                let s = s.is_some_and(|s| !s.status.life.deleted && s.spec.node == node);
                !(v || s)
            }
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(record = %id, error = %e, "cannot confirm an orphan's record is gone: not reaped");
                false
            }
        }
    }
}

fn vanished<R: Tracked>(r: &R) -> String {
    format!("LV {}/{} vanished", r.vg(), r.lv_name())
}
