//! The store suite on the embedded SQLite backend, plus what only SQLite has:
//! persistence across reopen, migrations, corrupt rows.
mod store_suite;

use std::sync::Arc;

use lvsnap::store::{SqliteStore, Store, StoreError};

fn open() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    (dir, Arc::new(store))
}

macro_rules! suite {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            let (_dir, store) = open();
            store_suite::$name(store).await;
        }
    )*};
}

suite!(
    crud_and_optimistic_concurrency,
    find_by_csi_name_skips_deleted,
    list_filters_and_pages_in_a_stable_order,
    quota_update_is_atomic_and_aborts_cleanly,
    nodes_upsert,
    changes_are_announced,
    group_snapshots_are_records_like_the_others,
    expired_reservations_claimed_by_a_group_are_committed,
    csi_names_are_unique_among_live_records,
);

#[tokio::test]
async fn records_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SqliteStore::open(dir.path()).unwrap();
        store
            .insert_volume(&store_suite::volume("v1", "pvc", "n1", "p1"))
            .await
            .unwrap();
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    let v = store.get_volume("v1").await.unwrap().expect("persisted");
    assert_eq!(v.spec.csi_name, "pvc");
    let conn = rusqlite::Connection::open(dir.path().join("lvsnap.db")).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, 2, "schema version recorded");
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn a_corrupt_row_is_a_typed_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    store
        .insert_snapshot(&store_suite::snapshot("s1", "c1", "v1", "p1"))
        .await
        .unwrap();
    let conn = rusqlite::Connection::open(dir.path().join("lvsnap.db")).unwrap();
    conn.execute(
        "UPDATE records SET status = '{\"status\": 42' WHERE name = 's1'",
        [],
    )
    .unwrap();
    let err = store.get_snapshot("s1").await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    let err = store
        .list_snapshots(&Default::default(), None, 10)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(SqliteStore::open(dir.path()).unwrap());
    let conn = rusqlite::Connection::open(dir.path().join("lvsnap.db")).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = SqliteStore::open(dir.path()).unwrap_err();
    assert!(err.to_string().contains("newer"), "{err}");
}

macro_rules! quota_suite {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $name() {
            let (_dir, store) = open();
            store_suite::quota::$name(store).await;
        }
    )*};
}

quota_suite!(
    hundred_concurrent_reservations_against_fifty,
    per_type_and_shared_gigabytes,
    bad_input_changes_nothing,
    expired_reservations_are_swept,
    expired_reservations_claimed_by_records_are_committed,
    missing_usage_is_recounted_from_records,
);
