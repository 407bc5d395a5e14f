//! Runs the quota arithmetic as ONE atomic read-modify-write of a project's
//! quota record per call (SQLite: a transaction; Kubernetes: a
//! resourceVersion compare-and-swap, retried on conflict).
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::arith::{self, Deltas};
use super::{QuotaConfig, QuotaError, gib_ceil, validate_key};
use crate::records::{LvsQuotaSpec, LvsQuotaStatus};
use crate::store::{
    GroupSnapshotFilter, QuotaRecord, SnapshotFilter, SnapshotRecord, Store, StoreError,
    VolumeFilter, VolumeRecord,
};

/// Page size when walking a project's records.
const PAGE: usize = 500;

/// The time source (injectable for tests).
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(Utc::now)
}

/// Cinder's quota engine over a [`Store`].
#[derive(Clone)]
pub struct QuotaEngine {
    pub(super) store: Arc<dyn Store>,
    config: QuotaConfig,
    pub(super) clock: Clock,
}

/// Signals from inside the read-modify-write closure.
#[derive(Debug, thiserror::Error)]
pub(super) enum Inner {
    #[error("usage must be recounted first")]
    NeedsRefresh,
    #[error(transparent)]
    Quota(#[from] QuotaError),
}

fn store_err(e: StoreError) -> Result<Inner, QuotaError> {
    match e {
        StoreError::Aborted(inner) => match inner.downcast::<Inner>() {
            Ok(inner) => Ok(*inner),
            Err(other) => Err(QuotaError::Store(other.to_string())),
        },
        other => Err(QuotaError::Store(other.to_string())),
    }
}

impl QuotaEngine {
    pub fn new(store: Arc<dyn Store>, config: QuotaConfig, clock: Clock) -> Self {
        Self {
            store,
            config,
            clock,
        }
    }

    pub fn config(&self) -> &QuotaConfig {
        &self.config
    }

    /// `{snapshots: ±1, gigabytes: ±size}` plus per-type keys; only
    /// `snapshots` when `no_snapshot_gb_quota`.
    pub fn snapshot_deltas(&self, volume_type: &str, size_gb: i64, sign: i64) -> Deltas {
        let mut d = Deltas::new();
        add(&mut d, "snapshots", volume_type, sign);
        if !self.config.no_snapshot_gb_quota {
            add(&mut d, "gigabytes", volume_type, sign * size_gb);
        }
        d
    }

    /// `{volumes: ±1, gigabytes: ±size}` plus per-type keys.
    pub fn volume_deltas(&self, volume_type: &str, size_gb: i64, sign: i64) -> Deltas {
        let mut d = Deltas::new();
        add(&mut d, "volumes", volume_type, sign);
        add(&mut d, "gigabytes", volume_type, sign * size_gb);
        d
    }

    /// Quota deltas of growing a volume of `volume_type` from `from` to `to` bytes.
    pub fn extend_deltas(volume_type: &str, from: i64, to: i64) -> Deltas {
        let delta = gib_ceil(to) - gib_ceil(from);
        let mut d = Deltas::new();
        if delta > 0 {
            d.insert("gigabytes".into(), delta);
            d.insert(format!("gigabytes_{volume_type}"), delta);
        }
        d
    }

    /// Reserves `deltas` in `project`; returns the reservation ids.
    pub async fn reserve(&self, project: &str, deltas: &Deltas) -> Result<Vec<String>, QuotaError> {
        for key in deltas.keys() {
            validate_key(key)?;
        }
        match self.try_reserve(project, deltas, None).await {
            Err(Inner::NeedsRefresh) => {
                let counts = self.recount(project).await?;
                self.try_reserve(project, deltas, Some(counts))
                    .await
                    .map_err(|e| match e {
                        Inner::Quota(q) => q,
                        Inner::NeedsRefresh => QuotaError::Store("recount did not settle".into()),
                    })
            }
            Err(Inner::Quota(e)) => Err(e),
            Ok(ids) => Ok(ids),
        }
    }

    async fn try_reserve(
        &self,
        project: &str,
        deltas: &Deltas,
        counts: Option<BTreeMap<String, i64>>,
    ) -> Result<Vec<String>, Inner> {
        let ids: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
        let update = self.reservation(deltas, counts, false, ids.clone());
        let result = self.store.update_quota(project, update).await;
        match result {
            Ok(_) => Ok(ids.lock().map(|v| v.clone()).unwrap_or_default()),
            Err(e) => Err(store_err(e).map_err(Inner::Quota)?),
        }
    }

    /// Commits reservations (Cinder's `reservation_commit`).
    pub async fn commit(&self, project: &str, ids: &[String]) -> Result<(), QuotaError> {
        self.modify(project, ids.to_vec(), |status, ids| {
            arith::commit(status, ids);
        })
        .await
    }

    /// Rolls reservations back (Cinder's `reservation_rollback`).
    pub async fn rollback(&self, project: &str, ids: &[String]) -> Result<(), QuotaError> {
        self.modify(project, ids.to_vec(), |status, ids| {
            arith::rollback(status, ids);
        })
        .await
    }

    /// Reserves and commits at once: how Cinder releases quota on delete
    /// (negative deltas).
    pub async fn charge(&self, project: &str, deltas: &Deltas) -> Result<(), QuotaError> {
        let ids = self.reserve(project, deltas).await?;
        self.commit(project, &ids).await
    }

    /// Settles every expired reservation in every project (Cinder's periodic
    /// `reservation_expire`), returning how many were settled. Unlike Cinder,
    /// a reservation a live record claims (`quota_reservations`) is committed,
    /// not rolled back: the controller wrote the record and died before its
    /// commit, and the resource will exist, so it must stay charged.
    pub async fn expire(&self) -> Result<usize, QuotaError> {
        let now = (self.clock)();
        let quotas = self
            .store
            .list_quotas()
            .await
            .map_err(|e| QuotaError::Store(e.to_string()))?;
        let mut total = 0;
        for q in quotas {
            if arith::expired_ids(&q.status, now).is_empty() {
                continue;
            }
            let claimed = Arc::new(self.claimed_reservations(&q.name).await?);
            let done = Arc::new(std::sync::Mutex::new((0, 0)));
            let counter = done.clone();
            self.store
                .update_quota(
                    &q.name,
                    Box::new(move |current| {
                        let spec = current.map(|r| r.spec.clone()).unwrap_or_default();
                        let mut status = current.map(|r| r.status.clone()).unwrap_or_default();
                        let settled = arith::expire(&mut status, now, &claimed);
                        if let Ok(mut c) = counter.lock() {
                            *c = settled;
                        }
                        Ok((spec, status))
                    }),
                )
                .await
                .map_err(|e| QuotaError::Store(e.to_string()))?;
            let (committed, rolled_back) = done.lock().map(|c| *c).unwrap_or_default();
            if committed > 0 {
                tracing::warn!(project = %q.name, committed, "committed expired reservations claimed by records (a create was interrupted before its commit)");
            }
            total += committed + rolled_back;
        }
        Ok(total)
    }

    /// The reservation ids the project's live records claim (volumes,
    /// snapshots, and group snapshots, whose one reservation covers their
    /// members).
    async fn claimed_reservations(&self, project: &str) -> Result<HashSet<String>, QuotaError> {
        let (volumes, snapshots) = self.live_records(project).await?;
        let filter = GroupSnapshotFilter {
            project: Some(project.to_string()),
            ..Default::default()
        };
        let groups = self
            .store
            .list_group_snapshots(&filter, None, usize::MAX)
            .await
            .map_err(|e| QuotaError::Store(e.to_string()))?;
        Ok(volumes
            .into_iter()
            .flat_map(|v| v.spec.quota_reservations)
            .chain(
                snapshots
                    .into_iter()
                    .flat_map(|s| s.spec.quota_reservations),
            )
            .chain(groups.into_iter().flat_map(|g| g.spec.quota_reservations))
            .collect())
    }

    /// Every live (not deleted) volume and snapshot record of a project,
    /// read directly (not from a watch cache): counts of usage and the
    /// reservations records claim must include every record written.
    async fn live_records(
        &self,
        project: &str,
    ) -> Result<(Vec<VolumeRecord>, Vec<SnapshotRecord>), QuotaError> {
        let err = |e: StoreError| QuotaError::Store(e.to_string());
        let store = crate::store::direct(&self.store);
        let vf = VolumeFilter {
            project: Some(project.to_string()),
            ..Default::default()
        };
        let mut volumes = Vec::new();
        loop {
            let after = volumes.last().map(|v: &VolumeRecord| v.name.clone());
            let page = store
                .list_volumes(&vf, after.as_deref(), PAGE)
                .await
                .map_err(err)?;
            let full = page.len() == PAGE;
            volumes.extend(page);
            if !full {
                break;
            }
        }
        let sf = SnapshotFilter {
            project: Some(project.to_string()),
            ..Default::default()
        };
        let mut snapshots = Vec::new();
        loop {
            let after = snapshots.last().map(|s: &SnapshotRecord| s.name.clone());
            let page = store
                .list_snapshots(&sf, after.as_deref(), PAGE)
                .await
                .map_err(err)?;
            let full = page.len() == PAGE;
            snapshots.extend(page);
            if !full {
                break;
            }
        }
        Ok((volumes, snapshots))
    }

    /// The project's limits and usage.
    pub async fn show(
        &self,
        project: &str,
    ) -> Result<(BTreeMap<String, i64>, LvsQuotaStatus), QuotaError> {
        let q = self
            .store
            .get_quota(project)
            .await
            .map_err(|e| QuotaError::Store(e.to_string()))?;
        Ok((
            self.limits_of(q.as_ref()),
            q.map(|r| r.status).unwrap_or_default(),
        ))
    }

    /// A project's limits: the configured defaults, overridden by its record's.
    pub fn limits_of(&self, record: Option<&QuotaRecord>) -> BTreeMap<String, i64> {
        let mut limits: BTreeMap<String, i64> = self.config.defaults.clone();
        if let Some(r) = record {
            limits.extend(r.spec.hard.clone());
        }
        limits
    }

    async fn modify(
        &self,
        project: &str,
        ids: Vec<String>,
        f: fn(&mut LvsQuotaStatus, &[String]),
    ) -> Result<(), QuotaError> {
        if ids.is_empty() {
            return Ok(());
        }
        self.update_status(project, move |status| f(status, &ids))
            .await
    }

    /// One atomic read-modify-write of a project's quota status (its limits
    /// kept as they are).
    pub(super) async fn update_status(
        &self,
        project: &str,
        mut f: impl FnMut(&mut LvsQuotaStatus) + Send + 'static,
    ) -> Result<(), QuotaError> {
        self.store
            .update_quota(
                project,
                Box::new(move |current| {
                    let spec = current.map(|r| r.spec.clone()).unwrap_or_default();
                    let mut status = current.map(|r| r.status.clone()).unwrap_or_default();
                    f(&mut status);
                    Ok((spec, status))
                }),
            )
            .await
            .map(|_| ())
            .map_err(|e| QuotaError::Store(e.to_string()))
    }

    /// Recounts usage from the records (Cinder's refresh): non-deleted
    /// snapshots and volumes of any status; gigabytes = volume sizes +
    /// snapshots' `volume_size` (unless `no_snapshot_gb_quota`).
    pub async fn recount(&self, project: &str) -> Result<BTreeMap<String, i64>, QuotaError> {
        let mut counts = BTreeMap::new();
        let mut bump = |key: &str, ty: &str, n: i64| {
            *counts.entry(key.to_string()).or_insert(0) += n;
            *counts.entry(format!("{key}_{ty}")).or_insert(0) += n;
        };
        let (volumes, snapshots) = self.live_records(project).await?;
        for v in &volumes {
            bump("volumes", &v.spec.volume_type, 1);
            bump(
                "gigabytes",
                &v.spec.volume_type,
                gib_ceil(v.spec.size_bytes),
            );
        }
        for s in &snapshots {
            bump("snapshots", &s.spec.volume_type, 1);
            if !self.config.no_snapshot_gb_quota {
                bump("gigabytes", &s.spec.volume_type, s.spec.volume_size);
            }
        }
        Ok(counts)
    }

    /// Sets a project's limits (validated keys).
    pub async fn set_limits(
        &self,
        project: &str,
        hard: BTreeMap<String, i64>,
    ) -> Result<(), QuotaError> {
        for key in hard.keys() {
            validate_key(key)?;
        }
        self.store
            .set_quota_limits(project, &LvsQuotaSpec { hard })
            .await
            .map(|_| ())
            .map_err(|e| QuotaError::Store(e.to_string()))
    }
}

fn add(d: &mut Deltas, resource: &str, volume_type: &str, n: i64) {
    d.insert(resource.to_string(), n);
    d.insert(format!("{resource}_{volume_type}"), n);
}

/// Project limit, else the configured default (per-type keys: -1).
pub(super) fn limit(spec: &LvsQuotaSpec, config: &QuotaConfig, key: &str) -> i64 {
    spec.hard
        .get(key)
        .copied()
        .unwrap_or_else(|| config.default_limit(key))
}
