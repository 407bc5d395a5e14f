//! CSI Controller service: thin handlers. Each parses its request into
//! domain types, calls [`Controller`], and maps [`ControllerError`] to a
//! `tonic::Status` in [`status`], the one place codes are chosen.

use tonic::{Request, Response, Status};

use super::convert::{check_capabilities, fs_type_of, nodes_of, snapshot_msg, status, volume_msg};
use crate::controller::{Controller, CreateSnapshot, CreateVolume, Placement};
use crate::proto::v1 as csi;
use crate::proto::v1::controller_service_capability::rpc::Type as Cap;

pub use super::convert::TOPOLOGY_KEY;

/// Serves CSI Controller over a [`Controller`].
#[derive(Clone)]
pub struct ControllerService {
    controller: Controller,
}

impl ControllerService {
    pub fn new(controller: Controller) -> Self {
        Self { controller }
    }
}

#[tonic::async_trait]
impl csi::controller_server::Controller for ControllerService {
    #[tracing::instrument(skip_all, fields(rpc = "CreateVolume", name = %request.get_ref().name))]
    async fn create_volume(
        &self,
        request: Request<csi::CreateVolumeRequest>,
    ) -> Result<Response<csi::CreateVolumeResponse>, Status> {
        let r = request.into_inner();
        if r.name.is_empty() {
            return Err(Status::invalid_argument("name is required"));
        }
        check_capabilities(&r.volume_capabilities)?;
        let fs_type = fs_type_of(&r.volume_capabilities);
        let range = r.capacity_range.unwrap_or_default();
        let (source_snapshot_id, source_volume_id) =
            match r.volume_content_source.and_then(|s| s.r#type) {
                Some(csi::volume_content_source::Type::Snapshot(s)) => (Some(s.snapshot_id), None),
                Some(csi::volume_content_source::Type::Volume(v)) => (None, Some(v.volume_id)),
                None => (None, None),
            };
        let placement = r
            .accessibility_requirements
            .map(|t| Placement {
                preferred: nodes_of(&t.preferred),
                requisite: nodes_of(&t.requisite),
            })
            .unwrap_or_default();
        let v = self
            .controller
            .create_volume(CreateVolume {
                name: r.name,
                required_bytes: range.required_bytes,
                limit_bytes: range.limit_bytes,
                parameters: r.parameters,
                placement,
                source_snapshot_id,
                source_volume_id,
                fs_type,
            })
            .await
            .map_err(status)?;
        Ok(Response::new(csi::CreateVolumeResponse {
            volume: Some(volume_msg(&v)),
        }))
    }

    #[tracing::instrument(skip_all, fields(rpc = "DeleteVolume", volume = %request.get_ref().volume_id))]
    async fn delete_volume(
        &self,
        request: Request<csi::DeleteVolumeRequest>,
    ) -> Result<Response<csi::DeleteVolumeResponse>, Status> {
        let r = request.into_inner();
        if r.volume_id.is_empty() {
            return Err(Status::invalid_argument("volume_id is required"));
        }
        self.controller
            .delete_volume(&r.volume_id)
            .await
            .map_err(status)?;
        Ok(Response::new(csi::DeleteVolumeResponse {}))
    }

    async fn controller_publish_volume(
        &self,
        _: Request<csi::ControllerPublishVolumeRequest>,
    ) -> Result<Response<csi::ControllerPublishVolumeResponse>, Status> {
        Err(Status::unimplemented(
            "lvsnap volumes are local: no controller publish",
        ))
    }

    async fn controller_unpublish_volume(
        &self,
        _: Request<csi::ControllerUnpublishVolumeRequest>,
    ) -> Result<Response<csi::ControllerUnpublishVolumeResponse>, Status> {
        Err(Status::unimplemented(
            "lvsnap volumes are local: no controller unpublish",
        ))
    }

    #[tracing::instrument(skip_all, fields(rpc = "ValidateVolumeCapabilities", volume = %request.get_ref().volume_id))]
    async fn validate_volume_capabilities(
        &self,
        request: Request<csi::ValidateVolumeCapabilitiesRequest>,
    ) -> Result<Response<csi::ValidateVolumeCapabilitiesResponse>, Status> {
        let r = request.into_inner();
        if r.volume_id.is_empty() {
            return Err(Status::invalid_argument("volume_id is required"));
        }
        if r.volume_capabilities.is_empty() {
            return Err(Status::invalid_argument("volume_capabilities are required"));
        }
        self.controller
            .live_volume(&r.volume_id)
            .await
            .map_err(status)?;
        let confirmed = check_capabilities(&r.volume_capabilities).is_ok();
        Ok(Response::new(csi::ValidateVolumeCapabilitiesResponse {
            confirmed: confirmed.then_some(csi::validate_volume_capabilities_response::Confirmed {
                volume_context: r.volume_context,
                volume_capabilities: r.volume_capabilities,
                parameters: r.parameters,
                mutable_parameters: r.mutable_parameters,
            }),
            message: if confirmed {
                String::new()
            } else {
                "unsupported capability".into()
            },
        }))
    }

    async fn list_volumes(
        &self,
        _: Request<csi::ListVolumesRequest>,
    ) -> Result<Response<csi::ListVolumesResponse>, Status> {
        Err(Status::unimplemented("ListVolumes is not supported"))
    }

    #[tracing::instrument(skip_all, fields(rpc = "GetCapacity"))]
    async fn get_capacity(
        &self,
        request: Request<csi::GetCapacityRequest>,
    ) -> Result<Response<csi::GetCapacityResponse>, Status> {
        let r = request.into_inner();
        let node = r
            .accessible_topology
            .as_ref()
            .and_then(|t| t.segments.get(TOPOLOGY_KEY).cloned());
        let (free, largest) = self
            .controller
            .capacity(node.as_deref(), &r.parameters)
            .await
            .map_err(status)?;
        Ok(Response::new(csi::GetCapacityResponse {
            available_capacity: free,
            maximum_volume_size: Some(largest),
            minimum_volume_size: None,
        }))
    }

    async fn controller_get_capabilities(
        &self,
        _: Request<csi::ControllerGetCapabilitiesRequest>,
    ) -> Result<Response<csi::ControllerGetCapabilitiesResponse>, Status> {
        // GetSnapshot is served, but GET_SNAPSHOT (alpha in CSI 1.12) is not
        // advertised: csi-sanity v5.4 fails any plugin that lists a
        // capability it does not know, and no Kubernetes sidecar uses it yet.
        let caps = [
            Cap::CreateDeleteVolume,
            Cap::CreateDeleteSnapshot,
            Cap::ListSnapshots,
            Cap::GetCapacity,
            Cap::CloneVolume,
            Cap::ExpandVolume,
        ]
        .into_iter()
        .map(|t| csi::ControllerServiceCapability {
            r#type: Some(csi::controller_service_capability::Type::Rpc(
                csi::controller_service_capability::Rpc { r#type: t as i32 },
            )),
        })
        .collect();
        Ok(Response::new(csi::ControllerGetCapabilitiesResponse {
            capabilities: caps,
        }))
    }

    #[tracing::instrument(skip_all, fields(rpc = "CreateSnapshot", name = %request.get_ref().name, volume = %request.get_ref().source_volume_id))]
    async fn create_snapshot(
        &self,
        request: Request<csi::CreateSnapshotRequest>,
    ) -> Result<Response<csi::CreateSnapshotResponse>, Status> {
        let r = request.into_inner();
        let s = self
            .controller
            .create_snapshot(CreateSnapshot {
                name: r.name,
                source_volume_id: r.source_volume_id,
                parameters: r.parameters,
            })
            .await
            .map_err(status)?;
        Ok(Response::new(csi::CreateSnapshotResponse {
            snapshot: Some(snapshot_msg(&s)),
        }))
    }

    #[tracing::instrument(skip_all, fields(rpc = "DeleteSnapshot", snapshot = %request.get_ref().snapshot_id))]
    async fn delete_snapshot(
        &self,
        request: Request<csi::DeleteSnapshotRequest>,
    ) -> Result<Response<csi::DeleteSnapshotResponse>, Status> {
        let r = request.into_inner();
        if r.snapshot_id.is_empty() {
            return Err(Status::invalid_argument("snapshot_id is required"));
        }
        self.controller
            .delete_snapshot(&r.snapshot_id)
            .await
            .map_err(status)?;
        Ok(Response::new(csi::DeleteSnapshotResponse {}))
    }

    #[tracing::instrument(skip_all, fields(rpc = "ListSnapshots"))]
    async fn list_snapshots(
        &self,
        request: Request<csi::ListSnapshotsRequest>,
    ) -> Result<Response<csi::ListSnapshotsResponse>, Status> {
        let r = request.into_inner();
        let page = self
            .controller
            .list_snapshots(
                &r.snapshot_id,
                &r.source_volume_id,
                r.max_entries,
                &r.starting_token,
            )
            .await
            .map_err(status)?;
        Ok(Response::new(csi::ListSnapshotsResponse {
            entries: page
                .entries
                .iter()
                .map(|s| csi::list_snapshots_response::Entry {
                    snapshot: Some(snapshot_msg(s)),
                })
                .collect(),
            next_token: page.next_token,
        }))
    }

    #[tracing::instrument(skip_all, fields(rpc = "GetSnapshot", snapshot = %request.get_ref().snapshot_id))]
    async fn get_snapshot(
        &self,
        request: Request<csi::GetSnapshotRequest>,
    ) -> Result<Response<csi::GetSnapshotResponse>, Status> {
        let r = request.into_inner();
        if r.snapshot_id.is_empty() {
            return Err(Status::invalid_argument("snapshot_id is required"));
        }
        let s = self
            .controller
            .get_snapshot(&r.snapshot_id)
            .await
            .map_err(status)?;
        Ok(Response::new(csi::GetSnapshotResponse {
            snapshot: Some(snapshot_msg(&s)),
        }))
    }

    #[tracing::instrument(skip_all, fields(rpc = "ControllerExpandVolume", volume = %request.get_ref().volume_id))]
    async fn controller_expand_volume(
        &self,
        request: Request<csi::ControllerExpandVolumeRequest>,
    ) -> Result<Response<csi::ControllerExpandVolumeResponse>, Status> {
        let r = request.into_inner();
        if r.volume_id.is_empty() {
            return Err(Status::invalid_argument("volume_id is required"));
        }
        let range = r
            .capacity_range
            .ok_or_else(|| Status::invalid_argument("capacity_range is required"))?;
        // A raw block volume needs nothing on the node; a filesystem must grow.
        let node_expansion_required = !matches!(
            r.volume_capability
                .as_ref()
                .and_then(|c| c.access_type.as_ref()),
            Some(csi::volume_capability::AccessType::Block(_))
        );
        let capacity_bytes = self
            .controller
            .expand_volume(&r.volume_id, range.required_bytes, range.limit_bytes)
            .await
            .map_err(status)?;
        Ok(Response::new(csi::ControllerExpandVolumeResponse {
            capacity_bytes,
            node_expansion_required,
        }))
    }

    async fn controller_get_volume(
        &self,
        _: Request<csi::ControllerGetVolumeRequest>,
    ) -> Result<Response<csi::ControllerGetVolumeResponse>, Status> {
        Err(Status::unimplemented(
            "ControllerGetVolume is not supported",
        ))
    }

    async fn controller_modify_volume(
        &self,
        _: Request<csi::ControllerModifyVolumeRequest>,
    ) -> Result<Response<csi::ControllerModifyVolumeResponse>, Status> {
        Err(Status::unimplemented(
            "ControllerModifyVolume is not supported",
        ))
    }
}
