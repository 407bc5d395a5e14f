//! The data path of a node: stage (mkfs only on a blank device, mount),
//! publish (bind mount, read-only honoured; raw block: the device file
//! bound onto a file), unpublish/unstage (idempotent, unmounting only what is
//! this volume's); stats and filesystem expansion are in `data_stats.rs`.
//! Mount state is always read from /proc/self/mountinfo, never remembered.
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::host::{Host, MountEntry, NodeError, mount_at};
use crate::lvm::{LvInfo, LvName, Lvm};

/// How a volume is consumed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    Block,
    Mount {
        fs_type: Option<String>,
        flags: Vec<String>,
    },
}

/// Filesystems lvsnap formats.
pub const FILESYSTEMS: [&str; 2] = ["ext4", "xfs"];

/// Bytes and inodes of a published volume, and its condition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub total_bytes: i64,
    pub available_bytes: i64,
    pub used_bytes: i64,
    /// None for raw block volumes.
    pub inodes: Option<(i64, i64, i64)>,
    /// Some(message) when the volume is abnormal.
    pub abnormal: Option<String>,
}

/// The node's data path over its volume group.
#[derive(Clone)]
pub struct DataPath {
    /// Every VG of the node's device classes (a volume's LV is in one).
    vgs: Vec<String>,
    pub(super) lvm: Lvm,
    pub(super) host: Host,
}

/// "major:minor" as mountinfo prints it.
pub(super) fn dev_string(rdev: u64) -> String {
    let major = ((rdev >> 32) & 0xffff_f000) | ((rdev >> 8) & 0xfff);
    let minor = ((rdev >> 12) & 0xffff_ff00) | (rdev & 0xff);
    format!("{major}:{minor}")
}

/// The LV's block device: its path and what mountinfo knows it by.
#[derive(Debug, Clone)]
pub(super) struct Device {
    pub(super) path: PathBuf,
    pub(super) rdev: u64,
    pub(super) dev: String,
    pub(super) lv: LvInfo,
}

impl Device {
    /// Whether mount `m` is this device: its filesystem (or a bind of it),
    /// or its device node bound onto a file (raw block publish).
    pub(super) fn owns(&self, m: &MountEntry) -> bool {
        use std::os::unix::fs::FileTypeExt;
        m.dev == self.dev
            || std::fs::metadata(&m.mount_point)
                .is_ok_and(|meta| meta.file_type().is_block_device() && meta.rdev() == self.rdev)
    }
}

pub(super) fn io(what: &str, path: &Path, e: std::io::Error) -> NodeError {
    NodeError::Internal(format!("{what} {}: {e}", path.display()))
}

impl DataPath {
    pub fn new(vgs: Vec<String>, lvm: Lvm, host: Host) -> Self {
        Self { vgs, lvm, host }
    }

    /// The volume's LV, activated, or NOT_FOUND.
    pub(super) async fn device(&self, volume_id: &str) -> Result<Device, NodeError> {
        let missing = || NodeError::NotFound(format!("volume {volume_id} not found on this node"));
        let uuid = uuid::Uuid::parse_str(volume_id).map_err(|_| missing())?;
        let name = LvName::volume(uuid);
        let mut found = None;
        for vg in &self.vgs {
            let lv = self.lvm.lv(vg, &name).await;
            if let Some(lv) = lv.map_err(|e| NodeError::Internal(e.to_string()))? {
                found = Some((vg, lv));
                break;
            }
        }
        let (vg, mut lv) = found.ok_or_else(missing)?;
        if !lv.attr.is_active() {
            lv = self
                .lvm
                .activate(vg, &name)
                .await
                .map_err(|e| NodeError::Internal(e.to_string()))?;
        }
        let path = PathBuf::from(format!("/dev/{vg}/{}", name.as_str()));
        let meta = std::fs::metadata(&path).map_err(|e| io("device", &path, e))?;
        Ok(Device {
            rdev: meta.rdev(),
            dev: dev_string(meta.rdev()),
            path,
            lv,
        })
    }

    /// Formats (only if blank) and mounts the volume at `staging`.
    #[tracing::instrument(skip(self, access), fields(volume = %volume_id))]
    pub async fn stage(
        &self,
        volume_id: &str,
        staging: &Path,
        access: &Access,
    ) -> Result<(), NodeError> {
        let device = self.device(volume_id).await?;
        let Access::Mount { fs_type, flags } = access else {
            return Ok(()); // raw block: published straight from the device
        };
        let wanted = fs_type.clone().unwrap_or_else(|| "ext4".into());
        if !FILESYSTEMS.contains(&wanted.as_str()) {
            return Err(NodeError::Invalid(format!(
                "fsType {wanted:?} is not supported (ext4, xfs)"
            )));
        }
        if let Some(m) = mount_at(staging)? {
            if !device.owns(&m) {
                return Err(NodeError::AlreadyExists(format!(
                    "{} is already mounted from {}",
                    staging.display(),
                    m.source
                )));
            }
            if m.fs_type != wanted {
                return Err(NodeError::AlreadyExists(format!(
                    "volume {volume_id} is staged as {}, not {wanted}",
                    m.fs_type
                )));
            }
            return Ok(());
        }
        match self.host.signature(&device.path).await? {
            None => {
                tracing::info!(device = %device.path.display(), fs = %wanted, "blank device: creating the filesystem");
                let dev = device.path.to_string_lossy();
                let mkfs = format!("mkfs.{wanted}");
                match wanted.as_str() {
                    "xfs" => self.host.check(&[&mkfs, "-q", &dev]).await?,
                    _ => self.host.check(&[&mkfs, "-q", "-m", "0", &dev]).await?,
                };
            }
            Some(found) if found == wanted => {}
            Some(found) => {
                // Never reformat: the device holds data.
                return Err(NodeError::FailedPrecondition(format!(
                    "volume {volume_id} holds {found}, not {wanted}; it is never reformatted"
                )));
            }
        }
        std::fs::create_dir_all(staging).map_err(|e| io("creating", staging, e))?;
        let mut options: Vec<String> = flags.clone();
        if wanted == "xfs" {
            // Restored and cloned XFS volumes share their source's UUID.
            options.push("nouuid".into());
        }
        let dev = device.path.to_string_lossy();
        let target = staging.to_string_lossy();
        let mut argv = vec!["mount", "-t", wanted.as_str()];
        let joined = options.join(",");
        if !options.is_empty() {
            argv.extend(["-o", joined.as_str()]);
        }
        argv.extend([dev.as_ref(), target.as_ref()]);
        self.host.check(&argv).await?;
        Ok(())
    }

    /// Unmounts the staging mount if it is this volume's.
    #[tracing::instrument(skip(self), fields(volume = %volume_id))]
    pub async fn unstage(&self, volume_id: &str, staging: &Path) -> Result<(), NodeError> {
        self.unmount_own(volume_id, staging).await
    }

    /// Bind-mounts the staged filesystem (or the device) at `target`.
    #[tracing::instrument(skip(self, access), fields(volume = %volume_id))]
    pub async fn publish(
        &self,
        volume_id: &str,
        staging: &Path,
        target: &Path,
        access: &Access,
        read_only: bool,
    ) -> Result<(), NodeError> {
        let device = self.device(volume_id).await?;
        if let Some(m) = mount_at(target)? {
            if !device.owns(&m) {
                return Err(NodeError::AlreadyExists(format!(
                    "{} is already mounted from {}",
                    target.display(),
                    m.source
                )));
            }
            if m.read_only() != read_only {
                return Err(NodeError::AlreadyExists(format!(
                    "volume {volume_id} is published at {} with readonly={}",
                    target.display(),
                    m.read_only()
                )));
            }
            return Ok(());
        }
        let source = match access {
            Access::Block => {
                if let Some(dir) = target.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| io("creating", dir, e))?;
                }
                if !target.exists() {
                    std::fs::File::create(target).map_err(|e| io("creating", target, e))?;
                }
                device.path.clone()
            }
            Access::Mount { .. } => {
                match mount_at(staging)? {
                    Some(m) if device.owns(&m) => {}
                    _ => {
                        return Err(NodeError::FailedPrecondition(format!(
                            "volume {volume_id} is not staged at {}",
                            staging.display()
                        )));
                    }
                }
                std::fs::create_dir_all(target).map_err(|e| io("creating", target, e))?;
                staging.to_path_buf()
            }
        };
        let (src, dst) = (source.to_string_lossy(), target.to_string_lossy());
        self.host.check(&["mount", "--bind", &src, &dst]).await?;
        if read_only {
            self.host
                .check(&["mount", "-o", "remount,bind,ro", &dst])
                .await?;
        }
        Ok(())
    }

    /// Unmounts `target` if it is this volume's and removes what lvsnap created.
    #[tracing::instrument(skip(self), fields(volume = %volume_id))]
    pub async fn unpublish(&self, volume_id: &str, target: &Path) -> Result<(), NodeError> {
        self.unmount_own(volume_id, target).await?;
        match std::fs::symlink_metadata(target) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("reading", target, e)),
            Ok(m) if m.is_dir() => {
                std::fs::remove_dir(target).map_err(|e| io("removing", target, e))
            }
            Ok(m) if m.is_file() && m.len() == 0 => {
                std::fs::remove_file(target).map_err(|e| io("removing", target, e))
            }
            Ok(_) => Err(NodeError::FailedPrecondition(format!(
                "{} is not what lvsnap created; left in place",
                target.display()
            ))),
        }
    }

    /// Unmounts every mount stacked at `path` that is this volume's; a mount
    /// of anything else is refused. An unknown volume with nothing mounted
    /// there is fine (idempotent cleanup after a delete).
    async fn unmount_own(&self, volume_id: &str, path: &Path) -> Result<(), NodeError> {
        let device = match self.device(volume_id).await {
            Ok(d) => Some(d),
            Err(NodeError::NotFound(_)) => None,
            Err(e) => return Err(e),
        };
        while let Some(m) = mount_at(path)? {
            let ours = match &device {
                Some(d) => d.owns(&m),
                // The LV is gone: recognise its device-mapper name in the source.
                None => self.vgs.iter().any(|vg| {
                    m.source.contains(&format!(
                        "{}-volume--{}",
                        vg.replace('-', "--"),
                        volume_id.replace('-', "--")
                    ))
                }),
            };
            if !ours {
                return Err(NodeError::FailedPrecondition(format!(
                    "{} is mounted from {}, not from volume {volume_id}; not unmounting",
                    path.display(),
                    m.source
                )));
            }
            self.host
                .check(&["umount", &path.to_string_lossy()])
                .await?;
        }
        Ok(())
    }
}
