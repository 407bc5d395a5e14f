//! A reservation committed in the same atomic write as the record it pays
//! for ([`QuotaEngine::charge_within`]): Cinder's reserve + commit of one
//! create, folded into the store's one transaction where it has one.
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use super::arith::{self, Deltas};
use super::engine::{Inner, limit};
use super::{QuotaEngine, QuotaError, validate_key};
use crate::store::{QuotaRecord, QuotaUpdate, StoreError};

/// Why [`QuotaEngine::charge_within`] wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum ChargeError {
    /// Over a limit (Cinder's message) or a bad quota request.
    #[error(transparent)]
    Quota(#[from] QuotaError),
    /// The store's write failed or another check in it refused.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl QuotaEngine {
    /// The quota update that reserves `deltas` (usage recounted from
    /// `counts` where due; without them, a key due for a refresh aborts with
    /// [`Inner::NeedsRefresh`]) and, when `commit`, commits them in the same
    /// write. The new reservation ids land in `ids`.
    pub(super) fn reservation(
        &self,
        deltas: &Deltas,
        counts: Option<BTreeMap<String, i64>>,
        commit: bool,
        ids: Arc<Mutex<Vec<String>>>,
    ) -> QuotaUpdate {
        let deltas = deltas.clone();
        let config = self.config().clone();
        let now = (self.clock)();
        let expires = now
            + chrono::Duration::from_std(config.reservation_expire)
                .unwrap_or(chrono::Duration::days(1));
        let max_age = config
            .max_age
            .and_then(|d| chrono::Duration::from_std(d).ok());
        Box::new(move |current: Option<&QuotaRecord>| {
            let spec = current.map(|r| r.spec.clone()).unwrap_or_default();
            let mut status = current.map(|r| r.status.clone()).unwrap_or_default();
            for key in deltas.keys() {
                if arith::needs_refresh(&status, key, config.until_refresh, max_age, now) {
                    let Some(counts) = &counts else {
                        return Err(Box::new(Inner::NeedsRefresh));
                    };
                    let n = counts.get(key).copied().unwrap_or(0);
                    arith::refresh(&mut status, key, n, config.until_refresh, now);
                }
            }
            let hard = |key: &str| limit(&spec, &config, key);
            let new = arith::reserve(&mut status, &hard, &deltas, expires, &mut || {
                uuid::Uuid::new_v4().to_string()
            })
            .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> {
                // Unsized here, so that the store hands back a Box<Inner>
                // (a `?` on Box<Inner> would box it twice).
                Box::new(Inner::Quota(e))
            })?;
            if commit {
                arith::commit(&mut status, &new);
            }
            if let Ok(mut ids) = ids.lock() {
                *ids = new;
            }
            Ok((spec, status))
        })
    }

    /// Reserves and commits `deltas` in `project` inside `write`, the
    /// store's one atomic write of the record they pay for (it hands the
    /// quota update to the store). Over quota → [`ChargeError::Quota`] and
    /// nothing written; usage due for a refresh is recounted from the
    /// records and `write` asked once more. `write` may run twice, so it
    /// must only write through the store.
    pub async fn charge_within<R, F, Fut>(
        &self,
        project: &str,
        deltas: &Deltas,
        write: F,
    ) -> Result<R, ChargeError>
    where
        F: Fn(QuotaUpdate) -> Fut,
        Fut: Future<Output = Result<R, StoreError>>,
    {
        for key in deltas.keys() {
            validate_key(key)?;
        }
        let update = self.reservation(deltas, None, true, Arc::default());
        let refused = match write(update).await {
            Err(StoreError::Aborted(inner)) => match inner.downcast::<Inner>() {
                Ok(inner) => *inner,
                Err(other) => return Err(StoreError::Aborted(other).into()),
            },
            done => return Ok(done?),
        };
        if let Inner::Quota(e) = refused {
            return Err(e.into());
        }
        let counts = self.recount(project).await?;
        let update = self.reservation(deltas, Some(counts), true, Arc::default());
        match write(update).await {
            Err(StoreError::Aborted(inner)) => match inner.downcast::<Inner>() {
                Ok(inner) => match *inner {
                    Inner::Quota(e) => Err(e.into()),
                    Inner::NeedsRefresh => {
                        Err(QuotaError::Store("recount did not settle".into()).into())
                    }
                },
                Err(other) => Err(StoreError::Aborted(other).into()),
            },
            done => Ok(done?),
        }
    }
}
