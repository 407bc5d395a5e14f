//! Prometheus metrics (the `prometheus-client` crate): the families lvsnap
//! exports, their registry, and what fills them. The names are a contract
//! (docs/metrics.md lists them).
//!
//! - RPC: one tower layer around the gRPC router ([`rpc::RpcLayer`]);
//! - LVM commands: an observer the LVM layer tells about each command;
//! - records and quota (controller side): computed from the store at
//!   scrape time ([`store::StoreSource`]);
//! - volume group, thin pools, snapshot fill, orphans (node side): the node's
//!   last refresh ([`node::NodeSource`]), so that a scrape runs no LVM command.
//!
//! `/metrics` and `/healthz` are served by [`http::serve`].
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

pub mod http;
mod node;
pub mod rpc;
mod store;

pub use node::NodeSource;
pub use rpc::RpcLayer;
pub use store::StoreSource;

/// A label set: `(name, value)` pairs in a fixed order.
pub type Labels = Vec<(&'static str, String)>;
type Gauges = Family<Labels, Gauge>;
type FloatGauges = Family<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>;
type Counters = Family<Labels, Counter>;
type Histograms = Family<Labels, Histogram, fn() -> Histogram>;

/// Something that refreshes gauges just before they are encoded.
pub trait Source: Send + Sync {
    fn refresh<'a>(&'a self, families: &'a Families) -> BoxFuture<'a, ()>;
}

/// Every family lvsnap exports.
pub struct Families {
    pub rpc_requests: Counters,
    pub rpc_duration: Histograms,
    pub lvm_duration: Histograms,
    pub lvm_failures: Counters,
    pub quota_in_use: Gauges,
    pub quota_reserved: Gauges,
    pub quota_limit: Gauges,
    pub records: Gauges,
    pub vg_size: Gauges,
    pub vg_free: Gauges,
    pub class_available: Gauges,
    pub thinpool_data: FloatGauges,
    pub thinpool_metadata: FloatGauges,
    pub cow_used: FloatGauges,
    pub cow_size: Gauges,
    pub snapshot_invalid: Gauges,
    pub autoextend: Counters,
    pub orphan_lvs: Gauges,
    pub refresh_age: FloatGauges,
    pub store_errors: Counters,
}

fn rpc_buckets() -> Histogram {
    // 1 ms … ~65 s: an RPC waits at most --create-timeout (≤ 50 s).
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

fn lvm_buckets() -> Histogram {
    // 10 ms … ~160 s: an LVM command is killed at --lvm-timeout (120 s).
    Histogram::new(exponential_buckets(0.01, 2.0, 15))
}

impl Families {
    fn new(registry: &mut Registry) -> Self {
        let f = Families {
            rpc_requests: Family::default(),
            rpc_duration: Family::new_with_constructor(rpc_buckets),
            lvm_duration: Family::new_with_constructor(lvm_buckets),
            lvm_failures: Family::default(),
            quota_in_use: Family::default(),
            quota_reserved: Family::default(),
            quota_limit: Family::default(),
            records: Family::default(),
            vg_size: Family::default(),
            vg_free: Family::default(),
            class_available: Family::default(),
            thinpool_data: Family::default(),
            thinpool_metadata: Family::default(),
            cow_used: Family::default(),
            cow_size: Family::default(),
            snapshot_invalid: Family::default(),
            autoextend: Family::default(),
            orphan_lvs: Family::default(),
            refresh_age: Family::default(),
            store_errors: Family::default(),
        };
        let r = registry;
        // Counters are registered without `_total`: the encoder adds it.
        r.register(
            "lvsnap_rpc_requests",
            "CSI calls served, by service, method and gRPC code",
            f.rpc_requests.clone(),
        );
        r.register(
            "lvsnap_rpc_duration_seconds",
            "How long CSI calls took, by service and method",
            f.rpc_duration.clone(),
        );
        r.register(
            "lvsnap_lvm_command_duration_seconds",
            "How long LVM commands took (each attempt), by program",
            f.lvm_duration.clone(),
        );
        r.register(
            "lvsnap_lvm_command_failures",
            "LVM commands that failed (each attempt), by program and kind",
            f.lvm_failures.clone(),
        );
        r.register(
            "lvsnap_quota_in_use",
            "Quota in use, by project and resource (snapshots, gigabytes, volumes, per type)",
            f.quota_in_use.clone(),
        );
        r.register(
            "lvsnap_quota_reserved",
            "Quota reserved and not yet committed, by project and resource",
            f.quota_reserved.clone(),
        );
        r.register(
            "lvsnap_quota_limit",
            "Quota limit (-1 = unlimited), by project and resource",
            f.quota_limit.clone(),
        );
        r.register(
            "lvsnap_records",
            "Volume, snapshot and group snapshot records, by kind and status",
            f.records.clone(),
        );
        r.register(
            "lvsnap_vg_size_bytes",
            "Size of the node's volume group",
            f.vg_size.clone(),
        );
        r.register(
            "lvsnap_vg_free_bytes",
            "Free space of the node's volume group",
            f.vg_free.clone(),
        );
        r.register(
            "lvsnap_device_class_available_bytes",
            "What a new volume of a device class may take on the node (thin: pool x overprovisionRatio less the virtual size allocated, at most the pool's free data less the reserve x ratio)",
            f.class_available.clone(),
        );
        r.register(
            "lvsnap_thinpool_data_percent",
            "Used data space of a thin pool, percent (lvs data_percent)",
            f.thinpool_data.clone(),
        );
        r.register(
            "lvsnap_thinpool_metadata_percent",
            "Used metadata space of a thin pool, percent (lvs metadata_percent)",
            f.thinpool_metadata.clone(),
        );
        r.register(
            "lvsnap_snapshot_cow_used_percent",
            "Used copy-on-write area of a thick snapshot, percent (lvs snap_percent)",
            f.cow_used.clone(),
        );
        r.register(
            "lvsnap_snapshot_cow_size_bytes",
            "Size of a thick snapshot's copy-on-write area",
            f.cow_size.clone(),
        );
        r.register(
            "lvsnap_snapshot_invalid",
            "1 when LVM invalidated a thick snapshot (its COW area overflowed)",
            f.snapshot_invalid.clone(),
        );
        r.register(
            "lvsnap_snapshot_autoextend",
            "Copy-on-write extensions of thick snapshots since the node started, by result (extended, no_space, failed)",
            f.autoextend.clone(),
        );
        r.register(
            "lvsnap_orphan_lvs",
            "LVs tagged by lvsnap that no record claims (at the last settle)",
            f.orphan_lvs.clone(),
        );
        r.register(
            "lvsnap_node_refresh_age_seconds",
            "Seconds since the node last read its LVs' fill (one lvs per refresh)",
            f.refresh_age.clone(),
        );
        r.register(
            "lvsnap_metrics_source_errors",
            "Scrapes that could not read a source (the store), by source",
            f.store_errors.clone(),
        );
        f
    }
}

/// The metrics of one process; clone freely.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    families: Families,
    sources: std::sync::RwLock<Vec<Arc<dyn Source>>>,
    /// One scrape at a time: sources clear and refill shared gauges.
    scrape: tokio::sync::Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let families = Families::new(&mut registry);
        Self {
            inner: Arc::new(Inner {
                registry,
                families,
                sources: Default::default(),
                scrape: Default::default(),
            }),
        }
    }

    pub fn families(&self) -> &Families {
        &self.inner.families
    }

    /// Adds a source refreshed at every scrape.
    pub fn add_source(&self, source: Arc<dyn Source>) {
        if let Ok(mut s) = self.inner.sources.write() {
            s.push(source);
        }
    }

    /// The tower layer counting and timing every CSI call.
    pub fn rpc_layer(&self) -> RpcLayer {
        RpcLayer::new(Some(self.clone()))
    }

    /// The observer of LVM commands.
    pub fn lvm_observer(&self) -> Arc<dyn crate::lvm::CommandObserver> {
        Arc::new(LvmObserver(self.clone()))
    }

    /// The Prometheus text exposition (format 0.0.4), sources refreshed.
    pub async fn render(&self) -> String {
        let _one = self.inner.scrape.lock().await;
        let sources: Vec<Arc<dyn Source>> = self
            .inner
            .sources
            .read()
            .map(|s| s.clone())
            .unwrap_or_default();
        for s in &sources {
            s.refresh(&self.inner.families).await;
        }
        let mut out = String::new();
        if let Err(e) =
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.inner.registry)
        {
            tracing::warn!(error = %e, "cannot encode the metrics");
        }
        out
    }

    pub(crate) fn observe_rpc(&self, service: &str, method: &str, code: &str, took: Duration) {
        let f = &self.inner.families;
        let labels = vec![
            ("service", service.to_string()),
            ("method", method.to_string()),
        ];
        f.rpc_duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        let mut with_code = labels;
        with_code.push(("code", code.to_string()));
        f.rpc_requests.get_or_create(&with_code).inc();
    }
}

struct LvmObserver(Metrics);

impl crate::lvm::CommandObserver for LvmObserver {
    fn observe(&self, program: &str, elapsed: Duration, failure: Option<&'static str>) {
        let f = &self.0.inner.families;
        let command = vec![("command", program.to_string())];
        f.lvm_duration
            .get_or_create(&command)
            .observe(elapsed.as_secs_f64());
        if let Some(kind) = failure {
            let mut labels = command;
            labels.push(("kind", kind.to_string()));
            f.lvm_failures.get_or_create(&labels).inc();
        }
    }
}

/// A label set from pairs.
pub(crate) fn labels<const N: usize>(pairs: [(&'static str, &str); N]) -> Labels {
    pairs.into_iter().map(|(k, v)| (k, v.to_string())).collect()
}
