//! CreateVolume, DeleteVolume and GetCapacity: quota `{volumes: 1,
//! gigabytes: size}`, placement from topology or the node with the most free
//! space, a record for the node to execute, a bounded wait.
use std::collections::HashMap;

use super::params::{self, VolumeParams};
use super::{Controller, ControllerError, now_rfc3339, record_id, wait};
use crate::lvm::LvName;
use crate::quota::gib_ceil;
use crate::records::{LvmVolumeSpec, LvmVolumeStatus, SnapshotState, VolumeState};
use crate::store::{Kind, NodeRecord, Record, SnapshotFilter, VolumeFilter, VolumeRecord};

/// Smallest volume handed out when the request names no size.
pub const DEFAULT_SIZE: i64 = 1 << 30;
/// Sizes are rounded up to this (LVM's default extent).
pub const SIZE_UNIT: i64 = 4 << 20;

/// The content source of a restore or clone, resolved.
#[derive(Debug, Clone)]
struct Source {
    node: String,
    vg: String,
    thin_pool: Option<String>,
    volume_type: String,
    size_bytes: i64,
}

/// Where a volume may go: nodes from the accessibility requirements, in
/// preference order (empty: anywhere).
#[derive(Debug, Clone, Default)]
pub struct Placement {
    pub preferred: Vec<String>,
    pub requisite: Vec<String>,
}

/// A parsed CreateVolume request.
#[derive(Debug, Clone)]
pub struct CreateVolume {
    pub name: String,
    pub required_bytes: i64,
    pub limit_bytes: i64,
    pub parameters: HashMap<String, String>,
    pub placement: Placement,
    /// Restore from this snapshot, or clone this volume.
    pub source_snapshot_id: Option<String>,
    pub source_volume_id: Option<String>,
}

impl Controller {
    #[tracing::instrument(skip_all, fields(name = %req.name))]
    pub async fn create_volume(&self, req: CreateVolume) -> Result<VolumeRecord, ControllerError> {
        params::check_name("name", &req.name)?;
        params::check_map("parameters", &req.parameters)?;
        let p = VolumeParams::parse(&req.parameters)?;
        let project = params::project(
            &req.parameters,
            params::PVC_NAMESPACE,
            &self.config.default_project,
        )?;
        let source = self.volume_source(&req).await?;
        let size = match &source {
            // Restore/clone with no size asked: the source's size.
            Some(src) if req.required_bytes == 0 => size_for(src.size_bytes, req.limit_bytes)?,
            _ => size_for(req.required_bytes, req.limit_bytes)?,
        };
        if let Some(src) = &source
            && size < src.size_bytes
        {
            return Err(ControllerError::OutOfRange(format!(
                "{size} bytes is smaller than the source's {} bytes",
                src.size_bytes
            )));
        }

        if let Some(existing) = self.store.find_volume(&req.name).await? {
            if existing.spec.size_bytes < req.required_bytes
                || (req.limit_bytes > 0 && existing.spec.size_bytes > req.limit_bytes)
            {
                return Err(ControllerError::AlreadyExists(format!(
                    "volume {:?} exists with {} bytes, outside the requested range",
                    req.name, existing.spec.size_bytes
                )));
            }
            if existing.spec.source_snapshot_id != req.source_snapshot_id
                || existing.spec.source_volume_id != req.source_volume_id
            {
                return Err(ControllerError::AlreadyExists(format!(
                    "volume {:?} exists with a different content source",
                    req.name
                )));
            }
            return self.wait_volume_created(existing).await;
        }

        // A restore or clone lives where its source is.
        let (node, vg, thin_pool, volume_type) = match &source {
            Some(src) => (
                src.node.clone(),
                src.vg.clone(),
                src.thin_pool.clone(),
                src.volume_type.clone(),
            ),
            None => {
                let node = self.place(&req.placement, &p, size).await?;
                let ty = p
                    .volume_type
                    .clone()
                    .unwrap_or_else(|| node.spec.vg.clone());
                let pool = p.thin_pool.clone().or_else(|| node.spec.thin_pool.clone());
                (node.name, node.spec.vg, pool, ty)
            }
        };
        let id = record_id("volume", &req.name);
        if let Some(old) = self.store.get_volume(&id).await?
            && old.status.deleted
        {
            self.store.purge_volume(&id).await?;
        }
        let deltas = self.quota.volume_deltas(&volume_type, gib_ceil(size), 1);
        let reservations = self.quota.reserve(&project, &deltas).await?;
        let uuid =
            uuid::Uuid::parse_str(&id).map_err(|e| ControllerError::Internal(e.to_string()))?;
        let record: VolumeRecord = Record::new(
            id.clone(),
            LvmVolumeSpec {
                id: id.clone(),
                csi_name: req.name.clone(),
                project: project.clone(),
                volume_type,
                node,
                vg,
                lv_name: LvName::volume(uuid).as_str().to_string(),
                size_bytes: size,
                thin_pool,
                fs_type: p.fs_type.clone(),
                source_snapshot_id: req.source_snapshot_id.clone(),
                source_volume_id: req.source_volume_id.clone(),
                quota_charged: deltas,
                quota_reservations: reservations.clone(),
            },
            LvmVolumeStatus {
                status: VolumeState::Creating,
                progress: "0%".into(),
                created_at: now_rfc3339(),
                ..Default::default()
            },
        );
        let created = match self.store.create_volume(&record).await {
            Ok(r) => r,
            Err(e) => {
                self.quota.rollback(&project, &reservations).await?;
                return Err(match e {
                    crate::store::StoreError::AlreadyExists { .. } => {
                        ControllerError::Aborted(format!("volume {:?} is being created", req.name))
                    }
                    e => e.into(),
                });
            }
        };
        if let Err(e) = self.quota.commit(&project, &reservations).await {
            let _ = self.store.purge_volume(&id).await;
            let _ = self.quota.rollback(&project, &reservations).await;
            return Err(e.into());
        }
        tracing::info!(volume = %id, node = %created.spec.node, size, "volume record created; dispatched to its node");
        self.wait_volume_created(created).await
    }

    /// The restore/clone source: NOT_FOUND when unknown or deleted,
    /// FAILED_PRECONDITION when it is not ready to be read.
    async fn volume_source(&self, req: &CreateVolume) -> Result<Option<Source>, ControllerError> {
        if let Some(id) = &req.source_snapshot_id {
            params::check_name("volume_content_source.snapshot.snapshot_id", id)?;
            let snap = match self.store.get_snapshot(id).await? {
                Some(s) if !s.status.deleted => s,
                _ => {
                    return Err(ControllerError::NotFound(format!(
                        "snapshot {id} not found"
                    )));
                }
            };
            if snap.status.status != SnapshotState::Available {
                return Err(ControllerError::FailedPrecondition(format!(
                    "snapshot {id} is {}; only an available snapshot can be restored",
                    snap.status.status.as_str()
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
                Some(v) if !v.status.deleted => v,
                _ => return Err(ControllerError::NotFound(format!("volume {id} not found"))),
            };
            if !matches!(v.status.status, VolumeState::Available | VolumeState::InUse) {
                return Err(ControllerError::FailedPrecondition(format!(
                    "volume {id} is {}; only an available or in-use volume can be cloned",
                    v.status.status.as_str()
                )));
            }
            return Ok(Some(Source {
                node: v.spec.node.clone(),
                vg: v.spec.vg.clone(),
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
        loop {
            let page = self
                .store
                .list_volumes(&filter, after.as_deref(), 500)
                .await?;
            readers.extend(
                page.iter()
                    .filter(|v| {
                        v.status.status == VolumeState::Creating
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

    /// Picks the node: the requirements' nodes in preference order, else the
    /// node with the most free space; it must have room for `size`.
    async fn place(
        &self,
        placement: &Placement,
        p: &VolumeParams,
        size: i64,
    ) -> Result<NodeRecord, ControllerError> {
        let nodes = self.store.list_nodes().await?;
        let fits = |n: &&NodeRecord| {
            p.vg.as_ref().is_none_or(|vg| *vg == n.spec.vg) && n.status.free_bytes >= size
        };
        let ordered: Vec<&String> = placement
            .preferred
            .iter()
            .chain(placement.requisite.iter())
            .collect();
        let chosen = if ordered.is_empty() {
            nodes
                .iter()
                .filter(fits)
                .max_by_key(|n| n.status.free_bytes)
        } else {
            ordered
                .iter()
                .find_map(|name| nodes.iter().filter(fits).find(|n| &&n.name == name))
        };
        chosen.cloned().ok_or_else(|| {
            if nodes.is_empty() {
                ControllerError::Unavailable("no node has reported its volume group yet".into())
            } else {
                ControllerError::Exhausted(format!("no eligible node has {size} bytes free"))
            }
        })
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
            move |r: &VolumeRecord| r.status.status == state,
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

    async fn wait_volume_created(
        &self,
        record: VolumeRecord,
    ) -> Result<VolumeRecord, ControllerError> {
        let id = record.name.clone();
        let done = self
            .wait_volume_leaves(&id, VolumeState::Creating, "created")
            .await?;
        match done {
            None => Err(ControllerError::Aborted(format!(
                "volume {id} is still being created; retry"
            ))),
            Some(r) if r.status.status == VolumeState::Error => Err(ControllerError::Recorded {
                code: r
                    .status
                    .error_code
                    .clone()
                    .unwrap_or_else(|| "INTERNAL".into()),
                message: format!(
                    "volume {id} failed on node {}: {}",
                    r.spec.node,
                    r.status.error_message.clone().unwrap_or_default()
                ),
            }),
            Some(r) => Ok(r),
        }
    }

    #[tracing::instrument(skip_all, fields(volume = %id))]
    pub async fn delete_volume(&self, id: &str) -> Result<(), ControllerError> {
        params::check_name("volume_id", id)?;
        let Some(mut v) = self.store.get_volume(id).await? else {
            return Ok(());
        };
        if v.status.deleted {
            return Ok(());
        }
        let live = self
            .store
            .list_snapshots(
                &SnapshotFilter {
                    source_volume_id: Some(id.to_string()),
                    ..Default::default()
                },
                None,
                1,
            )
            .await?;
        if !live.is_empty() {
            return Err(ControllerError::FailedPrecondition(format!(
                "volume {id} has snapshots; delete them first (Cinder: a volume must not have snapshots)"
            )));
        }
        let readers = self.readers_of(&v.spec.node, id).await?;
        if !readers.is_empty() {
            return Err(ControllerError::FailedPrecondition(format!(
                "volume {id} is busy: volume {} is being cloned from it",
                readers.join(", ")
            )));
        }
        match v.status.status {
            VolumeState::Creating | VolumeState::Extending => {
                return Err(ControllerError::Aborted(format!(
                    "volume {id} is still being {}",
                    if v.status.status == VolumeState::Creating {
                        "created"
                    } else {
                        "extended"
                    }
                )));
            }
            VolumeState::InUse => {
                return Err(ControllerError::FailedPrecondition(format!(
                    "volume {id} is in use"
                )));
            }
            VolumeState::Available | VolumeState::Error | VolumeState::ErrorDeleting => {
                v.status.status = v
                    .status
                    .status
                    .transition(VolumeState::Deleting)
                    .map_err(|e| ControllerError::Internal(e.to_string()))?;
                v.status.error_code = None;
                v.status.error_message = None;
                self.store.update_volume(&v).await?;
            }
            VolumeState::Deleting | VolumeState::Deleted => {}
        }
        let done = wait::while_pending(
            self.store.as_ref(),
            Kind::Volume,
            id,
            self.config.wait_timeout,
            || self.store.get_volume(id),
            |r: &VolumeRecord| !r.status.deleted && r.status.status == VolumeState::Deleting,
        )
        .await?;
        match done {
            None => Err(ControllerError::Aborted(format!(
                "volume {id} is still being deleted"
            ))),
            Some(None) => Ok(()),
            Some(Some(r)) if r.status.deleted => Ok(()),
            Some(Some(r)) => Err(ControllerError::Recorded {
                code: r.status.error_code.unwrap_or_else(|| "INTERNAL".into()),
                message: format!(
                    "deleting volume {id} failed: {}",
                    r.status.error_message.unwrap_or_default()
                ),
            }),
        }
    }

    /// GetCapacity: free bytes on the named node, or on all nodes.
    pub async fn capacity(
        &self,
        node: Option<&str>,
        vg: Option<&str>,
    ) -> Result<(i64, i64), ControllerError> {
        let nodes = self.store.list_nodes().await?;
        let matching = nodes.iter().filter(|n| {
            node.is_none_or(|want| n.name == want) && vg.is_none_or(|want| n.spec.vg == want)
        });
        let free = matching.clone().map(|n| n.status.free_bytes).sum();
        let largest = matching.map(|n| n.status.free_bytes).max().unwrap_or(0);
        Ok((free, largest))
    }
}

/// The size to allocate: at least `required` (default 1 GiB), rounded up
/// to 4 MiB, never above `limit` (0 = none).
pub fn size_for(required: i64, limit: i64) -> Result<i64, ControllerError> {
    if required < 0 || limit < 0 {
        return Err(ControllerError::Invalid(
            "capacity_range bytes must not be negative".into(),
        ));
    }
    if limit > 0 && required > limit {
        return Err(ControllerError::Invalid(format!(
            "required_bytes {required} exceeds limit_bytes {limit}"
        )));
    }
    let want = if required == 0 {
        DEFAULT_SIZE.min(if limit > 0 { limit } else { i64::MAX })
    } else {
        required
    };
    let size = want
        .checked_add(SIZE_UNIT - 1)
        .map(|v| v / SIZE_UNIT * SIZE_UNIT)
        .ok_or_else(|| ControllerError::OutOfRange(format!("{want} bytes is too large")))?;
    if limit > 0 && size > limit {
        return Err(ControllerError::OutOfRange(format!(
            "{want} bytes rounded up to whole 4 MiB extents is {size}, above limit_bytes {limit}"
        )));
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

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
