//! The one assembly of a running driver: from store(s), LVM and settings to
//! the gRPC router and the background tasks (node executor, controller
//! sweeps under leader election). `lvsnap controller|node|all-in-one`, the
//! bench's in-process driver and the tests' harness all build it here.
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;

use crate::config::Mode;
use crate::controller::{Controller, ControllerConfig};
use crate::csi::identity::ReadinessCheck;
use crate::csi::{ControllerService, GroupControllerService, IdentityService, NodeService};
use crate::failpoint::Failpoints;
use crate::lvm::Lvm;
use crate::metrics::rpc::CsiRouter;
use crate::metrics::{Metrics, NodeSource, RpcLayer, StoreSource};
use crate::node::{DataPath, Executor, Host, NodeSettings};
use crate::proto::v1::controller_server::ControllerServer;
use crate::proto::v1::group_controller_server::GroupControllerServer;
use crate::proto::v1::identity_server::IdentityServer;
use crate::proto::v1::node_server::NodeServer;
use crate::quota::{Clock, QuotaConfig, QuotaEngine, system_clock};
use crate::store::lease::{Leadership, always_leader};
use crate::store::{Cluster, EventSink, LogOnly, Standalone, Store};

/// The node side's parts.
pub struct NodeParts {
    pub settings: NodeSettings,
    pub lvm: Lvm,
    pub host: Host,
    /// The node's own store (Kubernetes: its own client and watch);
    /// `None`: the driver's store.
    pub store: Option<Arc<dyn Store>>,
    pub events: Arc<dyn EventSink>,
}

impl NodeParts {
    pub fn new(settings: NodeSettings, lvm: Lvm) -> Self {
        Self {
            settings,
            lvm,
            host: Host::default(),
            store: None,
            events: Arc::new(LogOnly),
        }
    }
}

/// The controller side's parts.
pub struct ControllerParts {
    pub config: ControllerConfig,
    pub cluster: Arc<dyn Cluster>,
    pub events: Arc<dyn EventSink>,
    /// How often the sweep runs (when this replica leads).
    pub sweep_every: Duration,
    pub leadership: Leadership,
}

impl ControllerParts {
    pub fn new(config: ControllerConfig) -> Self {
        Self {
            config,
            cluster: Arc::new(Standalone),
            events: Arc::new(LogOnly),
            sweep_every: Duration::from_secs(60),
            leadership: always_leader(),
        }
    }
}

/// Everything a driver is made of.
pub struct DriverBuilder {
    pub mode: Mode,
    pub driver_name: String,
    pub store: Arc<dyn Store>,
    pub quota: QuotaConfig,
    pub clock: Clock,
    pub controller: Option<ControllerParts>,
    pub node: Option<NodeParts>,
    pub failpoints: Failpoints,
    /// Extra Probe checks (the Kubernetes API for the controller).
    pub checks: Vec<(&'static str, ReadinessCheck)>,
    /// Prometheus metrics (`--metrics-address`); `None`: none kept.
    pub metrics: Option<Metrics>,
}

/// A built driver: serve `router`, run `tasks`.
pub struct Driver {
    pub router: CsiRouter,
    pub metrics: Option<Metrics>,
    pub controller: Option<Controller>,
    pub executor: Option<Executor>,
    pub tasks: Vec<BoxFuture<'static, ()>>,
}

impl DriverBuilder {
    pub fn new(mode: Mode, driver_name: impl Into<String>, store: Arc<dyn Store>) -> Self {
        Self {
            mode,
            driver_name: driver_name.into(),
            store,
            quota: QuotaConfig::default(),
            clock: system_clock(),
            controller: None,
            node: None,
            failpoints: Failpoints::default(),
            checks: Vec::new(),
            metrics: None,
        }
    }

    pub fn build(self) -> Driver {
        let mut identity = IdentityService::new(self.driver_name, self.mode);
        let mut router_services = Services::default();
        let mut tasks: Vec<BoxFuture<'static, ()>> = Vec::new();
        let mut executor = None;
        if let Some(node) = self.node {
            let store = node.store.unwrap_or_else(|| self.store.clone());
            let quota = QuotaEngine::new(store.clone(), self.quota.clone(), self.clock.clone());
            let lvm = match &self.metrics {
                Some(m) => node.lvm.with_observer(m.lvm_observer()),
                None => node.lvm,
            };
            // The node's readiness is its own: the volume group of each of
            // its device classes. An API server outage must not make the
            // livenessprobe restart it.
            identity = identity.with_check("volume group", vg_check(&lvm, node.settings.vgs()));
            let data = DataPath::new(node.settings.vgs(), lvm.clone(), node.host);
            router_services.node = Some(NodeService::new(node.settings.node_id.clone(), data));
            let exec = Executor::new(store, quota, lvm, node.settings)
                .with_events(node.events)
                .with_failpoints(self.failpoints.clone());
            tasks.push(exec.clone().run().boxed());
            tasks.push(exec.clone().watch_fill().boxed());
            if let Some(m) = &self.metrics {
                m.add_source(Arc::new(NodeSource::new(exec.fill())));
            }
            executor = Some(exec);
        }
        let mut controller = None;
        if let Some(parts) = self.controller {
            let quota =
                QuotaEngine::new(self.store.clone(), self.quota.clone(), self.clock.clone());
            let c = Controller::new(self.store.clone(), quota, parts.config)
                .with_cluster(parts.cluster)
                .with_events(parts.events)
                .with_failpoints(self.failpoints.clone());
            tasks.push(sweeps(c.clone(), parts.sweep_every, parts.leadership).boxed());
            if let Some(m) = &self.metrics {
                m.add_source(Arc::new(StoreSource::new(
                    self.store.clone(),
                    c.quota.clone(),
                )));
            }
            router_services.controller = Some(ControllerService::new(c.clone()));
            router_services.group = Some(GroupControllerService::new(c.clone()));
            controller = Some(c);
        }
        for (name, check) in self.checks {
            identity = identity.with_check(name, check);
        }
        let mut router = tonic::transport::Server::builder()
            .layer(RpcLayer::new(self.metrics.clone()))
            .add_service(IdentityServer::new(identity));
        if let Some(node) = router_services.node {
            router = router.add_service(NodeServer::new(node));
        }
        if let Some(c) = router_services.controller {
            router = router.add_service(ControllerServer::new(c));
        }
        if let Some(g) = router_services.group {
            router = router.add_service(GroupControllerServer::new(g));
        }
        Driver {
            router,
            metrics: self.metrics,
            controller,
            executor,
            tasks,
        }
    }
}

#[derive(Default)]
struct Services {
    node: Option<NodeService>,
    controller: Option<ControllerService>,
    group: Option<GroupControllerService>,
}

/// Probe's check of the node's volume groups (one `vgs` each): the first
/// that does not answer is the reason.
pub fn vg_check(lvm: &Lvm, vgs: Vec<String>) -> ReadinessCheck {
    let lvm = lvm.clone();
    let vgs = Arc::new(vgs);
    Arc::new(move || {
        let (lvm, vgs) = (lvm.clone(), vgs.clone());
        async move {
            for vg in vgs.iter() {
                lvm.vg(vg).await.map_err(|e| format!("{vg}: {e}"))?;
            }
            Ok(())
        }
        .boxed()
    })
}

impl Driver {
    /// Spawns the background tasks on the current runtime.
    pub fn spawn_tasks(&mut self) -> Vec<tokio::task::JoinHandle<()>> {
        std::mem::take(&mut self.tasks)
            .into_iter()
            .map(tokio::spawn)
            .collect()
    }
}

/// Every `every`, while `leadership` says this replica leads: one sweep.
async fn sweeps(controller: Controller, every: Duration, leadership: Leadership) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        if !*leadership.borrow() {
            continue;
        }
        match controller.sweep(chrono::Utc::now()).await {
            Ok(s) if s == Default::default() => {}
            Ok(s) => tracing::info!(
                expired = s.expired,
                released = s.released,
                purged = s.purged,
                forgotten = s.forgotten,
                "sweep done"
            ),
            Err(e) => tracing::warn!(error = %e, "sweep failed; next interval retries"),
        }
    }
}
