//! What the executor does for group snapshots besides cutting them: the
//! freeze record (written before freezing), the thaw of whatever a group
//! record says is frozen (on every start, and before any other work on that
//! group), and the end of a group delete (once every member is deleted).
use super::executor::{Executor, WorkError};
use crate::lvm::LvName;
use crate::records::{FailureCode, Operation, SnapshotState};
use crate::store::{GroupSnapshotFilter, GroupSnapshotRecord, Kind, Phase, StoreError, modify};

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
}
