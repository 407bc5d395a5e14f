//! The SQLite table: its migrations, the indexed columns each record kind
//! fills, and the filter clauses listings add.
use rusqlite::{Connection, TransactionBehavior};

use super::super::{GroupSnapshotRecord, SnapshotRecord, StoreError, VolumeRecord};
use super::db_err;

/// The schema, one migration per entry; `PRAGMA user_version` = applied count.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE records (
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        version INTEGER NOT NULL,
        csi_name TEXT,
        node TEXT,
        project TEXT,
        source TEXT,
        deleted INTEGER NOT NULL DEFAULT 0,
        spec TEXT NOT NULL,
        status TEXT NOT NULL,
        PRIMARY KEY (kind, name)
    ) WITHOUT ROWID;
    CREATE INDEX records_csi_name ON records (kind, csi_name) WHERE deleted = 0;
    CREATE INDEX records_node ON records (kind, node);
    CREATE INDEX records_source ON records (kind, source);",
    // One live record per CSI name: concurrent CreateSnapshot/CreateVolume
    // calls with the same name cannot both insert.
    "DROP INDEX records_csi_name;
    CREATE UNIQUE INDEX records_csi_name ON records (kind, csi_name)
        WHERE deleted = 0 AND csi_name IS NOT NULL;",
];

/// Index columns of a stored record.
pub(super) struct Index {
    pub csi_name: Option<String>,
    pub node: Option<String>,
    pub project: Option<String>,
    pub source: Option<String>,
    pub deleted: bool,
}

pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    // One IMMEDIATE transaction: two processes opening a new database at
    // once (all-in-one and an admin command) must not both migrate it.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db_err)?;
    let applied: i64 = tx
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(db_err)?;
    let applied = usize::try_from(applied).unwrap_or(0);
    if applied > MIGRATIONS.len() {
        return Err(StoreError::Unavailable(format!(
            "the database has schema version {applied}, newer than this lvsnap knows ({})",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        tx.execute_batch(sql).map_err(db_err)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)
            .map_err(db_err)?;
    }
    tx.commit().map_err(db_err)
}

pub(super) fn volume_index(r: &VolumeRecord) -> Index {
    Index {
        csi_name: Some(r.spec.csi_name.clone()),
        node: Some(r.spec.node.clone()),
        project: Some(r.spec.project.clone()),
        source: r
            .spec
            .source_snapshot_id
            .clone()
            .or_else(|| r.spec.source_volume_id.clone()),
        deleted: r.status.life.deleted,
    }
}

pub(super) fn snapshot_index(r: &SnapshotRecord) -> Index {
    Index {
        csi_name: Some(r.spec.csi_name.clone()),
        node: Some(r.spec.node.clone()),
        project: Some(r.spec.project.clone()),
        source: Some(r.spec.source_volume_id.clone()),
        deleted: r.status.life.deleted,
    }
}

pub(super) fn group_index(r: &GroupSnapshotRecord) -> Index {
    Index {
        csi_name: Some(r.spec.csi_name.clone()),
        node: Some(r.spec.node.clone()),
        project: Some(r.spec.project.clone()),
        source: None,
        deleted: r.status.life.deleted,
    }
}

/// `AND column = ?n` clauses for the filters that are set (params from ?4).
pub(super) fn filter_sql(
    parts: &[(&str, Option<&String>)],
    include_deleted: bool,
) -> (String, Vec<Option<String>>) {
    let mut sql = String::new();
    let mut args = Vec::new();
    for (column, value) in parts {
        if let Some(v) = value {
            args.push(Some((*v).clone()));
            sql.push_str(&format!(" AND {column} = ?{}", args.len() + 3));
        }
    }
    if !include_deleted {
        sql.push_str(" AND deleted = 0");
    }
    (sql, args)
}
