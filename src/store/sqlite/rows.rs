//! The generic row operations of the SQLite store: one table of records
//! with indexed columns, JSON spec/status, each write its own transaction;
//! the row steps (read, insert, quota read-modify-write) that a transaction
//! of several (`charged.rs`) is made of.
use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};
use serde::{Serialize, de::DeserializeOwned};

use super::super::{
    Kind, Modify, QuotaRecord, QuotaUpdate, Record, StoreError, from_json, to_json,
};
use super::{Index, SqliteStore, db_err};
use crate::records::{LvsQuotaSpec, LvsQuotaStatus};

impl SqliteStore {
    pub(super) async fn create<S, T>(
        &self,
        kind: Kind,
        record: &Record<S, T>,
        index: Index,
    ) -> Result<Record<S, T>, StoreError>
    where
        S: Serialize + Clone + Send + 'static,
        T: Serialize + Clone + Send + 'static,
    {
        let spec = to_json(kind, &record.name, &record.spec)?;
        let status = to_json(kind, &record.name, &record.status)?;
        let name = record.name.clone();
        let node = index.node.clone();
        self.with_conn(move |c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_err)?;
            insert_row(&tx, kind, &name, &index, &spec, &status)?;
            tx.commit().map_err(db_err)
        })
        .await?;
        self.notify(kind, &record.name, node);
        Ok(Record {
            version: "1".into(),
            ..record.clone()
        })
    }

    pub(super) async fn update<S, T>(
        &self,
        kind: Kind,
        record: &Record<S, T>,
        index: Index,
    ) -> Result<Record<S, T>, StoreError>
    where
        S: Serialize + Clone + Send + 'static,
        T: Serialize + Clone + Send + 'static,
    {
        let spec = to_json(kind, &record.name, &record.spec)?;
        let status = to_json(kind, &record.name, &record.status)?;
        let name = record.name.clone();
        let version = record.version.clone();
        let expected: i64 = version.parse().map_err(|_| StoreError::Conflict {
            kind: kind.as_str(),
            name: name.clone(),
            version: version.clone(),
        })?;
        let node = index.node.clone();
        let new_version = self
            .with_conn(move |c| {
                let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_err)?;
                let current: Option<i64> = tx
                    .query_row(
                        "SELECT version FROM records WHERE kind = ?1 AND name = ?2",
                        params![kind.as_str(), name],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(db_err)?;
                match current {
                    None => return Err(StoreError::NotFound { kind: kind.as_str(), name }),
                    Some(v) if v != expected => {
                        return Err(StoreError::Conflict { kind: kind.as_str(), name, version })
                    }
                    Some(_) => {}
                }
                tx.execute(
                    "UPDATE records SET version = version + 1, csi_name = ?3, node = ?4, project = ?5,
                     source = ?6, deleted = ?7, spec = ?8, status = ?9 WHERE kind = ?1 AND name = ?2",
                    params![kind.as_str(), name, index.csi_name, index.node, index.project, index.source, index.deleted, spec, status],
                )
                .map_err(db_err)?;
                tx.commit().map_err(db_err)?;
                Ok(expected + 1)
            })
            .await?;
        self.notify(kind, &record.name, node);
        Ok(Record {
            version: new_version.to_string(),
            ..record.clone()
        })
    }

    /// One IMMEDIATE transaction: read the record, apply `f`, write it back
    /// if it changed. SQLite serializes writers: nothing to retry.
    pub(super) async fn modify<S, T>(
        &self,
        kind: Kind,
        name: &str,
        mut f: Modify<Record<S, T>>,
        index: fn(&Record<S, T>) -> Index,
        node_of: fn(&Record<S, T>) -> String,
    ) -> Result<Option<Record<S, T>>, StoreError>
    where
        S: Serialize + DeserializeOwned + Clone + PartialEq + Send + 'static,
        T: Serialize + DeserializeOwned + Clone + PartialEq + Send + 'static,
    {
        let n = name.to_string();
        let out = self
            .with_conn(move |c| {
                let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_err)?;
                let row: Option<(i64, String, String)> = tx
                    .query_row(
                        "SELECT version, spec, status FROM records WHERE kind = ?1 AND name = ?2",
                        params![kind.as_str(), n],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .optional()
                    .map_err(db_err)?;
                let Some((v, spec, status)) = row else {
                    return Ok(None);
                };
                let current: Record<S, T> = decode(kind, n.clone(), v, &spec, &status)?;
                let mut next = current.clone();
                f(&mut next).map_err(StoreError::Aborted)?;
                if next.spec == current.spec && next.status == current.status {
                    return Ok(Some((current, false)));
                }
                let spec = to_json(kind, &n, &next.spec)?;
                let status = to_json(kind, &n, &next.status)?;
                let ix = index(&next);
                tx.execute(
                    "UPDATE records SET version = version + 1, csi_name = ?3, node = ?4, project = ?5,
                     source = ?6, deleted = ?7, spec = ?8, status = ?9 WHERE kind = ?1 AND name = ?2",
                    params![kind.as_str(), n, ix.csi_name, ix.node, ix.project, ix.source, ix.deleted, spec, status],
                )
                .map_err(|e| match e {
                    rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                        StoreError::AlreadyExists { kind: kind.as_str(), name: format!("with CSI name {:?}", ix.csi_name.clone().unwrap_or_default()) }
                    }
                    e => db_err(e),
                })?;
                tx.commit().map_err(db_err)?;
                next.name = current.name;
                next.version = (v + 1).to_string();
                Ok(Some((next, true)))
            })
            .await?;
        Ok(out.map(|(record, written)| {
            if written {
                self.notify(kind, name, Some(node_of(&record)));
            }
            record
        }))
    }

    pub(super) async fn get<S, T>(
        &self,
        kind: Kind,
        name: &str,
    ) -> Result<Option<Record<S, T>>, StoreError>
    where
        S: DeserializeOwned + Send + 'static,
        T: DeserializeOwned + Send + 'static,
    {
        let name = name.to_string();
        self.with_conn(move |c| read_row(c, kind, &name)).await
    }

    /// Lists `kind` records matching `where_sql` (bound to `args`), by name.
    pub(super) async fn list<S, T>(
        &self,
        kind: Kind,
        where_sql: String,
        args: Vec<Option<String>>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Record<S, T>>, StoreError>
    where
        S: DeserializeOwned + Send + 'static,
        T: DeserializeOwned + Send + 'static,
    {
        let after = after.map(str::to_string);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with_conn(move |c| {
            let sql = format!(
                "SELECT name, version, spec, status FROM records
                 WHERE kind = ?1 AND (?2 IS NULL OR name > ?2) {where_sql}
                 ORDER BY name LIMIT ?3"
            );
            let mut stmt = c.prepare_cached(&sql).map_err(db_err)?;
            let mut bound: Vec<Box<dyn rusqlite::ToSql>> =
                vec![Box::new(kind.as_str()), Box::new(after), Box::new(limit)];
            bound.extend(
                args.into_iter()
                    .map(|a| Box::new(a) as Box<dyn rusqlite::ToSql>),
            );
            let refs: Vec<&dyn rusqlite::ToSql> = bound.iter().map(|b| b.as_ref()).collect();
            let rows = stmt
                .query_map(refs.as_slice(), |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                    ))
                })
                .map_err(db_err)?;
            let mut out = Vec::new();
            for row in rows {
                let (name, v, spec, status) = row.map_err(db_err)?;
                out.push(decode(kind, name, v, &spec, &status)?);
            }
            Ok(out)
        })
        .await
    }

    pub(super) async fn purge(&self, kind: Kind, name: &str) -> Result<(), StoreError> {
        let n = name.to_string();
        self.with_conn(move |c| {
            c.execute(
                "DELETE FROM records WHERE kind = ?1 AND name = ?2",
                params![kind.as_str(), n],
            )
            .map_err(db_err)
            .map(|_| ())
        })
        .await?;
        self.notify(kind, name, None);
        Ok(())
    }
}

/// Reads the record row `kind`/`name` (`None`: none), on a connection or
/// inside a transaction.
pub(super) fn read_row<S: DeserializeOwned, T: DeserializeOwned>(
    c: &rusqlite::Connection,
    kind: Kind,
    name: &str,
) -> Result<Option<Record<S, T>>, StoreError> {
    let row: Option<(i64, String, String)> = c
        .query_row(
            "SELECT version, spec, status FROM records WHERE kind = ?1 AND name = ?2",
            params![kind.as_str(), name],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .map_err(db_err)?;
    row.map(|(v, spec, status)| decode(kind, name.to_string(), v, &spec, &status))
        .transpose()
}

pub(super) fn decode<S: DeserializeOwned, T: DeserializeOwned>(
    kind: Kind,
    name: String,
    version: i64,
    spec: &str,
    status: &str,
) -> Result<Record<S, T>, StoreError> {
    Ok(Record {
        spec: from_json(kind, &name, spec)?,
        status: from_json(kind, &name, status)?,
        version: version.to_string(),
        name,
    })
}

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
