//! CSI Node service. This is the first part: identity of the node
//! (NodeGetInfo with its topology) and idempotent unpublish/unstage that
//! only clean up what lvsnap owns; stage/publish, stats and expansion are
//! the data-path work (see the Node issue) and answer UNIMPLEMENTED.
use std::path::Path;

use tonic::{Request, Response, Status};

use crate::csi::controller::TOPOLOGY_KEY;
use crate::proto::v1 as csi;

/// Serves CSI Node for one node.
#[derive(Clone)]
pub struct NodeService {
    node_id: String,
}

impl NodeService {
    pub fn new(node_id: impl Into<String>) -> Self {
        Self {
            node_id: node_id.into(),
        }
    }
}

fn required(field: &str, value: &str) -> Result<(), Status> {
    if value.is_empty() {
        return Err(Status::invalid_argument(format!("{field} is required")));
    }
    Ok(())
}

/// Whether `path` is a mount point, from /proc/self/mountinfo.
fn is_mounted(path: &Path) -> std::io::Result<bool> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")?;
    let want = path.to_string_lossy();
    Ok(info
        .lines()
        .any(|l| l.split(' ').nth(4).is_some_and(|m| m == want)))
}

/// Removes an empty directory left at `path`; a mounted one is refused
/// (lvsnap has not mounted anything there, so it is not lvsnap's to undo).
fn clean_target(path: &str) -> Result<(), Status> {
    let p = Path::new(path);
    if !p.exists() {
        return Ok(());
    }
    if is_mounted(p).map_err(|e| Status::internal(format!("reading mountinfo: {e}")))? {
        return Err(Status::failed_precondition(format!(
            "{path} is mounted by something other than lvsnap"
        )));
    }
    match std::fs::remove_dir(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) if p.is_file() => {
            // A block-mode target is a file; remove it only when empty.
            match std::fs::metadata(p) {
                Ok(m) if m.len() == 0 => {
                    std::fs::remove_file(p).map_err(|e| Status::internal(e.to_string()))
                }
                _ => Err(Status::failed_precondition(format!("{path}: {e}"))),
            }
        }
        Err(e) => Err(Status::failed_precondition(format!(
            "{path} cannot be removed: {e}"
        ))),
    }
}

#[tonic::async_trait]
impl csi::node_server::Node for NodeService {
    async fn node_stage_volume(
        &self,
        r: Request<csi::NodeStageVolumeRequest>,
    ) -> Result<Response<csi::NodeStageVolumeResponse>, Status> {
        let r = r.into_inner();
        required("volume_id", &r.volume_id)?;
        required("staging_target_path", &r.staging_target_path)?;
        if r.volume_capability.is_none() {
            return Err(Status::invalid_argument("volume_capability is required"));
        }
        Err(Status::unimplemented(
            "NodeStageVolume is not implemented yet",
        ))
    }

    #[tracing::instrument(skip_all, fields(rpc = "NodeUnstageVolume", volume = %r.get_ref().volume_id))]
    async fn node_unstage_volume(
        &self,
        r: Request<csi::NodeUnstageVolumeRequest>,
    ) -> Result<Response<csi::NodeUnstageVolumeResponse>, Status> {
        let r = r.into_inner();
        required("volume_id", &r.volume_id)?;
        required("staging_target_path", &r.staging_target_path)?;
        // Nothing is staged by this version; the staging directory belongs to the CO.
        Ok(Response::new(csi::NodeUnstageVolumeResponse {}))
    }

    async fn node_publish_volume(
        &self,
        r: Request<csi::NodePublishVolumeRequest>,
    ) -> Result<Response<csi::NodePublishVolumeResponse>, Status> {
        let r = r.into_inner();
        required("volume_id", &r.volume_id)?;
        required("target_path", &r.target_path)?;
        if r.volume_capability.is_none() {
            return Err(Status::invalid_argument("volume_capability is required"));
        }
        Err(Status::unimplemented(
            "NodePublishVolume is not implemented yet",
        ))
    }

    #[tracing::instrument(skip_all, fields(rpc = "NodeUnpublishVolume", volume = %r.get_ref().volume_id))]
    async fn node_unpublish_volume(
        &self,
        r: Request<csi::NodeUnpublishVolumeRequest>,
    ) -> Result<Response<csi::NodeUnpublishVolumeResponse>, Status> {
        let r = r.into_inner();
        required("volume_id", &r.volume_id)?;
        required("target_path", &r.target_path)?;
        clean_target(&r.target_path)?;
        Ok(Response::new(csi::NodeUnpublishVolumeResponse {}))
    }

    async fn node_get_volume_stats(
        &self,
        r: Request<csi::NodeGetVolumeStatsRequest>,
    ) -> Result<Response<csi::NodeGetVolumeStatsResponse>, Status> {
        let r = r.into_inner();
        required("volume_id", &r.volume_id)?;
        required("volume_path", &r.volume_path)?;
        Err(Status::unimplemented(
            "NodeGetVolumeStats is not implemented yet",
        ))
    }

    async fn node_expand_volume(
        &self,
        r: Request<csi::NodeExpandVolumeRequest>,
    ) -> Result<Response<csi::NodeExpandVolumeResponse>, Status> {
        let r = r.into_inner();
        required("volume_id", &r.volume_id)?;
        required("volume_path", &r.volume_path)?;
        Err(Status::unimplemented(
            "NodeExpandVolume is not implemented yet",
        ))
    }

    async fn node_get_capabilities(
        &self,
        _: Request<csi::NodeGetCapabilitiesRequest>,
    ) -> Result<Response<csi::NodeGetCapabilitiesResponse>, Status> {
        Ok(Response::new(csi::NodeGetCapabilitiesResponse {
            capabilities: vec![],
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
