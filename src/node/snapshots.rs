//! The executor's snapshot records: cut (`lvcreate --snapshot`) and delete.
use super::Failure;
use super::executor::{Executor, WorkError, tag_for};
use super::{invalid, lvm_failure};
use crate::lvm::{ErrorKind, LvName};
use crate::records::{FailureCode, SnapshotState};
use crate::store::{Kind, Phase, SnapshotRecord};

impl Executor {
    #[tracing::instrument(skip(self), fields(node = %self.settings.node_id))]
    pub(super) async fn work_snapshot(&self, id: &str) -> Result<(), WorkError> {
        let Some(r) = self.store.get_snapshot(id).await? else {
            return Ok(());
        };
        if r.spec.node != self.settings.node_id || r.status.life.deleted {
            return Ok(());
        }
        if r.spec.group_snapshot_id.is_some() {
            // A member is cut and deleted by its group's work, together with
            // the others (never by two tasks at once).
            return Ok(());
        }
        match r.status.life.status {
            SnapshotState::Creating => self.cut_snapshot(r).await,
            SnapshotState::Deleting => self.delete_record(r.clone(), &r.name).await,
            _ => Ok(()),
        }
    }

    async fn cut_snapshot(&self, r: SnapshotRecord) -> Result<(), WorkError> {
        self.notify(
            Kind::Snapshot,
            &r.name,
            Phase::CreateStart,
            format!(
                "lvcreate --snapshot {}/{} of volume {}",
                r.spec.vg, r.spec.lv_name, r.spec.source_volume_id
            ),
        )
        .await;
        let cut = self.lvcreate_snapshot(&r).await;
        let size = cut.as_ref().ok().copied().flatten();
        self.finish_create(
            &r,
            &r.name,
            cut.map(|_| ()),
            move |s: &mut SnapshotRecord| {
                if let Some(size) = size {
                    s.status.size_bytes = size;
                }
            },
        )
        .await
    }

    /// Cuts the LV; returns the origin's size when lvm reports it.
    pub(super) async fn lvcreate_snapshot(
        &self,
        r: &SnapshotRecord,
    ) -> Result<Option<i64>, Failure> {
        let tag = tag_for(&r.name).map_err(invalid)?;
        let name = LvName::new(&r.spec.lv_name).map_err(invalid)?;
        let volume = self
            .store
            .get_volume(&r.spec.source_volume_id)
            .await
            .map_err(|e| (FailureCode::Unavailable, e.to_string()))?;
        let not_found = || (FailureCode::NotFound, "volume device not found".to_string());
        let origin = volume.map(|v| v.spec.lv_name).ok_or_else(not_found)?;
        let origin = LvName::new(&origin).map_err(invalid)?;
        // The snapshot call looks the origin up itself (on the node's view of
        // the VG, else one `lvs`).
        let cow = r.spec.cow_size_bytes.and_then(|b| u64::try_from(b).ok());
        let lv = self
            .lvm
            .lvcreate_snapshot(&r.spec.vg, &origin, &name, cow, &[tag])
            .await
            .map_err(|e| match e.kind() {
                ErrorKind::NotFound => not_found(),
                _ => lvm_failure(e),
            })?;
        Ok(lv.origin_size_bytes.and_then(|b| i64::try_from(b).ok()))
    }
}
