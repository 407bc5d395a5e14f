//! The controller side's gauges, computed from the store at scrape time:
//! `lvsnap_records{kind,status}` (kind `volume`, `snapshot`,
//! `group_snapshot`; every status of each machine, 0 when none,
//! soft-deleted records included) and `lvsnap_quota_*{project,resource}`
//! for every project with a quota record. One listing per kind and one of
//! the quotas per scrape; a store that does not answer leaves the gauges
//! out of that scrape and counts `lvsnap_metrics_source_errors_total`.
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures::future::BoxFuture;

use super::{Families, Source, labels};
use crate::quota::QuotaEngine;
use crate::records::{LifeState, SnapshotState, VolumeState};
use crate::store::{GroupSnapshotFilter, SnapshotFilter, Store, StoreError, VolumeFilter};

/// Records and quota from the store.
pub struct StoreSource {
    store: Arc<dyn Store>,
    quota: QuotaEngine,
}

impl StoreSource {
    pub fn new(store: Arc<dyn Store>, quota: QuotaEngine) -> Self {
        Self { store, quota }
    }

    async fn read(&self) -> Result<Snapshot, StoreError> {
        let snapshots = self
            .store
            .list_snapshots(
                &SnapshotFilter {
                    include_deleted: true,
                    ..Default::default()
                },
                None,
                usize::MAX,
            )
            .await?;
        let volumes = self
            .store
            .list_volumes(
                &VolumeFilter {
                    include_deleted: true,
                    ..Default::default()
                },
                None,
                usize::MAX,
            )
            .await?;
        let groups = self
            .store
            .list_group_snapshots(
                &GroupSnapshotFilter {
                    include_deleted: true,
                    ..Default::default()
                },
                None,
                usize::MAX,
            )
            .await?;
        let mut records: BTreeMap<(&'static str, &'static str), i64> = BTreeMap::new();
        for s in SnapshotState::ALL {
            records.insert(("snapshot", s.as_str()), 0);
            records.insert(("group_snapshot", s.as_str()), 0);
        }
        for s in VolumeState::ALL {
            records.insert(("volume", s.as_str()), 0);
        }
        for s in &snapshots {
            *records
                .entry(("snapshot", s.status.life.status.as_str()))
                .or_default() += 1;
        }
        for g in &groups {
            *records
                .entry(("group_snapshot", g.status.life.status.as_str()))
                .or_default() += 1;
        }
        for v in &volumes {
            *records
                .entry(("volume", v.status.life.status.as_str()))
                .or_default() += 1;
        }
        let mut quotas = Vec::new();
        for q in self.store.list_quotas().await? {
            let limits = self.quota.limits_of(Some(&q));
            let keys: BTreeSet<&String> = limits.keys().chain(q.status.usage.keys()).collect();
            for key in keys {
                let usage = q.status.usage.get(key).cloned().unwrap_or_default();
                quotas.push(QuotaRow {
                    project: q.name.clone(),
                    resource: key.clone(),
                    in_use: usage.in_use,
                    reserved: usage.reserved,
                    limit: limits.get(key).copied().unwrap_or(-1),
                });
            }
        }
        Ok(Snapshot { records, quotas })
    }
}

struct QuotaRow {
    project: String,
    resource: String,
    in_use: i64,
    reserved: i64,
    limit: i64,
}

struct Snapshot {
    records: BTreeMap<(&'static str, &'static str), i64>,
    quotas: Vec<QuotaRow>,
}

impl Source for StoreSource {
    fn refresh<'a>(&'a self, f: &'a Families) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            f.records.clear();
            f.quota_in_use.clear();
            f.quota_reserved.clear();
            f.quota_limit.clear();
            let snap = match self.read().await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics: cannot read the store");
                    f.store_errors
                        .get_or_create(&labels([("source", "store")]))
                        .inc();
                    return;
                }
            };
            for ((kind, status), n) in snap.records {
                f.records
                    .get_or_create(&labels([("kind", kind), ("status", status)]))
                    .set(n);
            }
            for q in snap.quotas {
                let l = labels([("project", &q.project), ("resource", &q.resource)]);
                f.quota_in_use.get_or_create(&l).set(q.in_use);
                f.quota_reserved.get_or_create(&l).set(q.reserved);
                f.quota_limit.get_or_create(&l).set(q.limit);
            }
        })
    }
}
