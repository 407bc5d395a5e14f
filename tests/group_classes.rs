//! Group snapshots whose members are in several device classes of one node
//! (SQLite + the in-memory LVM with two VGs, driven step by step): each
//! origin frozen and cut in its own VG, thawed after the last cut, its
//! copy-on-write space counted in its own VG; thin members (consistency
//! none) must fit their class's room together, refused before any quota.
mod common;

use common::classes::{self, NVME, in_class};
use common::groups::{freeze_and_cut_calls, group, request};
use common::harness::{GIB, Harness, MIB, VG};
use lvsnap::controller::ControllerError;
use lvsnap::records::SnapshotState;

/// n1 with `slow` (vg0, thick, default), `nvme` (vg-nvme, thick) and
/// `fast` (vg-nvme: a 1 GiB thin pool, overprovisionRatio=4).
async fn harness() -> Harness {
    let classes = [
        format!("name=slow,vg={VG},default=true"),
        format!("name=nvme,vg={NVME}"),
        format!("name=fast,vg={NVME},thinPool=pool,overprovisionRatio=4"),
    ];
    classes::harness(&classes, 4 * GIB as u64, 4 * GIB as u64).await
}

/// A volume of `class`, created and available: its id.
async fn volume(h: &Harness, name: &str, bytes: i64, class: &str) -> String {
    let _ = h
        .controller
        .create_volume(in_class(name, bytes, class))
        .await;
    h.work_all().await;
    h.executor.report_capacity().await;
    let v = h
        .controller
        .create_volume(in_class(name, bytes, class))
        .await
        .unwrap_or_else(|e| panic!("CreateVolume {name}: {e:?}"));
    assert_eq!(v.spec.device_class.as_deref(), Some(class));
    v.name
}

/// The device-mapper name of volume `id` in `vg`.
fn dm(vg: &str, id: &str) -> String {
    format!(
        "{}-volume--{}",
        vg.replace('-', "--"),
        id.replace('-', "--")
    )
}

#[tokio::test]
async fn members_in_two_vgs_are_frozen_and_cut_each_in_its_own() {
    let h = harness().await;
    let a = volume(&h, "pvc-data", 64 * MIB, "slow").await;
    let b = volume(&h, "pvc-wal", 32 * MIB, "nvme").await;
    h.fake.clear_calls();

    let g = group(&h, "vgs-db", &[&a, &b], &[]).await;
    assert!(g.group.status.ready_to_use, "{:?}", g.group.status);
    assert_eq!(
        freeze_and_cut_calls(&h),
        [
            format!("suspend {}", dm(VG, &a)),
            format!("suspend {}", dm(NVME, &b)),
            format!("lvcreate {VG}/volume-{a}"),
            format!("lvcreate {NVME}/volume-{b}"),
            format!("resume {}", dm(VG, &a)),
            format!("resume {}", dm(NVME, &b)),
        ],
        "each origin frozen in its own VG before the first cut, thawed after the last"
    );
    assert!(h.fake.suspended(VG).is_empty() && h.fake.suspended(NVME).is_empty());
    assert!(g.group.status.frozen.is_empty(), "{:?}", g.group.status);
    let (ma, mb) = (&g.members[0], &g.members[1]);
    assert_eq!((ma.spec.vg.as_str(), mb.spec.vg.as_str()), (VG, NVME));
    assert_eq!(mb.spec.device_class.as_deref(), Some("nvme"));
    assert!(h.fake.lv_names(VG).contains(&ma.spec.lv_name));
    assert!(h.fake.lv_names(NVME).contains(&mb.spec.lv_name));
    assert_eq!(h.usage("default", "snapshots").await, (2, 0));
    assert_eq!(h.usage("default", "gigabytes_nvme").await, (1 + 1, 0));

    // Deleted as one: both members' LVs go, in their VGs.
    let _ = h.controller.delete_group_snapshot(&g.group.name, &[]).await;
    h.work_all().await;
    h.controller
        .delete_group_snapshot(&g.group.name, &[])
        .await
        .expect("deleted");
    assert!(!h.fake.lv_names(VG).contains(&ma.spec.lv_name));
    assert!(!h.fake.lv_names(NVME).contains(&mb.spec.lv_name));
    assert_eq!(h.usage("default", "snapshots").await, (0, 0));
}

#[tokio::test]
async fn copy_on_write_space_is_counted_in_each_members_own_vg() {
    let h = harness().await;
    // Two nvme volumes whose full copies each fit in what vg-nvme has left,
    // but not both; vg0 has room for all three.
    let free = h.fake.free_bytes(NVME).expect("vg") as i64;
    let each = (free / 3) / (4 * MIB) * (4 * MIB);
    assert!(4 * each > free, "{free} {each}");
    let a = volume(&h, "pvc-a", 64 * MIB, "slow").await;
    let b = volume(&h, "pvc-b", each, "nvme").await;
    let c = volume(&h, "pvc-c", each, "nvme").await;
    h.fake.clear_calls();
    let params = [("snapshotSize", "100%")];
    let _ = h
        .controller
        .create_group_snapshot(request("vgs-big", &[&a, &b, &c], &params))
        .await;
    h.work_all().await;
    let g = h
        .store
        .find_group_snapshot("vgs-big")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(g.status.life.status, SnapshotState::Error);
    let message = g.status.life.error_message.clone().unwrap_or_default();
    assert!(
        message.contains("together") && message.contains(NVME),
        "planned before any freeze, in the members' own VG: {message}"
    );
    assert!(freeze_and_cut_calls(&h).is_empty(), "nothing frozen or cut");
    assert_eq!(h.usage("default", "snapshots").await, (0, 0), "released");
}

#[tokio::test]
async fn thin_members_must_fit_their_class_together() {
    let h = harness().await;
    // 1 GiB pool × 4 = 4 GiB of room: volumes of 1.5 and 1 GiB leave 1.5.
    let a = volume(&h, "pvc-a", 1536 * MIB, "fast").await;
    let b = volume(&h, "pvc-b", GIB, "fast").await;
    let none = [("consistency", "none")];
    // Together the members need 2.5 GiB of the pool's room: refused before
    // any record or reservation.
    let err = h
        .controller
        .create_group_snapshot(request("vgs-thin", &[&a, &b], &none))
        .await;
    assert!(
        matches!(&err, Err(ControllerError::Exhausted(m)) if m.contains("fast")),
        "{err:?}"
    );
    assert_eq!(h.usage("default", "snapshots").await, (0, 0));
    assert!(
        h.store
            .find_group_snapshot("vgs-thin")
            .await
            .expect("find")
            .is_none()
    );
    // The smaller one alone fits.
    let g = group(&h, "vgs-one", &[&b], &none).await;
    assert!(g.group.status.ready_to_use);
    assert_eq!(h.usage("default", "snapshots").await, (1, 0));
}
