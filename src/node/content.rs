//! Volumes with a content source: restore from a snapshot, clone of a
//! volume. Thin sources become a writable thin snapshot (instant); thick
//! ones a new linear LV with the source's blocks copied in (a clone first
//! takes a temporary thick snapshot, so it copies one point in time), with
//! progress written to the volume record.
use std::path::PathBuf;

use super::copy::copy_blocks;
use super::executor::Executor;
use super::{Failure, invalid, lvm_failure};
use crate::lvm::{ErrorKind, LvName, LvTag, LvmError};
use crate::records::FailureCode;
use crate::store::{VolumeRecord, modify};

impl Executor {
    /// Creates `name` for record `v` from its snapshot or volume source.
    pub(super) async fn create_from_source(
        &self,
        v: &VolumeRecord,
        name: &LvName,
        size: u64,
        tag: LvTag,
    ) -> Result<(), Failure> {
        let vg = v.spec.vg.as_str();
        let (source_lv, from_volume) = match (&v.spec.source_snapshot_id, &v.spec.source_volume_id)
        {
            (Some(id), _) => {
                let snap = self
                    .store
                    .get_snapshot(id)
                    .await
                    .map_err(|e| (FailureCode::Unavailable, e.to_string()))?
                    .filter(|s| !s.status.life.deleted)
                    .ok_or((FailureCode::NotFound, format!("snapshot {id} not found")))?;
                (snap.spec.lv_name, false)
            }
            (None, Some(id)) => {
                let vol = self
                    .store
                    .get_volume(id)
                    .await
                    .map_err(|e| (FailureCode::Unavailable, e.to_string()))?
                    .filter(|s| !s.status.life.deleted)
                    .ok_or((FailureCode::NotFound, format!("volume {id} not found")))?;
                (vol.spec.lv_name, true)
            }
            (None, None) => return Err((FailureCode::Internal, "no content source".into())),
        };
        let source_lv = LvName::new(&source_lv).map_err(invalid)?;
        let source = self
            .lvm
            .lv(vg, &source_lv)
            .await
            .map_err(lvm_failure)?
            .ok_or((
                FailureCode::NotFound,
                format!("source LV {vg}/{source_lv} not found"),
            ))?;
        if source.attr.is_snapshot_invalid() {
            return Err((
                FailureCode::FailedPrecondition,
                format!("snapshot LV {vg}/{source_lv} is invalid: its data is lost"),
            ));
        }
        if source.attr.is_thin() {
            // A writable thin snapshot of the source, grown if asked bigger.
            self.lvm
                .lvcreate_snapshot(vg, &source_lv, name, None, &[tag])
                .await
                .map_err(lvm_failure)?;
            return self
                .lvm
                .extend(vg, name, size)
                .await
                .map(|_| ())
                .map_err(lvm_failure);
        }
        // Thick: the source's logical size (a thick snapshot's is its origin's).
        let len = source
            .origin_size_bytes
            .unwrap_or(source.size_bytes)
            .min(size);
        if !from_volume {
            return self.copy_into(v, &source_lv, len, name, size, tag).await;
        }
        // A clone reads a temporary snapshot, so a volume in use copies consistently.
        let temp = LvName::snapshot(uuid::Uuid::new_v5(
            &uuid::Uuid::NAMESPACE_OID,
            format!("lvsnap-clone/{}", v.name).as_bytes(),
        ));
        // A leftover from an interrupted attempt goes first.
        self.lvm.remove(vg, &temp).await.map_err(lvm_failure)?;
        self.lvm
            .lvcreate_snapshot(vg, &source_lv, &temp, None, &[])
            .await
            .map_err(lvm_failure)?;
        let copied = self.copy_into(v, &temp, len, name, size, tag).await;
        if let Err(e) = self.lvm.remove(vg, &temp).await {
            tracing::error!(lv = %temp, error = %e, "cannot remove the clone's temporary snapshot");
        }
        copied
    }

    /// A new linear LV `name` with the first `len` bytes of `source` copied in.
    async fn copy_into(
        &self,
        v: &VolumeRecord,
        source: &LvName,
        len: u64,
        name: &LvName,
        size: u64,
        tag: LvTag,
    ) -> Result<(), Failure> {
        let vg = v.spec.vg.as_str();
        let options = self.class_options(v)?;
        self.lvm
            .create_linear_with(vg, name, size, &[tag], &options)
            .await
            .map_err(lvm_failure)?;
        let src = PathBuf::from(format!("/dev/{vg}/{source}"));
        let dst = PathBuf::from(format!("/dev/{vg}/{name}"));
        // Zero the target without writing where the storage allows it; then
        // zero chunks of the source need no write.
        let zeroed = self
            .host
            .run(&["blkdiscard", "--zeroout", &dst.to_string_lossy()])
            .await
            .is_ok_and(|r| r.code == Some(0));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u8>();
        let copy = tokio::task::spawn_blocking(move || {
            copy_blocks(&src, &dst, len, zeroed, |pct| {
                let _ = tx.send(pct);
            })
        });
        let id = v.name.clone();
        let report = async {
            while let Some(pct) = rx.recv().await {
                if pct % 10 == 0 && pct < 100 {
                    let progress = format!("{pct}%");
                    let _ = self
                        .store
                        .modify_volume(
                            &id,
                            modify(move |r: &mut VolumeRecord| {
                                r.status.life.progress = progress.clone();
                                Ok(())
                            }),
                        )
                        .await;
                }
            }
        };
        let (copied, ()) = tokio::join!(copy, report);
        let copied = copied
            .map_err(|e| (FailureCode::Internal, format!("copy task failed: {e}")))?
            .map_err(|e| {
                let e = LvmError::new(
                    ErrorKind::Other,
                    format!("copying {source} into {name}: {e}"),
                );
                lvm_failure(e)
            })?;
        tracing::info!(volume = %v.name, bytes = copied.bytes, skipped = copied.skipped, zeroed, "blocks copied");
        Ok(())
    }
}
