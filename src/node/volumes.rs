//! The executor's volume records: create (plain, or from a content source:
//! see `content.rs`), delete, and their status writes.
use super::events::Phase;
use super::executor::{Executor, code_of, tag_for};
use crate::controller::now_rfc3339;
use crate::lvm::LvName;
use crate::records::VolumeState;
use crate::store::{Kind, StoreError, VolumeRecord};

impl Executor {
    #[tracing::instrument(skip(self), fields(node = %self.settings.node_id))]
    pub(super) async fn work_volume(&self, id: &str) -> Result<(), StoreError> {
        let Some(v) = self.store.get_volume(id).await? else {
            return Ok(());
        };
        if v.spec.node != self.settings.node_id || v.status.deleted {
            return Ok(());
        }
        match v.status.status {
            VolumeState::Creating => self.create_volume(v).await,
            VolumeState::Deleting => self.remove_volume(v).await,
            VolumeState::Extending => self.extend_volume(v).await,
            _ => Ok(()),
        }
    }

    async fn create_volume(&self, v: VolumeRecord) -> Result<(), StoreError> {
        self.notify(
            Kind::Volume,
            &v.name,
            Phase::CreateStart,
            format!("lvcreate {}/{}", v.spec.vg, v.spec.lv_name),
        )
        .await;
        let outcome = async {
            let tag = tag_for(&v.name).map_err(|m| ("INVALID_ARGUMENT", m))?;
            let name =
                LvName::new(&v.spec.lv_name).map_err(|e| ("INVALID_ARGUMENT", e.to_string()))?;
            let size = u64::try_from(v.spec.size_bytes)
                .map_err(|e| ("INVALID_ARGUMENT", e.to_string()))?;
            if v.spec.source_snapshot_id.is_some() || v.spec.source_volume_id.is_some() {
                return self.create_from_source(&v, &name, size, tag).await;
            }
            let created = match &v.spec.thin_pool {
                Some(pool) => {
                    let pool =
                        LvName::new(pool).map_err(|e| ("INVALID_ARGUMENT", e.to_string()))?;
                    self.lvm
                        .create_thin(&v.spec.vg, &pool, &name, size, &[tag])
                        .await
                }
                None => {
                    self.lvm
                        .create_linear(&v.spec.vg, &name, size, &[tag])
                        .await
                }
            };
            created.map_err(|e| (code_of(&e), e.to_string()))
        }
        .await;
        match outcome {
            Ok(_) => {
                self.set_volume(&v.name, |s| {
                    s.status = VolumeState::Available;
                    s.progress = "100%".into();
                    s.error_code = None;
                    s.error_message = None;
                })
                .await?;
                self.notify(
                    Kind::Volume,
                    &v.name,
                    Phase::CreateEnd,
                    format!("{}/{} available", v.spec.vg, v.spec.lv_name),
                )
                .await;
            }
            Err((code, message)) => {
                self.notify(
                    Kind::Volume,
                    &v.name,
                    Phase::CreateError,
                    format!("{code}: {message}"),
                )
                .await;
                self.set_volume(&v.name, |s| {
                    s.status = VolumeState::Error;
                    s.error_code = Some(code.to_string());
                    s.error_message = Some(message.clone());
                })
                .await?;
            }
        }
        Ok(())
    }

    async fn remove_volume(&self, v: VolumeRecord) -> Result<(), StoreError> {
        let removed = self
            .remove_and_release(
                Kind::Volume,
                &v.name,
                (&v.spec.vg, &v.spec.lv_name),
                &v.spec.project,
                &v.spec.quota_charged,
            )
            .await;
        match removed {
            Ok(()) => {
                self.set_volume(&v.name, |s| {
                    s.status = VolumeState::Deleted;
                    s.deleted = true;
                    s.deleted_at = Some(now_rfc3339());
                })
                .await?;
                self.notify(
                    Kind::Volume,
                    &v.name,
                    Phase::DeleteEnd,
                    "removed; quota released".into(),
                )
                .await;
            }
            Err((busy, code, msg)) => {
                self.set_volume(&v.name, |s| {
                    // Cinder: busy goes back to available; anything else is error_deleting.
                    s.status = if busy {
                        VolumeState::Available
                    } else {
                        VolumeState::ErrorDeleting
                    };
                    s.error_code = Some(code.to_string());
                    s.error_message = Some(msg.clone());
                })
                .await?;
            }
        }
        Ok(())
    }

    pub(super) async fn set_volume(
        &self,
        id: &str,
        f: impl Fn(&mut crate::records::LvmVolumeStatus),
    ) -> Result<(), StoreError> {
        for _ in 0..10 {
            let Some(mut r) = self.store.get_volume(id).await? else {
                return Ok(());
            };
            f(&mut r.status);
            match self.store.update_volume(&r).await {
                Err(StoreError::Conflict { .. }) => continue,
                other => return other.map(|_| ()),
            }
        }
        Err(StoreError::Conflict {
            kind: "volume",
            name: id.to_string(),
            version: String::new(),
        })
    }
}
