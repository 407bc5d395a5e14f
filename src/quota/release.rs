//! Releasing what a record charged, once: the release ledger on a
//! project's quota record (`status.released`) makes a release retried after
//! a crash (between the release and the record's soft delete) a no-op; the
//! sweep forgets entries whose record is deleted.
use std::collections::BTreeMap;
use std::sync::Arc;

use super::QuotaError;
use super::arith::{self, Deltas};
use super::engine::QuotaEngine;
use crate::store::StoreError;

impl QuotaEngine {
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
        self.store
            .update_quota(
                project,
                Box::new(move |current| {
                    let spec = current.map(|r| r.spec.clone()).unwrap_or_default();
                    let mut status = current.map(|r| r.status.clone()).unwrap_or_default();
                    let now = arith::release_once(&mut status, &key, &release);
                    out.store(now, std::sync::atomic::Ordering::SeqCst);
                    Ok((spec, status))
                }),
            )
            .await
            .map_err(|e| QuotaError::Store(e.to_string()))?;
        Ok(applied.load(std::sync::atomic::Ordering::SeqCst))
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
        self.store
            .update_quota(
                project,
                Box::new(move |current| {
                    let spec = current.map(|r| r.spec.clone()).unwrap_or_default();
                    let mut status = current.map(|r| r.status.clone()).unwrap_or_default();
                    arith::forget_release(&mut status, &key);
                    Ok((spec, status))
                }),
            )
            .await
            .map(|_| ())
            .map_err(|e| QuotaError::Store(e.to_string()))
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
