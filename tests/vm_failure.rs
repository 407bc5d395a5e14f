//! VM tier: the failure paths on real LVM (DESIGN §9). `lvsnap node
//! --reap-orphans` with an unreachable API server and with record listing
//! forbidden removes nothing; with a complete view it reaps only an old,
//! closed orphan. Two creates racing for the space of one, and a snapshot
//! whose COW did not fit, are asked again once space is freed. A crash
//! (the process aborted) at every step of create and delete, then a restart.
mod common;
#[path = "common/vm.rs"]
mod vm;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::harness::assert_consistent;
use common::{Cluster, Driver};
use lvsnap::client::CsiClients;
use lvsnap::proto::v1 as csi;
use lvsnap::store::{Record, SqliteStore, Store};
use tonic::Code;
use vm::{LoopVg, age_lv, all_in_one_at, lv_names, lvcreate, lvremove};

const MIB: i64 = 1 << 20;
const SETTLE_SKIPPED: &str = "settling skipped";

fn tag(id: &uuid::Uuid) -> String {
    format!("lvsnap.io/id={id}")
}

async fn node(vg: &LoopVg, kubeconfig: &str, state: &Path) -> Driver {
    let state = state.display().to_string();
    Driver::start_logged(
        &[
            "node",
            "--node-id",
            "vm-node",
            "--vg",
            &vg.name,
            "--state-dir",
            &state,
            "--reap-orphans",
            "--orphan-grace",
            "10m",
            "--lvm-env",
            "DM_DISABLE_UDEV=1",
        ],
        &[("KUBECONFIG", kubeconfig)],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "VM tier: needs root and device-mapper (scripts/vm-run)"]
async fn reaping_needs_a_complete_view_an_old_lv_and_a_closed_one() {
    let vg = LoopVg::create("lvsnapreap", 256);
    let state = tempfile::tempdir().expect("tempdir");
    let (old, young, open) = (
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
    );
    for id in [old, young, open] {
        lvcreate(&vg.name, &format!("volume-{id}"), 8, &[&tag(&id)]);
    }
    age_lv(&vg.name, &format!("volume-{old}"), 7200);
    age_lv(&vg.name, &format!("volume-{open}"), 7200);
    // Held open, as a mounted filesystem would hold it (lv_attr 'o').
    let _held = std::fs::File::open(format!("/dev/{}/volume-{open}", vg.name)).expect("open LV");
    let all = lv_names(&vg.name);
    assert_eq!(all.len(), 3);

    // 1. The API server does not answer at all.
    let dir = tempfile::tempdir().expect("tempdir");
    let unreachable = dir.path().join("kubeconfig");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let addr = closed.local_addr().expect("addr");
    drop(closed);
    std::fs::write(&unreachable, lvsnap::store::fake_api::kubeconfig(addr)).expect("kubeconfig");
    let mut n = node(&vg, unreachable.to_str().expect("utf-8"), state.path()).await;
    let log = n.log.clone().expect("log");
    log.wait_for(SETTLE_SKIPPED, 2, Duration::from_secs(60));
    assert_eq!(
        lv_names(&vg.name),
        all,
        "API unreachable: every LV survives"
    );
    // Its Probe depends on its VG only: the livenessprobe must not restart
    // every node plugin because the API server is down.
    let ready = n
        .clients()
        .await
        .identity
        .probe(csi::ProbeRequest {})
        .await
        .expect("Probe");
    assert_eq!(
        ready.into_inner().ready,
        Some(true),
        "node ready without the API"
    );
    n.terminate();

    // 2. The API answers, but listing records is forbidden (RBAC 403).
    let cluster = Cluster::start().await;
    cluster.http.api.create_node("vm-node", &[]).expect("Node");
    cluster.http.api.forbid("list", "lvsnap.io", "lvssnapshots");
    let n = node(
        &vg,
        cluster.kubeconfig.to_str().expect("utf-8"),
        state.path(),
    )
    .await;
    let log = n.log.clone().expect("log");
    log.wait_for(SETTLE_SKIPPED, 2, Duration::from_secs(60));
    assert_eq!(
        lv_names(&vg.name),
        all,
        "records forbidden: every LV survives"
    );

    // 3. The view completes: only the old, closed orphan goes.
    cluster.http.api.allow_all();
    log.wait_for("removed orphan LV", 1, Duration::from_secs(120));
    let left = lv_names(&vg.name);
    assert!(!left.contains(&format!("volume-{old}")), "{left:?}");
    assert!(
        left.contains(&format!("volume-{young}")),
        "younger than the grace: kept"
    );
    assert!(left.contains(&format!("volume-{open}")), "open: kept");
    let reaped = cluster
        .http
        .api
        .events()
        .into_iter()
        .filter(|e| e["reason"] == "OrphanReaped")
        .count();
    assert_eq!(reaped, 1, "one Event naming the LV and its tag");
}

async fn sqlite(state: &Path) -> Arc<dyn Store> {
    Arc::new(SqliteStore::open(state).expect("sqlite"))
}

async fn create_volume(
    c: &mut CsiClients,
    name: &str,
    bytes: i64,
) -> Result<csi::Volume, tonic::Status> {
    c.controller
        .create_volume(common::volume_request(name, bytes))
        .await
        .map(|r| r.into_inner().volume.expect("volume"))
}

async fn create_snapshot(
    c: &mut CsiClients,
    name: &str,
    source: &str,
) -> Result<csi::Snapshot, tonic::Status> {
    c.controller
        .create_snapshot(csi::CreateSnapshotRequest {
            name: name.into(),
            source_volume_id: source.into(),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner().snapshot.expect("snapshot"))
}

async fn delete_volume(c: &mut CsiClients, id: &str) -> Result<(), tonic::Status> {
    c.controller
        .delete_volume(csi::DeleteVolumeRequest {
            volume_id: id.into(),
            ..Default::default()
        })
        .await
        .map(|_| ())
}

async fn delete_snapshot(c: &mut CsiClients, id: &str) -> Result<(), tonic::Status> {
    c.controller
        .delete_snapshot(csi::DeleteSnapshotRequest {
            snapshot_id: id.into(),
            ..Default::default()
        })
        .await
        .map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "VM tier: needs root and device-mapper (scripts/vm-run)"]
async fn a_create_that_lost_the_race_for_space_succeeds_when_asked_again() {
    let vg = LoopVg::create("lvsnaprace", 128);
    let state = tempfile::tempdir().expect("tempdir");
    let driver = all_in_one_at(&vg, state.path(), &["--lvm-env", "DM_DISABLE_UDEV=1"]).await;
    let store = sqlite(state.path()).await;
    let (mut a, mut b) = (driver.clients().await, driver.clients().await);
    // Two creates for the space of one, at once.
    let (ra, rb) = tokio::join!(
        create_volume(&mut a, "pvc-race-a", 80 * MIB),
        create_volume(&mut b, "pvc-race-b", 80 * MIB)
    );
    let (winner, loser, err) = match (ra, rb) {
        (Ok(v), Err(e)) => (v, "pvc-race-b", e),
        (Err(e), Ok(v)) => (v, "pvc-race-a", e),
        other => panic!("exactly one create fits: {other:?}"),
    };
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    println!("race: {} won; {loser}: {}", winner.volume_id, err.message());
    assert_consistent(
        store.as_ref(),
        lv_names(&vg.name),
        "default",
        "after the race",
    )
    .await;

    // The node, not only placement, refuses: a filler made behind
    // lvsnap's back leaves less than the controller believes.
    lvcreate(&vg.name, "filler", 24, &[]);
    let mut c = driver.clients().await;
    let err = create_volume(&mut c, "pvc-late", 24 * MIB)
        .await
        .expect_err("no room on the node");
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(
        err.message().contains("failed on node"),
        "the node's failure: {}",
        err.message()
    );

    // Space is freed: both are asked again and cut, without new quota.
    lvremove(&vg.name, "filler");
    delete_volume(&mut c, &winner.volume_id)
        .await
        .expect("delete the winner");
    // The node reports its capacity after the delete (asynchronously).
    wait_capacity(&mut c, 100 * MIB).await;
    let again = create_volume(&mut c, loser, 80 * MIB)
        .await
        .expect("the loser, asked again");
    let late = create_volume(&mut c, "pvc-late", 24 * MIB)
        .await
        .expect("the late one, asked again");
    let mut lvs = lv_names(&vg.name);
    lvs.sort();
    let mut want = vec![
        format!("volume-{}", again.volume_id),
        format!("volume-{}", late.volume_id),
    ];
    want.sort();
    assert_eq!(lvs, want, "lvs shows exactly the live volumes");
    assert_consistent(
        store.as_ref(),
        lv_names(&vg.name),
        "default",
        "after the retries",
    )
    .await;
    let q = store
        .get_quota("default")
        .await
        .expect("quota")
        .expect("quota record");
    assert_eq!(q.status.usage["volumes"].in_use, 2);
    println!("after the retries: volumes in_use 2, lvs = {lvs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "VM tier: needs root and device-mapper (scripts/vm-run)"]
async fn a_snapshot_whose_cow_did_not_fit_is_cut_when_asked_again() {
    let vg = LoopVg::create("lvsnapcow", 128);
    let state = tempfile::tempdir().expect("tempdir");
    let driver = all_in_one_at(&vg, state.path(), &["--lvm-env", "DM_DISABLE_UDEV=1"]).await;
    let store = sqlite(state.path()).await;
    let mut c = driver.clients().await;
    let vol = create_volume(&mut c, "pvc-cow", 48 * MIB)
        .await
        .expect("volume");
    lvcreate(&vg.name, "filler", 48, &[]);
    let err = create_snapshot(&mut c, "snap-cow", &vol.volume_id)
        .await
        .expect_err("no room for the COW");
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert_consistent(
        store.as_ref(),
        without(&vg, "filler"),
        "default",
        "after the failed cut",
    )
    .await;
    lvremove(&vg.name, "filler");
    let snap = create_snapshot(&mut c, "snap-cow", &vol.volume_id)
        .await
        .expect("asked again");
    assert!(snap.ready_to_use);
    let q = store
        .get_quota("default")
        .await
        .expect("quota")
        .expect("record");
    assert_eq!(q.status.usage["snapshots"].in_use, 1, "no new quota");
    assert_consistent(
        store.as_ref(),
        lv_names(&vg.name),
        "default",
        "after the cut",
    )
    .await;
    delete_snapshot(&mut c, &snap.snapshot_id)
        .await
        .expect("delete");
    delete_volume(&mut c, &vol.volume_id).await.expect("delete");
    assert!(lv_names(&vg.name).is_empty());
}

/// Until GetCapacity reports at least `bytes` (the node's next report).
async fn wait_capacity(c: &mut CsiClients, bytes: i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let cap = c
            .controller
            .get_capacity(csi::GetCapacityRequest::default())
            .await
            .expect("GetCapacity")
            .into_inner();
        if cap.available_capacity >= bytes {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "capacity stays {cap:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn without(vg: &LoopVg, lv: &str) -> Vec<String> {
    lv_names(&vg.name).into_iter().filter(|l| l != lv).collect()
}

/// What the CO does at a step: create a volume, cut a snapshot, delete it.
#[derive(Clone, Copy, Debug)]
enum Op {
    Volume,
    Snapshot,
    DeleteSnapshot,
}

async fn act(c: &mut CsiClients, op: Op, base: &str, snap: &str) -> Result<(), tonic::Status> {
    match op {
        Op::Volume => create_volume(c, "pvc-crash", 8 * MIB).await.map(|_| ()),
        Op::Snapshot => create_snapshot(c, "snap-crash", base).await.map(|_| ()),
        Op::DeleteSnapshot => delete_snapshot(c, snap).await,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "VM tier: needs root and device-mapper (scripts/vm-run)"]
async fn a_process_killed_at_every_step_leaks_no_quota_and_no_lv() {
    use lvsnap::failpoint::points as p;
    let steps = [
        (p::VOLUME_AFTER_RESERVE, Op::Volume),
        (p::VOLUME_AFTER_RECORD, Op::Volume),
        (p::NODE_AFTER_LVCREATE, Op::Volume),
        (p::SNAPSHOT_AFTER_RESERVE, Op::Snapshot),
        (p::SNAPSHOT_AFTER_RECORD, Op::Snapshot),
        (p::NODE_AFTER_LVCREATE, Op::Snapshot),
        (p::DELETE_AFTER_MARK, Op::DeleteSnapshot),
        (p::NODE_AFTER_LVREMOVE, Op::DeleteSnapshot),
        (p::NODE_AFTER_RELEASE, Op::DeleteSnapshot),
        (p::NODE_AFTER_DELETED, Op::DeleteSnapshot),
    ];
    let vg = LoopVg::create("lvsnapcrash", 512);
    let mut table = Vec::new();
    for (point, op) in steps {
        let state = tempfile::tempdir().expect("tempdir");
        let udev = ["--lvm-env", "DM_DISABLE_UDEV=1"];
        let quick = ["--reservation-expire", "2s", "--sweep-interval", "1s"];
        // The base the step needs, made by a healthy process.
        let (base, snap) = {
            let d = all_in_one_at(&vg, state.path(), &udev).await;
            let mut c = d.clients().await;
            let base = create_volume(&mut c, "pvc-base", 8 * MIB)
                .await
                .expect("base");
            let snap = match op {
                Op::DeleteSnapshot => {
                    create_snapshot(&mut c, "snap-crash", &base.volume_id)
                        .await
                        .expect("snapshot")
                        .snapshot_id
                }
                _ => String::new(),
            };
            (base.volume_id, snap)
        };
        // The step, in a process that dies there.
        let mut args = vec!["--failpoint", point];
        args.extend(udev);
        args.extend(quick);
        let mut dying = all_in_one_at(&vg, state.path(), &args).await;
        let mut c = dying.clients().await;
        let err = act(&mut c, op, &base, &snap)
            .await
            .expect_err("the process dies mid-call");
        assert!(
            matches!(
                err.code(),
                Code::Unavailable | Code::Unknown | Code::Internal
            ),
            "{point}: {err:?}"
        );
        let status = dying.child.wait().expect("wait");
        assert!(!status.success(), "{point}: aborted");
        // Restart; the CO retries until it succeeds; the sweep settles.
        let mut extra = udev.to_vec();
        extra.extend(quick);
        let d = all_in_one_at(&vg, state.path(), &extra).await;
        let mut c = d.clients().await;
        let mut tries = 0;
        while let Err(e) = act(&mut c, op, &base, &snap).await {
            tries += 1;
            assert!(
                tries < 10 && e.code() == Code::Aborted,
                "{point}: retry answered {e:?}"
            );
        }
        let log = d.log.clone().expect("log");
        let sweeps = log.count("sweep done");
        let store = sqlite(state.path()).await;
        // Reservations of the dead process expire after 2 s: wait for the
        // sweep that settles them (its log line), then check.
        wait_settled(&store, &log, sweeps).await;
        assert_consistent(store.as_ref(), lv_names(&vg.name), "default", point).await;
        let (vols, snaps) = live(&store).await;
        let q = store
            .get_quota("default")
            .await
            .expect("quota")
            .unwrap_or_else(|| Record::new("default", Default::default(), Default::default()));
        let used = |k: &str| {
            q.status
                .usage
                .get(k)
                .map(|u| (u.in_use, u.reserved))
                .unwrap_or((0, 0))
        };
        table.push(format!(
            "{point:22} {:14} | volumes (in_use, reserved) {:?}, snapshots {:?}, gigabytes {:?} | live records: {} volumes, {} snapshots | LVs: {}",
            format!("{op:?}"),
            used("volumes"),
            used("snapshots"),
            used("gigabytes"),
            vols.len(),
            snaps.len(),
            lv_names(&vg.name).len()
        ));
        // Clean up for the next step.
        for s in snaps {
            delete_snapshot(&mut c, &s.name)
                .await
                .expect("cleanup snapshot");
        }
        for v in vols {
            delete_volume(&mut c, &v.name)
                .await
                .expect("cleanup volume");
        }
        assert!(lv_names(&vg.name).is_empty(), "{point}: cleaned up");
    }
    println!(
        "crash injection, each followed by a restart:\n{}",
        table.join("\n")
    );
}

async fn live(
    store: &Arc<dyn Store>,
) -> (
    Vec<lvsnap::store::VolumeRecord>,
    Vec<lvsnap::store::SnapshotRecord>,
) {
    let v = store
        .list_volumes(&Default::default(), None, usize::MAX)
        .await
        .expect("list");
    let s = store
        .list_snapshots(&Default::default(), None, usize::MAX)
        .await
        .expect("list");
    (v, s)
}

/// Waits until nothing is reserved (the sweep's log lines mark each pass).
async fn wait_settled(store: &Arc<dyn Store>, log: &common::Log, mut seen: usize) {
    for _ in 0..30 {
        let q = store.get_quota("default").await.expect("quota");
        let reserved: i64 = q
            .map(|q| q.status.usage.values().map(|u| u.reserved).sum())
            .unwrap_or(0);
        if reserved == 0 {
            return;
        }
        seen += 1;
        log.wait_for("sweep done", seen, Duration::from_secs(30));
    }
    panic!("reservations never settled");
}
