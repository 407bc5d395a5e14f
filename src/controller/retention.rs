//! Purging soft-deleted records once their retention has passed (Cinder
//! keeps `deleted=1` rows until an operator purges them; lvsnap does it on a
//! configurable schedule).
use chrono::{DateTime, Utc};

use super::{Controller, ControllerError};
use crate::store::{SnapshotFilter, VolumeFilter};

fn expired(deleted_at: Option<&str>, cutoff: DateTime<Utc>) -> bool {
    deleted_at
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .is_some_and(|t| t < cutoff)
}

impl Controller {
    /// Purges snapshot and volume records deleted before `now - retention`;
    /// returns how many went.
    pub async fn purge_deleted(&self, now: DateTime<Utc>) -> Result<usize, ControllerError> {
        let retention = chrono::Duration::from_std(self.config.deleted_retention)
            .map_err(|e| ControllerError::Internal(e.to_string()))?;
        let cutoff = now - retention;
        let mut purged = 0;
        let all = SnapshotFilter {
            include_deleted: true,
            ..Default::default()
        };
        for s in self.store.list_snapshots(&all, None, usize::MAX).await? {
            if s.status.deleted && expired(s.status.deleted_at.as_deref(), cutoff) {
                self.store.purge_snapshot(&s.name).await?;
                purged += 1;
            }
        }
        let all = VolumeFilter {
            include_deleted: true,
            ..Default::default()
        };
        for v in self.store.list_volumes(&all, None, usize::MAX).await? {
            if v.status.deleted && expired(v.status.deleted_at.as_deref(), cutoff) {
                self.store.purge_volume(&v.name).await?;
                purged += 1;
            }
        }
        Ok(purged)
    }
}
