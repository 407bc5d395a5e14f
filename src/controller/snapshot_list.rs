//! ListSnapshots and GetSnapshot: reads of cut snapshots, in a stable
//! order with an opaque token (the last id of the previous page).
use super::params;
use super::snapshot::SnapshotPage;
use super::{Controller, ControllerError};
use crate::records::SnapshotState;
use crate::store::{SnapshotFilter, SnapshotRecord};

impl Controller {
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
        let ready = |r: &SnapshotRecord| {
            r.status.life.status == SnapshotState::Available && !r.status.life.deleted
        };
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
            Some(r) if !r.status.life.deleted => Ok(r),
            _ => Err(ControllerError::NotFound(format!(
                "snapshot {id} not found"
            ))),
        }
    }
}
