//! The VM group tests' fixtures: the writer, its sequence files, the CSI
//! calls the tests make, `dmsetup` states.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use lvsnap::client::CsiClients;
use lvsnap::proto::v1 as csi;
use lvsnap::store::{SqliteStore, Store};

use crate::common::mount_cap;

pub const MIB: i64 = 1 << 20;

/// Appends `1\n`, `2\n`, … to `<a>/seq` then `<b>/seq`, step after step.
pub struct Writer {
    stop: Arc<AtomicBool>,
    steps: Arc<(Mutex<u64>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    pub fn start(a: &Path, b: &Path) -> Writer {
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

    pub fn steps(&self) -> u64 {
        *self.steps.0.lock().expect("lock")
    }

    /// Blocks until the writer has completed more than `n` steps.
    pub fn wait_past(&self, n: u64, what: &str) {
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

    pub fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().expect("writer");
        }
        self.steps()
    }
}

/// The last whole number in `<dir>/seq`.
pub fn last_seq(dir: &Path) -> u64 {
    let text = std::fs::read_to_string(dir.join("seq")).expect("seq file");
    let whole = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
    whole
        .lines()
        .last()
        .and_then(|l| l.parse().ok())
        .unwrap_or(0)
}

/// `dmsetup info`'s state of LV `vg/lv`: "Active" or "Suspended".
pub fn dm_state(vg: &str, lv: &str) -> String {
    let name = format!("{}-{}", vg.replace('-', "--"), lv.replace('-', "--"));
    let out = std::process::Command::new("dmsetup")
        .args(["info", "-c", "--noheadings", "-o", "suspended", &name])
        .output()
        .expect("dmsetup info");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub async fn volume(c: &mut CsiClients, name: &str, bytes: i64, from: Option<&str>) -> String {
    let mut req = crate::common::volume_request(name, bytes);
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

pub async fn stage(c: &mut CsiClients, id: &str, staging: &Path) {
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

pub async fn unstage(c: &mut CsiClients, id: &str, staging: &Path) {
    c.node
        .node_unstage_volume(csi::NodeUnstageVolumeRequest {
            volume_id: id.into(),
            staging_target_path: staging.display().to_string(),
        })
        .await
        .unwrap_or_else(|e| panic!("NodeUnstageVolume {id}: {e:?}"));
}

pub async fn group(
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

pub async fn snapshot(c: &mut CsiClients, name: &str, volume: &str) -> String {
    crate::common::create_snapshot(c, name, volume)
        .await
        .snapshot_id
}

/// Restores snapshot `id` as a new volume, stages it, reads its last
/// sequence number, and cleans up.
pub async fn restored_seq(c: &mut CsiClients, id: &str, dir: &Path) -> u64 {
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
pub async fn two_staged(
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

pub async fn sqlite(state: &Path) -> Arc<dyn Store> {
    Arc::new(SqliteStore::open(state).expect("sqlite"))
}

/// Runs `argv` (a VM fixture), asserting success.
pub fn run(argv: &[&str]) {
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
