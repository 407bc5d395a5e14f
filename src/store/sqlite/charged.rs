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
use rusqlite::{Transaction, TransactionBehavior, params};

use super::super::{
    Kind, QuotaRecord, QuotaUpdate, SnapshotRecord, SourceCheck, StoreError, VolumeRecord, to_json,
};
use super::rows::read_row;
use super::{Index, SqliteStore, db_err, snapshot_index};
use crate::records::{LvsQuotaSpec, LvsQuotaStatus};

/// Inserts a new record row; a name or live CSI name taken is `AlreadyExists`.
pub(super) fn insert_row(
    tx: &Transaction<'_>,
    kind: Kind,
    name: &str,
    index: &Index,
    spec: &str,
    status: &str,
) -> Result<(), StoreError> {
    let n = tx
        .execute(
            "INSERT OR IGNORE INTO records (kind, name, version, csi_name, node, project, source, deleted, spec, status)
             VALUES (?1, ?2, 1, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![kind.as_str(), name, index.csi_name, index.node, index.project, index.source, index.deleted, spec, status],
        )
        .map_err(|e| match e {
            rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                StoreError::AlreadyExists {
                    kind: kind.as_str(),
                    name: format!("with CSI name {:?}", index.csi_name.clone().unwrap_or_default()),
                }
            }
            e => db_err(e),
        })?;
    if n == 0 {
        return Err(StoreError::AlreadyExists {
            kind: kind.as_str(),
            name: name.to_string(),
        });
    }
    Ok(())
}

/// The quota read-modify-write of project `name` inside `tx`.
pub(super) fn quota_rmw(
    tx: &Transaction<'_>,
    name: &str,
    update: &mut QuotaUpdate,
) -> Result<QuotaRecord, StoreError> {
    let current: Option<QuotaRecord> = read_row(tx, Kind::Quota, name)?;
    let (spec, status): (LvsQuotaSpec, LvsQuotaStatus) =
        update(current.as_ref()).map_err(StoreError::Aborted)?;
    let spec_json = to_json(Kind::Quota, name, &spec)?;
    let status_json = to_json(Kind::Quota, name, &status)?;
    let version = current
        .as_ref()
        .and_then(|r| r.version.parse::<i64>().ok())
        .unwrap_or(0)
        + 1;
    tx.execute(
        "INSERT INTO records (kind, name, version, deleted, spec, status) VALUES ('quota', ?1, ?2, 0, ?3, ?4)
         ON CONFLICT (kind, name) DO UPDATE SET version = ?2, spec = ?3, status = ?4",
        params![name, version, spec_json, status_json],
    )
    .map_err(db_err)?;
    Ok(QuotaRecord {
        name: name.to_string(),
        version: version.to_string(),
        spec,
        status,
    })
}

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
