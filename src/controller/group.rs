//! CreateVolumeGroupSnapshot: one point in time across several volumes of
//! one node. All or nothing: ONE reservation for every member (`snapshots:
//! n`, `gigabytes: Σ sizes`, per-type keys), the group record (claiming it),
//! the member snapshot records, a re-check of the sources, ONE commit, then
//! the group is dispatched and its node freezes, cuts and thaws the members
//! together. Any failure before the dispatch undoes every record and the
//! reservation; a failure on the node rolls back every member (LVs removed,
//! quota released) and records the group `error`. Idempotent by name: the
//! same name with the same volumes answers the group's state (a failed one
//! is tried again, a half-written one is finished), other volumes are
//! ALREADY_EXISTS.
use std::collections::{BTreeSet, HashMap};

use super::group_members::sum_charged;
use super::group_params::{GROUP_SNAPSHOT_NAMESPACE, GroupParams};
use super::{Controller, ControllerError, params, record_id, refuse};
use crate::failpoint::points;
use crate::quota::release_key;
use crate::records::{Lifecycle, LvsGroupSnapshotSpec, LvsGroupSnapshotStatus, SnapshotState};
use crate::store::{GroupSnapshotRecord, Kind, Record, SnapshotRecord, StoreError, modify};

/// A parsed CreateVolumeGroupSnapshot request.
#[derive(Debug, Clone)]
pub struct CreateGroupSnapshot {
    pub name: String,
    pub source_volume_ids: Vec<String>,
    pub parameters: HashMap<String, String>,
}

/// A group snapshot and its members, in the group's order.
#[derive(Debug, Clone)]
pub struct GroupSnapshot {
    pub group: GroupSnapshotRecord,
    pub members: Vec<SnapshotRecord>,
}

impl Controller {
    #[tracing::instrument(skip_all, fields(name = %req.name, members = req.source_volume_ids.len()))]
    pub async fn create_group_snapshot(
        &self,
        req: CreateGroupSnapshot,
    ) -> Result<GroupSnapshot, ControllerError> {
        params::check_name("name", &req.name)?;
        if req.source_volume_ids.is_empty() {
            return Err(ControllerError::Invalid(
                "source_volume_ids are required: a group snapshot needs at least one volume".into(),
            ));
        }
        let mut seen = BTreeSet::new();
        for id in &req.source_volume_ids {
            params::check_name("source_volume_ids", id)?;
            if !seen.insert(id.as_str()) {
                return Err(ControllerError::Invalid(format!(
                    "source_volume_ids names volume {id} twice"
                )));
            }
        }
        params::check_map("parameters", &req.parameters)?;
        let p = GroupParams::parse(&req.parameters)?;
        let project = params::project(
            &req.parameters,
            GROUP_SNAPSHOT_NAMESPACE,
            &self.config.default_project,
        )?;

        if let Some(existing) = self.store.find_group_snapshot(&req.name).await? {
            let theirs: BTreeSet<&str> = existing
                .spec
                .source_volume_ids
                .iter()
                .map(String::as_str)
                .collect();
            if theirs != seen {
                return Err(ControllerError::AlreadyExists(format!(
                    "group snapshot {:?} already exists for volumes {}",
                    req.name,
                    existing.spec.source_volume_ids.join(", ")
                )));
            }
            return self.resume_group(existing, &p).await;
        }

        let volumes = self.group_sources(&req.source_volume_ids, &p).await?;
        let id = record_id("groupsnapshot", &req.name);
        // A soft-deleted group of the same name holds the id: it goes now.
        if let Some(old) = self.store.get_group_snapshot(&id).await?
            && old.status.life.deleted
        {
            self.store.purge_group_snapshot(&id).await?;
        }
        let members = self.member_records(&id, &project, &volumes, &p)?;
        let total = sum_charged(&members);
        let reservations = self.quota.reserve(&project, &total).await?;
        self.failpoints.hit(points::GROUP_AFTER_RESERVE)?;
        let record: GroupSnapshotRecord = Record::new(
            id.clone(),
            LvsGroupSnapshotSpec {
                id: id.clone(),
                csi_name: req.name.clone(),
                project: project.clone(),
                display_name: p.display_name.clone().unwrap_or_else(|| req.name.clone()),
                node: volumes[0].spec.node.clone(),
                vg: volumes[0].spec.vg.clone(),
                source_volume_ids: req.source_volume_ids.clone(),
                snapshot_ids: members.iter().map(|m| m.name.clone()).collect(),
                consistency: p.consistency,
                freeze_timeout_millis: i64::try_from(p.freeze_timeout.as_millis())
                    .unwrap_or(i64::MAX),
                quota_charged: total,
                quota_reservations: reservations.clone(),
            },
            LvsGroupSnapshotStatus {
                life: Lifecycle::creating(),
                ..Default::default()
            },
        );
        if let Err(e) = self.store.insert_group_snapshot(&record).await {
            self.quota.rollback(&project, &reservations).await?;
            if matches!(e, StoreError::AlreadyExists { .. }) {
                // A concurrent call with the same name won: answer as it will.
                return match self.store.find_group_snapshot(&req.name).await? {
                    Some(g) => self.resume_group(g, &p).await,
                    None => Err(ControllerError::Aborted(format!(
                        "group snapshot {:?} is being created",
                        req.name
                    ))),
                };
            }
            return Err(e.into());
        }
        self.write_and_dispatch(&record, members, &p).await
    }

    /// An existing group of this name and these volumes: a failed one is
    /// cut again (a new reservation: its quota went back when it failed), a
    /// half-written one (the controller stopped before dispatching it) is
    /// finished, any other is waited on.
    async fn resume_group(
        &self,
        g: GroupSnapshotRecord,
        p: &GroupParams,
    ) -> Result<GroupSnapshot, ControllerError> {
        match g.status.life.status {
            SnapshotState::Deleting | SnapshotState::ErrorDeleting => {
                return Err(ControllerError::Aborted(format!(
                    "group snapshot {} is being deleted",
                    g.name
                )));
            }
            _ if g.status.life.is_failed_create() => return self.recreate_group(g, p).await,
            SnapshotState::Creating if !g.status.dispatched => {
                let members = match self.group_sources(&g.spec.source_volume_ids, p).await {
                    Ok(volumes) => self.member_records(&g.name, &g.spec.project, &volumes, p)?,
                    Err(e) => {
                        self.undo_group(&g).await?;
                        return Err(e);
                    }
                };
                if sum_charged(&members) != g.spec.quota_charged {
                    // A member volume changed size since the reservation.
                    self.undo_group(&g).await?;
                    return Err(ControllerError::Aborted(format!(
                        "group snapshot {} was not finished and its volumes changed since; retry",
                        g.name
                    )));
                }
                tracing::info!(group = %g.name, "finishing a group snapshot its creator did not dispatch");
                return self.write_and_dispatch(&g, members, p).await;
            }
            _ => {}
        }
        self.wait_group(&g.name).await
    }

    /// A failed group asked for again: its members were rolled back (LVs
    /// removed, quota released, records soft-deleted); new ones are written
    /// under a new reservation and the group goes back to `creating`.
    async fn recreate_group(
        &self,
        g: GroupSnapshotRecord,
        p: &GroupParams,
    ) -> Result<GroupSnapshot, ControllerError> {
        let volumes = self.group_sources(&g.spec.source_volume_ids, p).await?;
        let members = self.member_records(&g.name, &g.spec.project, &volumes, p)?;
        let total = sum_charged(&members);
        let reservations = self.quota.reserve(&g.spec.project, &total).await?;
        let (claim, charged) = (reservations.clone(), total.clone());
        let updated = self
            .store
            .modify_group_snapshot(
                &g.name,
                modify(move |r: &mut GroupSnapshotRecord| {
                    if !r.status.life.is_failed_create() {
                        return Err(refuse(ControllerError::Aborted(format!(
                            "group snapshot {} changed meanwhile; retry",
                            r.name
                        ))));
                    }
                    r.status
                        .life
                        .transition(SnapshotState::Creating)
                        .map_err(|e| refuse(ControllerError::Internal(e.to_string())))?;
                    r.status.life.progress = "0%".into();
                    r.status.life.clear_error();
                    r.status.dispatched = false;
                    r.status.members_cut = false;
                    r.status.frozen_millis = None;
                    r.spec.quota_reservations = claim.clone();
                    r.spec.quota_charged = charged.clone();
                    Ok(())
                }),
            )
            .await;
        let updated = match updated {
            Ok(Some(r)) => r,
            Ok(None) => {
                self.quota.rollback(&g.spec.project, &reservations).await?;
                return Err(ControllerError::Aborted(format!(
                    "group snapshot {} vanished; retry",
                    g.name
                )));
            }
            Err(e) => {
                self.quota.rollback(&g.spec.project, &reservations).await?;
                return Err(e.into());
            }
        };
        tracing::info!(group = %g.name, "cutting a failed group snapshot again (a new reservation)");
        self.write_and_dispatch(&updated, members, p).await
    }

    /// Writes the member records (replacing soft-deleted ones of the same
    /// id), re-checks the sources, commits the group's reservation once and
    /// dispatches the group; any failure undoes the members, the group and
    /// the reservation.
    async fn write_and_dispatch(
        &self,
        g: &GroupSnapshotRecord,
        members: Vec<SnapshotRecord>,
        p: &GroupParams,
    ) -> Result<GroupSnapshot, ControllerError> {
        let (project, reservations) = (&g.spec.project, &g.spec.quota_reservations);
        let written = async {
            for m in &members {
                self.insert_member(m).await?;
            }
            self.failpoints.hit(points::GROUP_AFTER_RECORD)?;
            self.group_sources(&g.spec.source_volume_ids, p).await?;
            self.quota.commit(project, reservations).await?;
            Ok::<(), ControllerError>(())
        }
        .await;
        if let Err(e) = written {
            if !matches!(e, ControllerError::Halted(_))
                && let Err(undo) = self.undo_group(g).await
            {
                tracing::error!(group = %g.name, error = %undo, "cannot undo a group snapshot that failed before dispatch; the next ask or the sweep settles it");
            }
            return Err(e);
        }
        self.store
            .modify_group_snapshot(
                &g.name,
                modify(|r: &mut GroupSnapshotRecord| {
                    r.status.dispatched = true;
                    Ok(())
                }),
            )
            .await?;
        tracing::info!(group = %g.name, node = %g.spec.node, members = members.len(), consistency = g.spec.consistency.as_str(), "group snapshot dispatched to its node");
        self.wait_group(&g.name).await
    }

    /// Undoes a group that was never dispatched (so nothing was cut):
    /// its member records and itself go, and its reservation is rolled back
    /// or, if an earlier attempt already committed it, released (once).
    async fn undo_group(&self, g: &GroupSnapshotRecord) -> Result<(), ControllerError> {
        let project = &g.spec.project;
        let ids = &g.spec.quota_reservations;
        let pending = self.quota.pending(project, ids).await?;
        let key = release_key(Kind::GroupSnapshot, &g.name);
        if !pending {
            self.quota
                .release_once(project, &key, &g.spec.quota_charged)
                .await?;
        }
        for id in &g.spec.snapshot_ids {
            self.store.purge_snapshot(id).await?;
        }
        self.store.purge_group_snapshot(&g.name).await?;
        if pending {
            self.quota.rollback(project, ids).await?;
        } else {
            self.quota.forget_release(project, &key).await?;
        }
        tracing::warn!(group = %g.name, committed = !pending, "group snapshot undone before dispatch: records removed, quota returned");
        Ok(())
    }

    /// Inserts member `m`; one already there (a half-written group being
    /// finished) is kept; a soft-deleted one of the same id is replaced.
    async fn insert_member(&self, m: &SnapshotRecord) -> Result<(), ControllerError> {
        if let Some(old) = self.store.get_snapshot(&m.name).await? {
            if !old.status.life.deleted {
                return Ok(());
            }
            let key = release_key(Kind::Snapshot, &m.name);
            self.quota.forget_release(&old.spec.project, &key).await?;
            self.store.purge_snapshot(&m.name).await?;
        }
        self.store.insert_snapshot(m).await?;
        Ok(())
    }
}
