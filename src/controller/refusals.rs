//! CreateSnapshot and CreateVolume as the CSI glue calls them: the domain
//! call, and a refusal (quota, validation, a missing or busy source)
//! logged once, at info, with the project and the reason — the operator
//! reads in the controller's log what the user reads in `kubectl describe`.
use super::params::{self, PVC_NAMESPACE, SNAPSHOT_NAMESPACE};
use super::{Controller, ControllerError, CreateSnapshot, CreateVolume};
use crate::store::{SnapshotRecord, VolumeRecord};

/// A refusal of the request itself, as opposed to a failure to serve it.
fn refusal(e: &ControllerError) -> Option<&'static str> {
    Some(match e {
        ControllerError::Invalid(_) => "invalid",
        ControllerError::Exhausted(_) => "over quota or out of space",
        ControllerError::AlreadyExists(_) => "name taken",
        ControllerError::NotFound(_) => "source not found",
        ControllerError::FailedPrecondition(_) => "failed precondition",
        ControllerError::OutOfRange(_) => "size out of range",
        _ => return None,
    })
}

impl Controller {
    #[tracing::instrument(skip_all, fields(name = %req.name, source = %req.source_volume_id))]
    pub async fn create_snapshot(
        &self,
        req: CreateSnapshot,
    ) -> Result<SnapshotRecord, ControllerError> {
        let project = params::project(
            &req.parameters,
            SNAPSHOT_NAMESPACE,
            &self.config.default_project,
        )
        .unwrap_or_else(|_| "(invalid)".into());
        let out = self.try_create_snapshot(req).await;
        if let Err(e) = &out
            && let Some(kind) = refusal(e)
        {
            tracing::info!(%project, refused = kind, reason = %e, "CreateSnapshot refused");
        }
        out
    }

    #[tracing::instrument(skip_all, fields(name = %req.name))]
    pub async fn create_volume(&self, req: CreateVolume) -> Result<VolumeRecord, ControllerError> {
        let project = params::project(&req.parameters, PVC_NAMESPACE, &self.config.default_project)
            .unwrap_or_else(|_| "(invalid)".into());
        let out = self.try_create_volume(req).await;
        if let Err(e) = &out
            && let Some(kind) = refusal(e)
        {
            tracing::info!(%project, refused = kind, reason = %e, "CreateVolume refused");
        }
        out
    }
}
