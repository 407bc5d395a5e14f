//! The node's view of a VG lets a create proceed without a report, and
//! never refuses it, finds it done or removes anything on its own: every
//! other answer is decided on a fresh report, and lvcreate decides what the
//! view lets through. Changes are made behind the view's back through a
//! second `Lvm` on the same fake (another program on the host).
use uuid::Uuid;

use super::argv::{VG, config, setup};
use crate::lvm::{ErrorKind, LvName, LvTag, Lvm};

const MIB: u64 = 1 << 20;

#[tokio::test]
async fn a_stale_view_costs_a_report_never_a_wrong_answer() {
    let (fake, lvm) = setup(config());
    let behind = Lvm::new(fake.clone(), config());
    let vol = LvName::volume(Uuid::new_v4());
    lvm.create_linear(VG, &vol, 8 * MIB, &[]).await.unwrap();

    // Room the view believes in but that is gone: lvcreate refuses (lvm2's
    // own check), nothing is made, and the view is forgotten.
    let filler = LvName::new("filler").unwrap();
    behind
        .create_linear(VG, &filler, 1012 * MIB, &[])
        .await
        .unwrap();
    let snap = LvName::snapshot(Uuid::new_v4());
    fake.clear_calls();
    let err = lvm
        .lvcreate_snapshot(VG, &vol, &snap, None, &[])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InsufficientSpace, "{err}");
    assert_eq!(fake.programs(), ["lvcreate"], "decided by lvcreate");
    assert!(!fake.lv_names(VG).contains(&snap.to_string()));

    // The view says no room (a fresh report, with the filler); room comes
    // back behind its back: the refusal is checked on a fresh report.
    lvm.lvs(VG).await.unwrap();
    assert!(behind.remove(VG, &filler).await.unwrap());
    fake.clear_calls();
    lvm.lvcreate_snapshot(VG, &vol, &snap, None, &[])
        .await
        .expect("room again");
    assert_eq!(fake.programs(), ["lvs", "lvcreate"], "refusal re-checked");

    // The view shows the snapshot; it is removed behind its back: a create
    // of it is not "done" on the view's word.
    let tag = LvTag::record(Uuid::new_v4());
    let tagged = LvName::snapshot(Uuid::new_v4());
    lvm.lvcreate_snapshot(VG, &vol, &tagged, None, std::slice::from_ref(&tag))
        .await
        .unwrap();
    assert!(behind.remove(VG, &tagged).await.unwrap());
    fake.clear_calls();
    let made = lvm
        .lvcreate_snapshot(VG, &vol, &tagged, None, std::slice::from_ref(&tag))
        .await
        .unwrap();
    assert!(!made.existed, "made again, not found done");
    assert_eq!(fake.programs(), ["lvs", "lvcreate"]);
    assert!(fake.lv_names(VG).contains(&tagged.to_string()));

    // Made behind its back with our tag: lvcreate says it exists, a fresh
    // report finds the tag: done (the re-applied record after a crash).
    let other = LvName::snapshot(Uuid::new_v4());
    let otag = LvTag::record(Uuid::new_v4());
    behind
        .lvcreate_snapshot(VG, &vol, &other, Some(4 * MIB), std::slice::from_ref(&otag))
        .await
        .unwrap();
    fake.clear_calls();
    let made = lvm
        .lvcreate_snapshot(VG, &vol, &other, Some(4 * MIB), std::slice::from_ref(&otag))
        .await
        .unwrap();
    assert!(made.existed);
    assert_eq!(fake.programs(), ["lvcreate", "lvs"]);
    // ... and without our tag it is someone else's: AlreadyExists.
    let err = lvm
        .lvcreate_snapshot(VG, &vol, &other, Some(4 * MIB), &[tag])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);

    // An origin the view does not know yet is looked for afresh.
    let late = LvName::volume(Uuid::new_v4());
    behind.create_linear(VG, &late, 4 * MIB, &[]).await.unwrap();
    fake.clear_calls();
    lvm.lvcreate_snapshot(VG, &late, &LvName::snapshot(Uuid::new_v4()), None, &[])
        .await
        .expect("origin found on a fresh report");
    assert_eq!(fake.programs(), ["lvs", "lvcreate"]);

    // The capacity the view reports matches lvm2's after all of this.
    assert_eq!(
        Some(lvm.capacity(VG).await.unwrap().free_bytes),
        fake.free_bytes(VG)
    );
}

#[tokio::test]
async fn a_missing_vg_is_never_a_removed_snapshot() {
    let (fake, lvm) = setup(config());
    let snap = LvName::snapshot(Uuid::new_v4());
    // The VG is there, the snapshot is not: absent = removed (Cinder).
    assert!(!lvm.remove(VG, &snap).await.unwrap());
    // No such VG: an error, not "already absent".
    let err = lvm.remove("nosuchvg", &snap).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(fake.programs(), ["lvremove", "lvremove"]);
}
