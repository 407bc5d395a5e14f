//! VM tier: every LVM operation on real LVM (lvm2 + device-mapper) inside
//! the throwaway VM of `scripts/vm-run`. All tests share one loop-backed VG
//! created on first use, and use their own LV names, so they may run in
//! parallel in one boot:
//!
//! ```text
//! cargo test --test vm_lvm --no-run        # prints the binary's path
//! scripts/vm-run -- <binary> --ignored --test-threads=2
//! ```
//!
//! Lines starting `[vm-timing]` (shown with `--nocapture`) give the time of
//! each real operation; they are figures for reports, never assertions.
use std::io::{Read, Seek, SeekFrom, Write};

use lvsnap::lvm::{ErrorKind, LvName, LvState, LvTag, VolumeType, classify, device_mapper_path};
use uuid::Uuid;

#[path = "vm_lvm/parity.rs"]
mod parity;
#[path = "vm_lvm/support.rs"]
mod support;
use support::{
    MIB, lvm, lvm_no_retry, pattern, raw, read_block, snap, timed, vg, vol, write_block,
};

#[tokio::test]
#[ignore = "vm tier: run inside scripts/vm-run"]
async fn vg_reports_sizes_and_missing_vg_is_not_found() {
    let lvm = lvm();
    let info = timed("vgs", lvm.vg(vg())).await.unwrap();
    assert_eq!(info.name, vg());
    assert_eq!(info.extent_size_bytes, 4 * MIB);
    assert!(
        info.size_bytes >= 1000 * MIB && info.free_bytes <= info.size_bytes,
        "{info:?}"
    );
    let version = timed("lvm version", lvm.version()).await.unwrap();
    assert!(version.starts_with("2."), "{version}");
    eprintln!("[vm-fixture] lvm2 {version}");
    let err = lvm.vg("lvsnap-no-such-vg").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(
        err.failure().is_some_and(|f| f.exit_code == Some(5)),
        "{err}"
    );
}

#[tokio::test]
#[ignore = "vm tier: run inside scripts/vm-run"]
async fn linear_create_is_rounded_tagged_and_idempotent() {
    let lvm = lvm();
    let (name, tag) = vol();
    let lv = timed(
        "lvcreate linear",
        lvm.create_linear(vg(), &name, 5 * MIB, std::slice::from_ref(&tag)),
    )
    .await
    .unwrap();
    assert_eq!(lv.size_bytes, 8 * MIB, "rounded up to two 4 MiB extents");
    assert!(!lv.existed);
    // Not read back by the create: read here.
    let lv = lvm.lv(vg(), &name).await.unwrap().expect("made");
    assert_eq!(lv.size_bytes, 8 * MIB);
    assert_eq!(lv.attr.volume_type, VolumeType::Plain);
    assert!(lv.attr.is_active() && lv.has_tag(&tag), "{lv:?}");
    assert_eq!(lv.record_ids(), [tag.record_id().unwrap()]);
    assert!(std::path::Path::new(&device_mapper_path(vg(), &name)).exists());

    let again = timed(
        "create again (already done)",
        lvm.create_linear(vg(), &name, 5 * MIB, std::slice::from_ref(&tag)),
    )
    .await
    .unwrap();
    assert_eq!(again.name, name);
    let found = timed("lvs by tag", lvm.lvs_by_tag(vg(), &tag))
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].name, name);

    let err = lvm
        .create_linear(vg(), &name, 5 * MIB, &[LvTag::record(Uuid::new_v4())])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    // lvm2's own answer to a second lvcreate of the same name.
    let out = raw(&[
        "lvcreate",
        "--yes",
        "--name",
        name.as_str(),
        "--size",
        "4m",
        vg(),
    ])
    .await;
    assert_eq!(out.exit_code, Some(5), "{out:?}");
    assert_eq!(
        classify(&out.stderr),
        ErrorKind::AlreadyExists,
        "{}",
        out.stderr
    );

    assert!(timed("lvremove", lvm.remove(vg(), &name)).await.unwrap());
    assert!(
        !timed("lvremove absent", lvm.remove(vg(), &name))
            .await
            .unwrap(),
        "remove twice = Ok"
    );
    assert_eq!(lvm.lv(vg(), &name).await.unwrap(), None);
}

#[tokio::test]
#[ignore = "vm tier: run inside scripts/vm-run"]
async fn thick_snapshot_keeps_the_data_of_its_time() {
    let lvm = lvm();
    let (origin, otag) = vol();
    lvm.create_linear(vg(), &origin, 8 * MIB, &[otag])
        .await
        .unwrap();
    let origin_dev = device_mapper_path(vg(), &origin);
    write_block(&origin_dev, 0, &pattern(b'A'));
    write_block(&origin_dev, 4 * MIB, &pattern(b'a'));

    let (name, tag) = snap();
    let s = timed(
        "lvcreate thick snapshot",
        lvm.lvcreate_snapshot(vg(), &origin, &name, None, std::slice::from_ref(&tag)),
    )
    .await
    .unwrap();
    assert_eq!(
        (s.size_bytes, s.origin_size_bytes),
        (8 * MIB, Some(8 * MIB))
    );
    let s = lvm.lv(vg(), &name).await.unwrap().expect("made");
    assert_eq!(s.attr.raw, "swi-a-s---");
    assert_eq!(
        (s.size_bytes, s.origin.as_ref()),
        (8 * MIB, Some(&origin)),
        "COW = origin size"
    );
    assert!(s.has_tag(&tag) && s.is_snapshot());
    let o = lvm.lv(vg(), &origin).await.unwrap().unwrap();
    assert!(o.attr.has_thick_snapshots(), "{}", o.attr.raw);

    write_block(&origin_dev, 0, &pattern(b'B'));
    let snap_dev = device_mapper_path(vg(), &name);
    assert_eq!(
        read_block(&snap_dev, 0),
        pattern(b'A'),
        "the snapshot must not see later writes"
    );
    assert_eq!(
        read_block(&snap_dev, 4 * MIB),
        pattern(b'a'),
        "unchanged blocks read through"
    );
    assert_eq!(read_block(&origin_dev, 0), pattern(b'B'));

    let err = lvm.remove(vg(), &origin).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Busy, "{err}");
    assert!(lvm.remove(vg(), &name).await.unwrap());
    assert!(!lvm.remove(vg(), &name).await.unwrap());
    assert!(lvm.remove(vg(), &origin).await.unwrap());
}

#[tokio::test]
#[ignore = "vm tier: run inside scripts/vm-run"]
async fn thin_snapshot_is_active_and_keeps_the_data_of_its_time() {
    let lvm = lvm();
    let pool = LvName::new(&format!("pool{}", Uuid::new_v4().simple())).unwrap();
    let p = timed(
        "lvcreate thin pool",
        lvm.create_thin_pool(vg(), &pool, 64 * MIB),
    )
    .await
    .unwrap();
    assert!(p.attr.is_thin_pool() && p.size_bytes == 64 * MIB, "{p:?}");
    let (origin, otag) = vol();
    let t = timed(
        "lvcreate thin",
        lvm.create_thin(vg(), &pool, &origin, 16 * MIB, &[otag]),
    )
    .await
    .unwrap();
    assert_eq!(t.size_bytes, 16 * MIB);
    let t = lvm.lv(vg(), &origin).await.unwrap().expect("made");
    assert!(
        t.attr.is_thin() && t.attr.is_active() && t.pool.as_ref() == Some(&pool),
        "{t:?}"
    );
    let origin_dev = device_mapper_path(vg(), &origin);
    write_block(&origin_dev, 0, &pattern(b'C'));

    let (name, tag) = snap();
    let s = timed(
        "lvcreate thin snapshot",
        lvm.lvcreate_snapshot(vg(), &origin, &name, None, std::slice::from_ref(&tag)),
    )
    .await
    .unwrap();
    assert_eq!(s.origin_size_bytes, Some(16 * MIB));
    let s = lvm.lv(vg(), &name).await.unwrap().expect("made");
    assert!(
        s.attr.is_thin() && s.is_snapshot() && s.origin.as_ref() == Some(&origin),
        "{s:?}"
    );
    assert!(
        s.attr.is_active() && !s.attr.activation_skip,
        "thin snapshot must be active: {}",
        s.attr.raw
    );
    assert_eq!(s.size_bytes, 16 * MIB);

    write_block(&origin_dev, 0, &pattern(b'D'));
    let snap_dev = device_mapper_path(vg(), &name);
    assert_eq!(read_block(&snap_dev, 0), pattern(b'C'));
    assert_eq!(read_block(&origin_dev, 0), pattern(b'D'));

    let grown = timed("lvextend thin", lvm.extend(vg(), &origin, 20 * MIB))
        .await
        .unwrap();
    assert_eq!(grown.size_bytes, 20 * MIB);
    assert_eq!(
        lvm.remove(vg(), &pool).await.unwrap_err().kind(),
        ErrorKind::Busy
    );
    assert!(lvm.remove(vg(), &origin).await.unwrap());
    let left = lvm.lv(vg(), &name).await.unwrap().unwrap();
    assert_eq!(left.origin, None, "a thin snapshot outlives its origin");
    assert_eq!(read_block(&snap_dev, 0), pattern(b'C'));
    assert!(lvm.remove(vg(), &name).await.unwrap());
    assert!(
        timed("lvremove thin pool", lvm.remove(vg(), &pool))
            .await
            .unwrap()
    );
}

#[tokio::test]
#[ignore = "vm tier: run inside scripts/vm-run"]
async fn snapshot_of_missing_origin_is_not_found() {
    let lvm = lvm();
    let (origin, _) = vol();
    let (name, tag) = snap();
    let err = lvm
        .lvcreate_snapshot(vg(), &origin, &name, None, &[tag])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    // lvm2's own text for it, classified the same way (and so never retried).
    let target = format!("{}/{}", vg(), origin);
    let out = raw(&[
        "lvcreate",
        "--yes",
        "--name",
        name.as_str(),
        "--snapshot",
        "--size",
        "4m",
        &target,
    ])
    .await;
    assert_ne!(out.exit_code, Some(0));
    assert_eq!(classify(&out.stderr), ErrorKind::NotFound, "{}", out.stderr);
    assert!(!ErrorKind::NotFound.is_transient());
    assert_eq!(lvm.lv(vg(), &name).await.unwrap(), None);
}

#[tokio::test]
#[ignore = "vm tier: run inside scripts/vm-run"]
async fn snapshot_larger_than_free_space_is_insufficient_space() {
    let lvm = lvm();
    // An origin of 60 % of the free space leaves less than its size free, so
    // a full-size (Cinder's default) snapshot cannot fit. Parallel tests only
    // ever take space away, which keeps it so.
    let free = lvm.vg(vg()).await.unwrap().free_bytes;
    let origin_size = free / 10 * 6 / (4 * MIB) * (4 * MIB);
    let (origin, tag) = vol();
    lvm.create_linear(vg(), &origin, origin_size, &[tag])
        .await
        .unwrap();
    let (name, _) = snap();
    let err = lvm
        .lvcreate_snapshot(vg(), &origin, &name, None, &[])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InsufficientSpace, "{err}");
    assert!(err.failure().is_none(), "refused before lvcreate: {err}");
    // lvm2's own refusal of the same snapshot is classified the same way.
    let (size, target) = (format!("{origin_size}b"), format!("{}/{}", vg(), origin));
    let out = raw(&[
        "lvcreate",
        "--yes",
        "--name",
        name.as_str(),
        "--snapshot",
        "--size",
        &size,
        &target,
    ])
    .await;
    assert_eq!(out.exit_code, Some(5), "{out:?}");
    assert_eq!(
        classify(&out.stderr),
        ErrorKind::InsufficientSpace,
        "{}",
        out.stderr
    );
    let too_big = lvm.vg(vg()).await.unwrap().size_bytes + 4 * MIB;
    let err = lvm.extend(vg(), &origin, too_big).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InsufficientSpace, "{err}");
    assert_eq!(lvm.lv(vg(), &name).await.unwrap(), None);
    assert!(lvm.remove(vg(), &origin).await.unwrap());
}

#[tokio::test]
#[ignore = "vm tier: run inside scripts/vm-run"]
async fn open_lv_cannot_be_removed_and_extend_grows() {
    let lvm = lvm_no_retry();
    let (name, tag) = vol();
    lvm.create_linear(vg(), &name, 4 * MIB, &[tag])
        .await
        .unwrap();
    let lv = timed("lvextend linear", lvm.extend(vg(), &name, 9 * MIB))
        .await
        .unwrap();
    assert_eq!(lv.size_bytes, 12 * MIB);
    let dev = device_mapper_path(vg(), &name);
    let mut held = std::fs::File::open(&dev).unwrap();
    let mut byte = [0u8; 1];
    held.read_exact(&mut byte).unwrap();
    assert!(lvm.lv(vg(), &name).await.unwrap().unwrap().attr.open);
    let err = lvm.remove(vg(), &name).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Busy, "{err}");
    drop(held);
    assert!(lvm.remove(vg(), &name).await.unwrap());
}

#[tokio::test]
#[ignore = "vm tier: run inside scripts/vm-run"]
async fn real_reports_parse_including_an_invalidated_snapshot() {
    let lvm = lvm();
    let (origin, tag) = vol();
    lvm.create_linear(vg(), &origin, 16 * MIB, &[tag])
        .await
        .unwrap();
    let (name, _) = snap();
    let s = lvm
        .lvcreate_snapshot(vg(), &origin, &name, Some(4 * MIB), &[])
        .await
        .unwrap();
    assert_eq!(s.size_bytes, 4 * MIB);
    // Overflow the 4 MiB COW area: the snapshot becomes invalid.
    let dev = device_mapper_path(vg(), &origin);
    let mut f = std::fs::OpenOptions::new().write(true).open(&dev).unwrap();
    f.seek(SeekFrom::Start(0)).unwrap();
    f.write_all(&vec![0x5a; 12 * MIB as usize]).unwrap();
    f.sync_all().unwrap();
    drop(f);
    let s = lvm.lv(vg(), &name).await.unwrap().unwrap();
    assert_eq!(s.attr.state, LvState::InvalidSnapshot, "{}", s.attr.raw);
    assert!(s.attr.is_snapshot_invalid());
    let out = raw(&[
        "lvs",
        "--reportformat",
        "json",
        "--units",
        "b",
        "--nosuffix",
        "-o",
        lvsnap::lvm::LV_FIELDS,
        vg(),
    ])
    .await;
    eprintln!("[vm-report] lvs:\n{}", out.stdout);
    let parsed = lvsnap::lvm::parse_lvs(&out.stdout).unwrap();
    assert!(
        parsed
            .iter()
            .any(|l| l.name == name && l.attr.is_snapshot_invalid())
    );
    assert!(lvm.remove(vg(), &name).await.unwrap());
    assert!(lvm.remove(vg(), &origin).await.unwrap());
}
