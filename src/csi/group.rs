//! CSI GroupController service: thin handlers over the controller's group
//! snapshots (CreateVolumeGroupSnapshot, DeleteVolumeGroupSnapshot,
//! GetVolumeGroupSnapshot); errors through the one map in `convert.rs`.
use tonic::{Request, Response, Status};

use super::convert::{group_msg, status};
use crate::controller::{Controller, CreateGroupSnapshot};
use crate::proto::v1 as csi;
use crate::proto::v1::group_controller_service_capability::rpc::Type as Cap;

/// Serves CSI GroupController over a [`Controller`].
#[derive(Clone)]
pub struct GroupControllerService {
    controller: Controller,
}

impl GroupControllerService {
    pub fn new(controller: Controller) -> Self {
        Self { controller }
    }
}

#[tonic::async_trait]
impl csi::group_controller_server::GroupController for GroupControllerService {
    #[tracing::instrument(skip_all, fields(rpc = "GroupControllerGetCapabilities"))]
    async fn group_controller_get_capabilities(
        &self,
        _: Request<csi::GroupControllerGetCapabilitiesRequest>,
    ) -> Result<Response<csi::GroupControllerGetCapabilitiesResponse>, Status> {
        let cap = csi::GroupControllerServiceCapability {
            r#type: Some(csi::group_controller_service_capability::Type::Rpc(
                csi::group_controller_service_capability::Rpc {
                    r#type: Cap::CreateDeleteGetVolumeGroupSnapshot as i32,
                },
            )),
        };
        Ok(Response::new(csi::GroupControllerGetCapabilitiesResponse {
            capabilities: vec![cap],
        }))
    }

    #[tracing::instrument(skip_all, fields(rpc = "CreateVolumeGroupSnapshot", name = %request.get_ref().name))]
    async fn create_volume_group_snapshot(
        &self,
        request: Request<csi::CreateVolumeGroupSnapshotRequest>,
    ) -> Result<Response<csi::CreateVolumeGroupSnapshotResponse>, Status> {
        let r = request.into_inner();
        let g = self
            .controller
            .create_group_snapshot(CreateGroupSnapshot {
                name: r.name,
                source_volume_ids: r.source_volume_ids,
                parameters: r.parameters,
            })
            .await
            .map_err(status)?;
        Ok(Response::new(csi::CreateVolumeGroupSnapshotResponse {
            group_snapshot: Some(group_msg(&g)),
        }))
    }

    #[tracing::instrument(skip_all, fields(rpc = "DeleteVolumeGroupSnapshot", group = %request.get_ref().group_snapshot_id))]
    async fn delete_volume_group_snapshot(
        &self,
        request: Request<csi::DeleteVolumeGroupSnapshotRequest>,
    ) -> Result<Response<csi::DeleteVolumeGroupSnapshotResponse>, Status> {
        let r = request.into_inner();
        self.controller
            .delete_group_snapshot(&r.group_snapshot_id, &r.snapshot_ids)
            .await
            .map_err(status)?;
        Ok(Response::new(csi::DeleteVolumeGroupSnapshotResponse {}))
    }

    #[tracing::instrument(skip_all, fields(rpc = "GetVolumeGroupSnapshot", group = %request.get_ref().group_snapshot_id))]
    async fn get_volume_group_snapshot(
        &self,
        request: Request<csi::GetVolumeGroupSnapshotRequest>,
    ) -> Result<Response<csi::GetVolumeGroupSnapshotResponse>, Status> {
        let r = request.into_inner();
        let g = self
            .controller
            .get_group_snapshot(&r.group_snapshot_id, &r.snapshot_ids)
            .await
            .map_err(status)?;
        Ok(Response::new(csi::GetVolumeGroupSnapshotResponse {
            group_snapshot: Some(group_msg(&g)),
        }))
    }
}
