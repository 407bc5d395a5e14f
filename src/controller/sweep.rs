//! The controller's periodic sweep (one replica runs it: see the Lease in
//! the assembly): Cinder's reservation expiry (claimed reservations
//! committed, the rest rolled back), the release of failed creates nobody
//! asked for again (`--failed-create-grace`: the CO never got their id, so
//! it can never delete them), the purge of soft-deleted records past their
//! retention (Cinder keeps `deleted=1` rows until an operator purges them),
//! and forgetting quota releases whose record is deleted.
use chrono::{DateTime, Utc};

use super::nodes::NodeHealth;
use super::{Controller, ControllerError, refuse};
use crate::quota::release_key;
use crate::records::{FailureCode, LifeState, parse_time};
use crate::store::{
    GroupSnapshotFilter, GroupSnapshotRecord, Kind, Phase, SnapshotFilter, Tracked, VolumeFilter,
    modify,
};

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Expired reservations settled.
    pub expired: usize,
    /// Failed creates released.
    pub released: usize,
    /// Soft-deleted records purged.
    pub purged: usize,
    /// Quota releases forgotten.
    pub forgotten: usize,
}

impl Controller {
    /// One sweep at `now`.
    pub async fn sweep(&self, now: DateTime<Utc>) -> Result<Swept, ControllerError> {
        Ok(Swept {
            expired: self.quota.expire().await?,
            released: self.release_failed_creates(now).await?,
            purged: self.purge_deleted(now).await?,
            forgotten: self.quota.settle_releases().await?,
        })
    }

    /// Releases every failed create whose failure is older than the grace.
    pub async fn release_failed_creates(
        &self,
        now: DateTime<Utc>,
    ) -> Result<usize, ControllerError> {
        let grace = chrono::Duration::from_std(self.config.failed_create_grace)
            .map_err(|e| ControllerError::Internal(e.to_string()))?;
        let cutoff = now - grace;
        let mut released = 0;
        let all = SnapshotFilter::default();
        for s in self.store.list_snapshots(&all, None, usize::MAX).await? {
            if s.status.life.failed_create_before(cutoff) && self.release_failed(&s).await {
                released += 1;
            }
        }
        let all = VolumeFilter::default();
        for v in self.store.list_volumes(&all, None, usize::MAX).await? {
            if v.status.life.failed_create_before(cutoff) && self.release_failed(&v).await {
                released += 1;
            }
        }
        // A failed group holds nothing (its node rolled every member back):
        // the record alone goes.
        let all = GroupSnapshotFilter::default();
        for g in self
            .store
            .list_group_snapshots(&all, None, usize::MAX)
            .await?
        {
            if !g.status.life.failed_create_before(cutoff) {
                continue;
            }
            self.store
                .modify_group_snapshot(
                    &g.name,
                    modify(|r: &mut GroupSnapshotRecord| {
                        if r.status.life.is_failed_create() {
                            r.status.life.mark_deleted();
                        }
                        Ok(())
                    }),
                )
                .await?;
            let note = format!(
                "group snapshot {} failed to be created and nobody asked for it again: its record is deleted",
                g.name
            );
            self.notify(
                Kind::GroupSnapshot,
                &g.name,
                Phase::FailedCreateReleased,
                note,
            )
            .await;
            released += 1;
        }
        Ok(released)
    }

    /// A failed create nobody will ask for again: deleted through its node
    /// (which removes any LV and releases the quota), or here if the node
    /// is gone. Returns whether it was started.
    pub(super) async fn release_failed<R: Tracked>(&self, r: &R) -> bool {
        let id = r.id().to_string();
        let kind = R::KIND.as_str();
        let note = format!(
            "{kind} {id} failed to be created ({}: {}) and nobody asked for it again: released",
            r.life().error_code.unwrap_or(FailureCode::Internal),
            r.life().error_message.clone().unwrap_or_default()
        );
        let result = if self.node_health(r.node()).await == NodeHealth::Gone {
            self.abandon(r, &id).await
        } else {
            R::modify(
                self.store.as_ref(),
                &id,
                modify(|r: &mut R| {
                    if r.life().is_failed_create() {
                        r.life_mut()
                            .transition(R::State::DELETING)
                            .map_err(|e| refuse(ControllerError::Internal(e.to_string())))?;
                    }
                    Ok(())
                }),
            )
            .await
            .map(|_| ())
            .map_err(ControllerError::from)
        };
        match result {
            Ok(()) => {
                self.notify(R::KIND, &id, Phase::FailedCreateReleased, note)
                    .await;
                true
            }
            Err(e) => {
                tracing::warn!(kind, record = %id, error = %e, "cannot release a failed create");
                false
            }
        }
    }

    /// Purges snapshot and volume records deleted before `now - retention`
    /// (forgetting their quota release first); returns how many went.
    pub async fn purge_deleted(&self, now: DateTime<Utc>) -> Result<usize, ControllerError> {
        let retention = chrono::Duration::from_std(self.config.deleted_retention)
            .map_err(|e| ControllerError::Internal(e.to_string()))?;
        let cutoff = now - retention;
        let expired = |t: Option<&str>| parse_time(t).is_some_and(|t| t < cutoff);
        let mut purged = 0;
        // Purging is for good: decided on a direct read, not a watch cache.
        let store = crate::store::direct(&self.store);
        let all = SnapshotFilter {
            include_deleted: true,
            ..Default::default()
        };
        for s in store.list_snapshots(&all, None, usize::MAX).await? {
            if s.status.life.deleted && expired(s.status.life.deleted_at.as_deref()) {
                let key = release_key(Kind::Snapshot, &s.name);
                self.quota.forget_release(&s.spec.project, &key).await?;
                self.store.purge_snapshot(&s.name).await?;
                purged += 1;
            }
        }
        let all = VolumeFilter {
            include_deleted: true,
            ..Default::default()
        };
        for v in store.list_volumes(&all, None, usize::MAX).await? {
            if v.status.life.deleted && expired(v.status.life.deleted_at.as_deref()) {
                let key = release_key(Kind::Volume, &v.name);
                self.quota.forget_release(&v.spec.project, &key).await?;
                self.store.purge_volume(&v.name).await?;
                purged += 1;
            }
        }
        let all = GroupSnapshotFilter {
            include_deleted: true,
            ..Default::default()
        };
        for g in self
            .store
            .list_group_snapshots(&all, None, usize::MAX)
            .await?
        {
            if g.status.life.deleted && expired(g.status.life.deleted_at.as_deref()) {
                self.store.purge_group_snapshot(&g.name).await?;
                purged += 1;
            }
        }
        Ok(purged)
    }
}
