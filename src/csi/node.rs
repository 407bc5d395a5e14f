//! CSI Node service: thin glue over the node's data path
//! (`crate::node::DataPath`): requests are checked and parsed here, the
//! work and its errors are the domain's, converted to a gRPC status in one
//! place (`status`).
use std::path::Path;

use tonic::{Request, Response, Status};

use crate::csi::controller::TOPOLOGY_KEY;
use crate::node::{Access, DataPath, NodeError};
use crate::proto::v1 as csi;

/// Serves CSI Node for one node.
#[derive(Clone)]
pub struct NodeService {
    node_id: String,
    data: DataPath,
}

impl NodeService {
    pub fn new(node_id: impl Into<String>, data: DataPath) -> Self {
        Self {
            node_id: node_id.into(),
            data,
        }
    }
}

/// The one place node errors become gRPC statuses.
fn status(e: NodeError) -> Status {
    match e {
        NodeError::Invalid(m) => Status::invalid_argument(m),
        NodeError::NotFound(m) => Status::not_found(m),
        NodeError::FailedPrecondition(m) => Status::failed_precondition(m),
        NodeError::AlreadyExists(m) => Status::already_exists(m),
        NodeError::Internal(m) => Status::internal(m),
    }
}

fn required(field: &str, value: &str) -> Result<(), Status> {
    if value.is_empty() {
        return Err(Status::invalid_argument(format!("{field} is required")));
    }
    Ok(())
}

/// A path from the CO: absolute, no NUL.
fn path<'a>(field: &str, value: &'a str) -> Result<&'a Path, Status> {
    required(field, value)?;
    if !value.starts_with('/') || value.contains('\0') {
        return Err(Status::invalid_argument(format!(
            "{field} must be an absolute path"
        )));
    }
    Ok(Path::new(value))
}

/// The access type of a capability (required).
fn access(cap: Option<&csi::VolumeCapability>) -> Result<Access, Status> {
    use csi::volume_capability::AccessType;
    let cap = cap.ok_or_else(|| Status::invalid_argument("volume_capability is required"))?;
    match &cap.access_type {
        Some(AccessType::Block(_)) => Ok(Access::Block),
        Some(AccessType::Mount(m)) => Ok(Access::Mount {
            fs_type: (!m.fs_type.is_empty()).then(|| m.fs_type.clone()),
            flags: m.mount_flags.clone(),
        }),
        None => Err(Status::invalid_argument(
            "volume_capability needs an access type (mount or block)",
        )),
    }
}

#[tonic::async_trait]
impl csi::node_server::Node for NodeService {
    #[tracing::instrument(skip_all, fields(rpc = "NodeStageVolume", volume = %r.get_ref().volume_id))]
    async fn node_stage_volume(
        &self,
        r: Request<csi::NodeStageVolumeRequest>,
    ) -> Result<Response<csi::NodeStageVolumeResponse>, Status> {
        let r = r.into_inner();
        required("volume_id", &r.volume_id)?;
        let staging = path("staging_target_path", &r.staging_target_path)?;
        let access = access(r.volume_capability.as_ref())?;
        self.data
            .stage(&r.volume_id, staging, &access)
            .await
            .map_err(status)?;
        Ok(Response::new(csi::NodeStageVolumeResponse {}))
    }

    #[tracing::instrument(skip_all, fields(rpc = "NodeUnstageVolume", volume = %r.get_ref().volume_id))]
    async fn node_unstage_volume(
        &self,
        r: Request<csi::NodeUnstageVolumeRequest>,
    ) -> Result<Response<csi::NodeUnstageVolumeResponse>, Status> {
        let r = r.into_inner();
        required("volume_id", &r.volume_id)?;
        let staging = path("staging_target_path", &r.staging_target_path)?;
        self.data
            .unstage(&r.volume_id, staging)
            .await
            .map_err(status)?;
        Ok(Response::new(csi::NodeUnstageVolumeResponse {}))
    }

    #[tracing::instrument(skip_all, fields(rpc = "NodePublishVolume", volume = %r.get_ref().volume_id))]
    async fn node_publish_volume(
        &self,
        r: Request<csi::NodePublishVolumeRequest>,
    ) -> Result<Response<csi::NodePublishVolumeResponse>, Status> {
        let r = r.into_inner();
        required("volume_id", &r.volume_id)?;
        let target = path("target_path", &r.target_path)?;
        let access = access(r.volume_capability.as_ref())?;
        let staging = match access {
            Access::Mount { .. } => path("staging_target_path", &r.staging_target_path)?,
            Access::Block => Path::new(&r.staging_target_path),
        };
        self.data
            .publish(&r.volume_id, staging, target, &access, r.readonly)
            .await
            .map_err(status)?;
        Ok(Response::new(csi::NodePublishVolumeResponse {}))
    }

    #[tracing::instrument(skip_all, fields(rpc = "NodeUnpublishVolume", volume = %r.get_ref().volume_id))]
    async fn node_unpublish_volume(
        &self,
        r: Request<csi::NodeUnpublishVolumeRequest>,
    ) -> Result<Response<csi::NodeUnpublishVolumeResponse>, Status> {
        let r = r.into_inner();
        required("volume_id", &r.volume_id)?;
        let target = path("target_path", &r.target_path)?;
        self.data
            .unpublish(&r.volume_id, target)
            .await
            .map_err(status)?;
        Ok(Response::new(csi::NodeUnpublishVolumeResponse {}))
    }

    #[tracing::instrument(skip_all, fields(rpc = "NodeGetVolumeStats", volume = %r.get_ref().volume_id))]
    async fn node_get_volume_stats(
        &self,
        r: Request<csi::NodeGetVolumeStatsRequest>,
    ) -> Result<Response<csi::NodeGetVolumeStatsResponse>, Status> {
        use csi::volume_usage::Unit;
        let r = r.into_inner();
        required("volume_id", &r.volume_id)?;
        // Not necessarily absolute: a path that does not exist is NOT_FOUND.
        required("volume_path", &r.volume_path)?;
        let at = Path::new(&r.volume_path);
        let s = self.data.stats(&r.volume_id, at).await.map_err(status)?;
        let mut usage = vec![csi::VolumeUsage {
            total: s.total_bytes,
            available: s.available_bytes,
            used: s.used_bytes,
            unit: Unit::Bytes as i32,
        }];
        if let Some((total, free, used)) = s.inodes {
            usage.push(csi::VolumeUsage {
                total,
                available: free,
                used,
                unit: Unit::Inodes as i32,
            });
        }
        Ok(Response::new(csi::NodeGetVolumeStatsResponse {
            usage,
            volume_condition: Some(csi::VolumeCondition {
                abnormal: s.abnormal.is_some(),
                message: s.abnormal.unwrap_or_else(|| "volume is healthy".into()),
            }),
        }))
    }

    #[tracing::instrument(skip_all, fields(rpc = "NodeExpandVolume", volume = %r.get_ref().volume_id))]
    async fn node_expand_volume(
        &self,
        r: Request<csi::NodeExpandVolumeRequest>,
    ) -> Result<Response<csi::NodeExpandVolumeResponse>, Status> {
        let r = r.into_inner();
        required("volume_id", &r.volume_id)?;
        required("volume_path", &r.volume_path)?;
        let at = Path::new(&r.volume_path);
        let capacity_bytes = self.data.expand(&r.volume_id, at).await.map_err(status)?;
        Ok(Response::new(csi::NodeExpandVolumeResponse {
            capacity_bytes,
        }))
    }

    async fn node_get_capabilities(
        &self,
        _: Request<csi::NodeGetCapabilitiesRequest>,
    ) -> Result<Response<csi::NodeGetCapabilitiesResponse>, Status> {
        use csi::node_service_capability::{Rpc, rpc::Type};
        let capabilities = [
            Type::StageUnstageVolume,
            Type::ExpandVolume,
            Type::GetVolumeStats,
            Type::VolumeCondition,
        ]
        .into_iter()
        .map(|t| csi::NodeServiceCapability {
            r#type: Some(csi::node_service_capability::Type::Rpc(Rpc {
                r#type: t as i32,
            })),
        })
        .collect();
        Ok(Response::new(csi::NodeGetCapabilitiesResponse {
            capabilities,
        }))
    }

    async fn node_get_info(
        &self,
        _: Request<csi::NodeGetInfoRequest>,
    ) -> Result<Response<csi::NodeGetInfoResponse>, Status> {
        Ok(Response::new(csi::NodeGetInfoResponse {
            node_id: self.node_id.clone(),
            max_volumes_per_node: 0,
            accessible_topology: Some(csi::Topology {
                segments: [(TOPOLOGY_KEY.to_string(), self.node_id.clone())].into(),
            }),
        }))
    }
}
