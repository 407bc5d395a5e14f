//! CreateSnapshot, DeleteSnapshot, ListSnapshots, GetSnapshot with Cinder's
//! semantics (cinder-semantics §1, §2, §6): validate, idempotency by name,
//! source checks, reserve, record `creating`/`0%`, re-check the source,
//! commit, dispatch (the record itself), wait on the node, bounded.
use std::collections::HashMap;

use super::params::{self, SnapshotParams, SnapshotSize};
use super::{Controller, ControllerError, now_rfc3339, record_id, wait};
use crate::lvm::LvName;
use crate::quota::gib_ceil;
use crate::records::{LvmSnapshotSpec, LvmSnapshotStatus, SnapshotState, VolumeState};
use crate::store::{Kind, Record, SnapshotFilter, SnapshotRecord};

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
    #[tracing::instrument(skip_all, fields(name = %req.name, source = %req.source_volume_id))]
    pub async fn create_snapshot(
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

        // Idempotency by name.
        if let Some(existing) = self.store.find_snapshot(&req.name).await? {
            if existing.spec.source_volume_id != req.source_volume_id {
                return Err(ControllerError::AlreadyExists(format!(
                    "snapshot {:?} already exists for volume {}",
                    req.name, existing.spec.source_volume_id
                )));
            }
            return self.redispatch_and_wait(existing).await;
        }

        let volume = self
            .live_source(&req.source_volume_id, p.require_detached)
            .await?;
        let id = record_id("snapshot", &req.name);
        // A soft-deleted record of the same name holds the id: it goes now.
        if let Some(old) = self.store.get_snapshot(&id).await?
            && old.status.deleted
        {
            self.store.purge_snapshot(&id).await?;
        }
        let volume_size = gib_ceil(volume.spec.size_bytes);
        let deltas = self
            .quota
            .snapshot_deltas(&volume.spec.volume_type, volume_size, 1);
        let reservations = self.quota.reserve(&project, &deltas).await?;
        self.config
            .failpoint(super::Failpoint::SnapshotAfterReserve);

        let thin = volume.spec.thin_pool.is_some();
        let cow = match (thin, p.size) {
            (true, _) => None,
            (false, SnapshotSize::Full) => Some(volume.spec.size_bytes),
            (false, SnapshotSize::Percent(n)) => Some(
                (volume.spec.size_bytes / 100)
                    .saturating_mul(i64::from(n))
                    .max(1),
            ),
            (false, SnapshotSize::Bytes(b)) => Some(i64::try_from(b).unwrap_or(i64::MAX)),
        };
        let uuid =
            uuid::Uuid::parse_str(&id).map_err(|e| ControllerError::Internal(e.to_string()))?;
        let record: SnapshotRecord = Record::new(
            id.clone(),
            LvmSnapshotSpec {
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
                node: volume.spec.node.clone(),
                vg: volume.spec.vg.clone(),
                lv_name: LvName::snapshot(uuid).as_str().to_string(),
                group_snapshot_id: None,
                quota_charged: deltas.clone(),
                quota_reservations: reservations.clone(),
            },
            LvmSnapshotStatus {
                status: SnapshotState::Creating,
                progress: "0%".into(),
                creation_time: now_rfc3339(),
                size_bytes: volume.spec.size_bytes,
                ..Default::default()
            },
        );
        // Record, re-check the source (Cinder Queens' race fix), commit; any
        // failure in between undoes the record and the reservation.
        let created = match self.store.create_snapshot(&record).await {
            Ok(r) => r,
            Err(e) => {
                self.quota.rollback(&project, &reservations).await?;
                if matches!(e, crate::store::StoreError::AlreadyExists { .. }) {
                    // A concurrent call with the same name won: answer as it will.
                    return match self.store.find_snapshot(&req.name).await? {
                        Some(r) if r.spec.source_volume_id == req.source_volume_id => {
                            self.redispatch_and_wait(r).await
                        }
                        _ => Err(ControllerError::Aborted(format!(
                            "snapshot {:?} is being created",
                            req.name
                        ))),
                    };
                }
                return Err(e.into());
            }
        };
        self.config.failpoint(super::Failpoint::SnapshotAfterRecord);
        let recheck = self
            .live_source(&req.source_volume_id, p.require_detached)
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

    /// The source volume, checked as Cinder's `create_snapshot_in_db`.
    async fn live_source(
        &self,
        id: &str,
        require_detached: bool,
    ) -> Result<crate::store::VolumeRecord, ControllerError> {
        let v = match self.store.get_volume(id).await? {
            Some(v) if !v.status.deleted => v,
            _ => {
                return Err(ControllerError::NotFound(format!(
                    "source volume {id} not found"
                )));
            }
        };
        match v.status.status {
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
        Ok(v)
    }

    /// An existing record of the same name and source: a failed one is
    /// dispatched again (no new quota), then the current state is answered.
    async fn redispatch_and_wait(
        &self,
        mut existing: SnapshotRecord,
    ) -> Result<SnapshotRecord, ControllerError> {
        if existing.status.status == SnapshotState::Error {
            existing.status.status = SnapshotState::Error
                .transition(SnapshotState::Creating)
                .map_err(|e| ControllerError::Internal(e.to_string()))?;
            existing.status.progress = "0%".into();
            existing.status.error_code = None;
            existing.status.error_message = None;
            existing = self.store.update_snapshot(&existing).await?;
            tracing::info!(snapshot = %existing.name, "re-dispatching a failed snapshot");
        }
        match existing.status.status {
            SnapshotState::Deleting | SnapshotState::ErrorDeleting => Err(
                ControllerError::Aborted(format!("snapshot {} is being deleted", existing.name)),
            ),
            _ => self.wait_created(existing).await,
        }
    }

    /// Waits (bounded) for the node to cut the snapshot. Still `creating`
    /// at the deadline: answered with ready_to_use=false, and the CO asks again.
    async fn wait_created(
        &self,
        record: SnapshotRecord,
    ) -> Result<SnapshotRecord, ControllerError> {
        let id = record.name.clone();
        let store = self.store.clone();
        let done = wait::until(
            self.store.as_ref(),
            Kind::Snapshot,
            &id,
            self.config.wait_timeout,
            || {
                let (store, id) = (store.clone(), id.clone());
                async move {
                    let r = store.get_snapshot(&id).await?;
                    Ok(match r {
                        Some(r) if r.status.status != SnapshotState::Creating => Some(r),
                        Some(_) => None,
                        None => Some(record_gone(&id)?),
                    })
                }
            },
        )
        .await?;
        let r =
            match done {
                Some(r) => r,
                None => {
                    return self.store.get_snapshot(&id).await?.ok_or_else(|| {
                        ControllerError::NotFound(format!("snapshot {id} vanished"))
                    });
                }
            };
        match r.status.status {
            SnapshotState::Error => Err(ControllerError::Recorded {
                code: r
                    .status
                    .error_code
                    .clone()
                    .unwrap_or_else(|| "INTERNAL".into()),
                message: format!(
                    "snapshot {} failed on node {}: {}",
                    r.name,
                    r.spec.node,
                    r.status.error_message.clone().unwrap_or_default()
                ),
            }),
            _ => Ok(r),
        }
    }

    #[tracing::instrument(skip_all, fields(snapshot = %id))]
    pub async fn delete_snapshot(&self, id: &str) -> Result<(), ControllerError> {
        params::check_name("snapshot_id", id)?;
        let Some(mut r) = self.store.get_snapshot(id).await? else {
            return Ok(()); // unknown: already gone (idempotent)
        };
        if r.status.deleted {
            return Ok(());
        }
        if r.spec.group_snapshot_id.is_some() {
            return Err(ControllerError::Invalid(format!(
                "snapshot {id} belongs to a group snapshot; delete the group"
            )));
        }
        let readers = self.readers_of(&r.spec.node, id).await?;
        if !readers.is_empty() {
            return Err(ControllerError::FailedPrecondition(format!(
                "snapshot {id} is busy: volume {} is being restored from it",
                readers.join(", ")
            )));
        }
        match r.status.status {
            SnapshotState::Creating => {
                return Err(ControllerError::Aborted(format!(
                    "snapshot {id} is still being created"
                )));
            }
            SnapshotState::Available | SnapshotState::Error | SnapshotState::ErrorDeleting => {
                r.status.status = r
                    .status
                    .status
                    .transition(SnapshotState::Deleting)
                    .map_err(|e| ControllerError::Internal(e.to_string()))?;
                r.status.error_code = None;
                r.status.error_message = None;
                self.store.update_snapshot(&r).await?;
            }
            SnapshotState::Deleting | SnapshotState::Deleted => {}
        }
        let done = wait::while_pending(
            self.store.as_ref(),
            Kind::Snapshot,
            id,
            self.config.wait_timeout,
            || self.store.get_snapshot(id),
            |r: &SnapshotRecord| !r.status.deleted && r.status.status == SnapshotState::Deleting,
        )
        .await?;
        match done {
            None => Err(ControllerError::Aborted(format!(
                "snapshot {id} is still being deleted"
            ))),
            Some(None) => Ok(()),
            Some(Some(r)) if r.status.deleted => Ok(()),
            Some(Some(r)) if r.status.status == SnapshotState::Available => {
                Err(ControllerError::FailedPrecondition(format!(
                    "snapshot {id} is busy: {}",
                    r.status.error_message.unwrap_or_default()
                )))
            }
            Some(Some(r)) => Err(ControllerError::Recorded {
                code: r.status.error_code.unwrap_or_else(|| "INTERNAL".into()),
                message: format!(
                    "deleting snapshot {id} failed: {}",
                    r.status.error_message.unwrap_or_default()
                ),
            }),
        }
    }

    /// A page of cut (available) snapshots in id order; `starting_token` is
    /// the last id of the previous page.
    pub async fn list_snapshots(
        &self,
        snapshot_id: &str,
        source_volume_id: &str,
        max_entries: i32,
        starting_token: &str,
    ) -> Result<SnapshotPage, ControllerError> {
        if max_entries < 0 {
            return Err(ControllerError::Invalid(
                "max_entries must not be negative".into(),
            ));
        }
        if !starting_token.is_empty() && uuid::Uuid::parse_str(starting_token).is_err() {
            return Err(ControllerError::Aborted(format!(
                "invalid starting_token {starting_token:?}"
            )));
        }
        let ready =
            |r: &SnapshotRecord| r.status.status == SnapshotState::Available && !r.status.deleted;
        if !snapshot_id.is_empty() {
            let found = self.store.get_snapshot(snapshot_id).await?;
            let entries = found
                .filter(|r| {
                    ready(r)
                        && (source_volume_id.is_empty()
                            || r.spec.source_volume_id == source_volume_id)
                })
                .into_iter()
                .collect();
            return Ok(SnapshotPage {
                entries,
                next_token: String::new(),
            });
        }
        let filter = SnapshotFilter {
            source_volume_id: (!source_volume_id.is_empty()).then(|| source_volume_id.to_string()),
            ..Default::default()
        };
        let want = if max_entries == 0 {
            usize::MAX
        } else {
            max_entries as usize
        };
        let mut entries = Vec::new();
        let mut after = (!starting_token.is_empty()).then(|| starting_token.to_string());
        let mut more = false;
        loop {
            let page = self
                .store
                .list_snapshots(&filter, after.as_deref(), 500)
                .await?;
            let exhausted = page.len() < 500;
            after = page.last().map(|r| r.name.clone());
            for r in page.into_iter().filter(|r| ready(r)) {
                if entries.len() == want {
                    more = true;
                    break;
                }
                entries.push(r);
            }
            if more || exhausted {
                break;
            }
        }
        let next_token = if more {
            entries.last().map(|r| r.name.clone()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(SnapshotPage {
            entries,
            next_token,
        })
    }

    /// GetSnapshot: NOT_FOUND for unknown or deleted ids.
    pub async fn get_snapshot(&self, id: &str) -> Result<SnapshotRecord, ControllerError> {
        params::check_name("snapshot_id", id)?;
        match self.store.get_snapshot(id).await? {
            Some(r) if !r.status.deleted => Ok(r),
            _ => Err(ControllerError::NotFound(format!(
                "snapshot {id} not found"
            ))),
        }
    }
}

fn record_gone(id: &str) -> Result<SnapshotRecord, ControllerError> {
    Err(ControllerError::NotFound(format!(
        "snapshot {id} vanished while being created"
    )))
}
