//! How a group's members are held still on the node: what each member's
//! origin is used for (a mounted filesystem, a raw block device, nothing),
//! and a guard that thaws whatever is frozen if the cut's task is dropped
//! before it thawed (the normal paths thaw explicitly; a crash is thawed by
//! the next start, from the group record).
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use super::data::dev_string;
use super::host::parse_mountinfo;
use crate::lvm::{LvInfo, LvName, Lvm};

/// What a member's origin LV is used for on this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum OriginUse {
    /// Not active: it has no device, nothing can write to it.
    Inactive,
    /// Active, not open: nothing writes to it.
    Idle,
    /// A filesystem on it is mounted here (the staging mount).
    Filesystem(PathBuf),
    /// Open without a mounted filesystem: a raw block device in use, which
    /// no freeze can make consistent.
    RawBlock,
}

impl OriginUse {
    /// How LV `lv` of `vg` is used, from its attributes and the mount table.
    pub(super) fn of(vg: &str, lv: &LvInfo) -> OriginUse {
        if !lv.attr.is_active() {
            return OriginUse::Inactive;
        }
        if let Some(mount) = filesystem_mount(vg, &lv.name) {
            return OriginUse::Filesystem(mount);
        }
        if lv.attr.open {
            OriginUse::RawBlock
        } else {
            OriginUse::Idle
        }
    }
}

/// Where a filesystem on LV `vg/lv` is mounted (its first mount: a bind
/// mount of it is the same filesystem), if anywhere.
fn filesystem_mount(vg: &str, lv: &LvName) -> Option<PathBuf> {
    let device = PathBuf::from(format!("/dev/{vg}/{}", lv.as_str()));
    let dev = dev_string(std::fs::metadata(&device).ok()?.rdev());
    let table = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    parse_mountinfo(&table)
        .into_iter()
        .find(|m| m.dev == dev)
        .map(|m| m.mount_point)
}

/// Thaws `held` when dropped while armed: the cut's future was dropped
/// (the task cancelled) between freeze and thaw. A simulated crash (a
/// halted failpoint) disarms it: a dead process thaws nothing.
pub(super) struct ThawGuard {
    lvm: Lvm,
    /// Each frozen origin with its VG: a group's members may be in several
    /// VGs of the node (device classes).
    held: Vec<(String, LvName)>,
}

impl ThawGuard {
    pub(super) fn new(lvm: Lvm) -> Self {
        Self {
            lvm,
            held: Vec::new(),
        }
    }

    pub(super) fn hold(&mut self, vg: &str, lv: LvName) {
        self.held.push((vg.to_string(), lv));
    }

    /// The thaw happened (or must not happen): nothing to do on drop.
    pub(super) fn disarm(&mut self) {
        self.held.clear();
    }
}

impl Drop for ThawGuard {
    fn drop(&mut self) {
        if self.held.is_empty() {
            return;
        }
        let (lvm, held) = (self.lvm.clone(), std::mem::take(&mut self.held));
        tracing::error!(
            held = held.len(),
            "a group cut was dropped while its members were frozen: thawing them"
        );
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                for (vg, lv) in held {
                    if let Err(e) = lvm.resume(&vg, &lv).await {
                        tracing::error!(vg = %vg, lv = %lv, error = %e, "cannot thaw; the next start of the node thaws it");
                    }
                }
            });
        }
    }
}
