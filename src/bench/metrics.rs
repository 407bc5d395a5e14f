//! Section 6: the cost of one `/metrics` scrape of an all-in-one holding N
//! snapshot records (and their thick snapshots' fill: the node's gauges),
//! on SQLite and on the Kubernetes store (the in-process fake API server).
//! The scrape is `Metrics::render`, what the HTTP handler answers: the
//! record and quota gauges read from the store, the node's from its last
//! fill report (no LVM command).
use std::sync::{Arc, RwLock};
use std::time::Instant;

use serde::Serialize;

use super::{Latency, WorkDir};
use crate::metrics::{Metrics, NodeSource, StoreSource};
use crate::node::{FillReport, SnapshotFill};
use crate::quota::{QuotaConfig, QuotaEngine, system_clock};
use crate::store::{KubeStore, SqliteStore, Store};

#[derive(Debug, Clone, Serialize)]
pub struct ScrapeRow {
    pub store: String,
    pub records: usize,
    pub scrapes: usize,
    pub latency: Latency,
    /// Bytes of one exposition.
    pub bytes: usize,
    /// Samples (lines that are not comments) in it.
    pub samples: usize,
}

/// Scrapes of `records` snapshots on each store.
pub async fn run(
    base: &std::path::Path,
    records: usize,
    scrapes: usize,
) -> anyhow::Result<Vec<ScrapeRow>> {
    let dir = WorkDir::new(base, "metrics")?;
    let sqlite: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path)?);
    let kube: Arc<dyn Store> = Arc::new(KubeStore::new(
        crate::store::fake_api::FakeApiServer::new().client(),
    ));
    let mut rows = Vec::new();
    for (name, store) in [("SQLite", sqlite), ("Kubernetes (fake API)", kube)] {
        rows.push(one(name, store, records, scrapes).await?);
    }
    Ok(rows)
}

async fn one(
    name: &str,
    store: Arc<dyn Store>,
    records: usize,
    scrapes: usize,
) -> anyhow::Result<ScrapeRow> {
    let mut fill = FillReport {
        vg_name: "benchvg".into(),
        refreshed: Some(Instant::now()),
        orphans: Some(0),
        ..Default::default()
    };
    for i in 0..records {
        let r = super::scale::record(i, "bench-volume");
        store.insert_snapshot(&r).await?;
        fill.snapshots.push(SnapshotFill {
            id: r.name.clone(),
            lv: r.spec.lv_name.clone(),
            cow_used_percent: Some((i % 100) as f64),
            cow_size_bytes: 4 << 20,
            invalid: false,
        });
    }
    let hard = [("snapshots".to_string(), -1)].into();
    store
        .set_quota_limits("bench-scale", &crate::records::LvsQuotaSpec { hard })
        .await?;
    let quota = QuotaEngine::new(store.clone(), QuotaConfig::default(), system_clock());
    let metrics = Metrics::new();
    metrics.add_source(Arc::new(StoreSource::new(store, quota)));
    metrics.add_source(Arc::new(NodeSource::new(Arc::new(RwLock::new(fill)))));
    let mut samples = Vec::with_capacity(scrapes);
    let mut text = metrics.render().await;
    for _ in 0..scrapes {
        let t = Instant::now();
        text = metrics.render().await;
        samples.push(t.elapsed());
    }
    Ok(ScrapeRow {
        store: name.into(),
        records,
        scrapes,
        latency: Latency::of(&samples),
        bytes: text.len(),
        samples: text.lines().filter(|l| !l.starts_with('#')).count(),
    })
}
