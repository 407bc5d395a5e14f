//! CreateVolume and DeleteVolume: quota `{volumes: 1, gigabytes: size}`,
//! placement from topology or the node with the most free space, a record
//! for the node to execute, a bounded wait. A failed create asked for again
//! is dispatched again without new quota, placed anew when the request no
//! longer allows its node or that node has no room (the provisioner's
//! reschedule).
use std::collections::HashMap;

use super::params::{self, VolumeParams};
use super::placement::Placement;
use super::{Controller, ControllerError, record_id, refuse};
use crate::failpoint::points;
use crate::quota::{gib_ceil, release_key};
use crate::records::{
    FailureCode, Lifecycle, LvsVolumeSpec, LvsVolumeStatus, VolumeState, volume_lv_name,
};
use crate::store::{Kind, Presence, Record, SnapshotFilter, VolumeRecord, modify};

/// Smallest volume handed out when the request names no size.
pub const DEFAULT_SIZE: i64 = 1 << 30;
/// Sizes are rounded up to this (LVM's default extent).
pub const SIZE_UNIT: i64 = 4 << 20;

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
    /// The filesystem the volume capability asks for (the provisioner moves
    /// the StorageClass's `csi.storage.k8s.io/fstype` there).
    pub fs_type: Option<String>,
}

impl Controller {
    pub(super) async fn try_create_volume(
        &self,
        req: CreateVolume,
    ) -> Result<VolumeRecord, ControllerError> {
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
            if existing.status.life.is_failed_create() {
                if let Some(why) = self.unwanted_claim(&req.parameters).await {
                    self.release_failed(&existing).await;
                    return Err(ControllerError::FailedPrecondition(why));
                }
                return self.redispatch_volume(existing, &req, &p).await;
            }
            return self.wait_volume_created(existing).await;
        }
        if let Some(why) = self.unwanted_claim(&req.parameters).await {
            return Err(ControllerError::FailedPrecondition(why));
        }

        // A restore or clone lives where its source is, in its class.
        let (node, vg, thin_pool, volume_type, device_class) = match &source {
            Some(src) => {
                let (class, pool) = (src.device_class.as_deref(), src.thin_pool.as_ref());
                self.class_room(&src.node, class, &src.vg, pool, size)
                    .await?;
                (
                    src.node.clone(),
                    src.vg.clone(),
                    src.thin_pool.clone(),
                    src.volume_type.clone(),
                    src.device_class.clone(),
                )
            }
            None => {
                let placed = self.place(&req.placement, &p, size).await?;
                let class = placed.slot.class;
                // Volume type = class by default (per-type quota keys).
                let ty = p.volume_type.clone().unwrap_or_else(|| class.name.clone());
                let pool = placed.slot.thin_pool;
                (placed.node.name, class.vg, pool, ty, Some(class.name))
            }
        };
        let id = record_id("volume", &req.name);
        if let Some(old) = self.store.get_volume(&id).await?
            && old.status.life.deleted
        {
            let key = release_key(Kind::Volume, &id);
            self.quota.forget_release(&old.spec.project, &key).await?;
            self.store.purge_volume(&id).await?;
        }
        let deltas = self.quota.volume_deltas(&volume_type, gib_ceil(size), 1);
        let reservations = self.quota.reserve(&project, &deltas).await?;
        self.failpoints.hit(points::VOLUME_AFTER_RESERVE)?;
        let uuid =
            uuid::Uuid::parse_str(&id).map_err(|e| ControllerError::Internal(e.to_string()))?;
        let record: VolumeRecord = Record::new(
            id.clone(),
            LvsVolumeSpec {
                id: id.clone(),
                csi_name: req.name.clone(),
                project: project.clone(),
                display_name: req
                    .parameters
                    .get(params::PVC_NAME)
                    .map(|n| n.trim().chars().take(255).collect())
                    .unwrap_or_else(|| req.name.clone()),
                volume_type,
                node,
                vg,
                device_class,
                lv_name: volume_lv_name(&uuid),
                size_bytes: size,
                thin_pool,
                fs_type: p.fs_type.clone().or_else(|| req.fs_type.clone()),
                source_snapshot_id: req.source_snapshot_id.clone(),
                source_volume_id: req.source_volume_id.clone(),
                quota_charged: deltas,
                quota_reservations: reservations.clone(),
            },
            LvsVolumeStatus {
                life: Lifecycle::creating(),
                ..Default::default()
            },
        );
        let created = match self.store.insert_volume(&record).await {
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
        self.failpoints.hit(points::VOLUME_AFTER_RECORD)?;
        if let Err(e) = self.quota.commit(&project, &reservations).await {
            let _ = self.store.purge_volume(&id).await;
            let _ = self.quota.rollback(&project, &reservations).await;
            return Err(e.into());
        }
        tracing::info!(volume = %id, node = %created.spec.node, size, "volume record created; dispatched to its node");
        self.wait_volume_created(created).await
    }

    /// Kubernetes: why the PVC behind this request is no longer wanted.
    async fn unwanted_claim(&self, parameters: &HashMap<String, String>) -> Option<String> {
        let name = parameters.get(params::PVC_NAME)?;
        let namespace = parameters.get(params::PVC_NAMESPACE)?;
        match self.cluster.claim(namespace, name).await {
            Ok(Presence::Present) => None,
            Ok(Presence::Deleting) => Some(format!(
                "PersistentVolumeClaim {namespace}/{name} is being deleted: no volume is made for it"
            )),
            Ok(Presence::Gone) => Some(format!(
                "PersistentVolumeClaim {namespace}/{name} no longer exists: no volume is made for it"
            )),
            Err(e) => {
                tracing::warn!(claim = %name, error = %e, "cannot read the PVC; creating anyway");
                None
            }
        }
    }

    /// A failed create asked for again: `creating` again with the quota it
    /// holds; a plain volume moves to a node the request allows when its
    /// node is excluded, full, or stale.
    async fn redispatch_volume(
        &self,
        existing: VolumeRecord,
        req: &CreateVolume,
        p: &VolumeParams,
    ) -> Result<VolumeRecord, ControllerError> {
        let plain =
            existing.spec.source_snapshot_id.is_none() && existing.spec.source_volume_id.is_none();
        let size = existing.spec.size_bytes;
        let stays = !plain
            || (req.placement.allows(&existing.spec.node)
                && self.node_has_room(&existing.spec.node, p, size).await?);
        let target = if stays {
            None
        } else {
            let placed = self.place(&req.placement, p, size).await?;
            let slot = placed.slot;
            Some((placed.node.name, slot.class.vg, slot.thin_pool))
        };
        let moved = target.as_ref().map(|(n, _, _)| n.clone());
        let updated = self
            .store
            .modify_volume(
                &existing.name,
                modify(move |r: &mut VolumeRecord| {
                    if !r.status.life.is_failed_create() {
                        return Ok(());
                    }
                    if let Some((node, vg, pool)) = &target {
                        r.spec.node = node.clone();
                        r.spec.vg = vg.clone();
                        r.spec.thin_pool = pool.clone();
                    }
                    r.status
                        .life
                        .transition(VolumeState::Creating)
                        .map_err(|e| refuse(ControllerError::Internal(e.to_string())))?;
                    r.status.life.progress = "0%".into();
                    r.status.life.clear_error();
                    Ok(())
                }),
            )
            .await?
            .ok_or_else(|| {
                ControllerError::Aborted(format!("volume {} vanished; retry", existing.name))
            })?;
        match moved {
            Some(node) => {
                tracing::info!(volume = %updated.name, from = %existing.spec.node, to = %node, "re-dispatching a failed volume on another node (no new quota)")
            }
            None => {
                tracing::info!(volume = %updated.name, node = %updated.spec.node, "re-dispatching a failed volume (no new quota)")
            }
        }
        self.wait_volume_created(updated).await
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
            Some(r) if r.status.life.status == VolumeState::Error => {
                Err(ControllerError::Recorded {
                    code: r.status.life.error_code.unwrap_or(FailureCode::Internal),
                    message: format!(
                        "volume {id} failed on node {}: {}",
                        r.spec.node,
                        r.status.life.error_message.clone().unwrap_or_default()
                    ),
                })
            }
            Some(r) => Ok(r),
        }
    }

    #[tracing::instrument(skip_all, fields(volume = %id))]
    pub async fn delete_volume(&self, id: &str) -> Result<(), ControllerError> {
        params::check_name("volume_id", id)?;
        let Some(v) = self.store.get_volume(id).await? else {
            return Ok(());
        };
        if v.status.life.deleted {
            return Ok(());
        }
        // Read directly: a snapshot being created now must be seen (its
        // create re-checks this volume the same way: one of them sees the other).
        let live = crate::store::direct(&self.store)
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
        self.delete_tracked(v, id, |v: &VolumeRecord| match v.status.life.status {
            VolumeState::Creating | VolumeState::Extending => {
                Some(ControllerError::Aborted(format!(
                    "volume {} is still being {}",
                    v.name,
                    if v.status.life.status == VolumeState::Creating {
                        "created"
                    } else {
                        "extended"
                    }
                )))
            }
            VolumeState::InUse => Some(ControllerError::FailedPrecondition(format!(
                "volume {} is in use",
                v.name
            ))),
            _ => None,
        })
        .await
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
