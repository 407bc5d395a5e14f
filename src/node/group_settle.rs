//! What the executor does for group snapshots around the cut itself: the
//! freeze record (written before freezing), the thaw of whatever a group
//! record says is frozen (on every start, and before any other work on that
//! group), the records after a cut (members, then the group) or after a
//! failed one (every member rolled back), and the group delete.
use super::Failure;
use super::executor::{Executor, WorkError};
use crate::lvm::LvName;
use crate::records::{FailureCode, Operation, SnapshotState};
use crate::store::{
    GroupSnapshotFilter, GroupSnapshotRecord, Kind, Phase, SnapshotRecord, StoreError, Tracked,
    modify,
};

impl Executor {
    /// Records the origins (`vg/lv`) about to be frozen.
    pub(super) async fn set_frozen(&self, id: &str, names: Vec<String>) -> Result<(), StoreError> {
        self.store
            .modify_group_snapshot(
                id,
                modify(move |r: &mut GroupSnapshotRecord| {
                    r.status.frozen = names.clone();
                    Ok(())
                }),
            )
            .await
            .map(|_| ())
    }

    /// Thaws every origin group `g` says is frozen and records what is left
    /// frozen (nothing, unless a thaw failed).
    pub(super) async fn thaw_group(&self, g: &GroupSnapshotRecord) -> Result<(), WorkError> {
        let mut left = Vec::new();
        for held in &g.status.frozen {
            let parsed = held
                .split_once('/')
                .and_then(|(vg, lv)| LvName::new(lv).ok().map(|lv| (vg, lv)));
            let Some((vg, lv)) = parsed else {
                tracing::error!(group = %g.name, entry = %held, "not a vg/lv entry; dropped from the freeze record");
                continue;
            };
            if let Err(e) = self.lvm.resume(vg, &lv).await {
                tracing::error!(group = %g.name, lv = %held, error = %e, "cannot thaw");
                left.push(held.clone());
            }
        }
        let note = format!(
            "thawed {} of {} origins a group cut left frozen",
            g.status.frozen.len() - left.len(),
            g.status.frozen.len()
        );
        let kept = left.clone();
        self.store
            .modify_group_snapshot(
                &g.name,
                modify(move |r: &mut GroupSnapshotRecord| {
                    r.status.frozen = kept.clone();
                    Ok(())
                }),
            )
            .await?;
        self.notify(Kind::GroupSnapshot, &g.name, Phase::Thawed, note)
            .await;
        Ok(())
    }

    /// On start: thaws whatever this node's group records say it froze (a
    /// node that died mid-cut). An error: the records could not be read;
    /// the caller retries before doing anything else.
    pub async fn thaw_leftovers(&self) -> Result<usize, WorkError> {
        let filter = GroupSnapshotFilter {
            node: Some(self.settings.node_id.clone()),
            include_deleted: true,
            ..Default::default()
        };
        let groups = self
            .store
            .list_group_snapshots(&filter, None, usize::MAX)
            .await?;
        let mut thawed = 0;
        for g in groups.iter().filter(|g| !g.status.frozen.is_empty()) {
            self.thaw_group(g).await?;
            thawed += 1;
        }
        Ok(thawed)
    }

    /// A `deleting` group: each `deleting` member is deleted (its LV
    /// removed, its quota released), then the group is, once every member
    /// is; a member whose delete failed fails the group's (`error_deleting`,
    /// asked again by the CO).
    pub(super) async fn settle_group_delete(
        &self,
        g: &GroupSnapshotRecord,
    ) -> Result<(), WorkError> {
        for id in &g.spec.snapshot_ids {
            if let Some(m) = self.store.get_snapshot(id).await?
                && !m.status.life.deleted
                && m.status.life.status == SnapshotState::Deleting
            {
                self.delete_record(m, id).await?;
            }
        }
        let mut failed = None;
        for id in &g.spec.snapshot_ids {
            let Some(m) = self.store.get_snapshot(id).await? else {
                continue;
            };
            match m.status.life.status {
                _ if m.status.life.deleted => {}
                SnapshotState::Deleting | SnapshotState::Creating => return Ok(()),
                other => {
                    let why = m.status.life.error_message.clone().unwrap_or_default();
                    failed = Some((
                        m.status.life.error_code.unwrap_or(FailureCode::Internal),
                        format!("member {id} is {}: {why}", other.as_str()),
                    ));
                }
            }
        }
        let (phase, note) = match &failed {
            None => (Phase::DeleteEnd, "every member deleted".to_string()),
            Some((code, why)) => (Phase::DeleteError, format!("{code}: {why}")),
        };
        self.store
            .modify_group_snapshot(
                &g.name,
                modify(move |r: &mut GroupSnapshotRecord| {
                    if r.status.life.deleted || r.status.life.status != SnapshotState::Deleting {
                        return Ok(());
                    }
                    match &failed {
                        None => r.status.life.mark_deleted(),
                        Some((code, why)) => {
                            r.status.life.status = SnapshotState::ErrorDeleting;
                            r.status.life.fail(Operation::Delete, *code, why.clone());
                        }
                    }
                    Ok(())
                }),
            )
            .await?;
        self.notify(Kind::GroupSnapshot, &g.name, phase, note).await;
        Ok(())
    }

    /// Every member LV is cut: the members become `available`, then the group.
    pub(super) async fn complete_group(
        &self,
        g: &GroupSnapshotRecord,
        members: &[SnapshotRecord],
        sizes: &[Option<i64>],
    ) -> Result<(), WorkError> {
        for (i, m) in members.iter().enumerate() {
            let size = sizes.get(i).copied().flatten();
            self.store
                .modify_snapshot(
                    &m.name,
                    modify(move |r: &mut SnapshotRecord| {
                        if r.status.life.status == SnapshotState::Creating && !r.status.life.deleted
                        {
                            r.set_available();
                            if let Some(size) = size {
                                r.status.size_bytes = size;
                            }
                        }
                        Ok(())
                    }),
                )
                .await?;
        }
        self.store
            .modify_group_snapshot(
                &g.name,
                modify(|r: &mut GroupSnapshotRecord| {
                    if r.status.life.status == SnapshotState::Creating && !r.status.life.deleted {
                        r.status.life.status = SnapshotState::Available;
                        r.status.life.progress = "100%".into();
                        r.status.life.clear_error();
                        r.status.ready_to_use = true;
                    }
                    Ok(())
                }),
            )
            .await?;
        let frozen = match g.status.frozen_millis {
            Some(ms) => format!("frozen for {ms} ms"),
            None => "not frozen (consistency: none)".into(),
        };
        let note = format!("{} members cut, {frozen}", members.len());
        self.notify(Kind::GroupSnapshot, &g.name, Phase::CreateEnd, note)
            .await;
        Ok(())
    }

    /// All or nothing: every member's LV is removed and its quota
    /// released, its record deleted; the group records the failure. Read
    /// by id: a rollback interrupted half-way finishes the rest.
    pub(super) async fn fail_group(
        &self,
        g: &GroupSnapshotRecord,
        (code, message): Failure,
    ) -> Result<(), WorkError> {
        for id in &g.spec.snapshot_ids {
            let Some(m) = self.store.get_snapshot(id).await? else {
                continue;
            };
            if m.status.life.deleted || m.spec.node != self.settings.node_id {
                continue;
            }
            self.remove_partial(&m.name, &m.spec.vg, &m.spec.lv_name)
                .await;
            self.quota
                .retire::<SnapshotRecord, WorkError>(&m, &self.failpoints)
                .await?;
        }
        let note = format!("{code}: {message}; every member rolled back");
        self.notify(Kind::GroupSnapshot, &g.name, Phase::CreateError, note)
            .await;
        self.store
            .modify_group_snapshot(
                &g.name,
                modify(move |r: &mut GroupSnapshotRecord| {
                    if r.status.life.status == SnapshotState::Creating && !r.status.life.deleted {
                        r.status.life.fail_create(code, message.clone());
                        r.status.members_cut = false;
                    }
                    Ok(())
                }),
            )
            .await?;
        Ok(())
    }
}
