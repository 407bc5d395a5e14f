//! VM tier: group snapshots on real LVM through `lvsnap all-in-one` over
//! gRPC. Two ext4 volumes are staged (NodeStageVolume); a writer appends
//! increasing sequence numbers to a file on each, always the first volume
//! then the second. A group snapshot taken during the writes, restored, has
//! last numbers at most one step apart; two individual snapshots taken one
//! after the other are apart by whatever was written between them (both
//! gaps printed). The second member's lvcreate failing rolls the group
//! back and the writes go on; a process killed while the members are frozen
//! leaves them frozen, and its restart thaws them.
mod common;
#[path = "common/vm.rs"]
mod vm;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use common::mount_cap;
use lvsnap::client::CsiClients;
use lvsnap::proto::v1 as csi;
use lvsnap::store::{SqliteStore, Store};
use tonic::Code;
use vm::{LoopVg, all_in_one_at, lv_names};

const MIB: i64 = 1 << 20;

/// Appends `1\n`, `2\n`, … to `<a>/seq` then `<b>/seq`, step after step.
struct Writer {
    stop: Arc<AtomicBool>,
    steps: Arc<(Mutex<u64>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    fn start(a: &Path, b: &Path) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let steps = Arc::new((Mutex::new(0u64), Condvar::new()));
        let (files, done) = ([a.join("seq"), b.join("seq")], steps.clone());
        let halt = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut open: Vec<std::fs::File> = files
                .iter()
                .map(|f| {
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(f)
                        .expect("open seq file")
                })
                .collect();
            let mut i = 0u64;
            while !halt.load(Ordering::SeqCst) {
                i += 1;
                for f in &mut open {
                    f.write_all(format!("{i}\n").as_bytes()).expect("append");
                }
                let (n, cv) = &*done;
                *n.lock().expect("lock") = i;
                cv.notify_all();
            }
        });
        Writer {
            stop,
            steps,
            thread: Some(thread),
        }
    }

    fn steps(&self) -> u64 {
        *self.steps.0.lock().expect("lock")
    }

    /// Blocks until the writer has completed more than `n` steps.
    fn wait_past(&self, n: u64, what: &str) {
        let (lock, cv) = &*self.steps;
        let guard = lock.lock().expect("lock");
        let (guard, timeout) = cv
            .wait_timeout_while(guard, Duration::from_secs(120), |s| *s <= n)
            .expect("wait");
        assert!(
            !timeout.timed_out(),
            "{what}: the writer is stuck at {}",
            *guard
        );
    }

    fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().expect("writer");
        }
        self.steps()
    }
}

/// The last whole number in `<dir>/seq`.
fn last_seq(dir: &Path) -> u64 {
    let text = std::fs::read_to_string(dir.join("seq")).expect("seq file");
    let whole = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
    whole
        .lines()
        .last()
        .and_then(|l| l.parse().ok())
        .unwrap_or(0)
}

/// `dmsetup info`'s state of LV `vg/lv`: "Active" or "Suspended".
fn dm_state(vg: &str, lv: &str) -> String {
    let name = format!("{}-{}", vg.replace('-', "--"), lv.replace('-', "--"));
    let out = std::process::Command::new("dmsetup")
        .args(["info", "-c", "--noheadings", "-o", "suspended", &name])
        .output()
        .expect("dmsetup info");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

async fn volume(c: &mut CsiClients, name: &str, bytes: i64, from: Option<&str>) -> String {
    let mut req = common::volume_request(name, bytes);
    req.volume_content_source = from.map(|id| csi::VolumeContentSource {
        r#type: Some(csi::volume_content_source::Type::Snapshot(
            csi::volume_content_source::SnapshotSource {
                snapshot_id: id.into(),
            },
        )),
    });
    c.controller
        .create_volume(req)
        .await
        .unwrap_or_else(|e| panic!("CreateVolume {name}: {e:?}"))
        .into_inner()
        .volume
        .expect("volume")
        .volume_id
}

async fn stage(c: &mut CsiClients, id: &str, staging: &Path) {
    c.node
        .node_stage_volume(csi::NodeStageVolumeRequest {
            volume_id: id.into(),
            staging_target_path: staging.display().to_string(),
            volume_capability: Some(mount_cap("ext4")),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("NodeStageVolume {id}: {e:?}"));
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

async fn group(
    c: &mut CsiClients,
    name: &str,
    volumes: &[&str],
) -> Result<csi::VolumeGroupSnapshot, tonic::Status> {
    c.group
        .create_volume_group_snapshot(csi::CreateVolumeGroupSnapshotRequest {
            name: name.into(),
            source_volume_ids: volumes.iter().map(|v| v.to_string()).collect(),
            // The VM's LVM commands take up to a few seconds each.
            parameters: [("groupFreezeTimeout".to_string(), "60s".to_string())].into(),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner().group_snapshot.expect("group snapshot"))
}

async fn snapshot(c: &mut CsiClients, name: &str, volume: &str) -> String {
    c.controller
        .create_snapshot(csi::CreateSnapshotRequest {
            name: name.into(),
            source_volume_id: volume.into(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("CreateSnapshot {name}: {e:?}"))
        .into_inner()
        .snapshot
        .expect("snapshot")
        .snapshot_id
}

/// Restores snapshot `id` as a new volume, stages it, reads its last
/// sequence number, and cleans up.
async fn restored_seq(c: &mut CsiClients, id: &str, dir: &Path) -> u64 {
    let name = format!("restore-{id}");
    let v = volume(c, &name, 32 * MIB, Some(id)).await;
    let staging = dir.join(&name);
    stage(c, &v, &staging).await;
    let seq = last_seq(&staging);
    unstage(c, &v, &staging).await;
    c.controller
        .delete_volume(csi::DeleteVolumeRequest {
            volume_id: v,
            ..Default::default()
        })
        .await
        .expect("DeleteVolume");
    seq
}

/// Two staged ext4 volumes of `sizes` and their staging paths.
async fn two_staged(
    c: &mut CsiClients,
    sizes: [i64; 2],
    dir: &Path,
) -> ([String; 2], [PathBuf; 2]) {
    let a = volume(c, "pvc-wal", sizes[0], None).await;
    let b = volume(c, "pvc-data", sizes[1], None).await;
    let (sa, sb) = (dir.join("wal"), dir.join("data"));
    stage(c, &a, &sa).await;
    stage(c, &b, &sb).await;
    ([a, b], [sa, sb])
}

async fn sqlite(state: &Path) -> Arc<dyn Store> {
    Arc::new(SqliteStore::open(state).expect("sqlite"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "VM tier: needs root and device-mapper (scripts/vm-run)"]
async fn a_group_snapshot_is_one_point_in_time_and_two_single_snapshots_are_not() {
    let vg = LoopVg::create("lvsnapgroup", 1024);
    let state = tempfile::tempdir().expect("tempdir");
    let driver = all_in_one_at(&vg, state.path(), &[]).await;
    let store = sqlite(state.path()).await;
    let mut c = driver.clients().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let ([a, b], [sa, sb]) = two_staged(&mut c, [32 * MIB, 32 * MIB], dir.path()).await;
    let writer = Writer::start(&sa, &sb);
    writer.wait_past(500, "before the snapshots");

    let mut groups = Vec::new();
    for name in ["vgs-1", "vgs-2"] {
        let g = group(&mut c, name, &[&a, &b]).await.expect(name);
        assert!(g.ready_to_use, "{name} cut within the create timeout");
        assert_eq!(g.snapshots.len(), 2);
        let after = writer.steps();
        writer.wait_past(after, "after the group cut: thawed");
        groups.push(g);
    }
    let single = [
        snapshot(&mut c, "single-wal", &a).await,
        snapshot(&mut c, "single-data", &b).await,
    ];
    let written = writer.stop();

    let mut report = Vec::new();
    for g in &groups {
        let by_volume = |v: &str| {
            g.snapshots
                .iter()
                .find(|s| s.source_volume_id == v)
                .map(|s| s.snapshot_id.clone())
                .expect("member")
        };
        let (wal, data) = (
            restored_seq(&mut c, &by_volume(&a), dir.path()).await,
            restored_seq(&mut c, &by_volume(&b), dir.path()).await,
        );
        let record = store
            .get_group_snapshot(&g.group_snapshot_id)
            .await
            .expect("store")
            .expect("group record");
        let frozen_ms = record.status.frozen_millis.expect("frozen");
        report.push(format!(
            "group snapshot {}: wal {wal}, data {data}: gap {} (members frozen {frozen_ms} ms)",
            g.group_snapshot_id,
            wal.abs_diff(data)
        ));
        assert!(wal > 0 && data > 0, "the snapshot holds writes");
        assert!(
            wal == data || wal == data + 1,
            "one point in time: the first volume is written first, so it is at most one step ahead: wal {wal}, data {data}"
        );
        assert!(record.status.frozen.is_empty(), "nothing left frozen");
    }
    let (wal, data) = (
        restored_seq(&mut c, &single[0], dir.path()).await,
        restored_seq(&mut c, &single[1], dir.path()).await,
    );
    report.push(format!(
        "two single snapshots, one after the other: wal {wal}, data {data}: gap {}",
        wal.abs_diff(data)
    ));
    println!(
        "{written} steps written; last sequence numbers of the restored members:\n{}",
        report.join("\n")
    );
    assert!(
        last_seq(&sa) >= written && last_seq(&sb) >= written,
        "writes went on"
    );

    // The groups go as a whole; each member's quota is released.
    for g in &groups {
        c.group
            .delete_volume_group_snapshot(csi::DeleteVolumeGroupSnapshotRequest {
                group_snapshot_id: g.group_snapshot_id.clone(),
                ..Default::default()
            })
            .await
            .expect("DeleteVolumeGroupSnapshot");
    }
    for s in single {
        c.controller
            .delete_snapshot(csi::DeleteSnapshotRequest {
                snapshot_id: s,
                ..Default::default()
            })
            .await
            .expect("DeleteSnapshot");
    }
    let mut want = vec![format!("volume-{a}"), format!("volume-{b}")];
    want.sort();
    assert_eq!(lv_names(&vg.name), want, "only the volumes are left");
    let q = store
        .get_quota("default")
        .await
        .expect("quota")
        .expect("record");
    assert_eq!(q.status.usage["snapshots"].in_use, 0);
    assert_eq!(q.status.usage["snapshots"].reserved, 0);
    unstage(&mut c, &a, &sa).await;
    unstage(&mut c, &b, &sb).await;
}

/// Runs `argv` (a VM fixture), asserting success.
fn run(argv: &[&str]) {
    let out = std::process::Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{argv:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "VM tier: needs root and device-mapper (scripts/vm-run)"]
async fn the_second_members_failed_lvcreate_rolls_the_group_back_and_writes_go_on() {
    let vg = LoopVg::create("lvsnapgrpfail", 512);
    let state = tempfile::tempdir().expect("tempdir");
    let driver = all_in_one_at(&vg, state.path(), &[]).await;
    let store = sqlite(state.path()).await;
    let mut c = driver.clients().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let ([a, b], [sa, sb]) = two_staged(&mut c, [32 * MIB, 32 * MIB], dir.path()).await;
    let volumes = lv_names(&vg.name);
    // Room for one more LV in the VG: the first member's lvcreate succeeds,
    // the second's fails ("Maximum number of logical volumes (3) reached"),
    // while both members are frozen: nothing lvsnap checks beforehand.
    run(&["vgchange", "-q", "-l", "3", &vg.name]);
    let writer = Writer::start(&sa, &sb);
    writer.wait_past(200, "before the group");
    let err = group(&mut c, "vgs-fail", &[&a, &b])
        .await
        .expect_err("no second LV");
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(
        err.message().contains(&b) && err.message().contains("Maximum number of logical volumes"),
        "the second member's own lvcreate failed: {err:?}"
    );
    let after = writer.steps();
    writer.wait_past(after, "after the failed group: thawed");
    assert_eq!(lv_names(&vg.name), volumes, "no member LV left");
    for v in [&a, &b] {
        assert_eq!(dm_state(&vg.name, &format!("volume-{v}")), "Active");
    }
    let q = store
        .get_quota("default")
        .await
        .expect("quota")
        .expect("record");
    let u = &q.status.usage["snapshots"];
    assert_eq!((u.in_use, u.reserved), (0, 0), "quota back");
    let snaps = store
        .list_snapshots(&Default::default(), None, usize::MAX)
        .await
        .expect("list");
    assert!(snaps.is_empty(), "no member record left");
    let record = store
        .find_group_snapshot("vgs-fail")
        .await
        .expect("store")
        .expect("group");
    assert!(
        record.status.frozen.is_empty(),
        "the record says nothing is frozen"
    );

    // The limit lifted, the CO's next ask cuts the group.
    run(&["vgchange", "-q", "-l", "0", &vg.name]);
    let g = group(&mut c, "vgs-fail", &[&a, &b])
        .await
        .expect("asked again");
    assert!(g.ready_to_use);
    let q = store
        .get_quota("default")
        .await
        .expect("quota")
        .expect("record");
    assert_eq!(q.status.usage["snapshots"].in_use, 2, "charged once");
    writer.stop();
    unstage(&mut c, &a, &sa).await;
    unstage(&mut c, &b, &sb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "VM tier: needs root and device-mapper (scripts/vm-run)"]
async fn a_process_killed_while_frozen_is_thawed_by_its_restart() {
    let vg = LoopVg::create("lvsnapgrpcrash", 512);
    let state = tempfile::tempdir().expect("tempdir");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut dying = all_in_one_at(&vg, state.path(), &["--failpoint", "group-after-freeze"]).await;
    let mut c = dying.clients().await;
    let ([a, b], [sa, sb]) = two_staged(&mut c, [32 * MIB, 32 * MIB], dir.path()).await;
    let writer = Writer::start(&sa, &sb);
    writer.wait_past(200, "before the group");
    let err = group(&mut c, "vgs-crash", &[&a, &b])
        .await
        .expect_err("the process dies");
    assert!(
        matches!(
            err.code(),
            Code::Unavailable | Code::Unknown | Code::Internal
        ),
        "{err:?}"
    );
    assert!(!dying.child.wait().expect("wait").success(), "aborted");
    for v in [&a, &b] {
        assert_eq!(
            dm_state(&vg.name, &format!("volume-{v}")),
            "Suspended",
            "the dead process left the members frozen"
        );
    }
    let frozen_at = writer.steps();

    let restarted = all_in_one_at(&vg, state.path(), &[]).await;
    let log = restarted.log.clone().expect("log");
    log.wait_for(
        "thawed what interrupted group cuts left frozen",
        1,
        Duration::from_secs(60),
    );
    for v in [&a, &b] {
        assert_eq!(dm_state(&vg.name, &format!("volume-{v}")), "Active");
    }
    writer.wait_past(frozen_at, "after the restart: thawed");
    let mut c = restarted.clients().await;
    // The CO asks again: the group is cut anew, at one point in time.
    let g = group(&mut c, "vgs-crash", &[&a, &b])
        .await
        .expect("asked again");
    assert!(g.ready_to_use);
    writer.stop();
    let seqs: Vec<u64> = {
        let mut out = Vec::new();
        for v in [&a, &b] {
            let id = g
                .snapshots
                .iter()
                .find(|s| &s.source_volume_id == v)
                .map(|s| s.snapshot_id.clone())
                .expect("member");
            out.push(restored_seq(&mut c, &id, dir.path()).await);
        }
        out
    };
    println!("after the restart: wal {}, data {}", seqs[0], seqs[1]);
    assert!(seqs[0] == seqs[1] || seqs[0] == seqs[1] + 1, "{seqs:?}");
    unstage(&mut c, &a, &sa).await;
    unstage(&mut c, &b, &sb).await;
}
