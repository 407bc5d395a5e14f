//! Releasing what a record charged, once: the release ledger on a
//! project's quota record (`status.released`) makes a release retried after
//! a crash (between the release and the record's soft delete) a no-op; the
//! sweep forgets entries whose record is deleted.
use std::collections::BTreeMap;
use std::sync::Arc;

use super::arith::{self, Deltas};
use super::engine::QuotaEngine;
use super::{QuotaError, release_key};
use crate::failpoint::{Failpoints, Halted, points};
use crate::store::{StoreError, Tracked, modify};

impl QuotaEngine {
    /// Retires record `r` whose LV is gone (or, its node gone, abandoned):
    /// releases what it charged (once), soft-deletes it, forgets the
    /// release. A crash between any two steps is safe to redo. One path for
    /// the node's delete and the controller's delete on a gone node.
    pub async fn retire<R, E>(&self, r: &R, failpoints: &Failpoints) -> Result<(), E>
    where
        R: Tracked,
        E: From<QuotaError> + From<StoreError> + From<Halted>,
    {
        let key = release_key(R::KIND, r.id());
        self.release_once(r.project(), &key, r.charged()).await?;
        failpoints.hit(points::NODE_AFTER_RELEASE)?;
        R::modify(
            self.store.as_ref(),
            r.id(),
            modify(|r: &mut R| {
                if !r.life().deleted {
                    r.life_mut().mark_deleted();
                }
                Ok(())
            }),
        )
        .await?;
        failpoints.hit(points::NODE_AFTER_DELETED)?;
        self.forget_release(r.project(), &key).await?;
        Ok(())
    }

    /// Releases exactly what a record charged (`charged`, positive), at most
    /// once per `key` (`snapshot/<id>`, …) until [`Self::forget_release`]:
    /// a release retried after a crash before its record was marked deleted
    /// does not release twice. One atomic write; returns whether it applied.
    pub async fn release_once(
        &self,
        project: &str,
        key: &str,
        charged: &BTreeMap<String, i64>,
    ) -> Result<bool, QuotaError> {
        let release: Deltas = charged.iter().map(|(k, v)| (k.clone(), -v)).collect();
        let key = key.to_string();
        let applied = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let out = applied.clone();
        self.update_status(project, move |status| {
            let now = arith::release_once(status, &key, &release);
            out.store(now, std::sync::atomic::Ordering::SeqCst);
        })
        .await?;
        Ok(applied.load(std::sync::atomic::Ordering::SeqCst))
    }

    /// Whether any of reservations `ids` is still open (neither committed
    /// nor rolled back) in `project`.
    pub async fn pending(&self, project: &str, ids: &[String]) -> Result<bool, QuotaError> {
        let q = self
            .store
            .get_quota(project)
            .await
            .map_err(|e| QuotaError::Store(e.to_string()))?;
        Ok(q.is_some_and(|q| q.status.reservations.iter().any(|r| ids.contains(&r.id))))
    }

    /// Forgets the release of `key` once its record is marked deleted.
    pub async fn forget_release(&self, project: &str, key: &str) -> Result<(), QuotaError> {
        let key = key.to_string();
        let present = self
            .store
            .get_quota(project)
            .await
            .map_err(|e| QuotaError::Store(e.to_string()))?
            .is_some_and(|q| q.status.released.contains(&key));
        if !present {
            return Ok(());
        }
        self.update_status(project, move |status| {
            arith::forget_release(status, &key);
        })
        .await
    }

    /// Forgets every remembered release whose record is marked deleted or
    /// gone (a crash came between the soft delete and the forget), and every
    /// extend release whose volume is no longer `extending`. Returns how
    /// many went.
    pub async fn settle_releases(&self) -> Result<usize, QuotaError> {
        let err = |e: StoreError| QuotaError::Store(e.to_string());
        let mut forgotten = 0;
        for q in self.store.list_quotas().await.map_err(err)? {
            for key in &q.status.released {
                let mut parts = key.splitn(3, '/');
                let (kind, id, extend) = (parts.next(), parts.next(), parts.next());
                let settled = match (kind, id) {
                    (Some("snapshot"), Some(id)) => self
                        .store
                        .get_snapshot(id)
                        .await
                        .map_err(err)?
                        .is_none_or(|r| r.status.life.deleted),
                    (Some("group_snapshot"), Some(id)) => self
                        .store
                        .get_group_snapshot(id)
                        .await
                        .map_err(err)?
                        .is_none_or(|r| r.status.life.deleted),
                    (Some("volume"), Some(id)) => {
                        let v = self.store.get_volume(id).await.map_err(err)?;
                        match (v, extend) {
                            (None, _) => true,
                            (Some(v), _) if v.status.life.deleted => true,
                            (Some(v), Some(_)) => {
                                v.status.life.status != crate::records::VolumeState::Extending
                            }
                            (Some(_), None) => false,
                        }
                    }
                    _ => false,
                };
                if settled {
                    self.forget_release(&q.name, key).await?;
                    forgotten += 1;
                }
            }
        }
        Ok(forgotten)
    }
}
