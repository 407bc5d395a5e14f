//! Fast tests of the controller's failure paths, in process (SQLite + the in-memory LVM;
//! tests/common/harness.rs): a failed create asked again, placed again, released when nobody
//! asks, nodes that are gone or stale, a CO object that is no longer wanted, and a crash at
//! every step of create and delete followed by a restart.
mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use common::harness::{GIB, Harness, MIB, NODE, VG};
use lvsnap::controller::{ControllerError, Placement};
use lvsnap::failpoint::points;
use lvsnap::records::{
    FailureCode, LvsNodeSpec, LvsNodeStatus, Operation, SnapshotState, VolumeState, now_rfc3339,
};
use lvsnap::store::{Cluster, Phase, Presence, Record, StoreError};

/// A CO whose objects the test decides about.
#[derive(Debug, Default)]
struct Co {
    gone_nodes: Mutex<HashSet<String>>,
    deleting: Mutex<HashSet<String>>,
}

#[async_trait]
impl Cluster for Co {
    async fn node(&self, name: &str) -> Result<Presence, StoreError> {
        Ok(if self.gone_nodes.lock().unwrap().contains(name) {
            Presence::Gone
        } else {
            Presence::Present
        })
    }
    async fn snapshot_content(&self, name: &str) -> Result<Presence, StoreError> {
        Ok(if self.deleting.lock().unwrap().contains(name) {
            Presence::Deleting
        } else {
            Presence::Present
        })
    }
    async fn claim(&self, _ns: &str, name: &str) -> Result<Presence, StoreError> {
        Ok(if self.deleting.lock().unwrap().contains(name) {
            Presence::Gone
        } else {
            Presence::Present
        })
    }
}

fn with_co(h: &mut Harness) -> Arc<Co> {
    let co = Arc::new(Co::default());
    h.controller = h.controller.clone().with_cluster(co.clone());
    co
}

async fn put_node(h: &Harness, name: &str, free: i64, heartbeat: String) {
    let r = Record::new(
        name,
        LvsNodeSpec {
            vg: VG.into(),
            ..Default::default()
        },
        LvsNodeStatus {
            size_bytes: free,
            free_bytes: free,
            extent_size_bytes: 4 << 20,
            lvm_version: "2.03".into(),
            last_heartbeat: heartbeat,
            ..Default::default()
        },
    );
    h.store.put_node(&r).await.unwrap();
}

/// Two creates raced for the space of one: the loser failed on the node.
/// Once space is freed, asking again cuts it, without new quota.
#[tokio::test]
async fn a_failed_create_asked_again_succeeds_without_new_quota() {
    let h = Harness::new(64 * MIB as u64).await;
    let a = h.volume("pvc-a", 40 * MIB).await;
    // The controller saw room (LvsNode not yet refreshed); the node has none.
    put_node(&h, NODE, GIB, now_rfc3339()).await;
    let _ = h
        .controller
        .create_volume(Harness::volume_request("pvc-b", 40 * MIB))
        .await;
    h.work_all().await;
    let b = lvsnap::controller::record_id("volume", "pvc-b");
    let rec = h.store.get_volume(&b).await.unwrap().unwrap();
    assert_eq!(
        rec.status.life.error_code,
        Some(FailureCode::ResourceExhausted)
    );
    assert_eq!(rec.status.life.error_op, Some(Operation::Create));
    assert_eq!(
        h.usage("default", "volumes").await,
        (2, 0),
        "the failed one stays charged meanwhile"
    );
    h.assert_consistent("default", "after the failure").await;

    // Space is freed; the CO asks again (same name).
    let _ = h.controller.delete_volume(&a).await;
    h.work_all().await;
    h.executor.report_capacity().await;
    let again = h
        .controller
        .create_volume(Harness::volume_request("pvc-b", 40 * MIB))
        .await;
    assert!(
        matches!(again, Err(ControllerError::Aborted(_))),
        "dispatched again: {again:?}"
    );
    h.work_all().await;
    let v = h
        .controller
        .create_volume(Harness::volume_request("pvc-b", 40 * MIB))
        .await
        .expect("now cut");
    assert_eq!(v.name, b);
    assert_eq!(h.usage("default", "volumes").await, (1, 0), "no new quota");
    h.assert_consistent("default", "after the retry").await;
}

/// The provisioner reschedules: the same name now asks for another node.
#[tokio::test]
async fn a_failed_volume_asked_for_another_node_is_placed_there() {
    let h = Harness::new(64 * MIB as u64).await;
    put_node(&h, NODE, GIB, now_rfc3339()).await;
    let mut req = Harness::volume_request("pvc-move", 100 * MIB);
    let _ = h.controller.create_volume(req.clone()).await;
    h.work_all().await;
    let id = lvsnap::controller::record_id("volume", "pvc-move");
    assert!(
        h.store
            .get_volume(&id)
            .await
            .unwrap()
            .unwrap()
            .status
            .life
            .is_failed_create()
    );
    put_node(&h, "n2", 10 * GIB, now_rfc3339()).await;
    req.placement = Placement {
        preferred: vec![],
        requisite: vec!["n2".into()],
    };
    let _ = h.controller.create_volume(req.clone()).await;
    let v = h.store.get_volume(&id).await.unwrap().unwrap();
    assert_eq!(v.spec.node, "n2", "placed again where the request allows");
    assert_eq!(v.status.life.status, VolumeState::Creating);
    assert_eq!(
        h.usage("default", "volumes").await,
        (1, 0),
        "the same quota"
    );
    // Nowhere allowed has room: refused, the record stays as it was.
    let mut nowhere = req.clone();
    nowhere.placement.requisite = vec!["n3".into()];
    let mut errored = v.clone();
    errored
        .status
        .life
        .fail_create(FailureCode::ResourceExhausted, "no room on n2");
    h.store.update_volume(&errored).await.unwrap();
    let err = h.controller.create_volume(nowhere).await.unwrap_err();
    assert!(matches!(err, ControllerError::Exhausted(_)), "{err:?}");
}

/// A failed create nobody asks for again is released after the grace; one
/// the CO keeps asking for is not.
#[tokio::test]
async fn a_failed_create_nobody_asks_for_is_released_after_the_grace() {
    let h = Harness::new(64 * MIB as u64).await;
    put_node(&h, NODE, GIB, now_rfc3339()).await;
    for name in ["pvc-forgotten", "pvc-retried"] {
        let _ = h
            .controller
            .create_volume(Harness::volume_request(name, 100 * MIB))
            .await;
    }
    h.work_all().await;
    assert_eq!(h.usage("default", "volumes").await, (2, 0));
    let grace = chrono::Duration::from_std(h.config.failed_create_grace).unwrap();
    let now = chrono::Utc::now();
    // Before the grace: nothing.
    assert_eq!(h.controller.sweep(now).await.unwrap().released, 0);
    // The CO asks for one again later (it is dispatched again and fails again).
    let _ = h
        .controller
        .create_volume(Harness::volume_request("pvc-retried", 100 * MIB))
        .await;
    h.work_all().await;
    // Past the first failure's grace, not past the retried one's.
    let later = now + grace + chrono::Duration::seconds(1);
    let retried = lvsnap::controller::record_id("volume", "pvc-retried");
    let mut r = h.store.get_volume(&retried).await.unwrap().unwrap();
    r.status.life.error_at = Some((later - chrono::Duration::seconds(60)).to_rfc3339());
    h.store.update_volume(&r).await.unwrap();
    let swept = h.controller.sweep(later).await.unwrap();
    assert_eq!(swept.released, 1);
    h.work_all().await;
    let forgotten = lvsnap::controller::record_id("volume", "pvc-forgotten");
    assert!(
        h.store
            .get_volume(&forgotten)
            .await
            .unwrap()
            .unwrap()
            .status
            .life
            .deleted
    );
    assert!(
        h.store
            .get_volume(&retried)
            .await
            .unwrap()
            .unwrap()
            .status
            .life
            .is_failed_create()
    );
    assert_eq!(
        h.usage("default", "volumes").await,
        (1, 0),
        "quota back to what exists"
    );
    h.assert_consistent("default", "after the release").await;
    let events = h.events.0.lock().unwrap().clone();
    assert!(
        events
            .iter()
            .any(|e| e.phase == Phase::FailedCreateReleased && e.id == forgotten)
    );
}

/// The node's Node object is deleted: its records' deletes succeed, quota
/// is released, an Event says the LV was not removed.
#[tokio::test]
async fn deletes_on_a_gone_node_succeed_and_release_quota() {
    let mut h = Harness::new(GIB as u64).await;
    let co = with_co(&mut h);
    let vol = h.volume("pvc-gone", 8 * MIB).await;
    let snap = h.snapshot("snap-gone", &vol).await;
    co.gone_nodes.lock().unwrap().insert(NODE.into());
    h.controller
        .delete_snapshot(&snap)
        .await
        .expect("DeleteSnapshot on a gone node");
    h.controller
        .delete_volume(&vol)
        .await
        .expect("DeleteVolume on a gone node");
    for key in ["volumes", "snapshots", "gigabytes"] {
        assert_eq!(h.usage("default", key).await, (0, 0), "{key}");
    }
    assert!(
        h.store
            .get_volume(&vol)
            .await
            .unwrap()
            .unwrap()
            .status
            .life
            .deleted
    );
    let events = h.events.0.lock().unwrap().clone();
    let abandoned: Vec<_> = events
        .iter()
        .filter(|e| e.phase == Phase::LvAbandoned)
        .collect();
    assert_eq!(abandoned.len(), 2);
    assert!(
        abandoned
            .iter()
            .any(|e| e.note.contains(&format!("volume-{vol}")) && e.note.contains("not removed"))
    );
    assert!(
        h.lvs().contains(&format!("volume-{vol}")),
        "nothing on the (absent) node was touched"
    );
}

/// A node that stopped reporting gets no new volumes; a delete aimed at it
/// answers UNAVAILABLE naming it, and finishes once it is back.
#[tokio::test]
async fn a_stale_node_gets_no_volumes_and_deletes_answer_unavailable() {
    let h = Harness::new(GIB as u64).await;
    let vol = h.volume("pvc-stale", 8 * MIB).await;
    let old = (chrono::Utc::now() - chrono::Duration::minutes(10)).to_rfc3339();
    put_node(&h, NODE, GIB, old).await;
    let err = h
        .controller
        .create_volume(Harness::volume_request("pvc-new", 8 * MIB))
        .await
        .unwrap_err();
    assert!(matches!(err, ControllerError::Unavailable(_)), "{err:?}");
    let err = h.controller.delete_volume(&vol).await.unwrap_err();
    match err {
        ControllerError::Unavailable(m) => assert!(m.contains(NODE), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        h.store
            .get_volume(&vol)
            .await
            .unwrap()
            .unwrap()
            .status
            .life
            .status,
        VolumeState::Deleting
    );
    // Back: it deletes what waited.
    h.executor.report_capacity().await;
    h.work_all().await;
    assert!(
        h.store
            .get_volume(&vol)
            .await
            .unwrap()
            .unwrap()
            .status
            .life
            .deleted
    );
    assert_eq!(h.usage("default", "volumes").await, (0, 0));
}

/// external-snapshotter retries RESOURCE_EXHAUSTED forever; once its
/// VolumeSnapshotContent is being deleted the answer is final, and nothing
/// is cut or charged.
#[tokio::test]
async fn a_snapshot_whose_content_is_being_deleted_gets_a_final_code() {
    let mut h = Harness::new(GIB as u64).await;
    let co = with_co(&mut h);
    let vol = h.volume("pvc-vsc", 8 * MIB).await;
    co.deleting.lock().unwrap().insert("snapcontent-1".into());
    let mut req = Harness::snapshot_request("snapshot-1", &vol);
    req.parameters.insert(
        "csi.storage.k8s.io/volumesnapshotcontent/name".into(),
        "snapcontent-1".into(),
    );
    let err = h.controller.create_snapshot(req).await.unwrap_err();
    assert!(
        matches!(err, ControllerError::FailedPrecondition(ref m) if m.contains("snapcontent-1")),
        "{err:?}"
    );
    assert_eq!(h.usage("default", "snapshots").await, (0, 0));
    assert!(h.live().await.1.is_empty(), "no record");
    h.assert_consistent("default", "after the refusal").await;
}

/// A crash (the driver halted) at every step of create and delete, then a
/// restart and the CO's retry: quota in_use equals what the live records
/// charged, nothing stays reserved, and the LVs are the live records'.
#[tokio::test]
async fn a_crash_at_every_step_leaks_no_quota_and_no_lv() {
    let creates = [
        points::VOLUME_AFTER_RESERVE,
        points::VOLUME_AFTER_RECORD,
        points::SNAPSHOT_AFTER_RESERVE,
        points::SNAPSHOT_AFTER_RECORD,
        points::NODE_AFTER_LVCREATE,
    ];
    let deletes = [
        points::DELETE_AFTER_MARK,
        points::NODE_AFTER_LVREMOVE,
        points::NODE_AFTER_RELEASE,
        points::NODE_AFTER_DELETED,
    ];
    for point in creates.into_iter().chain(deletes) {
        let mut h = Harness::new(GIB as u64).await;
        let vol = h.volume("pvc-base", 8 * MIB).await;
        let is_delete = deletes.contains(&point);
        let snap = if is_delete {
            Some(h.snapshot("snap-x", &vol).await)
        } else {
            None
        };
        h.halt_at(point);
        match (is_delete, point.starts_with("volume")) {
            (false, true) => {
                let _ = h
                    .controller
                    .create_volume(Harness::volume_request("pvc-x", 8 * MIB))
                    .await;
            }
            (false, false) => {
                let _ = h
                    .controller
                    .create_snapshot(Harness::snapshot_request("snap-x", &vol))
                    .await;
            }
            (true, _) => {
                let _ = h
                    .controller
                    .delete_snapshot(snap.as_deref().unwrap_or_default())
                    .await;
            }
        }
        h.work_all().await;
        // Restart; the reservation sweep and the CO's retry follow.
        h.restart();
        h.advance(chrono::Duration::days(2));
        let later = h.now();
        h.executor.settle().await.expect("settle after restart");
        h.work_all().await;
        h.controller.sweep(later).await.expect("sweep");
        if is_delete {
            let _ = h
                .controller
                .delete_snapshot(snap.as_deref().unwrap_or_default())
                .await;
        } else if point.starts_with("volume") {
            let _ = h
                .controller
                .create_volume(Harness::volume_request("pvc-x", 8 * MIB))
                .await;
        } else {
            let _ = h
                .controller
                .create_snapshot(Harness::snapshot_request("snap-x", &vol))
                .await;
        }
        h.work_all().await;
        h.controller.sweep(later).await.expect("sweep");
        h.assert_consistent("default", point).await;
        let (vols, snaps) = h.live().await;
        let expect = if is_delete { 0 } else { 1 };
        let made = if point.starts_with("volume") {
            vols.len() - 1
        } else {
            snaps.len()
        };
        assert_eq!(made, expect, "{point}: the retried operation completed");
        if let Some(s) = snaps.first() {
            assert_eq!(s.status.life.status, SnapshotState::Available, "{point}");
        }
        let q = h.store.get_quota("default").await.unwrap().unwrap();
        assert!(
            q.status.released.is_empty(),
            "{point}: no release left remembered"
        );
        println!("crash at {point:24} → in_use = live records' charge, LVs = live records: ok");
    }
}
