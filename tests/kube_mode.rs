//! Host tier: `lvsnap controller` as a real process keeping its records in
//! Kubernetes (the fake API server over HTTP, reached through KUBECONFIG),
//! and a node executor on the same API (in-process, with the in-memory LVM
//! runner: the real-LVM node process runs in tests/vm_kube.rs). The
//! controller and the node talk only through the records, as in a cluster.
mod common;

use common::Cluster;
use common::kube::{controller, create_volume, eventually, node, snapshot_req, usage};
use lvsnap::proto::v1 as csi;
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn controller_process_and_node_share_records_through_the_api() {
    let cluster = Cluster::start().await;
    let node = node(&cluster).await;
    let driver = controller(&cluster, &[]).await;
    let mut c = driver.clients().await;

    let volume = create_volume(&mut c, "pvc-k1").await;
    let topo = &volume.accessible_topology[0].segments;
    assert_eq!(
        topo.get("topology.lvsnap.io/node").map(String::as_str),
        Some("n1")
    );
    let snap = c
        .controller
        .create_snapshot(snapshot_req("snap-k1", &volume.volume_id))
        .await
        .expect("CreateSnapshot")
        .into_inner()
        .snapshot
        .expect("snapshot");
    assert!(snap.ready_to_use, "{snap:?}");
    let lv = format!("_snapshot-{}", snap.snapshot_id);
    let lvs = node.lvm.lvs("vg0").await.expect("lvs");
    let cut = lvs
        .iter()
        .find(|l| l.name.as_str() == lv)
        .expect("snapshot LV");
    assert_eq!(
        cut.origin.as_ref().map(|o| o.as_str().to_string()),
        Some(format!("volume-{}", volume.volume_id))
    );

    // The record is an LvsSnapshot with Cinder's fields, written by both sides.
    let obj = cluster
        .http
        .api
        .object("lvssnapshots", &snap.snapshot_id)
        .expect("LvsSnapshot");
    assert_eq!(obj["status"]["status"], "available");
    assert_eq!(obj["status"]["progress"], "100%");
    assert_eq!(obj["metadata"]["labels"]["lvsnap.io/node"], "n1");
    assert_eq!(usage(&node.store, "snapshots").await, (1, 0));

    // Events on the record, as `kubectl describe` finds them (by uid).
    let uid = obj["metadata"]["uid"].as_str().expect("uid").to_string();
    let api = cluster.http.api.clone();
    eventually("CreateStart and CreateEnd events", || {
        let (api, uid) = (api.clone(), uid.clone());
        async move {
            let reasons: Vec<String> = api
                .events()
                .into_iter()
                .filter(|e| e["regarding"]["uid"] == uid.as_str())
                .map(|e| e["reason"].as_str().unwrap_or("").to_string())
                .collect();
            reasons.contains(&"CreateStart".into()) && reasons.contains(&"CreateEnd".into())
        }
    })
    .await;

    // Deleting a volume with a live snapshot is refused.
    let err = c
        .controller
        .delete_volume(csi::DeleteVolumeRequest {
            volume_id: volume.volume_id.clone(),
            ..Default::default()
        })
        .await
        .expect_err("volume has a snapshot");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");

    c.controller
        .delete_snapshot(csi::DeleteSnapshotRequest {
            snapshot_id: snap.snapshot_id.clone(),
            ..Default::default()
        })
        .await
        .expect("DeleteSnapshot");
    let lvs = node.lvm.lvs("vg0").await.expect("lvs");
    assert!(lvs.iter().all(|l| l.name.as_str() != lv), "LV removed");
    assert_eq!(usage(&node.store, "snapshots").await, (0, 0));
    let obj = cluster
        .http
        .api
        .object("lvssnapshots", &snap.snapshot_id)
        .expect("soft-deleted record kept");
    assert_eq!(obj["status"]["deleted"], true);
    // Events are published after the record is written: poll for it.
    let api = cluster.http.api.clone();
    eventually("a DeleteEnd event", || {
        let (api, uid) = (api.clone(), uid.clone());
        async move {
            api.events()
                .iter()
                .any(|e| e["regarding"]["uid"] == uid.as_str() && e["reason"] == "DeleteEnd")
        }
    })
    .await;

    c.controller
        .delete_volume(csi::DeleteVolumeRequest {
            volume_id: volume.volume_id.clone(),
            ..Default::default()
        })
        .await
        .expect("DeleteVolume");
    assert_eq!(usage(&node.store, "volumes").await, (0, 0));
    assert_eq!(usage(&node.store, "gigabytes").await, (0, 0));
}

/// The controller process dies between reserving quota and committing it,
/// once before the record is written and once after. Nothing leaks once the
/// sweep has run: an unclaimed reservation is rolled back, a claimed one is
/// committed (the node cuts that snapshot, so it must stay charged), and
/// deleting it afterwards brings usage back to zero.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_controller_killed_between_reserve_and_commit_leaks_nothing() {
    let cluster = Cluster::start().await;
    let node = node(&cluster).await;
    let volume = {
        let driver = controller(&cluster, &[]).await;
        let mut c = driver.clients().await;
        create_volume(&mut c, "pvc-crash").await
    };
    assert_eq!(usage(&node.store, "snapshots").await, (0, 0));

    for (failpoint, name) in [
        ("snapshot-after-reserve", "snap-crash-1"),
        ("snapshot-after-record", "snap-crash-2"),
    ] {
        // Reservations carry their expiry from the controller that made them.
        let mut driver = controller(
            &cluster,
            &["--failpoint", failpoint, "--reservation-expire", "1s"],
        )
        .await;
        let mut c = driver.clients().await;
        let err = c
            .controller
            .create_snapshot(snapshot_req(name, &volume.volume_id))
            .await
            .expect_err("the process dies mid-request");
        assert!(
            matches!(err.code(), Code::Unavailable | Code::Unknown),
            "a transport error: {err:?}"
        );
        let status = driver.child.wait().expect("wait");
        assert!(!status.success(), "aborted: {status}");
    }
    // Two reservations open, one of them claimed by a record the node is cutting.
    assert_eq!(usage(&node.store, "snapshots").await, (0, 2));

    let driver = controller(
        &cluster,
        &["--reservation-expire", "1s", "--sweep-interval", "1s"],
    )
    .await;
    let store = node.store.clone();
    eventually("reservations settled", || {
        let store = store.clone();
        async move { usage(&store, "snapshots").await == (1, 0) }
    })
    .await;
    assert_eq!(usage(&node.store, "gigabytes").await, (2, 0));

    let mut c = driver.clients().await;
    // The interrupted request, retried (as the snapshotter does): same snapshot.
    let snap = c
        .controller
        .create_snapshot(snapshot_req("snap-crash-2", &volume.volume_id))
        .await
        .expect("retried CreateSnapshot")
        .into_inner()
        .snapshot
        .expect("snapshot");
    assert!(snap.ready_to_use);
    assert_eq!(
        usage(&node.store, "snapshots").await,
        (1, 0),
        "no new quota"
    );
    c.controller
        .delete_snapshot(csi::DeleteSnapshotRequest {
            snapshot_id: snap.snapshot_id,
            ..Default::default()
        })
        .await
        .expect("DeleteSnapshot");
    assert_eq!(usage(&node.store, "snapshots").await, (0, 0));
    assert_eq!(usage(&node.store, "gigabytes").await, (1, 0));
}
