//! CreateSnapshot and DeleteSnapshot with Cinder's semantics
//! (cinder-semantics §1, §2, §6): validate, idempotency by name, source
//! checks, reserve, record `creating`/`0%`, re-check the source, commit,
//! dispatch (the record itself), wait on the node, bounded. A failed cut
//! asked for again is dispatched again without new quota.
use std::collections::HashMap;

use super::params::{self, SnapshotParams, SnapshotSize};
use super::snapshot_once::check_source;
use super::{Controller, ControllerError, record_id, refuse, wait};
use crate::failpoint::points;
use crate::quota::{gib_ceil, release_key};
use crate::records::{
    FailureCode, Lifecycle, LvsSnapshotSpec, LvsSnapshotStatus, SnapshotState, snapshot_lv_name,
};
use crate::store::{Kind, Presence, Record, SnapshotRecord, StoreError, modify};

/// The VolumeSnapshotContent a request names (external-snapshotter's
/// `--extra-create-metadata`).
pub const SNAPSHOT_CONTENT: &str = "csi.storage.k8s.io/volumesnapshotcontent/name";

/// A parsed CreateSnapshot request.
#[derive(Debug, Clone)]
pub struct CreateSnapshot {
    pub name: String,
    pub source_volume_id: String,
    pub parameters: HashMap<String, String>,
}

/// One page of ListSnapshots.
#[derive(Debug, Clone)]
pub struct SnapshotPage {
    pub entries: Vec<SnapshotRecord>,
    pub next_token: String,
}

impl Controller {
    pub(super) async fn try_create_snapshot(
        &self,
        req: CreateSnapshot,
    ) -> Result<SnapshotRecord, ControllerError> {
        params::check_name("name", &req.name)?;
        params::check_name("source_volume_id", &req.source_volume_id)?;
        params::check_map("parameters", &req.parameters)?;
        let p = SnapshotParams::parse(&req.parameters)?;
        let project = params::project(
            &req.parameters,
            params::SNAPSHOT_NAMESPACE,
            &self.config.default_project,
        )?;
        let unwanted = self.unwanted_content(&req.parameters).await;

        // Idempotency by name.
        if let Some(existing) = self.store.find_snapshot(&req.name).await? {
            if existing.spec.source_volume_id != req.source_volume_id {
                return Err(ControllerError::AlreadyExists(format!(
                    "snapshot {:?} already exists for volume {}",
                    req.name, existing.spec.source_volume_id
                )));
            }
            if let Some(why) = unwanted
                && existing.status.life.is_failed_create()
            {
                // Nobody will ask again: release it now (through its node).
                self.release_failed(&existing).await;
                return Err(ControllerError::FailedPrecondition(why));
            }
            return self.redispatch_and_wait(existing).await;
        }
        if let Some(why) = unwanted {
            return Err(ControllerError::FailedPrecondition(why));
        }

        let volume = self
            .live_source(&req.source_volume_id, p.require_detached)
            .await?;
        let id = record_id("snapshot", &req.name);
        // A soft-deleted record of the same name holds the id: it goes now.
        if let Some(old) = self.store.get_snapshot(&id).await?
            && old.status.life.deleted
        {
            let key = release_key(Kind::Snapshot, &id);
            self.quota.forget_release(&old.spec.project, &key).await?;
            self.store.purge_snapshot(&id).await?;
        }
        if let Some(pool) = &volume.spec.thin_pool {
            // A thin snapshot allocates its origin's virtual size in the pool.
            let class = volume.spec.device_class.as_deref();
            let (node, vg, size) = (&volume.spec.node, &volume.spec.vg, volume.spec.size_bytes);
            self.class_room(node, class, vg, Some(pool), size).await?;
        }
        let volume_size = gib_ceil(volume.spec.size_bytes);
        let deltas = self
            .quota
            .snapshot_deltas(&volume.spec.volume_type, volume_size, 1);
        let cow = cow_size(&volume, p.size);
        let uuid =
            uuid::Uuid::parse_str(&id).map_err(|e| ControllerError::Internal(e.to_string()))?;
        let mut record: SnapshotRecord = Record::new(
            id.clone(),
            LvsSnapshotSpec {
                id: id.clone(),
                csi_name: req.name.clone(),
                source_volume_id: req.source_volume_id.clone(),
                project: project.clone(),
                user: p.display_name.clone(),
                display_name: p.display_name.clone().unwrap_or_else(|| req.name.clone()),
                display_description: String::new(),
                metadata: Default::default(),
                volume_type: volume.spec.volume_type.clone(),
                volume_size,
                cow_size_bytes: cow,
                autoextend: cow.map(|_| p.autoextend),
                node: volume.spec.node.clone(),
                vg: volume.spec.vg.clone(),
                device_class: volume.spec.device_class.clone(),
                lv_name: snapshot_lv_name(&uuid),
                group_snapshot_id: None,
                quota_charged: deltas.clone(),
                quota_reservations: Vec::new(),
            },
            LvsSnapshotStatus {
                life: Lifecycle::creating(),
                size_bytes: volume.spec.size_bytes,
                ..Default::default()
            },
        );
        // One atomic write where the store has one (SQLite); a crash is
        // after both of the steps' failpoints or before either.
        match self
            .insert_charged(&record, &deltas, p.require_detached)
            .await
        {
            Ok(Some(created)) => {
                self.failpoints.hit(points::SNAPSHOT_AFTER_RESERVE)?;
                self.failpoints.hit(points::SNAPSHOT_AFTER_RECORD)?;
                tracing::info!(snapshot = %id, node = %created.spec.node, "snapshot record created and charged in one transaction; dispatched to its node");
                return self.wait_created(created).await;
            }
            Ok(None) => {}
            Err(Ok(e)) => return Err(e),
            Err(Err(_taken)) => return self.same_name_won(&req).await,
        }
        let reservations = self.quota.reserve(&project, &deltas).await?;
        self.failpoints.hit(points::SNAPSHOT_AFTER_RESERVE)?;
        record.spec.quota_reservations = reservations.clone();
        // Record, re-check the source (Cinder Queens' race fix), commit; any
        // failure in between undoes the record and the reservation.
        let created = match self.store.insert_snapshot(&record).await {
            Ok(r) => r,
            Err(e) => {
                self.quota.rollback(&project, &reservations).await?;
                if matches!(e, StoreError::AlreadyExists { .. }) {
                    return self.same_name_won(&req).await;
                }
                return Err(e.into());
            }
        };
        self.failpoints.hit(points::SNAPSHOT_AFTER_RECORD)?;
        // The re-check races a delete of the source: read it directly.
        let recheck = self
            .live_source_in(
                crate::store::direct(&self.store).as_ref(),
                &req.source_volume_id,
                p.require_detached,
            )
            .await;
        let committed = match recheck {
            Ok(_) => self
                .quota
                .commit(&project, &reservations)
                .await
                .map_err(ControllerError::from),
            Err(e) => Err(e),
        };
        if let Err(e) = committed {
            let _ = self.store.purge_snapshot(&id).await;
            let _ = self.quota.rollback(&project, &reservations).await;
            return Err(e);
        }
        tracing::info!(snapshot = %id, node = %created.spec.node, "snapshot record created; dispatched to its node");
        self.wait_created(created).await
    }

    /// Kubernetes: why the VolumeSnapshotContent behind this request is no
    /// longer wanted (gone, or being deleted), if it is not. A CO that cannot
    /// be asked, or a request naming none, is no reason to refuse.
    async fn unwanted_content(&self, parameters: &HashMap<String, String>) -> Option<String> {
        let name = parameters.get(SNAPSHOT_CONTENT)?;
        match self.cluster.snapshot_content(name).await {
            Ok(Presence::Present) => None,
            Ok(Presence::Deleting) => Some(format!(
                "VolumeSnapshotContent {name} is being deleted: nothing is cut for it"
            )),
            Ok(Presence::Gone) => Some(format!(
                "VolumeSnapshotContent {name} no longer exists: nothing is cut for it"
            )),
            Err(e) => {
                tracing::warn!(content = %name, error = %e, "cannot read the VolumeSnapshotContent; creating anyway");
                None
            }
        }
    }

    /// The source volume, checked as Cinder's `create_snapshot_in_db`.
    pub(super) async fn live_source(
        &self,
        id: &str,
        require_detached: bool,
    ) -> Result<crate::store::VolumeRecord, ControllerError> {
        self.live_source_in(self.store.as_ref(), id, require_detached)
            .await
    }

    /// [`Controller::live_source`], read from `store`.
    async fn live_source_in(
        &self,
        store: &dyn crate::store::Store,
        id: &str,
        require_detached: bool,
    ) -> Result<crate::store::VolumeRecord, ControllerError> {
        let v = store.get_volume(id).await?;
        check_source(id, v.as_ref(), require_detached)?;
        v.ok_or_else(|| ControllerError::NotFound(format!("source volume {id} not found")))
    }

    /// A concurrent call with the same name won the insert: answer as it
    /// will (read directly: the winner may be another process).
    async fn same_name_won(&self, req: &CreateSnapshot) -> Result<SnapshotRecord, ControllerError> {
        let winner = crate::store::direct(&self.store)
            .find_snapshot(&req.name)
            .await?;
        match winner {
            Some(r) if r.spec.source_volume_id == req.source_volume_id => {
                self.redispatch_and_wait(r).await
            }
            _ => Err(ControllerError::Aborted(format!(
                "snapshot {:?} is being created",
                req.name
            ))),
        }
    }

    /// An existing record of the same name and source: a failed cut is
    /// dispatched again (no new quota), then the current state is answered.
    async fn redispatch_and_wait(
        &self,
        existing: SnapshotRecord,
    ) -> Result<SnapshotRecord, ControllerError> {
        let mut current = existing;
        if current.status.life.is_failed_create() {
            let updated = self
                .store
                .modify_snapshot(
                    &current.name,
                    modify(|r: &mut SnapshotRecord| {
                        if r.status.life.is_failed_create() {
                            r.status
                                .life
                                .transition(SnapshotState::Creating)
                                .map_err(|e| refuse(ControllerError::Internal(e.to_string())))?;
                            r.status.life.progress = "0%".into();
                            r.status.life.clear_error();
                        }
                        Ok(())
                    }),
                )
                .await?;
            let Some(updated) = updated else {
                return Err(ControllerError::Aborted(format!(
                    "snapshot {} vanished; retry",
                    current.name
                )));
            };
            tracing::info!(snapshot = %updated.name, node = %updated.spec.node, "re-dispatching a failed snapshot (no new quota)");
            current = updated;
        }
        match current.status.life.status {
            SnapshotState::Deleting | SnapshotState::ErrorDeleting => Err(
                ControllerError::Aborted(format!("snapshot {} is being deleted", current.name)),
            ),
            _ => self.wait_created(current).await,
        }
    }

    /// Waits (bounded) for the node to cut the snapshot. Still `creating`
    /// at the deadline: answered with ready_to_use=false, and the CO asks again.
    async fn wait_created(
        &self,
        record: SnapshotRecord,
    ) -> Result<SnapshotRecord, ControllerError> {
        let id = record.name.clone();
        let store = self.store.as_ref();
        let done = wait::while_pending(
            store,
            Kind::Snapshot,
            &id,
            self.config.wait_timeout,
            || store.get_snapshot(&id),
            |r: &SnapshotRecord| r.status.life.status == SnapshotState::Creating,
        )
        .await?;
        let r =
            match done {
                Some(Some(r)) => r,
                Some(None) => {
                    return Err(ControllerError::NotFound(format!(
                        "snapshot {id} vanished while being created"
                    )));
                }
                None => {
                    return self.store.get_snapshot(&id).await?.ok_or_else(|| {
                        ControllerError::NotFound(format!("snapshot {id} vanished"))
                    });
                }
            };
        match r.status.life.status {
            SnapshotState::Error => Err(ControllerError::Recorded {
                code: r.status.life.error_code.unwrap_or(FailureCode::Internal),
                message: format!(
                    "snapshot {} failed on node {}: {}",
                    r.name,
                    r.spec.node,
                    r.status.life.error_message.clone().unwrap_or_default()
                ),
            }),
            _ => Ok(r),
        }
    }
}

/// The copy-on-write area of a thick snapshot of `volume` (None: thin).
pub(super) fn cow_size(volume: &crate::store::VolumeRecord, size: SnapshotSize) -> Option<i64> {
    let bytes = volume.spec.size_bytes;
    match (volume.spec.thin_pool.is_some(), size) {
        (true, _) => None,
        (false, SnapshotSize::Full) => Some(bytes),
        (false, SnapshotSize::Percent(n)) => {
            Some((bytes / 100).saturating_mul(i64::from(n)).max(1))
        }
        (false, SnapshotSize::Bytes(b)) => Some(i64::try_from(b).unwrap_or(i64::MAX)),
    }
}

impl Controller {
    #[tracing::instrument(skip_all, fields(snapshot = %id))]
    pub async fn delete_snapshot(&self, id: &str) -> Result<(), ControllerError> {
        params::check_name("snapshot_id", id)?;
        let Some(r) = self.store.get_snapshot(id).await? else {
            return Ok(()); // unknown: already gone (idempotent)
        };
        if r.status.life.deleted {
            return Ok(());
        }
        if let Some(group) = &r.spec.group_snapshot_id {
            // CSI lets a plugin refuse this; Cinder does ("must not be part
            // of a group"): the members go together, with the group.
            return Err(ControllerError::FailedPrecondition(format!(
                "snapshot {id} is a member of group snapshot {group}: delete the group snapshot (DeleteVolumeGroupSnapshot)"
            )));
        }
        let readers = self.readers_of(&r.spec.node, id).await?;
        if !readers.is_empty() {
            return Err(ControllerError::FailedPrecondition(format!(
                "snapshot {id} is busy: volume {} is being restored from it",
                readers.join(", ")
            )));
        }
        self.delete_tracked(r, id, |r: &SnapshotRecord| {
            (r.status.life.status == SnapshotState::Creating).then(|| {
                ControllerError::Aborted(format!("snapshot {} is still being created", r.name))
            })
        })
        .await
    }
}
