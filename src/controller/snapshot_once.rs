//! CreateSnapshot's record and quota in one atomic write where the store
//! has one (SQLite): the source re-checked, the reservation committed at
//! once and the record inserted in one transaction, one fsync instead of
//! three (reserve, record, commit). What a crash can leave is unchanged: all
//! of the create's record and charge, or none of it. The Kubernetes store
//! has no transaction across objects and takes Cinder's steps
//! (`snapshot.rs`).
use super::{Controller, ControllerError, refuse};
use crate::quota::{ChargeError, arith::Deltas};
use crate::records::VolumeState;
use crate::store::{SnapshotRecord, SourceCheck, StoreError, VolumeRecord};

/// Cinder's `create_snapshot_in_db` checks of the source volume `id`.
pub(super) fn check_source(
    id: &str,
    volume: Option<&VolumeRecord>,
    require_detached: bool,
) -> Result<(), ControllerError> {
    let v = match volume {
        Some(v) if !v.status.life.deleted => v,
        _ => {
            return Err(ControllerError::NotFound(format!(
                "source volume {id} not found"
            )));
        }
    };
    match v.status.life.status {
        VolumeState::Available => {}
        VolumeState::InUse if !require_detached => {}
        VolumeState::InUse => {
            return Err(ControllerError::FailedPrecondition(format!(
                "volume {id} is in use and the snapshot class requires a detached source (requireDetached)"
            )));
        }
        other => {
            return Err(ControllerError::FailedPrecondition(format!(
                "volume {id} is {}; a snapshot needs an available or in-use volume",
                other.as_str()
            )));
        }
    }
    if v.spec.node.is_empty() {
        return Err(ControllerError::FailedPrecondition(format!(
            "volume {id} has no node"
        )));
    }
    Ok(())
}

impl Controller {
    /// Writes `record` (which claims no reservation) with its quota charge
    /// `deltas` in one atomic write, its source re-checked in it. `Ok(None)`:
    /// the store cannot, nothing was written. A taken name is
    /// `StoreError::AlreadyExists` for the caller to answer as the winner.
    pub(super) async fn insert_charged(
        &self,
        record: &SnapshotRecord,
        deltas: &Deltas,
        require_detached: bool,
    ) -> Result<Option<SnapshotRecord>, Result<ControllerError, StoreError>> {
        let project = &record.spec.project;
        let written = self
            .quota
            .charge_within(project, deltas, |quota| {
                let id = record.spec.source_volume_id.clone();
                let source: SourceCheck = Box::new(move |volume| {
                    check_source(&id, volume, require_detached).map_err(refuse)
                });
                let store = self.store.clone();
                async move { store.insert_snapshot_charged(record, source, quota).await }
            })
            .await;
        match written {
            Ok(r) => Ok(r),
            Err(ChargeError::Quota(e)) => Err(Ok(e.into())),
            Err(ChargeError::Store(e @ StoreError::AlreadyExists { .. })) => Err(Err(e)),
            Err(ChargeError::Store(e)) => Err(Ok(e.into())),
        }
    }
}
