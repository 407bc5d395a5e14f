//! VM tier: the snapshot and volume lifecycle over real gRPC on a Unix
//! socket, against `lvsnap all-in-one` cutting real LVs (run inside
//! `scripts/vm-run`, see docs/testing.md). Each test has its own VG and
//! driver, so they run in parallel in one boot.
mod common;
#[path = "common/vm.rs"]
mod vm;

use std::collections::HashMap;

use common::mount_cap;
use lvsnap::client::CsiClients;
use lvsnap::proto::v1 as csi;
use tonic::Code;
use vm::{LoopVg, all_in_one, read_at, write_at};

const MIB: i64 = 1 << 20;

async fn create_volume(
    c: &mut CsiClients,
    name: &str,
    bytes: i64,
    params: &[(&str, &str)],
) -> csi::Volume {
    c.controller
        .create_volume(csi::CreateVolumeRequest {
            name: name.into(),
            capacity_range: Some(csi::CapacityRange {
                required_bytes: bytes,
                limit_bytes: 0,
            }),
            volume_capabilities: vec![mount_cap("")],
            parameters: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("CreateVolume {name}: {e:?}"))
        .into_inner()
        .volume
        .unwrap()
}

async fn snapshot(
    c: &mut CsiClients,
    name: &str,
    source: &str,
    params: &[(&str, &str)],
) -> Result<csi::Snapshot, tonic::Status> {
    c.controller
        .create_snapshot(csi::CreateSnapshotRequest {
            name: name.into(),
            source_volume_id: source.into(),
            parameters: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<HashMap<_, _>>(),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner().snapshot.unwrap())
}

fn lvs(vg: &str) -> serde_json::Value {
    let out = std::process::Command::new("lvs")
        .args([
            "--reportformat",
            "json",
            "-o",
            "lv_name,lv_attr,origin,lv_size,lv_tags",
            vg,
        ])
        .output()
        .unwrap();
    serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["report"][0]["lv"].clone()
}

fn lv<'a>(report: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    report
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["lv_name"] == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "vm tier: run inside scripts/vm-run"]
async fn snapshot_lifecycle_on_real_lvm() {
    let vg = LoopVg::create("lvsnaplife", 1024);
    let (driver, _state) = all_in_one(&vg, &[]).await;
    let mut c = driver.clients().await;

    let vol = create_volume(
        &mut c,
        "pvc-life",
        64 * MIB,
        &[("csi.storage.k8s.io/pvc/namespace", "team-a")],
    )
    .await;
    assert_eq!(vol.capacity_bytes, 64 * MIB);
    assert_eq!(
        vol.accessible_topology[0].segments["topology.lvsnap.io/node"],
        "vm-node"
    );
    let vol_lv = format!("volume-{}", vol.volume_id);
    let origin_dev = format!("/dev/{}/{vol_lv}", vg.name);
    write_at(&origin_dev, b"before the snapshot");

    let s = snapshot(
        &mut c,
        "snap-life",
        &vol.volume_id,
        &[("csi.storage.k8s.io/volumesnapshot/namespace", "team-a")],
    )
    .await
    .unwrap();
    assert!(s.ready_to_use, "{s:?}");
    assert_eq!(s.source_volume_id, vol.volume_id);
    assert_eq!(s.size_bytes, 64 * MIB);
    assert!(s.creation_time.is_some());
    let snap_lv = format!("_snapshot-{}", s.snapshot_id);
    let report = lvs(&vg.name);
    println!(
        "lvs after CreateSnapshot:\n{}",
        serde_json::to_string_pretty(&report).unwrap()
    );
    let entry = lv(&report, &snap_lv).expect("the snapshot LV exists");
    assert_eq!(entry["lv_attr"], "swi-a-s---");
    assert_eq!(entry["origin"], vol_lv.as_str());
    assert!(entry["lv_tags"].as_str().unwrap().contains(&s.snapshot_id));
    assert_eq!(lv(&report, &vol_lv).unwrap()["lv_attr"], "owi-a-s---");

    // Data written after the snapshot is not in it.
    write_at(&origin_dev, b"AFTER the snapshot!");
    assert_eq!(
        read_at(&format!("/dev/{}/{snap_lv}", vg.name), 19),
        b"before the snapshot"
    );

    // Idempotent by name; another source under the same name is refused.
    let again = snapshot(&mut c, "snap-life", &vol.volume_id, &[])
        .await
        .unwrap();
    assert_eq!(again.snapshot_id, s.snapshot_id);
    let other = create_volume(&mut c, "pvc-other", 8 * MIB, &[]).await;
    let err = snapshot(&mut c, "snap-life", &other.volume_id, &[])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");

    // Get / List.
    let got = c
        .controller
        .get_snapshot(csi::GetSnapshotRequest {
            snapshot_id: s.snapshot_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.snapshot.unwrap().snapshot_id, s.snapshot_id);
    let list = c
        .controller
        .list_snapshots(csi::ListSnapshotsRequest {
            source_volume_id: vol.volume_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.entries.len(), 1);

    // A volume with a live snapshot cannot go (Cinder); the snapshot can.
    let err = c
        .controller
        .delete_volume(csi::DeleteVolumeRequest {
            volume_id: vol.volume_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    for _ in 0..2 {
        c.controller
            .delete_snapshot(csi::DeleteSnapshotRequest {
                snapshot_id: s.snapshot_id.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    assert!(
        lv(&lvs(&vg.name), &snap_lv).is_none(),
        "snapshot LV removed"
    );
    let err = c
        .controller
        .get_snapshot(csi::GetSnapshotRequest {
            snapshot_id: s.snapshot_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    for id in [&vol.volume_id, &other.volume_id, &vol.volume_id] {
        c.controller
            .delete_volume(csi::DeleteVolumeRequest {
                volume_id: id.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    assert!(lv(&lvs(&vg.name), &vol_lv).is_none(), "volume LV removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "vm tier: run inside scripts/vm-run"]
async fn quota_through_the_rpcs() {
    let vg = LoopVg::create("lvsnapquota", 512);
    let (driver, _state) = all_in_one(&vg, &["--default-quota", "snapshots=2,gigabytes=4"]).await;
    let mut c = driver.clients().await;
    let vol = create_volume(&mut c, "pvc-q", 8 * MIB, &[]).await;
    let a = snapshot(&mut c, "q-1", &vol.volume_id, &[]).await.unwrap();
    snapshot(&mut c, "q-2", &vol.volume_id, &[]).await.unwrap();
    let err = snapshot(&mut c, "q-3", &vol.volume_id, &[])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert_eq!(
        err.message(),
        "Maximum number of snapshots allowed (2) exceeded"
    );
    let list = c
        .controller
        .list_snapshots(csi::ListSnapshotsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.entries.len(), 2, "no record left by the refused call");
    assert_eq!(
        lvs(&vg.name).as_array().unwrap().len(),
        3,
        "no LV left by the refused call"
    );
    // gigabytes is shared by volumes and snapshots: 1 + 2 used, one more
    // 1 GiB volume fits the limit of 4, the next does not.
    create_volume(&mut c, "pvc-q2", 8 * MIB, &[]).await;
    let err = create_volume_err(&mut c, "pvc-q3").await;
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert_eq!(
        err.message(),
        "Requested volume or snapshot exceeds allowed gigabytes quota. Requested 1G, quota is 4G and 4G has been consumed."
    );
    // Both over: Cinder's gigabytes message wins over the snapshots one.
    let err = snapshot(&mut c, "q-4", &vol.volume_id, &[])
        .await
        .unwrap_err();
    assert!(
        err.message()
            .starts_with("Requested volume or snapshot exceeds allowed gigabytes quota."),
        "{err:?}"
    );
    // Deleting a snapshot frees its slot.
    c.controller
        .delete_snapshot(csi::DeleteSnapshotRequest {
            snapshot_id: a.snapshot_id,
            ..Default::default()
        })
        .await
        .unwrap();
    snapshot(&mut c, "q-3", &vol.volume_id, &[]).await.unwrap();
}

async fn create_volume_err(c: &mut CsiClients, name: &str) -> tonic::Status {
    c.controller
        .create_volume(csi::CreateVolumeRequest {
            name: name.into(),
            capacity_range: Some(csi::CapacityRange {
                required_bytes: 8 * MIB,
                limit_bytes: 0,
            }),
            volume_capabilities: vec![mount_cap("")],
            ..Default::default()
        })
        .await
        .unwrap_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "vm tier: run inside scripts/vm-run"]
async fn validation_pagination_and_failure_paths() {
    let vg = LoopVg::create("lvsnapvalid", 256);
    let (driver, _state) = all_in_one(&vg, &[]).await;
    let mut c = driver.clients().await;

    for (name, source, code) in [
        ("", "x", Code::InvalidArgument),
        ("n", "", Code::InvalidArgument),
        (&*"x".repeat(129), "x", Code::InvalidArgument),
        ("bad\u{7}name", "x", Code::InvalidArgument),
        ("ok-name", "no-such-volume", Code::NotFound),
    ] {
        let err = snapshot(&mut c, name, source, &[]).await.unwrap_err();
        assert_eq!(err.code(), code, "{name:?}/{source:?}: {err:?}");
    }
    let err = snapshot(&mut c, "p", "v", &[("colour", "red")])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = c
        .controller
        .delete_snapshot(csi::DeleteSnapshotRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    c.controller
        .delete_snapshot(csi::DeleteSnapshotRequest {
            snapshot_id: "unknown".into(),
            ..Default::default()
        })
        .await
        .unwrap();

    let vol = create_volume(&mut c, "pvc-page", 4 * MIB, &[]).await;
    let long = "s".repeat(128);
    let mut ids = vec![
        snapshot(&mut c, &long, &vol.volume_id, &[("snapshotSize", "4Mi")])
            .await
            .unwrap()
            .snapshot_id,
    ];
    for i in 0..4 {
        ids.push(
            snapshot(
                &mut c,
                &format!("page-{i}"),
                &vol.volume_id,
                &[("snapshotSize", "4Mi")],
            )
            .await
            .unwrap()
            .snapshot_id,
        );
    }
    let first = c
        .controller
        .list_snapshots(csi::ListSnapshotsRequest {
            max_entries: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.entries.len(), 2);
    assert!(!first.next_token.is_empty());
    let rest = c
        .controller
        .list_snapshots(csi::ListSnapshotsRequest {
            starting_token: first.next_token,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.entries.len(), 3);
    assert!(rest.next_token.is_empty());
    let mut seen: Vec<String> = first
        .entries
        .iter()
        .chain(rest.entries.iter())
        .map(|e| e.snapshot.clone().unwrap().snapshot_id)
        .collect();
    seen.sort();
    ids.sort();
    assert_eq!(seen, ids);
    let err = c
        .controller
        .list_snapshots(csi::ListSnapshotsRequest {
            starting_token: "not-a-token".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Aborted);

    // lvcreate failing on the node: a COW area larger than the free space.
    let big = create_volume(&mut c, "pvc-big", 160 * MIB, &[]).await;
    let err = snapshot(&mut c, "too-big", &big.volume_id, &[])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(
        err.message().contains("too-big") || err.message().contains("failed on node"),
        "{err:?}"
    );
    // Re-issued: re-dispatched, same answer, no second quota charge (usage unchanged).
    let err2 = snapshot(&mut c, "too-big", &big.volume_id, &[])
        .await
        .unwrap_err();
    assert_eq!(err2.code(), Code::ResourceExhausted);
    // With a smaller COW area via the class parameter under another name it works.
    let ok = snapshot(
        &mut c,
        "small-cow",
        &big.volume_id,
        &[("snapshotSize", "10%")],
    )
    .await
    .unwrap();
    assert!(ok.ready_to_use);
}
