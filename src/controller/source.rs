//! Restore and clone sources, the delete lock they hold (Cinder: a volume
//! being created from a snapshot holds that snapshot's delete lock), and the
//! bounded wait on a volume record.
use super::volume::CreateVolume;
use super::{Controller, ControllerError, params, wait};
use crate::records::{SnapshotState, VolumeState};
use crate::store::{Kind, VolumeFilter, VolumeRecord};

/// The content source of a restore or clone, resolved.
#[derive(Debug, Clone)]
pub(super) struct Source {
    pub node: String,
    pub vg: String,
    pub device_class: Option<String>,
    pub thin_pool: Option<String>,
    pub volume_type: String,
    pub size_bytes: i64,
}

impl Controller {
    /// The restore/clone source: NOT_FOUND when unknown or deleted,
    /// FAILED_PRECONDITION when it is not ready to be read.
    pub(super) async fn volume_source(
        &self,
        req: &CreateVolume,
    ) -> Result<Option<Source>, ControllerError> {
        if let Some(id) = &req.source_snapshot_id {
            params::check_name("volume_content_source.snapshot.snapshot_id", id)?;
            let snap = match self.store.get_snapshot(id).await? {
                Some(s) if !s.status.life.deleted => s,
                _ => {
                    return Err(ControllerError::NotFound(format!(
                        "snapshot {id} not found"
                    )));
                }
            };
            if snap.status.life.status != SnapshotState::Available {
                return Err(ControllerError::FailedPrecondition(format!(
                    "snapshot {id} is {}; only an available snapshot can be restored",
                    snap.status.life.status.as_str()
                )));
            }
            let thin_pool = self
                .store
                .get_volume(&snap.spec.source_volume_id)
                .await?
                .and_then(|v| v.spec.thin_pool);
            return Ok(Some(Source {
                node: snap.spec.node.clone(),
                vg: snap.spec.vg.clone(),
                device_class: snap.spec.device_class.clone(),
                thin_pool: if snap.spec.cow_size_bytes.is_none() {
                    thin_pool
                } else {
                    None
                },
                volume_type: snap.spec.volume_type.clone(),
                // The origin's size when the snapshot was cut.
                size_bytes: if snap.status.size_bytes > 0 {
                    snap.status.size_bytes
                } else {
                    snap.spec.volume_size << 30
                },
            }));
        }
        if let Some(id) = &req.source_volume_id {
            params::check_name("volume_content_source.volume.volume_id", id)?;
            let v = match self.store.get_volume(id).await? {
                Some(v) if !v.status.life.deleted => v,
                _ => return Err(ControllerError::NotFound(format!("volume {id} not found"))),
            };
            if !matches!(
                v.status.life.status,
                VolumeState::Available | VolumeState::InUse
            ) {
                return Err(ControllerError::FailedPrecondition(format!(
                    "volume {id} is {}; only an available or in-use volume can be cloned",
                    v.status.life.status.as_str()
                )));
            }
            return Ok(Some(Source {
                node: v.spec.node.clone(),
                vg: v.spec.vg.clone(),
                device_class: v.spec.device_class.clone(),
                thin_pool: v.spec.thin_pool.clone(),
                volume_type: v.spec.volume_type.clone(),
                size_bytes: v.spec.size_bytes,
            }));
        }
        Ok(None)
    }

    /// Volumes still being created from `source` (a snapshot or volume id)
    /// on `node`: while one reads it, the source cannot be deleted
    /// (Cinder's delete lock).
    pub(super) async fn readers_of(
        &self,
        node: &str,
        source: &str,
    ) -> Result<Vec<String>, ControllerError> {
        let filter = VolumeFilter {
            node: Some(node.to_string()),
            ..Default::default()
        };
        let mut readers = Vec::new();
        let mut after: Option<String> = None;
        // Read directly: a restore or clone just written must hold the lock.
        let store = crate::store::direct(&self.store);
        loop {
            let page = store.list_volumes(&filter, after.as_deref(), 500).await?;
            readers.extend(
                page.iter()
                    .filter(|v| {
                        v.status.life.status == VolumeState::Creating
                            && (v.spec.source_snapshot_id.as_deref() == Some(source)
                                || v.spec.source_volume_id.as_deref() == Some(source))
                    })
                    .map(|v| v.name.clone()),
            );
            match page.last() {
                Some(last) if page.len() == 500 => after = Some(last.name.clone()),
                _ => return Ok(readers),
            }
        }
    }

    /// Waits (bounded by --create-timeout) while volume `id` is in `state`;
    /// None if it still is at the deadline. `doing` names the work in errors.
    pub(super) async fn wait_volume_leaves(
        &self,
        id: &str,
        state: VolumeState,
        doing: &'static str,
    ) -> Result<Option<VolumeRecord>, ControllerError> {
        match wait::while_pending(
            self.store.as_ref(),
            Kind::Volume,
            id,
            self.config.wait_timeout,
            || self.store.get_volume(id),
            move |r: &VolumeRecord| r.status.life.status == state,
        )
        .await?
        {
            Some(None) => Err(ControllerError::NotFound(format!(
                "volume {id} vanished while being {doing}"
            ))),
            Some(Some(r)) => Ok(Some(r)),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::volume::size_for;
    use super::ControllerError;

    #[test]
    fn sizes() {
        assert_eq!(size_for(0, 0).unwrap(), 1 << 30);
        assert_eq!(size_for(1, 0).unwrap(), 4 << 20);
        assert_eq!(size_for(4 << 20, 4 << 20).unwrap(), 4 << 20);
        assert_eq!(size_for(0, 8 << 20).unwrap(), 8 << 20);
        assert!(matches!(size_for(5, 4), Err(ControllerError::Invalid(_))));
        assert!(matches!(
            size_for(1, 2),
            Err(ControllerError::OutOfRange(_))
        ));
        assert!(matches!(size_for(-1, 0), Err(ControllerError::Invalid(_))));
        assert!(matches!(
            size_for(i64::MAX, 0),
            Err(ControllerError::OutOfRange(_))
        ));
    }
}
