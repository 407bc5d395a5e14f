//! Wires a serving mode together: validate flags, check dependencies, bind
//! the socket, serve until SIGTERM/SIGINT.
use std::sync::Arc;

use anyhow::Context as _;
use futures::FutureExt;

use super::{Command, ControllerArgs, NodeArgs, ServeArgs};
use crate::config::{self, ConfigError, Endpoint, Mode};
use crate::controller::{Controller, ControllerConfig};
use crate::csi::IdentityService;
use crate::csi::{ControllerService, NodeService};
use crate::lvm::{Lvm, LvmConfig};
use crate::node::{DataPath, Executor, Host, NodeSettings};
use crate::proto::v1::controller_server::ControllerServer;
use crate::proto::v1::identity_server::IdentityServer;
use crate::proto::v1::node_server::NodeServer;
use crate::quota::{QuotaConfig, QuotaEngine, parse_duration, system_clock};
use crate::store::{KubeEvents, KubeStore, SqliteStore, Store};

/// The node side's validated flags.
struct NodeConfig {
    node_id: String,
    vg: String,
    lvm: LvmConfig,
    capacity_interval: std::time::Duration,
}

fn node_config(args: &NodeArgs) -> Result<NodeConfig, ConfigError> {
    let node_id = args
        .node_id
        .as_deref()
        .ok_or_else(|| ConfigError::new("node-id", "is required (or set LVSNAP_NODE_ID)"))
        .and_then(config::validate_node_id)?;
    let vg = args
        .vg
        .as_deref()
        .ok_or_else(|| ConfigError::new("vg", "is required (or set LVSNAP_VG)"))
        .and_then(config::validate_vg_name)?;
    let lvm = lvm_config(args)?;
    let capacity_interval = parse_duration(&args.capacity_interval)
        .map_err(|e| ConfigError::new("capacity-interval", e))?;
    if capacity_interval.is_zero() {
        return Err(ConfigError::new(
            "capacity-interval",
            "must be longer than 0s",
        ));
    }
    Ok(NodeConfig {
        node_id,
        vg,
        lvm,
        capacity_interval,
    })
}

/// The LVM runner's configuration from --lvm-command-prefix, --lvm-env and
/// --lvm-timeout.
fn lvm_config(args: &NodeArgs) -> Result<LvmConfig, ConfigError> {
    let mut config = LvmConfig {
        command_prefix: args
            .lvm_command_prefix
            .split_whitespace()
            .map(str::to_string)
            .collect(),
        timeout: parse_duration(&args.lvm_timeout)
            .map_err(|e| ConfigError::new("lvm-timeout", e))?,
        ..LvmConfig::default()
    };
    if config.timeout.is_zero() {
        return Err(ConfigError::new("lvm-timeout", "must be longer than 0s"));
    }
    for pair in args
        .lvm_env
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| ConfigError::new("lvm-env", format!("{pair:?} is not KEY=VALUE")))?;
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(ConfigError::new(
                "lvm-env",
                format!("{k:?} is not an environment variable name"),
            ));
        }
        config = config.with_env(k, v);
    }
    Ok(config)
}

/// Validates the quota flags into the engine's configuration.
fn quota_config(args: &ControllerArgs) -> Result<(QuotaConfig, ControllerConfig), ConfigError> {
    let defaults = QuotaConfig::parse_defaults(&args.default_quota)
        .map_err(|e| ConfigError::new("default-quota", e.to_string()))?;
    let reservation_expire = parse_duration(&args.reservation_expire)
        .map_err(|e| ConfigError::new("reservation-expire", e))?;
    if reservation_expire.is_zero() {
        return Err(ConfigError::new(
            "reservation-expire",
            "must be longer than 0s",
        ));
    }
    let max_age =
        parse_duration(&args.quota_max_age).map_err(|e| ConfigError::new("quota-max-age", e))?;
    if args.quota_until_refresh < 0 {
        return Err(ConfigError::new(
            "quota-until-refresh",
            "must be 0 (never) or more",
        ));
    }
    if !crate::controller::params::is_dns_label(&args.default_project) {
        return Err(ConfigError::new(
            "default-project",
            format!("{:?} is not a valid namespace name", args.default_project),
        ));
    }
    let config = QuotaConfig {
        defaults,
        no_snapshot_gb_quota: args.no_snapshot_gb_quota,
        reservation_expire,
        until_refresh: (args.quota_until_refresh > 0).then_some(args.quota_until_refresh),
        max_age: (!max_age.is_zero()).then_some(max_age),
    };
    let wait_timeout =
        parse_duration(&args.create_timeout).map_err(|e| ConfigError::new("create-timeout", e))?;
    if wait_timeout.is_zero() || wait_timeout > std::time::Duration::from_secs(50) {
        return Err(ConfigError::new(
            "create-timeout",
            "must be between 1s and 50s (under the sidecars' 1 min RPC timeout)",
        ));
    }
    let deleted_retention = parse_duration(&args.deleted_retention)
        .map_err(|e| ConfigError::new("deleted-retention", e))?;
    let failpoint = args
        .failpoint
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(|e: String| ConfigError::new("failpoint", e))?;
    let controller = ControllerConfig {
        default_project: args.default_project.clone(),
        wait_timeout,
        deleted_retention,
        failpoint,
    };
    Ok((config, controller))
}

/// --sweep-interval, validated.
fn sweep_interval(args: &ControllerArgs) -> Result<std::time::Duration, ConfigError> {
    let d =
        parse_duration(&args.sweep_interval).map_err(|e| ConfigError::new("sweep-interval", e))?;
    if d.is_zero() {
        return Err(ConfigError::new("sweep-interval", "must be longer than 0s"));
    }
    Ok(d)
}

/// Every --sweep-interval: Cinder's periodic reservation expiry (claimed
/// reservations committed, the rest rolled back) and the purge of
/// soft-deleted records past their retention.
fn spawn_sweeps(controller: Controller, every: std::time::Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            match controller.quota.expire().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(expired = n, "rolled back expired quota reservations"),
                Err(e) => tracing::warn!(error = %e, "quota reservation sweep failed"),
            }
            match controller.purge_deleted(chrono::Utc::now()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(purged = n, "purged deleted records past retention"),
                Err(e) => tracing::warn!(error = %e, "purge of deleted records failed"),
            }
        }
    });
}

/// Where the records live: Kubernetes (controller, node) or SQLite (all-in-one).
enum Backend {
    Kube(kube::Client),
    Sqlite,
}

pub(super) async fn run(command: Command, logging: super::Logging) -> anyhow::Result<()> {
    let (mode, serve, controller, node) = match command {
        Command::Controller(c) => (Mode::Controller, c.serve, Some(c.controller), None),
        Command::Node(c) => (Mode::Node, c.serve, None, Some(c.node)),
        Command::AllInOne(c) => (Mode::AllInOne, c.serve, Some(c.controller), Some(c.node)),
        _ => anyhow::bail!("not a serving mode"),
    };
    let ServeArgs {
        endpoint,
        driver_name,
    } = serve;
    // Validate everything before anything is created on disk.
    let endpoint = Endpoint::parse(&endpoint)?;
    if driver_name.trim().is_empty() {
        return Err(ConfigError::new("driver-name", "must not be empty").into());
    }
    let quota = controller.as_ref().map(quota_config).transpose()?;
    let sweep_every = controller.as_ref().map(sweep_interval).transpose()?;
    let node_args = node;
    let node = node_args.as_ref().map(node_config).transpose()?;
    let mut identity = IdentityService::new(driver_name, mode);
    if let Some(node) = &node {
        let lvm = Arc::new(Lvm::system(node.lvm.clone()));
        lvm.vg(&node.vg).await.map_err(|e| {
            ConfigError::new(
                "vg",
                format!("volume group {:?} is not usable: {e}", node.vg),
            )
        })?;
        let vg = node.vg.clone();
        identity = identity.with_check(
            "volume group",
            Arc::new(move || {
                let (lvm, vg) = (lvm.clone(), vg.clone());
                async move { lvm.vg(&vg).await.map(|_| ()).map_err(|e| e.to_string()) }.boxed()
            }),
        );
    }
    let backend = match mode {
        // In-cluster service account, else KUBECONFIG / ~/.kube/config. No
        // request is made yet: Probe reports whether the API answers.
        Mode::Controller | Mode::Node => Backend::Kube(kube::Client::try_default().await.map_err(
            |e| anyhow::anyhow!("kubernetes: no usable client configuration (in-cluster service account or KUBECONFIG): {e}"),
        )?),
        Mode::AllInOne => Backend::Sqlite,
    };

    if let Backend::Kube(client) = &backend {
        let client = client.clone();
        identity = identity.with_check(
            "kubernetes API",
            Arc::new(move || {
                let client = client.clone();
                async move {
                    client
                        .apiserver_version()
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                }
                .boxed()
            }),
        );
    }

    let socket = crate::server::bind(endpoint.path()).await?;
    logging.install();
    let mut router = tonic::transport::Server::builder().add_service(IdentityServer::new(identity));
    if let Some(node) = &node {
        let data = DataPath::new(
            node.vg.clone(),
            Lvm::system(node.lvm.clone()),
            Host::default(),
        );
        router = router.add_service(NodeServer::new(NodeService::new(
            node.node_id.clone(),
            data,
        )));
    }

    let store: Arc<dyn Store> = match &backend {
        Backend::Kube(client) => {
            let store = KubeStore::new(client.clone());
            // The controller hears every record (its waits); a node only its own.
            store.spawn_watch(node.as_ref().map(|n| n.node_id.as_str()));
            Arc::new(store)
        }
        Backend::Sqlite => {
            let dir = node_args
                .as_ref()
                .map(|a| a.state_dir.clone())
                .unwrap_or_default();
            Arc::new(
                SqliteStore::open(&dir)
                    .map_err(|e| ConfigError::new("state-dir", e.to_string()))?,
            )
        }
    };
    let (quota_config, controller_config) = quota.unzip();
    let engine = QuotaEngine::new(
        store.clone(),
        quota_config.unwrap_or_default(),
        system_clock(),
    );

    // The node side: the executor reconciling this node's records.
    if let (Some(args), Some(node)) = (node_args.as_ref(), node.as_ref()) {
        let mut executor = Executor::new(
            store.clone(),
            engine.clone(),
            Lvm::system(node.lvm.clone()),
            NodeSettings {
                node_id: node.node_id.clone(),
                vg: node.vg.clone(),
                thin_pool: args.thin_pool.clone(),
                reap_orphans: args.reap_orphans,
                resync: node.capacity_interval,
            },
        );
        if let Backend::Kube(client) = &backend {
            executor =
                executor.with_events(Arc::new(KubeEvents::new(client.clone(), &node.node_id)));
        }
        executor.report_capacity().await;
        tokio::spawn(executor.run());
    }

    // The controller side: CSI Controller service, waits, sweeps.
    if let Some(config) = controller_config {
        let controller = Controller {
            store,
            quota: engine,
            config,
        };
        spawn_sweeps(
            controller.clone(),
            sweep_every.unwrap_or(std::time::Duration::from_secs(60)),
        );
        router = router.add_service(ControllerServer::new(ControllerService::new(controller)));
    }
    tracing::info!(
        mode = mode.as_str(),
        version = env!("CARGO_PKG_VERSION"),
        "lvsnap starting"
    );
    crate::server::serve(router, socket, crate::server::shutdown_signal())
        .await
        .context("serving CSI")?;
    tracing::info!("lvsnap stopped");
    Ok(())
}
