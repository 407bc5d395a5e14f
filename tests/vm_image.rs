//! VM tier: the image that ships. Its root filesystem (`scripts/build-image
//! --export`, named by LVSNAP_IMAGE_ROOTFS) runs the way the chart's pods run
//! it, through `scripts/image-pod` (a mount namespace, pivot_root into the
//! image, the pod's volumes; no shell left in the image):
//! - `lvsnap all-in-one` without an LVM prefix: the image's own lvm2, mkfs and
//!   mount create, stage, snapshot, restore and delete on a real VG;
//! - `lvsnap node` with the chart's `node.lvmCommandPrefix` (nsenter into PID
//!   1's namespaces, hostPID) and the image's lvm masked, beside `lvsnap
//!   controller` as the chart's uid 65532 on a read-only root: LVM is the
//!   host's, and a snapshot is still cut and deleted.
//!
//! Run inside `scripts/vm-run` by `scripts/test` after `scripts/build-image`.
mod common;
#[path = "common/vm.rs"]
mod vm;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use common::{Cluster, mount_cap};
use lvsnap::client::CsiClients;
use lvsnap::proto::v1 as csi;
use vm::LoopVg;

const MIB: i64 = 1 << 20;
const POD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/image-pod");
const VALUES: &str = include_str!("../deploy/helm/lvsnap/values.yaml");

/// The exported root filesystem of the image, and the image it came from.
fn rootfs() -> (PathBuf, String) {
    assert!(
        std::env::var_os("LVSNAP_IN_VM").is_some(),
        "VM-tier test: run it through scripts/vm-run (see docs/testing.md)"
    );
    let dir = std::env::var("LVSNAP_IMAGE_ROOTFS").expect(
        "LVSNAP_IMAGE_ROOTFS: the image's root filesystem (scripts/build-image --export DIR; scripts/test does it)",
    );
    let image = std::fs::read_to_string(format!("{}.image", dir.trim_end_matches('/')))
        .unwrap_or_else(|e| panic!("{dir}.image (written by scripts/build-image --export): {e}"));
    (PathBuf::from(dir), image.trim().to_string())
}

/// The hostPath volumes of the chart's node DaemonSet (templates/node.yaml)
/// that LVM needs; /run/lock/lvm only when the image's own lvm2 runs.
fn node_host_paths(own_lvm: bool) -> Vec<String> {
    let mut opts: Vec<String> = ["/dev", "/run/lvm", "/etc/lvm"]
        .iter()
        .flat_map(|p| ["--host-path".to_string(), p.to_string()])
        .collect();
    opts.extend(["--host-path-ro".into(), "/lib/modules".into()]);
    if own_lvm {
        std::fs::create_dir_all("/run/lock/lvm").unwrap();
        opts.extend(["--host-path".into(), "/run/lock/lvm".into()]);
    }
    opts
}

/// A program of the image run by scripts/image-pod, its CSI socket at /csi in
/// the pod (a host directory, as the chart's emptyDir or plugin dir).
struct Pod {
    child: Child,
    socket_dir: tempfile::TempDir,
}

impl Pod {
    async fn start(opts: &[String], args: &[&str]) -> Pod {
        let (root, _) = rootfs();
        let socket_dir = tempfile::tempdir().unwrap();
        // The controller runs as uid 65532 (an emptyDir is world-writable).
        std::fs::set_permissions(socket_dir.path(), std::fs::Permissions::from_mode(0o777))
            .unwrap();
        let child = Command::new(POD)
            .arg(&root)
            .args(opts)
            .arg("--bind")
            .arg(format!("{}:/csi", socket_dir.path().display()))
            .args(["--no-shell", "--env", "LVSNAP_LOG_LEVEL=warn", "--"])
            .arg("/usr/local/bin/lvsnap")
            .args(args)
            .arg("--endpoint=unix:///csi/csi.sock")
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn scripts/image-pod");
        let mut pod = Pod { child, socket_dir };
        pod.wait_ready(args[0]).await;
        pod
    }

    fn socket(&self) -> PathBuf {
        self.socket_dir.path().join("csi.sock")
    }

    async fn wait_ready(&mut self, what: &str) {
        // Bounded polling for the socket: the process either serves or exits.
        for _ in 0..1200 {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("the image's lvsnap {what} exited before serving: {status}");
            }
            if tokio::net::UnixStream::connect(self.socket()).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the image's lvsnap {what} did not serve within 60 s");
    }

    async fn clients(&self) -> CsiClients {
        CsiClients::connect(&self.socket()).await.expect("connect")
    }

    /// SIGTERM (image-pod exec'd into lvsnap: the pid is lvsnap's).
    fn terminate(&mut self) -> ExitStatus {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs one of the image's programs in a node-shaped pod to completion.
fn in_image(opts: &[String], argv: &[&str]) -> std::process::Output {
    let (root, _) = rootfs();
    Command::new(POD)
        .arg(&root)
        .args(opts)
        .args(["--no-shell", "--env", "DM_DISABLE_UDEV=1", "--"])
        .args(argv)
        .stdin(Stdio::null())
        .output()
        .expect("spawn scripts/image-pod")
}

/// `lvs` of the image on `vg`: printed, and read back as (name, attr, origin)
/// (LVM names hold no spaces; only the origin column may be empty).
fn image_lvs(vg: &str) -> Vec<(String, String, String)> {
    let out = in_image(
        &node_host_paths(true),
        &[
            "/usr/sbin/lvs",
            "-o",
            "lv_name,vg_name,lv_attr,lv_size,origin",
            vg,
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let table = String::from_utf8_lossy(&out.stdout);
    print!("{table}");
    table
        .lines()
        .skip(1)
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            assert!(f.len() == 4 || f.len() == 5, "lvs line {line:?}");
            let origin = f.get(4).copied().unwrap_or("");
            (f[0].to_string(), f[2].to_string(), origin.to_string())
        })
        .collect()
}

/// Asserts that the snapshot's LV is a live thick snapshot of the volume's.
fn assert_cut(lvs: &[(String, String, String)], volume_id: &str, snapshot_id: &str) {
    let snap_lv = format!("_snapshot-{snapshot_id}");
    let cut = lvs
        .iter()
        .find(|(name, _, _)| *name == snap_lv)
        .unwrap_or_else(|| panic!("{snap_lv} in {lvs:?}"));
    assert!(cut.1.starts_with("swi-a-s"), "{cut:?}");
    assert_eq!(cut.2, format!("volume-{volume_id}"), "{cut:?}");
}

async fn create_volume(c: &mut CsiClients, name: &str, from_snapshot: Option<&str>) -> csi::Volume {
    c.controller
        .create_volume(csi::CreateVolumeRequest {
            name: name.into(),
            capacity_range: Some(csi::CapacityRange {
                required_bytes: 64 * MIB,
                limit_bytes: 0,
            }),
            volume_capabilities: vec![mount_cap("ext4")],
            volume_content_source: from_snapshot.map(|id| csi::VolumeContentSource {
                r#type: Some(csi::volume_content_source::Type::Snapshot(
                    csi::volume_content_source::SnapshotSource {
                        snapshot_id: id.into(),
                    },
                )),
            }),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("CreateVolume {name}: {e:?}"))
        .into_inner()
        .volume
        .expect("volume")
}

async fn create_snapshot(c: &mut CsiClients, name: &str, volume_id: &str) -> csi::Snapshot {
    let snap = common::create_snapshot(c, name, volume_id).await;
    assert!(snap.ready_to_use, "{snap:?}");
    snap
}

async fn delete_snapshot(c: &mut CsiClients, id: &str) {
    c.controller
        .delete_snapshot(csi::DeleteSnapshotRequest {
            snapshot_id: id.into(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("DeleteSnapshot {id}: {e:?}"));
}

async fn delete_volume(c: &mut CsiClients, id: &str) {
    c.controller
        .delete_volume(csi::DeleteVolumeRequest {
            volume_id: id.into(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("DeleteVolume {id}: {e:?}"));
}

/// NodeStageVolume (mkfs.ext4 on a blank LV, mount) then NodePublishVolume
/// (bind mount), both in the pod; the paths are under the kubelet directory.
async fn stage_and_publish(c: &mut CsiClients, id: &str, kubelet: &Path) -> PathBuf {
    let staging = kubelet.join(format!("staging/{id}"));
    let target = kubelet.join(format!("pods/{id}/mount"));
    c.node
        .node_stage_volume(csi::NodeStageVolumeRequest {
            volume_id: id.into(),
            staging_target_path: staging.display().to_string(),
            volume_capability: Some(mount_cap("ext4")),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("NodeStageVolume {id}: {e:?}"));
    c.node
        .node_publish_volume(csi::NodePublishVolumeRequest {
            volume_id: id.into(),
            staging_target_path: staging.display().to_string(),
            target_path: target.display().to_string(),
            volume_capability: Some(mount_cap("ext4")),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("NodePublishVolume {id}: {e:?}"));
    target
}

async fn unpublish_and_unstage(c: &mut CsiClients, id: &str, kubelet: &Path) {
    c.node
        .node_unpublish_volume(csi::NodeUnpublishVolumeRequest {
            volume_id: id.into(),
            target_path: kubelet
                .join(format!("pods/{id}/mount"))
                .display()
                .to_string(),
        })
        .await
        .unwrap_or_else(|e| panic!("NodeUnpublishVolume {id}: {e:?}"));
    c.node
        .node_unstage_volume(csi::NodeUnstageVolumeRequest {
            volume_id: id.into(),
            staging_target_path: kubelet.join(format!("staging/{id}")).display().to_string(),
        })
        .await
        .unwrap_or_else(|e| panic!("NodeUnstageVolume {id}: {e:?}"));
}

/// The filesystem type mounted at `path` as this (host) process sees it.
fn mounted_fs(path: &Path) -> Option<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        (left.split(' ').nth(4)? == path.to_str()?)
            .then(|| right.split(' ').next().unwrap_or("").to_string())
    })
}

fn write_synced(path: &Path, data: &str) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    f.write_all(data.as_bytes()).unwrap();
    f.sync_all().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "vm tier: run inside scripts/vm-run, after scripts/build-image --export"]
async fn the_image_cuts_restores_and_deletes_a_snapshot_with_its_own_lvm2_mkfs_and_mount() {
    let (_, image) = rootfs();
    println!("== image {image}: lvsnap all-in-one, the image's own lvm2 (no LVM prefix)");
    let vg = LoopVg::create("lvsnapimage", 512);
    // The kubelet directory, Bidirectional as in templates/node.yaml: what the
    // pod mounts there, this (host) process sees.
    let kubelet = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut opts = node_host_paths(true);
    opts.extend([
        "--bidirectional".into(),
        kubelet.path().display().to_string(),
        "--bind".into(),
        format!("{}:/var/lib/lvsnap", state.path().display()),
    ]);
    let mut pod = Pod::start(
        &opts,
        &[
            "all-in-one",
            "--node-id=vm-node",
            &format!("--vg={}", vg.name),
            "--state-dir=/var/lib/lvsnap",
            "--create-timeout=45s",
            // node.lvmEnv: this host has no udev.
            "--lvm-env=DM_DISABLE_UDEV=1",
        ],
    )
    .await;
    let mut c = pod.clients().await;
    let probe = c.identity.probe(csi::ProbeRequest {}).await.expect("Probe");
    assert_eq!(probe.into_inner().ready, Some(true));

    let volume = create_volume(&mut c, "pvc-image", None).await;
    let vol = volume.volume_id.clone();
    let target = stage_and_publish(&mut c, &vol, kubelet.path()).await;
    assert_eq!(mounted_fs(&target).as_deref(), Some("ext4"), "{target:?}");
    write_synced(&target.join("hello"), "written before the snapshot");

    let snap = create_snapshot(&mut c, "snap-image", &vol).await;
    println!(
        "== lvs (the image's) after CreateSnapshot {}",
        snap.snapshot_id
    );
    assert_cut(&image_lvs(&vg.name), &vol, &snap.snapshot_id);
    write_synced(&target.join("hello"), "WRITTEN AFTER THE SNAPSHOT");

    let restored = create_volume(&mut c, "pvc-image-restored", Some(&snap.snapshot_id)).await;
    let restored_target = stage_and_publish(&mut c, &restored.volume_id, kubelet.path()).await;
    let origin_now = std::fs::read_to_string(target.join("hello")).unwrap();
    let restored_has = std::fs::read_to_string(restored_target.join("hello")).unwrap();
    println!("origin now reads:          {origin_now}");
    println!("restored from the snapshot: {restored_has}");
    assert_eq!(origin_now, "WRITTEN AFTER THE SNAPSHOT");
    assert_eq!(restored_has, "written before the snapshot");

    unpublish_and_unstage(&mut c, &restored.volume_id, kubelet.path()).await;
    unpublish_and_unstage(&mut c, &vol, kubelet.path()).await;
    assert_eq!(mounted_fs(&target), None);
    delete_volume(&mut c, &restored.volume_id).await;
    delete_snapshot(&mut c, &snap.snapshot_id).await;
    delete_volume(&mut c, &vol).await;
    println!("== lvs (the image's) after the deletes");
    let left = image_lvs(&vg.name);
    assert!(left.is_empty(), "{left:?}");
    drop(c);
    assert!(pod.terminate().success(), "all-in-one exits 0 on SIGTERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "vm tier: run inside scripts/vm-run, after scripts/build-image --export"]
async fn the_images_node_runs_the_hosts_lvm2_through_the_charts_nsenter_prefix() {
    let (_, image) = rootfs();
    let values: serde_yaml::Value = serde_yaml::from_str(VALUES).expect("values.yaml");
    let prefix = values["node"]["lvmCommandPrefix"]
        .as_str()
        .expect("node.lvmCommandPrefix in values.yaml")
        .to_string();
    assert!(prefix.starts_with("nsenter --target=1 "), "{prefix}");
    println!(
        "== image {image}: lvsnap controller (uid 65532) + lvsnap node, --lvm-command-prefix={prefix:?}"
    );
    let vg = LoopVg::create("lvsnapimgns", 256);

    // The node pod as templates/node.yaml has it with the prefix (hostPID; no
    // /run/lock/lvm), and the image's lvm2 masked: whatever LVM runs is the
    // host's, reached through the image's nsenter.
    let mut node_opts = node_host_paths(false);
    node_opts.extend(["--mask".into(), "/usr/sbin/lvm".into()]);
    let masked = in_image(&node_opts, &["/usr/sbin/lvm", "version"]);
    assert!(
        !masked.status.success(),
        "the image's lvm must not run in this pod: {masked:?}"
    );

    let cluster = Cluster::start().await;
    // The node exists in Kubernetes (for a deleted Node object the deletes
    // below would finish without removing the LVs).
    cluster.http.api.create_node("vm-node", &[]).expect("Node");
    let kubeconfig = format!("{}:/etc/lvsnap/kubeconfig", cluster.kubeconfig.display());
    let state = tempfile::tempdir().unwrap();
    node_opts.extend([
        "--bind".into(),
        format!("{}:/var/lib/lvsnap", state.path().display()),
        "--bind".into(),
        kubeconfig.clone(),
        "--env".into(),
        "KUBECONFIG=/etc/lvsnap/kubeconfig".into(),
    ]);
    let prefix_arg = format!("--lvm-command-prefix={prefix}");
    let vg_arg = format!("--vg={}", vg.name);
    let mut node = Pod::start(
        &node_opts,
        &[
            "node",
            "--driver-name=lvsnap.io",
            "--node-id=vm-node",
            &vg_arg,
            "--state-dir=/var/lib/lvsnap",
            &prefix_arg,
            "--lvm-env=DM_DISABLE_UDEV=1",
            "--capacity-interval=60s",
        ],
    )
    .await;
    // The controller pod: the chart's podSecurityContext and securityContext.
    let controller_opts: Vec<String> = [
        "--user",
        "65532:65532",
        "--read-only",
        "--bind",
        &kubeconfig,
        "--env",
        "KUBECONFIG=/etc/lvsnap/kubeconfig",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut controller = Pod::start(
        &controller_opts,
        &[
            "controller",
            "--driver-name=lvsnap.io",
            "--create-timeout=45s",
        ],
    )
    .await;

    let mut n = node.clients().await;
    let probe = n
        .identity
        .probe(csi::ProbeRequest {})
        .await
        .expect("node Probe");
    assert_eq!(probe.into_inner().ready, Some(true), "VG and API reachable");
    let mut c = controller.clients().await;
    let volume = create_volume(&mut c, "pvc-image-nsenter", None).await;
    let snap = create_snapshot(&mut c, "snap-image-nsenter", &volume.volume_id).await;
    println!(
        "== lvs (the image's) after CreateSnapshot {}",
        snap.snapshot_id
    );
    assert_cut(&image_lvs(&vg.name), &volume.volume_id, &snap.snapshot_id);
    delete_snapshot(&mut c, &snap.snapshot_id).await;
    delete_volume(&mut c, &volume.volume_id).await;
    println!("== lvs (the image's) after the deletes");
    let left = image_lvs(&vg.name);
    assert!(left.is_empty(), "{left:?}");
    drop((c, n));
    assert!(
        controller.terminate().success(),
        "controller exits 0 on SIGTERM"
    );
    assert!(node.terminate().success(), "node exits 0 on SIGTERM");
}
