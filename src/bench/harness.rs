//! The driver under test, started in this process through the same
//! assembly as `lvsnap all-in-one` (`driver::DriverBuilder`), or a running driver
//! reached through `--endpoint`. Either way the bench is a gRPC client on
//! the socket, like the Kubernetes sidecars.
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use super::WorkDir;
use crate::client::CsiClients;
use crate::config::Mode;
use crate::controller::ControllerConfig;
use crate::driver::{ControllerParts, DriverBuilder, NodeParts};
use crate::lvm::{CommandRunner, FakeRunner, Lvm, LvmConfig};
use crate::node::NodeSettings;
use crate::proto::v1 as csi;
use crate::quota::QuotaConfig;
use crate::store::fake_api::FakeApiServer;
use crate::store::{KubeStore, SqliteStore, Store};

/// The node id of the in-process driver (and of records the bench writes).
pub const NODE: &str = "bench-node";

/// Where records live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// SQLite in the work directory (all-in-one's store).
    Sqlite,
    /// The Kubernetes store over the in-memory API server: the controller
    /// and the node each with their own client and watch, as two processes.
    Kube,
}

impl StoreKind {
    pub fn label(self) -> &'static str {
        match self {
            StoreKind::Sqlite => "sqlite",
            StoreKind::Kube => "kubernetes (fake API)",
        }
    }
}

/// The node executor's full resync (`--capacity-interval`, default 60 s).
/// Every call must finish through change notifications alone; a call that
/// waited for the resync would show as a slow call in the overhead table
/// (the bench found the executor dropping a change that arrived while it
/// still worked the same record; it now works the record once more).
pub const RESYNC_DEFAULT: Duration = Duration::from_secs(60);

/// Which LVM the node executor runs.
pub enum LvmKind {
    /// The in-memory LVM: every command answers at once.
    Fake,
    /// A runner (the system's, wrapped to be profiled) on a real VG.
    Real {
        vg: String,
        runner: Arc<dyn CommandRunner>,
        config: LvmConfig,
    },
}

/// A driver to call: its clients and, when the bench can reach it, the
/// store behind it (to set quota limits, read usage, insert records).
pub struct Target {
    pub clients: CsiClients,
    pub store: Option<Arc<dyn Store>>,
    pub vg: String,
    pub fake: Option<Arc<FakeRunner>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    /// Kept alive while the target runs.
    pub dir: Option<WorkDir>,
}

/// The bench's quota defaults: Cinder's, with room for the sections' volumes.
pub fn quota_config() -> QuotaConfig {
    QuotaConfig {
        defaults: [("snapshots", 10), ("gigabytes", 100_000), ("volumes", 10)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        ..QuotaConfig::default()
    }
}

impl Target {
    /// Starts the driver in this process with a fresh store in `work`.
    pub async fn start(
        store: StoreKind,
        lvm: LvmKind,
        work: &Path,
        label: &str,
        resync: Duration,
    ) -> anyhow::Result<Target> {
        let dir = WorkDir::new(work, label).context("creating the work directory")?;
        let mut tasks = Vec::new();
        let (controller_store, node_store): (Arc<dyn Store>, Arc<dyn Store>) = match store {
            StoreKind::Sqlite => {
                let s: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path.join("state"))?);
                (s.clone(), s)
            }
            StoreKind::Kube => {
                let api = FakeApiServer::new();
                let controller = KubeStore::new(api.client());
                tasks.extend(controller.spawn_watch(None));
                let node = KubeStore::new(api.client());
                tasks.extend(node.spawn_watch(Some(NODE)));
                (Arc::new(controller), Arc::new(node))
            }
        };
        let (lvm, vg, fake) = match lvm {
            LvmKind::Fake => {
                let (lvm, fake) = Lvm::fake("benchvg", 1 << 50);
                (lvm, "benchvg".to_string(), Some(fake))
            }
            LvmKind::Real { vg, runner, config } => (Lvm::new(runner, config), vg, None),
        };
        let mut settings = NodeSettings::new(NODE, vg.clone());
        settings.resync = resync;
        let mut node = NodeParts::new(settings, lvm);
        node.store = Some(node_store);
        let mut builder =
            DriverBuilder::new(Mode::AllInOne, "bench.lvsnap.io", controller_store.clone());
        builder.quota = quota_config();
        builder.node = Some(node);
        builder.controller = Some(ControllerParts::new(ControllerConfig {
            default_project: "bench".into(),
            // Real LVM under emulation can be slow; the answer must not
            // be "not yet" because of the bench's own timeout.
            wait_timeout: Duration::from_secs(50),
            ..ControllerConfig::default()
        }));
        let mut driver = builder.build();
        if let Some(executor) = &driver.executor {
            executor.report_capacity().await;
        }
        tasks.extend(driver.spawn_tasks());
        let socket_path = dir.path.join("csi.sock");
        let socket = crate::server::bind(&socket_path).await?;
        let router = driver.router;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(e) = crate::server::serve(router, socket, shutdown).await {
                eprintln!("lvsnap bench: the in-process driver stopped: {e}");
            }
        });
        let clients = CsiClients::connect(&socket_path)
            .await
            .with_context(|| format!("connecting to {}", socket_path.display()))?;
        Ok(Target {
            clients,
            store: Some(controller_store),
            vg,
            fake,
            stop: Some(stop),
            tasks,
            server: Some(server),
            dir: Some(dir),
        })
    }

    /// A running driver; `state_dir` (all-in-one's) lets the bench read and
    /// set quota.
    pub async fn external(socket: &Path, state_dir: Option<&Path>) -> anyhow::Result<Target> {
        let clients = CsiClients::connect(socket)
            .await
            .with_context(|| format!("connecting to {}", socket.display()))?;
        let store = match state_dir {
            Some(dir) => Some(Arc::new(SqliteStore::open(dir)?) as Arc<dyn Store>),
            None => None,
        };
        Ok(Target {
            clients,
            store,
            vg: String::new(),
            fake: None,
            stop: None,
            tasks: Vec::new(),
            server: None,
            dir: None,
        })
    }

    /// Creates a volume of `bytes` charged to `project`; returns its id.
    pub async fn create_volume(
        &mut self,
        name: &str,
        bytes: i64,
        project: &str,
    ) -> anyhow::Result<String> {
        use csi::volume_capability::{AccessMode, AccessType, MountVolume, access_mode::Mode};
        let parameters = HashMap::from([(
            crate::controller::params::PVC_NAMESPACE.to_string(),
            project.to_string(),
        )]);
        let req = csi::CreateVolumeRequest {
            name: name.into(),
            capacity_range: Some(csi::CapacityRange {
                required_bytes: bytes,
                limit_bytes: 0,
            }),
            volume_capabilities: vec![csi::VolumeCapability {
                access_mode: Some(AccessMode {
                    mode: Mode::SingleNodeWriter as i32,
                }),
                access_type: Some(AccessType::Mount(MountVolume::default())),
            }],
            parameters,
            ..Default::default()
        };
        let v = self
            .clients
            .controller
            .create_volume(req)
            .await
            .with_context(|| format!("CreateVolume {name}"))?
            .into_inner()
            .volume
            .context("CreateVolume answered no volume")?;
        Ok(v.volume_id)
    }

    pub async fn delete_volume(&mut self, id: &str) -> anyhow::Result<()> {
        self.clients
            .controller
            .delete_volume(csi::DeleteVolumeRequest {
                volume_id: id.into(),
                ..Default::default()
            })
            .await
            .with_context(|| format!("DeleteVolume {id}"))?;
        Ok(())
    }

    /// Stops the in-process driver (a no-op for an external one).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            // The client's connection is closed by dropping it first.
            drop(self.clients);
            let _ = tokio::time::timeout(Duration::from_secs(15), server).await;
        }
        for t in self.tasks {
            t.abort();
        }
    }
}

/// A CreateSnapshot request in `project`.
pub fn snapshot_request(name: &str, source: &str, project: &str) -> csi::CreateSnapshotRequest {
    csi::CreateSnapshotRequest {
        name: name.into(),
        source_volume_id: source.into(),
        parameters: HashMap::from([(
            crate::controller::params::SNAPSHOT_NAMESPACE.to_string(),
            project.to_string(),
        )]),
        ..Default::default()
    }
}
