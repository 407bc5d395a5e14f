//! VM tier: device classes on real LVM. One node, two VGs on separate loop
//! PVs: `vmcls-thick` (two PVs: a linear class `slow`, the default, and a
//! raid1 class `mirror`) and `vmcls-thin` (a 64 MiB thin pool: class `fast`,
//! overprovisionRatio=4). Volumes go to the class asked; GetCapacity per
//! class before and after; the thin class takes more than its pool's size
//! up to the ratio and refuses past it; raid1 across the two PVs as `lvs -o
//! segtype` reports it; a snapshot and a restore in each class. And a group
//! snapshot whose members are in two VGs, frozen and cut each in its own.
mod common;
#[path = "common/vm.rs"]
mod vm;

use std::process::Command;
use std::time::Duration;

use common::{Driver, mount_cap};
use lvsnap::client::CsiClients;
use lvsnap::proto::v1 as csi;
use tonic::Code;
use vm::LoopVg;

const MIB: i64 = 1 << 20;

/// all-in-one on node `vm-node` serving `classes`, its state in the
/// returned directory.
async fn start(classes: &[&str]) -> (Driver, tempfile::TempDir) {
    let state = tempfile::tempdir().expect("tempdir");
    let state_s = state.path().display().to_string();
    let mut args = vec!["all-in-one", "--node-id", "vm-node"];
    for c in classes {
        args.extend(["--device-class", c]);
    }
    args.extend(["--state-dir", &state_s, "--create-timeout", "45s"]);
    (Driver::start(&args).await, state)
}

fn params(class: &str) -> std::collections::HashMap<String, String> {
    [("deviceClass".to_string(), class.to_string())].into()
}

async fn create(
    c: &mut CsiClients,
    name: &str,
    mib: i64,
    class: &str,
    source: Option<csi::VolumeContentSource>,
) -> Result<csi::Volume, tonic::Status> {
    c.controller
        .create_volume(csi::CreateVolumeRequest {
            name: name.into(),
            capacity_range: Some(csi::CapacityRange {
                required_bytes: mib * MIB,
                limit_bytes: 0,
            }),
            volume_capabilities: vec![mount_cap("")],
            parameters: params(class),
            volume_content_source: source,
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner().volume.expect("volume"))
}

async fn capacity(c: &mut CsiClients, class: &str) -> i64 {
    c.controller
        .get_capacity(csi::GetCapacityRequest {
            parameters: params(class),
            ..Default::default()
        })
        .await
        .expect("GetCapacity")
        .into_inner()
        .available_capacity
}

/// The capacity report is coalesced after a change (250 ms quiet, 2 s at
/// most) and nothing outside the process is told when it lands: a bounded
/// poll of the figure.
async fn capacity_becomes(c: &mut CsiClients, class: &str, want: impl Fn(i64) -> bool) -> i64 {
    let mut last = 0;
    for _ in 0..100 {
        last = capacity(c, class).await;
        if want(last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("class {class}: capacity stayed {last}");
}

async fn snapshot(c: &mut CsiClients, name: &str, source: &str) -> csi::Snapshot {
    common::create_snapshot(c, name, source).await
}

fn from_snapshot(id: &str) -> Option<csi::VolumeContentSource> {
    Some(csi::VolumeContentSource {
        r#type: Some(csi::volume_content_source::Type::Snapshot(
            csi::volume_content_source::SnapshotSource {
                snapshot_id: id.into(),
            },
        )),
    })
}

/// `lvs -o <field>` of `vg/volume-<id>`.
/// A snapshot of `source` (class `class`, `mib` MiB) and a restore of it
/// in the same class: both ready, the restore of `segtype` in `vg`.
async fn snapshot_and_restore(
    c: &mut CsiClients,
    class: &str,
    source: &csi::Volume,
    mib: i64,
    (vg, segtype): (&str, &str),
) {
    let snap = snapshot(c, &format!("snap-{class}"), &source.volume_id).await;
    assert!(snap.ready_to_use);
    let restore = from_snapshot(&snap.snapshot_id);
    let r = create(c, &format!("pvc-{class}-r"), mib, class, restore)
        .await
        .unwrap_or_else(|e| panic!("{class} restore: {e:?}"));
    assert_eq!(lv_field(vg, &r.volume_id, "segtype"), segtype);
}

fn lv_field(vg: &str, id: &str, field: &str) -> String {
    let out = Command::new("lvs")
        .args(["--noheadings", "-o", field, &format!("{vg}/volume-{id}")])
        .output()
        .expect("lvs");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// What a raid1 (two copies) in `vg` can take by LVM's own figures: half
/// the VG's free space, and at most the second largest PV's free space
/// less one extent of metadata (each copy on its own PV).
fn raid1_room(vg: &str) -> i64 {
    let field = |f: &str| -> Vec<i64> {
        let out = Command::new("vgs")
            .args(["--noheadings", "--units", "b", "--nosuffix", "-o", f, vg])
            .output()
            .expect("vgs");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(|n| n.parse().expect("bytes"))
            .collect()
    };
    let mut pvs = field("pv_free");
    pvs.sort_unstable_by(|a, b| b.cmp(a));
    let vg_free = field("vg_free")[0];
    (vg_free / 2).min(pvs[1] - 4 * MIB)
}

#[tokio::test]
#[ignore = "VM tier: run inside scripts/vm-run"]
async fn volumes_go_to_their_class_with_its_capacity_and_options() {
    let _thick = LoopVg::create_pvs("vmcls-thick", &[128, 128]);
    let thin = LoopVg::create("vmcls-thin", 128);
    let made = Command::new("lvcreate")
        .args(["-q", "--type", "thin-pool", "-L", "64m", "-n", "pool"])
        .arg(&thin.name)
        .status()
        .expect("lvcreate thin pool");
    assert!(made.success());
    let (driver, _state) = start(&[
        "name=slow,vg=vmcls-thick,default=true",
        "name=mirror,vg=vmcls-thick,type=raid1,mirrors=1",
        "name=fast,vg=vmcls-thin,thinPool=pool,overprovisionRatio=4",
    ])
    .await;
    let mut c = driver.clients().await;

    // Before: slow = the thick VG's free space, mirror half of it, fast
    // = 4 × the 64 MiB pool (nothing allocated, no data yet).
    let slow0 = capacity(&mut c, "slow").await;
    let mirror0 = capacity(&mut c, "mirror").await;
    let fast0 = capacity(&mut c, "fast").await;
    println!("capacity before: slow {slow0} mirror {mirror0} fast {fast0}");
    assert!(slow0 > 240 * MIB && slow0 <= 256 * MIB, "{slow0}");
    assert_eq!(mirror0, raid1_room("vmcls-thick"));
    assert_eq!(mirror0, slow0 / 2 - 4 * MIB, "two equal PVs");
    assert_eq!(fast0, 256 * MIB);

    // An unknown class is INVALID_ARGUMENT.
    let err = create(&mut c, "pvc-nowhere", 8, "gold", None)
        .await
        .expect_err("unknown class");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");

    // slow: linear in vmcls-thick, with a snapshot and a restore there.
    let s = create(&mut c, "pvc-slow", 16, "slow", None)
        .await
        .expect("slow");
    assert_eq!(lv_field("vmcls-thick", &s.volume_id, "segtype"), "linear");
    snapshot_and_restore(&mut c, "slow", &s, 16, ("vmcls-thick", "linear")).await;
    let slow1 = capacity_becomes(&mut c, "slow", |b| b <= slow0 - 48 * MIB).await;
    println!("slow after 16 MiB + its 16 MiB snapshot + a 16 MiB restore: {slow1}");
    assert_eq!(slow1, slow0 - 48 * MIB);

    // mirror: raid1 across the two PVs, in the same VG. (Its capacity is
    // the VG's free space halved: lvm2 also needs each copy on its own PV,
    // so the linear LVs above stay small enough to leave room on the first.)
    let m = create(&mut c, "pvc-mirror", 16, "mirror", None)
        .await
        .expect("mirror");
    assert_eq!(lv_field("vmcls-thick", &m.volume_id, "segtype"), "raid1");
    let devices = lv_field("vmcls-thick", &m.volume_id, "devices");
    println!("raid1 devices: {devices}");
    assert_eq!(devices.matches("_rimage_").count(), 2, "{devices}");
    let want = raid1_room("vmcls-thick");
    let mirror1 = capacity_becomes(&mut c, "mirror", |b| b == want).await;
    println!("mirror after a 16 MiB raid1 (by the PVs' free space): {mirror1}");
    assert!(mirror1 <= (slow1 - 40 * MIB) / 2, "{mirror1}");
    // A thick snapshot of the raid1 volume, restored into a raid1 volume.
    snapshot_and_restore(&mut c, "mirror", &m, 16, ("vmcls-thick", "raid1")).await;
    // The snapshot's 16 MiB COW area and the restore's two 16 MiB images
    // with a 4 MiB metadata LV each: 56 MiB of the VG; the class offers
    // what the PVs hold.
    let want = raid1_room("vmcls-thick");
    let mirror2 = capacity_becomes(&mut c, "mirror", |b| b == want).await;
    println!("mirror after its 16 MiB snapshot and a 16 MiB raid1 restore: {mirror2}");
    assert!(mirror2 <= mirror1 - 28 * MIB, "{mirror2}");

    // fast: thin in vmcls-thin; 80 MiB volume, its snapshot, a restore:
    // 240 MiB virtual in a 64 MiB pool.
    let f = create(&mut c, "pvc-fast", 80, "fast", None)
        .await
        .expect("fast");
    assert_eq!(lv_field("vmcls-thin", &f.volume_id, "segtype"), "thin");
    snapshot_and_restore(&mut c, "fast", &f, 80, ("vmcls-thin", "thin")).await;
    let fast1 = capacity_becomes(&mut c, "fast", |b| b <= 16 * MIB).await;
    println!("fast after 240 MiB virtual in the 64 MiB pool: {fast1}");
    assert_eq!(fast1, 16 * MIB);
    // Past the ratio: refused, nothing made.
    let err = create(&mut c, "pvc-fast-2", 80, "fast", None)
        .await
        .expect_err("past the ratio");
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    let err = c
        .controller
        .create_snapshot(csi::CreateSnapshotRequest {
            name: "snap-fast-2".into(),
            source_volume_id: f.volume_id.clone(),
            ..Default::default()
        })
        .await
        .expect_err("thin snapshot past the ratio");
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    // The thick classes did not move.
    assert_eq!(capacity(&mut c, "mirror").await, mirror2);
    drop(driver);
}

/// `lvs -o <field>` of LV `vg/lv`.
fn lv_named(vg: &str, lv: &str, field: &str) -> String {
    let out = Command::new("lvs")
        .args(["--noheadings", "-o", field, &format!("{vg}/{lv}")])
        .output()
        .expect("lvs");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test]
#[ignore = "VM tier: run inside scripts/vm-run"]
async fn a_group_snapshot_spans_two_vgs_frozen_together() {
    let _a = LoopVg::create("vmgx-a", 64);
    let _b = LoopVg::create("vmgx-b", 64);
    let (driver, _state) = start(&["name=data,vg=vmgx-a,default=true", "name=log,vg=vmgx-b"]).await;
    let mut c = driver.clients().await;
    let data = create(&mut c, "pvc-data", 16, "data", None)
        .await
        .expect("data volume");
    let log = create(&mut c, "pvc-log", 8, "log", None)
        .await
        .expect("log volume");
    let g = c
        .group
        .create_volume_group_snapshot(csi::CreateVolumeGroupSnapshotRequest {
            name: "vgs-db".into(),
            source_volume_ids: vec![data.volume_id.clone(), log.volume_id.clone()],
            // The VM's LVM commands take up to a few seconds each.
            parameters: [("groupFreezeTimeout".to_string(), "60s".to_string())].into(),
            ..Default::default()
        })
        .await
        .expect("CreateVolumeGroupSnapshot across two VGs")
        .into_inner()
        .group_snapshot
        .expect("group snapshot");
    assert!(g.ready_to_use, "{g:?}");
    assert_eq!(g.snapshots.len(), 2);
    for (volume, vg) in [(&data, "vmgx-a"), (&log, "vmgx-b")] {
        let origin = format!("volume-{}", volume.volume_id);
        let member = g
            .snapshots
            .iter()
            .find(|s| s.source_volume_id == volume.volume_id)
            .expect("a member per volume");
        assert!(member.ready_to_use);
        let lv = format!("_snapshot-{}", member.snapshot_id);
        assert_eq!(lv_named(vg, &lv, "origin"), origin, "cut in its own VG");
        let attr = lv_named(vg, &origin, "lv_attr");
        assert_eq!(attr.chars().nth(4), Some('a'), "thawed: {attr}");
    }
    c.group
        .delete_volume_group_snapshot(csi::DeleteVolumeGroupSnapshotRequest {
            group_snapshot_id: g.group_snapshot_id.clone(),
            ..Default::default()
        })
        .await
        .expect("DeleteVolumeGroupSnapshot");
    for member in &g.snapshots {
        let vg = if member.source_volume_id == data.volume_id {
            "vmgx-a"
        } else {
            "vmgx-b"
        };
        let lv = format!("_snapshot-{}", member.snapshot_id);
        assert_eq!(lv_named(vg, &lv, "lv_name"), "", "member LV removed");
    }
    drop(driver);
}
