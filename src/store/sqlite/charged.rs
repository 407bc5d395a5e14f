//! Cinder's reserve + record + commit of one CreateSnapshot as ONE SQLite
//! transaction (see [`Store::insert_snapshot_charged`]): the source is
//! re-checked, the quota reserved and committed at once, and the record
//! inserted, all under one IMMEDIATE lock and one fsync. A crash leaves
//! either all of it or none of it, which the three steps could also leave
//! (a reservation nobody claims is rolled back by the sweep; a record whose
//! reservation is committed is what a finished create leaves), never
//! anything else; the in-between states simply cannot be seen.
//!
//! [`Store::insert_snapshot_charged`]: super::super::Store::insert_snapshot_charged
use rusqlite::TransactionBehavior;

use super::super::{
    Kind, QuotaUpdate, SnapshotRecord, SourceCheck, StoreError, VolumeRecord, to_json,
};
use super::rows::{insert_row, quota_rmw, read_row};
use super::schema::snapshot_index;
use super::{SqliteStore, db_err};

impl SqliteStore {
    /// See [`Store::insert_snapshot_charged`](super::super::Store::insert_snapshot_charged).
    pub(super) async fn charged_snapshot(
        &self,
        record: &SnapshotRecord,
        mut source: SourceCheck,
        mut quota: QuotaUpdate,
    ) -> Result<SnapshotRecord, StoreError> {
        let spec = to_json(Kind::Snapshot, &record.name, &record.spec)?;
        let status = to_json(Kind::Snapshot, &record.name, &record.status)?;
        let index = snapshot_index(record);
        let name = record.name.clone();
        let project = record.spec.project.clone();
        let volume_id = record.spec.source_volume_id.clone();
        let node = index.node.clone();
        self.with_conn(move |c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_err)?;
            let volume: Option<VolumeRecord> = read_row(&tx, Kind::Volume, &volume_id)?;
            source(volume.as_ref()).map_err(StoreError::Aborted)?;
            quota_rmw(&tx, &project, &mut quota)?;
            insert_row(&tx, Kind::Snapshot, &name, &index, &spec, &status)?;
            tx.commit().map_err(db_err)
        })
        .await?;
        self.notify(Kind::Quota, &record.spec.project, None);
        self.notify(Kind::Snapshot, &record.name, node);
        Ok(SnapshotRecord {
            version: "1".into(),
            ..record.clone()
        })
    }
}
