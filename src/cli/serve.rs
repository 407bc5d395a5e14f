//! Wires a serving mode together: validate flags, check dependencies, bind
//! the socket, serve until SIGTERM/SIGINT.
use std::sync::Arc;

use anyhow::Context as _;
use futures::FutureExt;

use super::{Command, NodeArgs, ServeArgs};
use crate::config::{self, ConfigError, Endpoint, Mode};
use crate::csi::IdentityService;
use crate::lvm::{Lvm, LvmConfig};
use crate::proto::v1::identity_server::IdentityServer;

/// The node side's validated flags.
struct NodeConfig {
    #[allow(dead_code)]
    node_id: String,
    vg: String,
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
    Ok(NodeConfig { node_id, vg })
}

pub(super) async fn run(command: Command, logging: super::Logging) -> anyhow::Result<()> {
    let (mode, serve, node) = match command {
        Command::Controller(c) => (Mode::Controller, c.serve, None),
        Command::Node(c) => (Mode::Node, c.serve, Some(c.node)),
        Command::AllInOne(c) => (Mode::AllInOne, c.serve, Some(c.node)),
        Command::Crd(_) | Command::Client(_) => {
            anyhow::bail!("not a serving mode")
        }
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
    let node = node.as_ref().map(node_config).transpose()?;

    let mut identity = IdentityService::new(driver_name, mode);
    if let Some(node) = &node {
        let lvm = Arc::new(Lvm::system(LvmConfig::default()));
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

    let socket = crate::server::bind(endpoint.path()).await?;
    logging.install();
    let router = tonic::transport::Server::builder().add_service(IdentityServer::new(identity));
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
