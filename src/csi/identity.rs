//! CSI Identity service: plugin name and version, capabilities, and a Probe
//! that answers ready only when the process's dependencies answer.
use std::sync::Arc;

use futures::future::BoxFuture;
use tonic::{Request, Response, Status};

use crate::config::Mode;
use crate::proto::v1::{
    GetPluginCapabilitiesRequest, GetPluginCapabilitiesResponse, GetPluginInfoRequest,
    GetPluginInfoResponse, PluginCapability, ProbeRequest, ProbeResponse, identity_server,
    plugin_capability,
};

/// A readiness check: `Ok(())` when a dependency answers, else why not.
pub type ReadinessCheck = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// Serves CSI Identity for every mode.
#[derive(Clone)]
pub struct IdentityService {
    driver_name: String,
    mode: Mode,
    checks: Vec<(&'static str, ReadinessCheck)>,
}

impl IdentityService {
    pub fn new(driver_name: impl Into<String>, mode: Mode) -> Self {
        Self {
            driver_name: driver_name.into(),
            mode,
            checks: Vec::new(),
        }
    }

    /// Adds a named dependency that Probe must see answering.
    pub fn with_check(mut self, name: &'static str, check: ReadinessCheck) -> Self {
        self.checks.push((name, check));
        self
    }

    fn capabilities(&self) -> Vec<PluginCapability> {
        use plugin_capability::service::Type;
        if !self.mode.serves_controller() {
            return Vec::new();
        }
        [
            Type::ControllerService,
            Type::VolumeAccessibilityConstraints,
            Type::GroupControllerService,
        ]
        .into_iter()
        .map(|t| PluginCapability {
            r#type: Some(plugin_capability::Type::Service(
                plugin_capability::Service { r#type: t as i32 },
            )),
        })
        .chain(std::iter::once(PluginCapability {
            // Mounted filesystems grow online (resize2fs, xfs_growfs).
            r#type: Some(plugin_capability::Type::VolumeExpansion(
                plugin_capability::VolumeExpansion {
                    r#type: plugin_capability::volume_expansion::Type::Online as i32,
                },
            )),
        }))
        .collect()
    }
}

#[tonic::async_trait]
impl identity_server::Identity for IdentityService {
    #[tracing::instrument(skip_all, fields(rpc = "GetPluginInfo"))]
    async fn get_plugin_info(
        &self,
        _request: Request<GetPluginInfoRequest>,
    ) -> Result<Response<GetPluginInfoResponse>, Status> {
        Ok(Response::new(GetPluginInfoResponse {
            name: self.driver_name.clone(),
            vendor_version: env!("CARGO_PKG_VERSION").to_string(),
            manifest: [("mode".to_string(), self.mode.as_str().to_string())].into(),
        }))
    }

    #[tracing::instrument(skip_all, fields(rpc = "GetPluginCapabilities"))]
    async fn get_plugin_capabilities(
        &self,
        _request: Request<GetPluginCapabilitiesRequest>,
    ) -> Result<Response<GetPluginCapabilitiesResponse>, Status> {
        Ok(Response::new(GetPluginCapabilitiesResponse {
            capabilities: self.capabilities(),
        }))
    }

    #[tracing::instrument(skip_all, fields(rpc = "Probe"))]
    async fn probe(
        &self,
        _request: Request<ProbeRequest>,
    ) -> Result<Response<ProbeResponse>, Status> {
        for (name, check) in &self.checks {
            if let Err(why) = check().await {
                tracing::warn!(dependency = name, error = %why, "probe: not ready");
                // A failing dependency is reported as FAILED_PRECONDITION, which the
                // livenessprobe sidecar treats as unhealthy, with the reason attached.
                return Err(Status::failed_precondition(format!(
                    "{name} is not ready: {why}"
                )));
            }
        }
        Ok(Response::new(ProbeResponse { ready: Some(true) }))
    }
}
