//! VM tier: the Kubernetes deployment shape on real LVM. Two processes, as in
//! a cluster: `lvsnap controller` (the Deployment) and `lvsnap node` (the
//! DaemonSet pod) sharing nothing but the API server (the fake one over
//! HTTP, through KUBECONFIG). The controller never touches LVM; the node
//! cuts the LV after seeing the record in its watch.
mod common;
#[path = "common/vm.rs"]
mod vm;

use common::{Cluster, Driver};
use lvsnap::proto::v1 as csi;
use vm::LoopVg;

const MIB: i64 = 1 << 20;

fn lv_attrs(vg: &str) -> Vec<(String, String, String)> {
    let out = std::process::Command::new("lvs")
        .args(["--reportformat", "json", "-o", "lv_name,lv_attr,origin", vg])
        .output()
        .expect("lvs");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("lvs json");
    v["report"][0]["lv"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|l| {
            let s = |k: &str| l[k].as_str().unwrap_or("").to_string();
            (s("lv_name"), s("lv_attr"), s("origin"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "VM tier: needs root and device-mapper (scripts/vm-run)"]
async fn controller_and_node_processes_cut_a_snapshot_through_the_api() {
    let vg = LoopVg::create("lvsnapkube", 256);
    let cluster = Cluster::start().await;
    // The node exists in Kubernetes (a deleted Node object would let the
    // deletes below finish without removing the LVs).
    cluster.http.api.create_node("vm-node", &[]).expect("Node");
    let state = tempfile::tempdir().expect("tempdir");
    let state_s = state.path().display().to_string();
    let node = Driver::start_env(
        &[
            "node",
            "--node-id",
            "vm-node",
            "--vg",
            &vg.name,
            "--state-dir",
            &state_s,
        ],
        &[cluster.env()],
    )
    .await;
    let controller =
        Driver::start_env(&["controller", "--create-timeout", "45s"], &[cluster.env()]).await;
    let mut c = controller.clients().await;
    let mut n = node.clients().await;
    let ready = n
        .identity
        .probe(csi::ProbeRequest {})
        .await
        .expect("node Probe (VG and API)");
    assert_eq!(ready.into_inner().ready, Some(true));

    // The node announced its capacity; the controller places by it.
    let cap = c
        .controller
        .get_capacity(csi::GetCapacityRequest::default())
        .await
        .expect("GetCapacity")
        .into_inner();
    assert!(cap.available_capacity > 200 * MIB, "{cap:?}");

    let volume = c
        .controller
        .create_volume(common::volume_request("pvc-kube-1", 64 * MIB))
        .await
        .expect("CreateVolume")
        .into_inner()
        .volume
        .expect("volume");
    let snap = c
        .controller
        .create_snapshot(csi::CreateSnapshotRequest {
            name: "snap-kube-1".into(),
            source_volume_id: volume.volume_id.clone(),
            ..Default::default()
        })
        .await
        .expect("CreateSnapshot")
        .into_inner()
        .snapshot
        .expect("snapshot");
    assert!(snap.ready_to_use);
    let lvs = lv_attrs(&vg.name);
    let snap_lv = format!("_snapshot-{}", snap.snapshot_id);
    let vol_lv = format!("volume-{}", volume.volume_id);
    let cut = lvs
        .iter()
        .find(|(name, _, _)| *name == snap_lv)
        .unwrap_or_else(|| panic!("{snap_lv} in {lvs:?}"));
    assert!(cut.1.starts_with("swi-a-s"), "{cut:?}");
    assert_eq!(cut.2, vol_lv);
    let obj = cluster
        .http
        .api
        .object("lvssnapshots", &snap.snapshot_id)
        .expect("LvsSnapshot");
    assert_eq!(obj["status"]["status"], "available");

    c.controller
        .delete_snapshot(csi::DeleteSnapshotRequest {
            snapshot_id: snap.snapshot_id.clone(),
            ..Default::default()
        })
        .await
        .expect("DeleteSnapshot");
    c.controller
        .delete_volume(csi::DeleteVolumeRequest {
            volume_id: volume.volume_id.clone(),
            ..Default::default()
        })
        .await
        .expect("DeleteVolume");
    assert!(lv_attrs(&vg.name).is_empty(), "{:?}", lv_attrs(&vg.name));
}
