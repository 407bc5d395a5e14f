//! CreateSnapshot on SQLite: reserve, record and commit in ONE transaction
//! (`Store::insert_snapshot_charged`, `controller/snapshot_once.rs`). The
//! store refuses as a whole (a source check, the quota, a taken name: nothing
//! written, not even the quota part already applied in the transaction), and
//! through the controller a create is charged at once, over quota writes
//! nothing, and a source being deleted is refused with nothing charged.
mod common;
mod store_suite;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::harness::{GIB, Harness};
use lvsnap::controller::ControllerError;
use lvsnap::records::{LvsQuotaSpec, VolumeState};
use lvsnap::store::{
    BoxError, QuotaUpdate, SnapshotFilter, SourceCheck, SqliteStore, Store, StoreError,
    VolumeRecord, modify,
};

#[derive(Debug, thiserror::Error)]
#[error("refused: {0}")]
struct Refused(&'static str);

fn source_ok() -> SourceCheck {
    Box::new(|v: Option<&VolumeRecord>| match v {
        Some(_) => Ok(()),
        None => Err(Box::new(Refused("no source")) as BoxError),
    })
}

/// Adds `n` to `snapshots` in use, or refuses.
fn charge(n: i64, refuse: bool) -> QuotaUpdate {
    Box::new(move |cur| {
        if refuse {
            return Err(Box::new(Refused("over quota")));
        }
        let spec = cur.map(|r| r.spec.clone()).unwrap_or_default();
        let mut status = cur.map(|r| r.status.clone()).unwrap_or_default();
        status.usage.entry("snapshots".into()).or_default().in_use += n;
        Ok((spec, status))
    })
}

async fn snapshots_in_use(store: &dyn Store) -> i64 {
    store
        .get_quota("p1")
        .await
        .unwrap()
        .and_then(|q| q.status.usage.get("snapshots").map(|u| u.in_use))
        .unwrap_or(0)
}

async fn records(store: &dyn Store) -> usize {
    store
        .list_snapshots(&SnapshotFilter::default(), None, usize::MAX)
        .await
        .unwrap()
        .len()
}

#[tokio::test]
async fn the_store_writes_all_of_it_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
    store
        .insert_volume(&store_suite::volume("v1", "pvc", "n1", "p1"))
        .await
        .unwrap();
    let s1 = store_suite::snapshot("s1", "c1", "v1", "p1");

    // The source check refuses: no quota, no record.
    let missing = store_suite::snapshot("s0", "c0", "gone", "p1");
    let err = store
        .insert_snapshot_charged(&missing, source_ok(), charge(1, false))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Aborted(_)), "{err}");
    // The quota refuses: no record.
    let err = store
        .insert_snapshot_charged(&s1, source_ok(), charge(1, true))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Aborted(_)), "{err}");
    assert_eq!(
        (
            snapshots_in_use(store.as_ref()).await,
            records(store.as_ref()).await
        ),
        (0, 0)
    );

    // Both agree: the record and its charge, together.
    let written = store
        .insert_snapshot_charged(&s1, source_ok(), charge(1, false))
        .await
        .unwrap()
        .expect("SQLite writes it in one transaction");
    assert_eq!(written.name, "s1");
    assert_eq!(
        (
            snapshots_in_use(store.as_ref()).await,
            records(store.as_ref()).await
        ),
        (1, 1)
    );

    // A taken CSI name (another id): the quota part the transaction had
    // already applied is rolled back with it.
    let twin = store_suite::snapshot("s2", "c1", "v1", "p1");
    let err = store
        .insert_snapshot_charged(&twin, source_ok(), charge(1, false))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists { .. }), "{err}");
    assert_eq!(
        (
            snapshots_in_use(store.as_ref()).await,
            records(store.as_ref()).await
        ),
        (1, 1)
    );

    // And it survives a reopen (committed, not only cached).
    drop(store);
    let store = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(
        (snapshots_in_use(&store).await, records(&store).await),
        (1, 1)
    );
}

#[tokio::test]
async fn a_create_snapshot_is_charged_at_once_and_over_quota_writes_nothing() {
    let h = Harness::new(20 * GIB as u64).await;
    let volume = h.volume("pvc-a", GIB).await;
    let project = h.config.default_project.clone();

    // Not cut yet (the executor does not run by itself), already charged:
    // committed, nothing reserved, the record claims no reservation.
    let _ = h
        .controller
        .create_snapshot(Harness::snapshot_request("snap-1", &volume))
        .await;
    let (_, snaps) = h.live().await;
    assert_eq!(snaps.len(), 1);
    assert!(snaps[0].spec.quota_reservations.is_empty());
    assert_eq!(snaps[0].spec.quota_charged.get("snapshots"), Some(&1));
    assert_eq!(h.usage(&project, "snapshots").await, (1, 0));
    assert_eq!(h.usage(&project, "gigabytes").await, (2, 0));

    // A limit of one snapshot: the second is refused with Cinder's
    // message and leaves no record, no reservation.
    let hard = BTreeMap::from([("snapshots".to_string(), 1)]);
    h.store
        .set_quota_limits(&project, &LvsQuotaSpec { hard })
        .await
        .unwrap();
    let err = h
        .controller
        .create_snapshot(Harness::snapshot_request("snap-2", &volume))
        .await
        .unwrap_err();
    assert!(matches!(err, ControllerError::Exhausted(_)), "{err:?}");
    let (_, snaps) = h.live().await;
    assert_eq!(snaps.len(), 1);
    assert_eq!(h.usage(&project, "snapshots").await, (1, 0));
}

#[tokio::test]
async fn a_source_being_deleted_is_refused_and_nothing_is_charged() {
    let h = Harness::new(20 * GIB as u64).await;
    let volume = h.volume("pvc-a", GIB).await;
    let project = h.config.default_project.clone();
    // A DeleteVolume marked the source deleting (the same check runs inside
    // the transaction: the store test above shows a refusal there writes
    // nothing).
    h.store
        .modify_volume(
            &volume,
            modify(|v: &mut VolumeRecord| {
                v.status.life.status = VolumeState::Deleting;
                Ok(())
            }),
        )
        .await
        .unwrap();
    let err = h
        .controller
        .create_snapshot(Harness::snapshot_request("snap-1", &volume))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ControllerError::FailedPrecondition(_)),
        "{err:?}"
    );
    let (_, snaps) = h.live().await;
    assert!(snaps.is_empty());
    assert_eq!(h.usage(&project, "snapshots").await, (0, 0));
}
