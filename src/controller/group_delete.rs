//! DeleteVolumeGroupSnapshot and GetVolumeGroupSnapshot, and the bounded
//! wait on a group's node. A group goes as one: every member goes
//! `deleting` (its node removes the LV and releases its part of the quota,
//! as for any snapshot), then the group, which the node marks deleted once
//! every member is. A member being read by a restore refuses the whole
//! delete (FAILED_PRECONDITION), as a single snapshot's would.
use std::collections::BTreeSet;

use super::group::GroupSnapshot;
use super::nodes::{NodeHealth, stale_message};
use super::{Controller, ControllerError, params, refuse, wait};
use crate::records::{FailureCode, SnapshotState};
use crate::store::{GroupSnapshotRecord, Kind, SnapshotRecord, modify};

impl Controller {
    #[tracing::instrument(skip_all, fields(group = %id))]
    pub async fn delete_group_snapshot(
        &self,
        id: &str,
        snapshot_ids: &[String],
    ) -> Result<(), ControllerError> {
        params::check_name("group_snapshot_id", id)?;
        let Some(g) = self.store.get_group_snapshot(id).await? else {
            return Ok(()); // unknown: already gone (idempotent)
        };
        if g.status.life.deleted {
            return Ok(());
        }
        check_members(&g, snapshot_ids)?;
        if g.status.life.status == SnapshotState::Creating {
            return Err(ControllerError::Aborted(format!(
                "group snapshot {id} is still being created"
            )));
        }
        let members = self.live_members(&g).await?;
        for m in &members {
            let readers = self.readers_of(&m.spec.node, &m.name).await?;
            if !readers.is_empty() {
                return Err(ControllerError::FailedPrecondition(format!(
                    "group snapshot {id} is busy: volume {} is being restored from its member {}",
                    readers.join(", "),
                    m.name
                )));
            }
        }
        let node = g.spec.node.clone();
        match self.node_health(&node).await {
            NodeHealth::Gone => {
                for m in &members {
                    self.abandon(m, &m.name).await?;
                }
                self.mark_group(id, |r| r.status.life.mark_deleted())
                    .await?;
                return Ok(());
            }
            NodeHealth::Stale { last_heartbeat } => {
                self.mark_group_deleting(&g, &members).await?;
                return Err(ControllerError::Unavailable(stale_message(
                    &node,
                    &last_heartbeat,
                    &format!("group snapshot {id} is deleted"),
                )));
            }
            NodeHealth::Live => {}
        }
        self.mark_group_deleting(&g, &members).await?;
        let store = self.store.as_ref();
        let done = wait::while_pending(
            store,
            Kind::GroupSnapshot,
            id,
            self.config.wait_timeout,
            || store.get_group_snapshot(id),
            |r: &GroupSnapshotRecord| {
                !r.status.life.deleted && r.status.life.status == SnapshotState::Deleting
            },
        )
        .await?;
        match done {
            None => Err(ControllerError::Aborted(format!(
                "group snapshot {id} is still being deleted"
            ))),
            Some(None) => Ok(()),
            Some(Some(r)) if r.status.life.deleted => Ok(()),
            Some(Some(r)) => Err(ControllerError::Recorded {
                code: r.status.life.error_code.unwrap_or(FailureCode::Internal),
                message: format!(
                    "deleting group snapshot {id} failed: {}",
                    r.status.life.error_message.clone().unwrap_or_default()
                ),
            }),
        }
    }

    /// Every live member `deleting` first, then the group: the node, seeing
    /// the group `deleting`, finds its members on their way already.
    async fn mark_group_deleting(
        &self,
        g: &GroupSnapshotRecord,
        members: &[SnapshotRecord],
    ) -> Result<(), ControllerError> {
        for m in members {
            self.mark_deleting::<SnapshotRecord>(&m.name, |_| None)
                .await?;
        }
        self.mark_group(&g.name, |r| {
            if r.status.life.status != SnapshotState::Deleting {
                r.status.life.status = SnapshotState::Deleting;
                r.status.life.clear_error();
            }
        })
        .await
    }

    async fn mark_group(
        &self,
        id: &str,
        f: fn(&mut GroupSnapshotRecord),
    ) -> Result<(), ControllerError> {
        self.store
            .modify_group_snapshot(
                id,
                modify(move |r: &mut GroupSnapshotRecord| {
                    if r.status.life.deleted {
                        return Ok(());
                    }
                    if r.status.life.status == SnapshotState::Creating {
                        return Err(refuse(ControllerError::Aborted(format!(
                            "group snapshot {} is still being created",
                            r.name
                        ))));
                    }
                    f(r);
                    Ok(())
                }),
            )
            .await?;
        Ok(())
    }

    /// GetVolumeGroupSnapshot: NOT_FOUND for unknown or deleted ids.
    pub async fn get_group_snapshot(
        &self,
        id: &str,
        snapshot_ids: &[String],
    ) -> Result<GroupSnapshot, ControllerError> {
        params::check_name("group_snapshot_id", id)?;
        let g = match self.store.get_group_snapshot(id).await? {
            Some(g) if !g.status.life.deleted => g,
            _ => {
                return Err(ControllerError::NotFound(format!(
                    "group snapshot {id} not found"
                )));
            }
        };
        check_members(&g, snapshot_ids)?;
        let members = self.live_members(&g).await?;
        Ok(GroupSnapshot { group: g, members })
    }

    /// The group's member records that are not deleted, in its order.
    async fn live_members(
        &self,
        g: &GroupSnapshotRecord,
    ) -> Result<Vec<SnapshotRecord>, ControllerError> {
        let mut out = Vec::with_capacity(g.spec.snapshot_ids.len());
        for id in &g.spec.snapshot_ids {
            if let Some(m) = self.store.get_snapshot(id).await?
                && !m.status.life.deleted
            {
                out.push(m);
            }
        }
        Ok(out)
    }

    /// Waits (bounded) for the node to cut the group. Still `creating` at
    /// the deadline: answered with ready_to_use=false, the CO asks again.
    pub(super) async fn wait_group(&self, id: &str) -> Result<GroupSnapshot, ControllerError> {
        let store = self.store.as_ref();
        let done = wait::while_pending(
            store,
            Kind::GroupSnapshot,
            id,
            self.config.wait_timeout,
            || store.get_group_snapshot(id),
            |r: &GroupSnapshotRecord| r.status.life.status == SnapshotState::Creating,
        )
        .await?;
        let vanished = || {
            ControllerError::NotFound(format!("group snapshot {id} vanished while being created"))
        };
        let g = match done {
            Some(Some(g)) => g,
            Some(None) => return Err(vanished()),
            None => self
                .store
                .get_group_snapshot(id)
                .await?
                .ok_or_else(vanished)?,
        };
        if g.status.life.status == SnapshotState::Error {
            return Err(ControllerError::Recorded {
                code: g.status.life.error_code.unwrap_or(FailureCode::Internal),
                message: format!(
                    "group snapshot {} failed on node {}: {}",
                    g.name,
                    g.spec.node,
                    g.status.life.error_message.clone().unwrap_or_default()
                ),
            });
        }
        let members = self.live_members(&g).await?;
        Ok(GroupSnapshot { group: g, members })
    }
}

/// CSI: `snapshot_ids`, when given, must be exactly the group's members.
fn check_members(g: &GroupSnapshotRecord, snapshot_ids: &[String]) -> Result<(), ControllerError> {
    if snapshot_ids.is_empty() {
        return Ok(());
    }
    let asked: BTreeSet<&String> = snapshot_ids.iter().collect();
    let theirs: BTreeSet<&String> = g.spec.snapshot_ids.iter().collect();
    if asked != theirs {
        return Err(ControllerError::Invalid(format!(
            "snapshot_ids do not match the members of group snapshot {}: it has {}",
            g.name,
            g.spec.snapshot_ids.join(", ")
        )));
    }
    Ok(())
}
