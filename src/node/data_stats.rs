//! The data path's stats (NodeGetVolumeStats: bytes, inodes, condition)
//! and filesystem expansion (NodeExpandVolume: resize2fs, xfs_growfs) of a
//! published or staged volume.
use std::path::Path;

use super::data::{DataPath, Stats, io};
use super::host::{NodeError, mount_at};

impl DataPath {
    /// Usage of a published or staged volume, and its condition.
    pub async fn stats(&self, volume_id: &str, path: &Path) -> Result<Stats, NodeError> {
        if !path.exists() {
            return Err(NodeError::NotFound(format!(
                "{} does not exist",
                path.display()
            )));
        }
        let device = match self.device(volume_id).await {
            Ok(d) => Some(d),
            Err(NodeError::NotFound(m)) if mount_at(path)?.is_some() => {
                tracing::warn!(volume = %volume_id, "published volume lost its LV");
                let mut s = self.fs_stats(path)?;
                s.abnormal = Some(m);
                return Ok(s);
            }
            Err(e) => return Err(e),
        };
        let abnormal = device.as_ref().and_then(|d| {
            if d.lv.attr.is_snapshot_invalid() {
                Some("the LV is an invalidated snapshot: its data is lost".to_string())
            } else if !d.lv.attr.is_active() {
                Some("the LV is not active".to_string())
            } else {
                None
            }
        });
        let meta = std::fs::metadata(path).map_err(|e| io("reading", path, e))?;
        let mut stats = if meta.is_dir() {
            self.fs_stats(path)?
        } else {
            let size = device
                .as_ref()
                .map(|d| i64::try_from(d.lv.size_bytes).unwrap_or(i64::MAX))
                .unwrap_or(0);
            Stats {
                total_bytes: size,
                ..Default::default()
            }
        };
        stats.abnormal = abnormal;
        Ok(stats)
    }

    fn fs_stats(&self, path: &Path) -> Result<Stats, NodeError> {
        let st = nix::sys::statvfs::statvfs(path)
            .map_err(|e| NodeError::Internal(format!("statvfs {}: {e}", path.display())))?;
        let frag = st.fragment_size() as i64;
        let total = st.blocks() as i64 * frag;
        let avail = st.blocks_available() as i64 * frag;
        let free = st.blocks_free() as i64 * frag;
        let (files, ffree) = (st.files() as i64, st.files_free() as i64);
        Ok(Stats {
            total_bytes: total,
            available_bytes: avail,
            used_bytes: total - free,
            inodes: Some((files, ffree, files - ffree)),
            abnormal: None,
        })
    }

    /// Grows the filesystem mounted at `path` to its (already grown) LV;
    /// returns the LV's size. Raw block volumes need nothing.
    #[tracing::instrument(skip(self), fields(volume = %volume_id))]
    pub async fn expand(&self, volume_id: &str, path: &Path) -> Result<i64, NodeError> {
        let device = self.device(volume_id).await?;
        if !path.exists() {
            return Err(NodeError::NotFound(format!(
                "{} does not exist",
                path.display()
            )));
        }
        let size = i64::try_from(device.lv.size_bytes).unwrap_or(i64::MAX);
        let meta = std::fs::metadata(path).map_err(|e| io("reading", path, e))?;
        if !meta.is_dir() {
            return Ok(size);
        }
        match mount_at(path)? {
            Some(m) if device.owns(&m) => {}
            _ => {
                return Err(NodeError::FailedPrecondition(format!(
                    "volume {volume_id} is not mounted at {}",
                    path.display()
                )));
            }
        }
        let dev = device.path.to_string_lossy();
        match self.host.signature(&device.path).await?.as_deref() {
            Some("ext4") => self.host.check(&["resize2fs", &dev]).await?,
            Some("xfs") => {
                self.host
                    .check(&["xfs_growfs", &path.to_string_lossy()])
                    .await?
            }
            other => {
                return Err(NodeError::FailedPrecondition(format!(
                    "cannot grow a {other:?} filesystem"
                )));
            }
        };
        Ok(size)
    }
}
