//! Host tier, Kubernetes mode: the failure paths through real `lvsnap
//! controller` processes on the fake API server (over HTTP, KUBECONFIG),
//! with a node executor on the same API (fake LVM). A deleted Node object,
//! a stale node, a VolumeSnapshotContent being deleted, two controller
//! replicas and one Lease, an API server that forbids or is gone.
mod common;

use std::time::Duration;

use common::kube::{GIB, controller, create_volume, node, snapshot_req, usage};
use common::{Cluster, Driver};
use lvsnap::proto::v1 as csi;
use lvsnap::records::{LvsNodeSpec, LvsNodeStatus};
use lvsnap::store::{KubeStore, Record, Store};
use serde_json::json;
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deletes_on_a_deleted_node_succeed_and_release_quota() {
    let cluster = Cluster::start().await;
    let node = node(&cluster).await;
    let driver = controller(&cluster, &[]).await;
    let mut c = driver.clients().await;
    let vol = create_volume(&mut c, "pvc-gone").await;
    let snap = c
        .controller
        .create_snapshot(snapshot_req("snap-gone", &vol.volume_id))
        .await
        .expect("snapshot")
        .into_inner()
        .snapshot
        .expect("snapshot");
    assert_eq!(usage(&node.store, "snapshots").await, (1, 0));

    // The node is gone for good: its Node object deleted.
    cluster.http.api.delete_node("n1").expect("delete Node n1");
    c.controller
        .delete_snapshot(csi::DeleteSnapshotRequest {
            snapshot_id: snap.snapshot_id.clone(),
            ..Default::default()
        })
        .await
        .expect("DeleteSnapshot succeeds without its node");
    c.controller
        .delete_volume(csi::DeleteVolumeRequest {
            volume_id: vol.volume_id.clone(),
            ..Default::default()
        })
        .await
        .expect("DeleteVolume succeeds without its node");
    for key in ["snapshots", "volumes", "gigabytes"] {
        assert_eq!(usage(&node.store, key).await, (0, 0), "{key} released");
    }
    let obj = cluster
        .http
        .api
        .object("lvsvolumes", &vol.volume_id)
        .expect("record kept, soft-deleted");
    assert_eq!(obj["status"]["deleted"], true);
    let events = cluster.http.api.events();
    let not_removed: Vec<_> = events
        .iter()
        .filter(|e| e["reason"] == "LvNotRemoved")
        .collect();
    assert_eq!(not_removed.len(), 2, "an Event for each record");
    assert!(not_removed.iter().any(|e| {
        e["note"]
            .as_str()
            .unwrap_or("")
            .contains(&format!("volume-{}", vol.volume_id))
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stale_node_gets_no_volumes_and_its_deletes_answer_unavailable() {
    let cluster = Cluster::start().await;
    let driver = controller(&cluster, &["--node-stale-after", "60s"]).await;
    let mut c = driver.clients().await;
    // A node that reported long ago, and one that never reports.
    cluster.http.api.create_node("n-old", &[]).expect("Node");
    let store = KubeStore::new(cluster.http.api.client());
    let old = (chrono::Utc::now() - chrono::Duration::minutes(10)).to_rfc3339();
    store
        .put_node(&Record::new(
            "n-old",
            LvsNodeSpec {
                vg: "vg0".into(),
                thin_pool: None,
            },
            LvsNodeStatus {
                size_bytes: 10 * GIB,
                free_bytes: 10 * GIB,
                extent_size_bytes: 4 << 20,
                lvm_version: "2.03".into(),
                last_heartbeat: old,
                classes: Vec::new(),
            },
        ))
        .await
        .expect("LvsNode");
    let err = c
        .controller
        .create_volume(common::volume_request("pvc-stale", GIB))
        .await
        .expect_err("nowhere fresh");
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(
        err.message().contains("node-stale-after"),
        "{}",
        err.message()
    );
    let cap = c
        .controller
        .get_capacity(csi::GetCapacityRequest::default())
        .await
        .expect("GetCapacity")
        .into_inner();
    assert_eq!(cap.available_capacity, 0, "a stale node offers nothing");

    // A volume that was on it: its delete names the node.
    let vol = lvsnap::store::VolumeRecord::new(
        "8f0f5c52-9c3e-4f2b-9a4e-000000000001",
        lvsnap::records::LvsVolumeSpec {
            id: "8f0f5c52-9c3e-4f2b-9a4e-000000000001".into(),
            csi_name: "pvc-on-old".into(),
            project: "default".into(),
            display_name: "pvc-on-old".into(),
            volume_type: "vg0".into(),
            node: "n-old".into(),
            vg: "vg0".into(),
            device_class: None,
            lv_name: "volume-8f0f5c52-9c3e-4f2b-9a4e-000000000001".into(),
            size_bytes: GIB,
            ..Default::default()
        },
        lvsnap::records::LvsVolumeStatus {
            life: lvsnap::records::Lifecycle {
                status: lvsnap::records::VolumeState::Available,
                ..Default::default()
            },
            ..Default::default()
        },
    );
    store.insert_volume(&vol).await.expect("record");
    let err = c
        .controller
        .delete_volume(csi::DeleteVolumeRequest {
            volume_id: vol.name.clone(),
            ..Default::default()
        })
        .await
        .expect_err("node stale");
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(err.message().contains("n-old"), "{}", err.message());
    let obj = cluster
        .http
        .api
        .object("lvsvolumes", &vol.name)
        .expect("record");
    assert_eq!(
        obj["status"]["status"], "deleting",
        "left for the node when it is back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_snapshot_whose_content_is_being_deleted_gets_a_final_code_and_leaves_nothing() {
    let cluster = Cluster::start().await;
    let node = node(&cluster).await;
    let driver = controller(&cluster, &[]).await;
    let mut c = driver.clients().await;
    let vol = create_volume(&mut c, "pvc-vsc").await;
    // The user deleted the VolumeSnapshot: its content is held by a finalizer.
    cluster
        .http
        .api
        .put_object(json!({
            "apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotContent",
            "metadata": {"name": "snapcontent-x", "finalizers": ["snapshot.storage.kubernetes.io/volumesnapshotcontent-bound-protection"]},
            "spec": {"driver": "lvsnap.io", "deletionPolicy": "Delete", "source": {"volumeHandle": vol.volume_id},
                     "volumeSnapshotRef": {"name": "snap", "namespace": "default"}},
        }))
        .expect("content");
    cluster
        .http
        .api
        .delete_object("volumesnapshotcontents", None, "snapcontent-x")
        .expect("delete: held by its finalizer");
    let mut req = snapshot_req("snapshot-x", &vol.volume_id);
    req.parameters.insert(
        "csi.storage.k8s.io/volumesnapshotcontent/name".into(),
        "snapcontent-x".into(),
    );
    let err = c
        .controller
        .create_snapshot(req.clone())
        .await
        .expect_err("final");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("being deleted"), "{}", err.message());
    assert_eq!(usage(&node.store, "snapshots").await, (0, 0), "no quota");
    assert!(
        cluster.http.api.objects("lvssnapshots").is_empty(),
        "no record"
    );
    let lvs = node.lvm.lvs("vg0").await.expect("lvs");
    assert_eq!(lvs.len(), 1, "only the volume's LV: {lvs:?}");
    // Gone altogether: the same.
    let mut gone = snapshot_req("snapshot-y", &vol.volume_id);
    gone.parameters.insert(
        "csi.storage.k8s.io/volumesnapshotcontent/name".into(),
        "snapcontent-never".into(),
    );
    let err = c.controller.create_snapshot(gone).await.expect_err("final");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
}

async fn replica(cluster: &Cluster, who: &str) -> Driver {
    Driver::start_logged(
        &[
            "controller",
            "--sweep-interval",
            "1s",
            "--leader-election-duration",
            "3s",
            "--leader-election-identity",
            who,
        ],
        &[cluster.env()],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_two_controller_replicas_exactly_one_runs_the_sweeps() {
    let cluster = Cluster::start().await;
    let a = replica(&cluster, "replica-a").await;
    let b = replica(&cluster, "replica-b").await;
    let (la, lb) = (a.log.clone().expect("log"), b.log.clone().expect("log"));
    // One of them takes the Lease.
    let (xa, xb) = (la.clone(), lb.clone());
    common::kube::eventually("a leader", || {
        let n = xa.count("became the leader") + xb.count("became the leader");
        async move { n > 0 }
    })
    .await;
    let lease = cluster
        .http
        .api
        .object_in("leases.coordination.k8s.io", "default", "lvsnap-controller")
        .expect("the Lease");
    let holder = lease["spec"]["holderIdentity"]
        .as_str()
        .expect("holder")
        .to_string();
    let (leader, follower, mut leader_driver, follower_driver) = if holder == "replica-a" {
        (la, lb, a, b)
    } else {
        (lb, la, b, a)
    };
    leader.wait_for("became the leader", 1, Duration::from_secs(20));
    assert_eq!(follower.count("became the leader"), 0, "exactly one leader");
    // An expired reservation: only the leader's sweep settles it.
    let store = KubeStore::new(cluster.http.api.client());
    let quota = lvsnap::quota::QuotaEngine::new(
        std::sync::Arc::new(store),
        lvsnap::quota::QuotaConfig {
            reservation_expire: Duration::from_millis(1),
            ..Default::default()
        },
        lvsnap::quota::system_clock(),
    );
    quota
        .reserve("default", &[("snapshots".to_string(), 1)].into())
        .await
        .expect("reserve");
    leader.wait_for("sweep done", 1, Duration::from_secs(20));
    assert_eq!(follower.count("sweep done"), 0, "the follower never sweeps");
    assert_eq!(follower.count("became the leader"), 0);
    // The leader dies: the other takes over within the lease's term.
    leader_driver.terminate();
    follower.wait_for("became the leader", 1, Duration::from_secs(30));
    drop(follower_driver);
}
