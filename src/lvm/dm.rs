//! Holding an LV still for a group snapshot: `dmsetup suspend` flushes and
//! freezes the filesystem on the LV (the kernel's block-device freeze, what
//! FIFREEZE does) and holds every further I/O; `dmsetup resume` lets it go.
//!
//! Why not FIFREEZE (`fsfreeze`): `lvcreate --snapshot` suspends its origin
//! with a filesystem freeze of its own, which the kernel refuses with EBUSY
//! on a filesystem userspace already froze (Linux before 6.6, e.g. Debian
//! 12's 6.1: "device-mapper: suspend ioctl failed: Device or resource busy",
//! and lvcreate leaves a half-made snapshot behind). A device suspended
//! beforehand is one LVM skips suspending again: it cuts the thick snapshot
//! and resumes the origin itself. Thin origins cannot be cut that way (LVM
//! then sends no message to the pool and the new thin LV fails to load), so
//! the controller refuses thin members of a frozen group.
use super::names::{LvName, validate_vg_name};
use super::{ErrorKind, Lvm, LvmError};

/// The device-mapper name of LV `vg/lv` (each `-` doubled, then joined by `-`).
pub fn dm_name(vg: &str, lv: &LvName) -> String {
    format!(
        "{}-{}",
        vg.replace('-', "--"),
        lv.as_str().replace('-', "--")
    )
}

impl Lvm {
    /// Freezes LV `vg/lv` and holds its I/O (`dmsetup suspend`, one
    /// attempt: a failed freeze abandons the group cut, it is not retried
    /// while other members wait frozen).
    #[tracing::instrument(skip(self), fields(%lv), err(Display))]
    pub async fn suspend(&self, vg: &str, lv: &LvName) -> Result<(), LvmError> {
        validate_vg_name(vg)?;
        let mut argv = self.config.command_prefix.clone();
        argv.extend(["dmsetup".to_string(), "suspend".into(), dm_name(vg, lv)]);
        self.exec_once("dmsetup suspend", &argv).await.map(|_| ())
    }

    /// Thaws LV `vg/lv` (`dmsetup resume`, retried). Resuming a device that
    /// is not suspended does nothing; `Ok(false)`: the device does not exist
    /// (the LV is gone or inactive: nothing is held).
    #[tracing::instrument(skip(self), fields(%lv), err(Display))]
    pub async fn resume(&self, vg: &str, lv: &LvName) -> Result<bool, LvmError> {
        validate_vg_name(vg)?;
        let argv = vec!["dmsetup".to_string(), "resume".into(), dm_name(vg, lv)];
        match self.exec("dmsetup resume", argv).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }
}
