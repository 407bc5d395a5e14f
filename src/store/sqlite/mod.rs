//! Embedded SQLite store for all-in-one: one table of records with indexed
//! columns, JSON spec/status, WAL, a schema version with migrations. Every
//! write is a transaction, so a crash mid-write leaves the previous state.
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{Connection, TransactionBehavior, params};
use tokio::sync::broadcast;

mod charged;
mod rows;
mod schema;

use schema::{Index, filter_sql, group_index, migrate, snapshot_index, volume_index};

use super::{
    Change, GroupSnapshotFilter, GroupSnapshotRecord, Kind, Modify, NodeRecord, QuotaRecord,
    QuotaUpdate, Record, SnapshotFilter, SnapshotRecord, SourceCheck, Store, StoreError,
    VolumeFilter, VolumeRecord, to_json,
};

/// The SQLite backend.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
    changes: broadcast::Sender<Change>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

fn db_err(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(format!("sqlite: {e}"))
}

impl SqliteStore {
    /// Opens (creating if needed) `<dir>/lvsnap.db` and migrates it.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Unavailable(format!("creating {}: {e}", dir.display())))?;
        Self::open_file(&dir.join("lvsnap.db"))
    }

    pub fn open_file(path: &Path) -> Result<Self, StoreError> {
        let mut conn = Connection::open(path).map_err(db_err)?;
        // First: another process (an admin command, a restarted driver) may
        // hold the database while this one sets it up.
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(db_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db_err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db_err)?;
        migrate(&mut conn)?;
        let (changes, _) = broadcast::channel(1024);
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            path: path.to_path_buf(),
            changes,
        })
    }

    /// Runs `f` on the connection off the async runtime.
    async fn with_conn<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| StoreError::Other("sqlite connection lock poisoned".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Other(format!("sqlite task failed: {e}")))?
    }

    fn notify(&self, kind: Kind, name: &str, node: Option<String>) {
        let _ = self.changes.send(Change {
            kind,
            name: name.to_string(),
            node,
        });
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn insert_volume(&self, r: &VolumeRecord) -> Result<VolumeRecord, StoreError> {
        self.create(Kind::Volume, r, volume_index(r)).await
    }
    async fn get_volume(&self, id: &str) -> Result<Option<VolumeRecord>, StoreError> {
        self.get(Kind::Volume, id).await
    }
    async fn find_volume(&self, csi_name: &str) -> Result<Option<VolumeRecord>, StoreError> {
        let (sql, args) = filter_sql(&[("csi_name", Some(&csi_name.to_string()))], false);
        Ok(self.list(Kind::Volume, sql, args, None, 1).await?.pop())
    }
    async fn list_volumes(
        &self,
        f: &VolumeFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<VolumeRecord>, StoreError> {
        let (sql, args) = filter_sql(
            &[("node", f.node.as_ref()), ("project", f.project.as_ref())],
            f.include_deleted,
        );
        self.list(Kind::Volume, sql, args, after, limit).await
    }
    async fn update_volume(&self, r: &VolumeRecord) -> Result<VolumeRecord, StoreError> {
        self.update(Kind::Volume, r, volume_index(r)).await
    }
    async fn modify_volume(
        &self,
        id: &str,
        f: Modify<VolumeRecord>,
    ) -> Result<Option<VolumeRecord>, StoreError> {
        self.modify(Kind::Volume, id, f, volume_index, |r| r.spec.node.clone())
            .await
    }
    async fn purge_volume(&self, id: &str) -> Result<(), StoreError> {
        self.purge(Kind::Volume, id).await
    }

    async fn insert_snapshot(&self, r: &SnapshotRecord) -> Result<SnapshotRecord, StoreError> {
        self.create(Kind::Snapshot, r, snapshot_index(r)).await
    }
    async fn insert_snapshot_charged(
        &self,
        r: &SnapshotRecord,
        source: SourceCheck,
        quota: QuotaUpdate,
    ) -> Result<Option<SnapshotRecord>, StoreError> {
        self.charged_snapshot(r, source, quota).await.map(Some)
    }
    async fn get_snapshot(&self, id: &str) -> Result<Option<SnapshotRecord>, StoreError> {
        self.get(Kind::Snapshot, id).await
    }
    async fn find_snapshot(&self, csi_name: &str) -> Result<Option<SnapshotRecord>, StoreError> {
        let (sql, args) = filter_sql(&[("csi_name", Some(&csi_name.to_string()))], false);
        Ok(self.list(Kind::Snapshot, sql, args, None, 1).await?.pop())
    }
    async fn list_snapshots(
        &self,
        f: &SnapshotFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<SnapshotRecord>, StoreError> {
        let (sql, args) = filter_sql(
            &[
                ("source", f.source_volume_id.as_ref()),
                ("node", f.node.as_ref()),
                ("project", f.project.as_ref()),
            ],
            f.include_deleted,
        );
        self.list(Kind::Snapshot, sql, args, after, limit).await
    }
    async fn update_snapshot(&self, r: &SnapshotRecord) -> Result<SnapshotRecord, StoreError> {
        self.update(Kind::Snapshot, r, snapshot_index(r)).await
    }
    async fn modify_snapshot(
        &self,
        id: &str,
        f: Modify<SnapshotRecord>,
    ) -> Result<Option<SnapshotRecord>, StoreError> {
        self.modify(Kind::Snapshot, id, f, snapshot_index, |r| {
            r.spec.node.clone()
        })
        .await
    }
    async fn purge_snapshot(&self, id: &str) -> Result<(), StoreError> {
        self.purge(Kind::Snapshot, id).await
    }

    async fn insert_group_snapshot(
        &self,
        r: &GroupSnapshotRecord,
    ) -> Result<GroupSnapshotRecord, StoreError> {
        self.create(Kind::GroupSnapshot, r, group_index(r)).await
    }
    async fn get_group_snapshot(
        &self,
        id: &str,
    ) -> Result<Option<GroupSnapshotRecord>, StoreError> {
        self.get(Kind::GroupSnapshot, id).await
    }
    async fn find_group_snapshot(
        &self,
        csi_name: &str,
    ) -> Result<Option<GroupSnapshotRecord>, StoreError> {
        let (sql, args) = filter_sql(&[("csi_name", Some(&csi_name.to_string()))], false);
        Ok(self
            .list(Kind::GroupSnapshot, sql, args, None, 1)
            .await?
            .pop())
    }
    async fn list_group_snapshots(
        &self,
        f: &GroupSnapshotFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<GroupSnapshotRecord>, StoreError> {
        let (sql, args) = filter_sql(
            &[("node", f.node.as_ref()), ("project", f.project.as_ref())],
            f.include_deleted,
        );
        self.list(Kind::GroupSnapshot, sql, args, after, limit)
            .await
    }
    async fn modify_group_snapshot(
        &self,
        id: &str,
        f: Modify<GroupSnapshotRecord>,
    ) -> Result<Option<GroupSnapshotRecord>, StoreError> {
        self.modify(Kind::GroupSnapshot, id, f, group_index, |r| {
            r.spec.node.clone()
        })
        .await
    }
    async fn purge_group_snapshot(&self, id: &str) -> Result<(), StoreError> {
        self.purge(Kind::GroupSnapshot, id).await
    }

    async fn get_quota(&self, project: &str) -> Result<Option<QuotaRecord>, StoreError> {
        self.get(Kind::Quota, project).await
    }

    async fn update_quota(
        &self,
        project: &str,
        mut update: QuotaUpdate,
    ) -> Result<QuotaRecord, StoreError> {
        // One IMMEDIATE transaction: read, modify, write. SQLite serializes
        // writers, so there is nothing to retry.
        let name = project.to_string();
        let record = self
            .with_conn(move |c| {
                let tx = c
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(db_err)?;
                let record = rows::quota_rmw(&tx, &name, &mut update)?;
                tx.commit().map_err(db_err)?;
                Ok(record)
            })
            .await?;
        self.notify(Kind::Quota, project, None);
        Ok(record)
    }

    async fn list_quotas(&self) -> Result<Vec<QuotaRecord>, StoreError> {
        self.list(Kind::Quota, String::new(), Vec::new(), None, usize::MAX)
            .await
    }

    async fn put_node(&self, r: &NodeRecord) -> Result<NodeRecord, StoreError> {
        let spec = to_json(Kind::Node, &r.name, &r.spec)?;
        let status = to_json(Kind::Node, &r.name, &r.status)?;
        let name = r.name.clone();
        let version = self
            .with_conn(move |c| {
                let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_err)?;
                tx.execute(
                    "INSERT INTO records (kind, name, version, node, deleted, spec, status) VALUES ('node', ?1, 1, ?1, 0, ?2, ?3)
                     ON CONFLICT (kind, name) DO UPDATE SET version = version + 1, spec = ?2, status = ?3",
                    params![name, spec, status],
                )
                .map_err(db_err)?;
                let v: i64 = tx
                    .query_row("SELECT version FROM records WHERE kind = 'node' AND name = ?1", params![name], |r| r.get(0))
                    .map_err(db_err)?;
                tx.commit().map_err(db_err)?;
                Ok(v)
            })
            .await?;
        self.notify(Kind::Node, &r.name, Some(r.name.clone()));
        Ok(Record {
            version: version.to_string(),
            ..r.clone()
        })
    }

    async fn list_nodes(&self) -> Result<Vec<NodeRecord>, StoreError> {
        self.list(Kind::Node, String::new(), Vec::new(), None, usize::MAX)
            .await
    }

    fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }
}
