//! Wires a serving mode together: validate flags, check dependencies, bind
//! the socket, serve until SIGTERM/SIGINT.
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use futures::FutureExt;

use super::{Command, ControllerArgs, NodeArgs, ServeArgs};
use crate::config::{self, ConfigError, Endpoint, Mode};
use crate::controller::ControllerConfig;
use crate::driver::{ControllerParts, DriverBuilder, NodeParts};
use crate::failpoint::Failpoints;
use crate::lvm::{Lvm, LvmConfig};
use crate::node::NodeSettings;
use crate::quota::{QuotaConfig, parse_duration};
use crate::store::lease::{LeaseConfig, spawn_election};
use crate::store::{KubeCluster, KubeEvents, KubeStore, SqliteStore, Store};

/// The node side's validated flags.
struct NodeConfig {
    node_id: String,
    classes: Vec<crate::lvm::DeviceClass>,
    lvm: LvmConfig,
    capacity_interval: Duration,
    fill_interval: Duration,
    orphan_grace: Duration,
}

fn node_config(args: &NodeArgs) -> Result<NodeConfig, ConfigError> {
    let node_id = args
        .node_id
        .as_deref()
        .ok_or_else(|| ConfigError::new("node-id", "is required (or set LVSNAP_NODE_ID)"))
        .and_then(config::validate_node_id)?;
    let classes = super::classes::device_classes(args)?;
    let lvm = lvm_config(args)?;
    let capacity_interval = parse_duration(&args.capacity_interval)
        .map_err(|e| ConfigError::new("capacity-interval", e))?;
    if capacity_interval.is_zero() {
        return Err(ConfigError::new(
            "capacity-interval",
            "must be longer than 0s",
        ));
    }
    let orphan_grace =
        parse_duration(&args.orphan_grace).map_err(|e| ConfigError::new("orphan-grace", e))?;
    let fill_interval =
        parse_duration(&args.fill_interval).map_err(|e| ConfigError::new("fill-interval", e))?;
    if fill_interval.is_zero() {
        return Err(ConfigError::new("fill-interval", "must be longer than 0s"));
    }
    Ok(NodeConfig {
        node_id,
        classes,
        lvm,
        capacity_interval,
        fill_interval,
        orphan_grace,
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
    let failed_create_grace = parse_duration(&args.failed_create_grace)
        .map_err(|e| ConfigError::new("failed-create-grace", e))?;
    let node_stale_after = parse_duration(&args.node_stale_after)
        .map_err(|e| ConfigError::new("node-stale-after", e))?;
    if node_stale_after.is_zero() {
        return Err(ConfigError::new(
            "node-stale-after",
            "must be longer than 0s",
        ));
    }
    let controller = ControllerConfig {
        default_project: args.default_project.clone(),
        wait_timeout,
        deleted_retention,
        failed_create_grace,
        node_stale_after,
    };
    Ok((config, controller))
}

/// --sweep-interval, validated.
fn sweep_interval(args: &ControllerArgs) -> Result<Duration, ConfigError> {
    let d =
        parse_duration(&args.sweep_interval).map_err(|e| ConfigError::new("sweep-interval", e))?;
    if d.is_zero() {
        return Err(ConfigError::new("sweep-interval", "must be longer than 0s"));
    }
    Ok(d)
}

/// The failpoint armed by the hidden `--failpoint` flag (testing builds).
#[cfg(feature = "testing")]
fn failpoints(serve: &ServeArgs) -> Result<Failpoints, ConfigError> {
    let f = Failpoints::default();
    if let Some(point) = &serve.failpoint {
        f.arm(point, crate::failpoint::Action::Abort)
            .map_err(|e| ConfigError::new("failpoint", e))?;
    }
    Ok(f)
}

#[cfg(not(feature = "testing"))]
fn failpoints(_serve: &ServeArgs) -> Result<Failpoints, ConfigError> {
    Ok(Failpoints::default())
}

/// The Lease this controller replica competes for.
fn lease_config(args: &ControllerArgs, client: &kube::Client) -> Result<LeaseConfig, ConfigError> {
    let duration = parse_duration(&args.leader_election_duration)
        .map_err(|e| ConfigError::new("leader-election-duration", e))?;
    if duration < Duration::from_secs(3) {
        return Err(ConfigError::new(
            "leader-election-duration",
            "must be at least 3s",
        ));
    }
    let namespace = args
        .leader_election_namespace
        .clone()
        .or_else(|| std::env::var("POD_NAMESPACE").ok())
        .unwrap_or_else(|| client.default_namespace().to_string());
    let identity = args
        .leader_election_identity
        .clone()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| format!("lvsnap-{}", uuid::Uuid::new_v4()));
    Ok(LeaseConfig {
        namespace,
        name: args.leader_election_name.clone(),
        identity,
        duration,
        retry: duration / 3,
    })
}

pub(super) async fn run(command: Command, logging: super::Logging) -> anyhow::Result<()> {
    let (mode, serve, controller_args, node_args) = match command {
        Command::Controller(c) => (Mode::Controller, c.serve, Some(c.controller), None),
        Command::Node(c) => (Mode::Node, c.serve, None, Some(c.node)),
        Command::AllInOne(c) => (Mode::AllInOne, c.serve, Some(c.controller), Some(c.node)),
        _ => anyhow::bail!("not a serving mode"),
    };
    // Validate everything before anything is created on disk.
    let endpoint = Endpoint::parse(&serve.endpoint)?;
    if serve.driver_name.trim().is_empty() {
        return Err(ConfigError::new("driver-name", "must not be empty").into());
    }
    let failpoints = failpoints(&serve)?;
    let quota = controller_args.as_ref().map(quota_config).transpose()?;
    let sweep_every = controller_args.as_ref().map(sweep_interval).transpose()?;
    let node = node_args.as_ref().map(node_config).transpose()?;
    let lvm = node.as_ref().map(|n| Lvm::system(n.lvm.clone()));
    if let (Some(node), Some(lvm)) = (&node, &lvm) {
        super::classes::check_on_host(lvm, &node.classes).await?;
    }
    // Controller and node keep records in Kubernetes (in-cluster service
    // account, else KUBECONFIG); all-in-one in SQLite. No request is made yet.
    let client = match mode {
        Mode::Controller | Mode::Node => Some(crate::store::kube_client(None).await?),
        Mode::AllInOne => None,
    };
    let lease = match (&client, &controller_args) {
        (Some(client), Some(args)) if args.leader_election => Some(lease_config(args, client)?),
        _ => None,
    };

    let metrics_listener = match &serve.metrics_address {
        Some(addr) => Some(crate::metrics::http::bind(addr).await?),
        None => None,
    };
    let socket = crate::server::bind(endpoint.path()).await?;
    logging.install();
    let store: Arc<dyn Store> = match &client {
        Some(client) => {
            let store = KubeStore::new(client.clone());
            // The controller hears every record (its waits); a node only its own.
            store.spawn_watch(node.as_ref().map(|n| n.node_id.as_str()));
            Arc::new(store)
        }
        None => {
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
    let mut builder = DriverBuilder::new(mode, serve.driver_name.clone(), store);
    builder.quota = quota_config.unwrap_or_default();
    builder.failpoints = failpoints;
    builder.metrics = metrics_listener
        .as_ref()
        .map(|_| crate::metrics::Metrics::new());
    if let (Some(args), Some(node), Some(lvm)) = (node_args.as_ref(), node, lvm) {
        let mut settings = NodeSettings::with_classes(node.node_id.clone(), node.classes);
        settings.reap_orphans = args.reap_orphans;
        settings.orphan_grace = node.orphan_grace;
        settings.resync = node.capacity_interval;
        settings.fill_interval = node.fill_interval;
        let mut parts = NodeParts::new(settings, lvm);
        if let Some(client) = &client {
            parts.events = Arc::new(KubeEvents::new(
                client.clone(),
                "lvsnap.io/node",
                &node.node_id,
            ));
        }
        builder.node = Some(parts);
    }
    if let Some(config) = controller_config {
        let mut parts = ControllerParts::new(config);
        parts.sweep_every = sweep_every.unwrap_or(Duration::from_secs(60));
        if let Some(client) = &client {
            parts.cluster = Arc::new(KubeCluster::new(client.clone()));
            let instance = lease
                .as_ref()
                .map(|l| l.identity.clone())
                .unwrap_or_else(|| "controller".into());
            parts.events = Arc::new(KubeEvents::new(
                client.clone(),
                "lvsnap.io/controller",
                &instance,
            ));
            // The controller may report not-ready while the API is unreachable.
            let check_client = client.clone();
            builder.checks.push((
                "kubernetes API",
                Arc::new(move || {
                    let client = check_client.clone();
                    async move {
                        client
                            .apiserver_version()
                            .await
                            .map(|_| ())
                            .map_err(|e| e.to_string())
                    }
                    .boxed()
                }),
            ));
            if let Some(lease) = lease {
                let (leadership, _task) = spawn_election(client.clone(), lease);
                parts.leadership = leadership;
            }
        }
        builder.controller = Some(parts);
    }
    let mut driver = builder.build();
    // The node's first heartbeat before the first call: placement needs it.
    if let Some(executor) = &driver.executor {
        executor.report_capacity().await;
    }
    let _tasks = driver.spawn_tasks();
    let _metrics = match (metrics_listener, driver.metrics.clone()) {
        (Some(listener), Some(metrics)) => {
            Some(tokio::spawn(crate::metrics::http::serve(listener, metrics)))
        }
        _ => None,
    };
    tracing::info!(
        mode = mode.as_str(),
        version = env!("CARGO_PKG_VERSION"),
        "lvsnap starting"
    );
    crate::server::serve(driver.router, socket, crate::server::shutdown_signal())
        .await
        .context("serving CSI")?;
    tracing::info!("lvsnap stopped");
    Ok(())
}
