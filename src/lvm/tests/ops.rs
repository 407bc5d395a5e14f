//! What each operation does, over the in-memory LVM: idempotency, space
//! checks before lvcreate, removal rules, thick vs thin snapshots.
use uuid::Uuid;

use super::argv::{VG, config, setup};
use crate::lvm::{ErrorKind, LvName, LvTag, VolumeType};

const MIB: u64 = 1 << 20;

fn tagged() -> (LvName, LvTag) {
    let id = Uuid::new_v4();
    (LvName::volume(id), LvTag::record(id))
}

#[tokio::test]
async fn missing_vg_is_not_found() {
    let (_, lvm) = setup(config());
    let err = lvm.vg("nope").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(
        err.to_string().contains("Volume group \"nope\" not found"),
        "{err}"
    );
    assert_eq!(
        lvm.lvs("nope").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[tokio::test]
async fn create_is_idempotent_for_the_same_tag_only() {
    let (fake, lvm) = setup(config());
    let (name, tag) = tagged();
    let first = lvm
        .create_linear(VG, &name, 5 * MIB, std::slice::from_ref(&tag))
        .await
        .unwrap();
    assert_eq!((first.size_bytes, first.existed), (8 * MIB, false));
    let lv = lvm.lv(VG, &name).await.unwrap().unwrap();
    assert_eq!(lv.attr.volume_type, VolumeType::Plain);
    assert!(lv.attr.is_active() && lv.has_tag(&tag));
    fake.clear_calls();
    let again = lvm
        .create_linear(VG, &name, 5 * MIB, std::slice::from_ref(&tag))
        .await
        .unwrap();
    assert_eq!(
        (again.name, again.size_bytes, again.existed),
        (name.clone(), 8 * MIB, true)
    );
    assert_eq!(fake.programs(), ["lvs"], "done already: no lvcreate");

    let other = LvTag::record(Uuid::new_v4());
    let err = lvm
        .create_linear(VG, &name, 5 * MIB, &[other])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    let err = lvm
        .create_linear(VG, &name, 5 * MIB, &[])
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::AlreadyExists,
        "no tag, no proof of ownership"
    );
    assert!(!fake.programs().contains(&"lvcreate".to_string()));
}

#[tokio::test]
async fn space_is_checked_before_lvcreate() {
    let (fake, lvm) = setup(config());
    let (name, tag) = tagged();
    let err = lvm
        .create_linear(VG, &name, 2048 * MIB, std::slice::from_ref(&tag))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InsufficientSpace);
    assert!(err.failure().is_none());

    lvm.create_linear(VG, &name, 600 * MIB, &[tag])
        .await
        .unwrap();
    let snap = LvName::snapshot(Uuid::new_v4());
    // Default COW size = origin size (600 MiB) > 424 MiB free.
    let err = lvm
        .lvcreate_snapshot(VG, &name, &snap, None, &[])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InsufficientSpace);
    assert!(err.to_string().contains("629145600 bytes"), "{err}");
    let err = lvm.extend(VG, &name, 1100 * MIB).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InsufficientSpace);
    assert_eq!(fake.argvs_of("lvcreate").len(), 1);
    assert!(fake.argvs_of("lvextend").is_empty());
    // A smaller COW area fits.
    let s = lvm
        .lvcreate_snapshot(VG, &name, &snap, Some(100 * MIB), &[])
        .await
        .unwrap();
    assert_eq!(
        (s.size_bytes, s.origin_size_bytes),
        (100 * MIB, Some(600 * MIB))
    );
    assert_eq!(fake.free_bytes(VG), Some(1024 * MIB - 700 * MIB));
}

#[tokio::test]
async fn zero_sizes_are_invalid() {
    let (fake, lvm) = setup(config());
    let (name, _) = tagged();
    assert_eq!(
        lvm.create_linear(VG, &name, 0, &[])
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        lvm.create_thin_pool(VG, &name, 0).await.unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    let snap = LvName::snapshot(Uuid::new_v4());
    let err = lvm
        .lvcreate_snapshot(VG, &name, &snap, Some(0), &[])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(fake.calls().is_empty());
}

#[tokio::test]
async fn thick_snapshot_makes_an_origin_that_cannot_be_removed() {
    let (fake, lvm) = setup(config());
    let (vol, _) = tagged();
    lvm.create_linear(VG, &vol, 12 * MIB, &[]).await.unwrap();
    let snap = LvName::snapshot(Uuid::new_v4());
    let s = lvm
        .lvcreate_snapshot(VG, &vol, &snap, None, &[])
        .await
        .unwrap();
    assert_eq!(
        (s.size_bytes, s.origin_size_bytes),
        (12 * MIB, Some(12 * MIB))
    );
    let s = lvm.lv(VG, &snap).await.unwrap().unwrap();
    assert!(s.attr.is_thick_snapshot() && s.is_snapshot());
    assert_eq!(s.origin.as_ref(), Some(&vol));
    assert_eq!(s.size_bytes, 12 * MIB);
    let origin = lvm.lv(VG, &vol).await.unwrap().unwrap();
    assert!(origin.attr.has_thick_snapshots());

    let err = lvm.remove(VG, &vol).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Busy);
    assert!(err.to_string().contains(snap.as_str()), "{err}");
    assert!(
        fake.argvs_of("lvremove").is_empty(),
        "lvremove -f would take the snapshot along"
    );

    let err = lvm
        .lvcreate_snapshot(VG, &snap, &LvName::snapshot(Uuid::new_v4()), None, &[])
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::InvalidArgument,
        "no snapshots of thick snapshots"
    );

    assert!(lvm.remove(VG, &snap).await.unwrap());
    assert!(!lvm.remove(VG, &snap).await.unwrap(), "absent = success");
    assert!(lvm.remove(VG, &vol).await.unwrap());
    assert!(fake.lv_names(VG).is_empty());
}

#[tokio::test]
async fn thin_pool_thin_volume_and_active_thin_snapshot() {
    let (fake, lvm) = setup(config());
    let pool = LvName::new("pool").unwrap();
    let p = lvm.create_thin_pool(VG, &pool, 100 * MIB).await.unwrap();
    assert!(p.attr.is_thin_pool());
    assert_eq!(
        lvm.create_thin_pool(VG, &pool, 100 * MIB)
            .await
            .unwrap()
            .name,
        pool,
        "idempotent"
    );
    // lvcreate losing a race to an earlier attempt still yields the pool.
    let empty = crate::lvm::CommandOutput::ok(r#"{"report":[{"lv":[]}]}"#);
    fake.respond_next("lvs", 1, empty);
    let again = lvm.create_thin_pool(VG, &pool, 100 * MIB).await.unwrap();
    assert_eq!(again.name, pool);
    assert_eq!(
        fake.argvs_of("lvcreate").len(),
        2,
        "one real, one lost race"
    );

    let (thin, tag) = tagged();
    // Thin volumes may overprovision the pool and the VG.
    let t = lvm
        .create_thin(VG, &pool, &thin, 4096 * MIB, &[tag])
        .await
        .unwrap();
    assert_eq!(t.size_bytes, 4096 * MIB);
    let t = lvm.lv(VG, &thin).await.unwrap().unwrap();
    assert!(t.attr.is_thin() && !t.is_snapshot());
    assert_eq!((t.size_bytes, t.pool.as_ref()), (4096 * MIB, Some(&pool)));

    let (snap, stag) = (
        LvName::snapshot(Uuid::new_v4()),
        LvTag::record(Uuid::new_v4()),
    );
    let s = lvm
        .lvcreate_snapshot(VG, &thin, &snap, Some(MIB), std::slice::from_ref(&stag))
        .await
        .unwrap();
    assert_eq!(
        (s.size_bytes, s.origin_size_bytes),
        (4096 * MIB, Some(4096 * MIB))
    );
    let s = lvm.lv(VG, &snap).await.unwrap().unwrap();
    assert!(s.is_snapshot() && s.attr.is_thin() && s.attr.is_active() && !s.attr.activation_skip);
    assert_eq!((s.size_bytes, s.origin.as_ref()), (4096 * MIB, Some(&thin)));
    assert!(
        !fake.argvs_of("lvcreate")[2].contains(&"--size".to_string()),
        "thin: size ignored"
    );
    assert_eq!(lvm.lvs_by_tag(VG, &stag).await.unwrap().len(), 1);
    assert_eq!(lvm.lvs_by_tag(VG, &stag).await.unwrap()[0].name, snap);

    let err = lvm.remove(VG, &pool).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Busy, "a pool with thin volumes");
    // A thin origin may go; its thin snapshot stays.
    assert!(lvm.remove(VG, &thin).await.unwrap());
    let s = lvm.lv(VG, &snap).await.unwrap().unwrap();
    assert_eq!(s.origin, None);

    let missing = LvName::new("nopool").unwrap();
    let err = lvm
        .create_thin(VG, &missing, &LvName::volume(Uuid::new_v4()), MIB, &[])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let err = lvm
        .create_thin(VG, &snap, &LvName::volume(Uuid::new_v4()), MIB, &[])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "not a pool");
}

#[tokio::test]
async fn extend_rounds_up_and_never_shrinks() {
    let (fake, lvm) = setup(config());
    let (vol, _) = tagged();
    lvm.create_linear(VG, &vol, 8 * MIB, &[]).await.unwrap();
    let lv = lvm.extend(VG, &vol, 9 * MIB).await.unwrap();
    assert_eq!(lv.size_bytes, 12 * MIB);
    let same = lvm.extend(VG, &vol, 10 * MIB).await.unwrap();
    assert_eq!(same.size_bytes, 12 * MIB);
    let smaller = lvm.extend(VG, &vol, MIB).await.unwrap();
    assert_eq!(smaller.size_bytes, 12 * MIB);
    assert_eq!(fake.argvs_of("lvextend").len(), 1);
    let err = lvm
        .extend(VG, &LvName::volume(Uuid::new_v4()), MIB)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn record_ids_trace_lvs_back_to_records() {
    let (_, lvm) = setup(config());
    let id = Uuid::new_v4();
    lvm.create_linear(VG, &LvName::volume(id), MIB, &[LvTag::record(id)])
        .await
        .unwrap();
    lvm.create_linear(VG, &LvName::new("foreign").unwrap(), MIB, &[])
        .await
        .unwrap();
    let lvs = lvm.lvs(VG).await.unwrap();
    let ours: Vec<_> = lvs.iter().filter(|l| !l.record_ids().is_empty()).collect();
    assert_eq!(ours.len(), 1);
    assert_eq!(ours[0].record_ids(), [id]);
    assert_eq!(ours[0].name.role(), Some(crate::lvm::LvRole::Volume(id)));
}

#[tokio::test]
async fn fake_constructor_and_version() {
    let (lvm, fake) = crate::lvm::Lvm::fake("vgx", 8 << 30);
    assert_eq!(lvm.vg("vgx").await.unwrap().size_bytes, 8 << 30);
    assert_eq!(lvm.config().retry_delays, [std::time::Duration::ZERO; 2]);
    assert_eq!(lvm.version().await.unwrap(), "2.03.16(2)");
    assert_eq!(fake.programs(), ["vgs", "lvm"]);
    fake.respond_next("lvm", 1, crate::lvm::CommandOutput::ok("garbage"));
    assert_eq!(lvm.version().await.unwrap_err().kind(), ErrorKind::Other);
}

#[tokio::test]
async fn oversized_cow_areas_are_capped_at_what_the_origin_can_use() {
    // 12 MiB = 3072 chunks of 4 KiB: 12 exception areas + 1 header chunk.
    assert_eq!(crate::lvm::max_cow_bytes(12 * MIB), 12 * MIB + 13 * 4096);
    assert_eq!(crate::lvm::max_cow_bytes(0), 4096);
    assert_eq!(crate::lvm::max_cow_bytes(u64::MAX), u64::MAX);
    let (fake, lvm) = setup(config());
    let (vol, _) = tagged();
    lvm.create_linear(VG, &vol, 12 * MIB, &[]).await.unwrap();
    // 10 GiB asked on a 1 GiB VG: capped to 16 MiB (extent-rounded), which fits.
    let snap = LvName::snapshot(Uuid::new_v4());
    let s = lvm
        .lvcreate_snapshot(VG, &vol, &snap, Some(10 << 30), &[])
        .await
        .unwrap();
    assert_eq!(s.size_bytes, 16 * MIB);
    assert!(fake.argvs_of("lvcreate")[1].contains(&"16777216b".to_string()));
}
