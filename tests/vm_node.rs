//! VM tier: the node data path and content sources on real LVM, through
//! `lvsnap all-in-one` over gRPC: stage ext4/xfs, publish read-write and
//! read-only, raw block, unpublish/unstage twice, online expansion seen in
//! stats, restore and clone (thick and thin) compared byte for byte, and a
//! device holding data never reformatted.
mod common;
#[path = "common/vm.rs"]
mod vm;

use std::path::{Path, PathBuf};

use common::{block_cap, mount_cap};
use lvsnap::client::CsiClients;
use lvsnap::proto::v1 as csi;
use tonic::Code;
use vm::{LoopVg, all_in_one, read_at, write_at};

const MIB: i64 = 1 << 20;

async fn create(
    c: &mut CsiClients,
    name: &str,
    bytes: i64,
    source: Option<csi::volume_content_source::Type>,
) -> Result<csi::Volume, tonic::Status> {
    c.controller
        .create_volume(csi::CreateVolumeRequest {
            name: name.into(),
            capacity_range: Some(csi::CapacityRange {
                required_bytes: bytes,
                limit_bytes: 0,
            }),
            volume_capabilities: vec![mount_cap("")],
            volume_content_source: source.map(|t| csi::VolumeContentSource { r#type: Some(t) }),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner().volume.expect("volume"))
}

fn from_snapshot(id: &str) -> Option<csi::volume_content_source::Type> {
    Some(csi::volume_content_source::Type::Snapshot(
        csi::volume_content_source::SnapshotSource {
            snapshot_id: id.into(),
        },
    ))
}

fn from_volume(id: &str) -> Option<csi::volume_content_source::Type> {
    Some(csi::volume_content_source::Type::Volume(
        csi::volume_content_source::VolumeSource {
            volume_id: id.into(),
        },
    ))
}

async fn snapshot(c: &mut CsiClients, name: &str, source: &str) -> csi::Snapshot {
    common::create_snapshot(c, name, source).await
}

fn device(vg: &LoopVg, volume_id: &str) -> String {
    format!("/dev/{}/volume-{volume_id}", vg.name)
}

/// 3 MiB of a recognisable pattern plus a zero MiB in the middle (sparse path).
fn pattern(seed: u8) -> Vec<u8> {
    let mut v: Vec<u8> = (0..3 * MIB as usize)
        .map(|i| (i % 251) as u8 ^ seed)
        .collect();
    v[MIB as usize..2 * MIB as usize].fill(0);
    v
}

async fn stage(c: &mut CsiClients, id: &str, staging: &Path, cap: csi::VolumeCapability) {
    c.node
        .node_stage_volume(csi::NodeStageVolumeRequest {
            volume_id: id.into(),
            staging_target_path: staging.display().to_string(),
            volume_capability: Some(cap),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("NodeStageVolume {id}: {e:?}"));
}

async fn publish(
    c: &mut CsiClients,
    id: &str,
    staging: &Path,
    target: &Path,
    cap: csi::VolumeCapability,
    readonly: bool,
) -> Result<(), tonic::Status> {
    c.node
        .node_publish_volume(csi::NodePublishVolumeRequest {
            volume_id: id.into(),
            staging_target_path: staging.display().to_string(),
            target_path: target.display().to_string(),
            volume_capability: Some(cap),
            readonly,
            ..Default::default()
        })
        .await
        .map(|_| ())
}

async fn unpublish(c: &mut CsiClients, id: &str, target: &Path) {
    c.node
        .node_unpublish_volume(csi::NodeUnpublishVolumeRequest {
            volume_id: id.into(),
            target_path: target.display().to_string(),
        })
        .await
        .unwrap_or_else(|e| panic!("NodeUnpublishVolume {id}: {e:?}"));
}

async fn unstage(c: &mut CsiClients, id: &str, staging: &Path) {
    c.node
        .node_unstage_volume(csi::NodeUnstageVolumeRequest {
            volume_id: id.into(),
            staging_target_path: staging.display().to_string(),
        })
        .await
        .unwrap_or_else(|e| panic!("NodeUnstageVolume {id}: {e:?}"));
}

async fn stats(c: &mut CsiClients, id: &str, path: &Path) -> csi::NodeGetVolumeStatsResponse {
    c.node
        .node_get_volume_stats(csi::NodeGetVolumeStatsRequest {
            volume_id: id.into(),
            volume_path: path.display().to_string(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("NodeGetVolumeStats {id}: {e:?}"))
        .into_inner()
}

fn mounted(path: &Path) -> Option<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        (left.split(' ').nth(4)? == path.to_str()?).then(|| {
            format!(
                "{} {}",
                right.split(' ').next().unwrap_or(""),
                left.split(' ').nth(5).unwrap_or("")
            )
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "vm tier: run inside scripts/vm-run"]
async fn stage_publish_expand_and_clean_up_ext4_and_xfs() {
    let vg = LoopVg::create("lvsnapnode", 1600);
    let (driver, _state) = all_in_one(&vg, &[]).await;
    let mut c = driver.clients().await;
    let dir = tempfile::tempdir().unwrap();
    for fs in ["ext4", "xfs"] {
        let v = create(&mut c, &format!("pvc-{fs}"), 320 * MIB, None)
            .await
            .unwrap();
        let staging = dir.path().join(format!("{fs}-staging"));
        let rw = dir.path().join(format!("{fs}-rw"));
        let ro = dir.path().join(format!("{fs}-ro"));
        stage(&mut c, &v.volume_id, &staging, mount_cap(fs)).await;
        stage(&mut c, &v.volume_id, &staging, mount_cap(fs)).await; // idempotent
        assert!(
            mounted(&staging).unwrap().starts_with(fs),
            "{:?}",
            mounted(&staging)
        );
        publish(&mut c, &v.volume_id, &staging, &rw, mount_cap(fs), false)
            .await
            .unwrap();
        publish(&mut c, &v.volume_id, &staging, &rw, mount_cap(fs), false)
            .await
            .unwrap();
        std::fs::write(rw.join("hello"), b"world").unwrap();
        publish(&mut c, &v.volume_id, &staging, &ro, mount_cap(fs), true)
            .await
            .unwrap();
        assert_eq!(std::fs::read(ro.join("hello")).unwrap(), b"world");
        let refused = std::fs::write(ro.join("nope"), b"x").expect_err("read-only");
        assert_eq!(refused.raw_os_error(), Some(30), "EROFS: {refused}");

        // Grow the mounted filesystem: ControllerExpandVolume, then the node.
        let before = stats(&mut c, &v.volume_id, &rw).await;
        let total_before = before.usage[0].total;
        assert!(!before.volume_condition.unwrap().abnormal);
        assert_eq!(before.usage.len(), 2, "bytes and inodes");
        let grown = c
            .controller
            .controller_expand_volume(csi::ControllerExpandVolumeRequest {
                volume_id: v.volume_id.clone(),
                capacity_range: Some(csi::CapacityRange {
                    required_bytes: 512 * MIB,
                    limit_bytes: 0,
                }),
                volume_capability: Some(mount_cap(fs)),
                ..Default::default()
            })
            .await
            .expect("ControllerExpandVolume")
            .into_inner();
        assert_eq!(grown.capacity_bytes, 512 * MIB);
        assert!(grown.node_expansion_required);
        let node = c
            .node
            .node_expand_volume(csi::NodeExpandVolumeRequest {
                volume_id: v.volume_id.clone(),
                volume_path: rw.display().to_string(),
                staging_target_path: staging.display().to_string(),
                ..Default::default()
            })
            .await
            .expect("NodeExpandVolume")
            .into_inner();
        assert_eq!(node.capacity_bytes, 512 * MIB);
        let after = stats(&mut c, &v.volume_id, &rw).await;
        println!("{fs}: total {total_before} -> {}", after.usage[0].total);
        assert!(
            after.usage[0].total > total_before + 150 * MIB,
            "{fs} grew: {total_before} -> {}",
            after.usage[0].total
        );
        assert_eq!(std::fs::read(rw.join("hello")).unwrap(), b"world");

        for target in [&rw, &ro] {
            unpublish(&mut c, &v.volume_id, target).await;
            unpublish(&mut c, &v.volume_id, target).await;
            assert!(!target.exists(), "target removed");
        }
        unstage(&mut c, &v.volume_id, &staging).await;
        unstage(&mut c, &v.volume_id, &staging).await;
        assert!(mounted(&staging).is_none());

        // Staged again: the data is still there (not reformatted).
        stage(&mut c, &v.volume_id, &staging, mount_cap(fs)).await;
        assert_eq!(std::fs::read(staging.join("hello")).unwrap(), b"world");
        // Asking for the other filesystem never reformats.
        unstage(&mut c, &v.volume_id, &staging).await;
        let other = if fs == "ext4" { "xfs" } else { "ext4" };
        let err = c
            .node
            .node_stage_volume(csi::NodeStageVolumeRequest {
                volume_id: v.volume_id.clone(),
                staging_target_path: staging.display().to_string(),
                volume_capability: Some(mount_cap(other)),
                ..Default::default()
            })
            .await
            .expect_err("holds another filesystem");
        assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
        stage(&mut c, &v.volume_id, &staging, mount_cap(fs)).await;
        assert_eq!(std::fs::read(staging.join("hello")).unwrap(), b"world");
        unstage(&mut c, &v.volume_id, &staging).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "vm tier: run inside scripts/vm-run"]
async fn raw_block_publish_and_a_device_with_data_is_never_formatted() {
    let vg = LoopVg::create("lvsnapblock", 256);
    let (driver, _state) = all_in_one(&vg, &[]).await;
    let mut c = driver.clients().await;
    let dir = tempfile::tempdir().unwrap();
    let v = create(&mut c, "pvc-block", 16 * MIB, None).await.unwrap();
    let data = pattern(7);
    write_at(&device(&vg, &v.volume_id), &data);
    let staging = dir.path().join("staging");
    let target: PathBuf = dir.path().join("pods/x/block");
    stage(&mut c, &v.volume_id, &staging, block_cap()).await;
    publish(&mut c, &v.volume_id, &staging, &target, block_cap(), false)
        .await
        .unwrap();
    assert_eq!(read_at(target.to_str().unwrap(), data.len()), data);
    let st = stats(&mut c, &v.volume_id, &target).await;
    assert_eq!(st.usage[0].total, 16 * MIB);
    unpublish(&mut c, &v.volume_id, &target).await;
    unpublish(&mut c, &v.volume_id, &target).await;
    assert!(!target.exists());
    unstage(&mut c, &v.volume_id, &staging).await;

    // A device holding a filesystem is never formatted with another one.
    let status = std::process::Command::new("mkfs.ext4")
        .args(["-q", &device(&vg, &v.volume_id)])
        .status()
        .unwrap();
    assert!(status.success());
    let err = c
        .node
        .node_stage_volume(csi::NodeStageVolumeRequest {
            volume_id: v.volume_id.clone(),
            staging_target_path: staging.display().to_string(),
            volume_capability: Some(mount_cap("xfs")),
            ..Default::default()
        })
        .await
        .expect_err("never reformatted");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("ext4"), "{err:?}");
    let probe = std::process::Command::new("blkid")
        .args([
            "-p",
            "-s",
            "TYPE",
            "-o",
            "value",
            &device(&vg, &v.volume_id),
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&probe.stdout).trim(), "ext4");
}

/// Restore and clone, thick (`thin=false`) and thin, compared byte for byte.
async fn restore_and_clone(vg: &LoopVg, extra: &[&str], tag: &str) {
    let (driver, _state) = all_in_one(vg, extra).await;
    let mut c = driver.clients().await;
    let src = create(&mut c, &format!("pvc-src-{tag}"), 16 * MIB, None)
        .await
        .unwrap();
    let dev = device(vg, &src.volume_id);
    let before = pattern(1);
    write_at(&dev, &before);
    let snap = snapshot(&mut c, &format!("snap-{tag}"), &src.volume_id).await;
    assert!(snap.ready_to_use);
    let after = pattern(2);
    write_at(&dev, &after);

    // Restore: the snapshot's data, not what was written after.
    let restored = create(
        &mut c,
        &format!("pvc-restored-{tag}"),
        16 * MIB,
        from_snapshot(&snap.snapshot_id),
    )
    .await
    .expect("restore");
    assert_eq!(restored.capacity_bytes, 16 * MIB);
    assert!(matches!(
        restored
            .content_source
            .as_ref()
            .and_then(|s| s.r#type.as_ref()),
        Some(csi::volume_content_source::Type::Snapshot(_))
    ));
    assert_eq!(
        read_at(&device(vg, &restored.volume_id), before.len()),
        before
    );
    // Restore bigger than the snapshot works; smaller is OUT_OF_RANGE.
    let bigger = create(
        &mut c,
        &format!("pvc-bigger-{tag}"),
        32 * MIB,
        from_snapshot(&snap.snapshot_id),
    )
    .await
    .expect("restore into a bigger volume");
    assert_eq!(bigger.capacity_bytes, 32 * MIB);
    assert_eq!(
        read_at(&device(vg, &bigger.volume_id), before.len()),
        before
    );
    let err = create(
        &mut c,
        &format!("pvc-small-{tag}"),
        8 * MIB,
        from_snapshot(&snap.snapshot_id),
    )
    .await
    .expect_err("smaller than the snapshot");
    assert_eq!(err.code(), Code::OutOfRange, "{err:?}");
    let err = create(
        &mut c,
        &format!("pvc-none-{tag}"),
        16 * MIB,
        from_snapshot("6ce2aa84-d882-58f6-b866-fcf01dffa78b"),
    )
    .await
    .expect_err("unknown snapshot");
    assert_eq!(err.code(), Code::NotFound, "{err:?}");

    // Clone: the source's current data.
    let clone = create(
        &mut c,
        &format!("pvc-clone-{tag}"),
        16 * MIB,
        from_volume(&src.volume_id),
    )
    .await
    .expect("clone");
    assert_eq!(read_at(&device(vg, &clone.volume_id), after.len()), after);
    // The copies are independent of their sources.
    write_at(&device(vg, &clone.volume_id), &pattern(3));
    assert_eq!(read_at(&dev, after.len()), after);
    assert_eq!(
        read_at(&device(vg, &restored.volume_id), before.len()),
        before
    );

    // Quota: every new volume is charged; the clone's temporary snapshot is gone.
    let lvs = std::process::Command::new("lvs")
        .args(["--noheadings", "-o", "lv_name", &vg.name])
        .output()
        .unwrap();
    let names = String::from_utf8_lossy(&lvs.stdout);
    assert_eq!(
        names
            .lines()
            .filter(|l| l.trim().starts_with("_snapshot-"))
            .count(),
        1,
        "only the real snapshot is left:\n{names}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "vm tier: run inside scripts/vm-run"]
async fn restore_and_clone_thick() {
    let vg = LoopVg::create("lvsnapthick", 512);
    restore_and_clone(&vg, &[], "thick").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "vm tier: run inside scripts/vm-run"]
async fn restore_and_clone_thin() {
    let vg = LoopVg::create("lvsnapthin", 512);
    let out = std::process::Command::new("lvcreate")
        .args([
            "-q",
            "--type",
            "thin-pool",
            "-L",
            "256m",
            "-n",
            "pool",
            &vg.name,
        ])
        .env("LC_ALL", "C")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    restore_and_clone(&vg, &["--thin-pool", "pool"], "thin").await;
}
