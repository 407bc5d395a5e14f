//! The executor's volume records: create (plain, or from a content source:
//! see `content.rs`), delete, and extend.
use super::executor::{Executor, WorkError, tag_for};
use super::{Failure, invalid, lvm_failure};
use crate::lvm::{LvName, LvOptions};
use crate::quota::{QuotaEngine, release_key};
use crate::records::{Operation, VolumeState};
use crate::store::{Kind, Phase, VolumeRecord, modify};

impl Executor {
    #[tracing::instrument(skip(self), fields(node = %self.settings.node_id))]
    pub(super) async fn work_volume(&self, id: &str) -> Result<(), WorkError> {
        let Some(v) = self.store.get_volume(id).await? else {
            return Ok(());
        };
        if v.spec.node != self.settings.node_id || v.status.life.deleted {
            return Ok(());
        }
        match v.status.life.status {
            VolumeState::Creating => self.create_volume(v).await,
            VolumeState::Deleting => self.delete_record(v.clone(), &v.name).await,
            VolumeState::Extending => self.extend_volume(v).await,
            _ => Ok(()),
        }
    }

    async fn create_volume(&self, v: VolumeRecord) -> Result<(), WorkError> {
        let note = format!("lvcreate {}/{}", v.spec.vg, v.spec.lv_name);
        self.notify(Kind::Volume, &v.name, Phase::CreateStart, note)
            .await;
        let created = self.lvcreate_volume(&v).await;
        self.finish_create(&v, &v.name, created, |_| {}).await
    }

    async fn lvcreate_volume(&self, v: &VolumeRecord) -> Result<(), Failure> {
        let tag = tag_for(&v.name).map_err(invalid)?;
        let name = LvName::new(&v.spec.lv_name).map_err(invalid)?;
        let size = u64::try_from(v.spec.size_bytes).map_err(invalid)?;
        if v.spec.source_snapshot_id.is_some() || v.spec.source_volume_id.is_some() {
            return self.create_from_source(v, &name, size, tag).await;
        }
        let created = match &v.spec.thin_pool {
            Some(pool) => {
                let pool = LvName::new(pool).map_err(invalid)?;
                let vg = &v.spec.vg;
                self.lvm.create_thin(vg, &pool, &name, size, &[tag]).await
            }
            None => {
                let options = self.class_options(v)?;
                self.lvm
                    .create_linear_with(&v.spec.vg, &name, size, &[tag], &options)
                    .await
            }
        };
        created.map(|_| ()).map_err(lvm_failure)
    }

    /// The `lvcreate` options of `v`'s device class on this node (a record
    /// from before classes: the default class's).
    pub(super) fn class_options(&self, v: &VolumeRecord) -> Result<LvOptions, Failure> {
        match self.settings.class(v.spec.device_class.as_deref()) {
            Some(class) if class.vg == v.spec.vg => Ok(class.options),
            Some(_) | None if v.spec.device_class.is_none() => Ok(LvOptions::default()),
            _ => Err(invalid(format!(
                "device class {:?} with volume group {:?} is not served by node {}",
                v.spec.device_class.as_deref().unwrap_or_default(),
                v.spec.vg,
                self.settings.node_id
            ))),
        }
    }

    /// An `extending` record: lvextend to `extend_to`, then the new size and
    /// `available`; on failure the added gigabytes are released (once) and
    /// the error recorded (the volume stays usable at its old size).
    async fn extend_volume(&self, v: VolumeRecord) -> Result<(), WorkError> {
        let target = v.status.extend_to.unwrap_or(v.spec.size_bytes);
        let outcome = async {
            let name = LvName::new(&v.spec.lv_name).map_err(invalid)?;
            let size = u64::try_from(target).map_err(invalid)?;
            let lv = self.lvm.extend(&v.spec.vg, &name, size).await;
            lv.map_err(lvm_failure)
        }
        .await;
        let deltas = QuotaEngine::extend_deltas(&v.spec.volume_type, v.spec.size_bytes, target);
        let key = format!("{}/extend/{target}", release_key(Kind::Volume, &v.name));
        if outcome.is_err() {
            self.quota
                .release_once(&v.spec.project, &key, &deltas)
                .await?;
        }
        let grown = outcome.as_ref().ok().map(|lv| lv.size_bytes);
        let failure = outcome.as_ref().err().cloned();
        self.store
            .modify_volume(
                &v.name,
                modify(move |r: &mut VolumeRecord| {
                    if r.status.life.status != VolumeState::Extending || r.status.life.deleted {
                        return Ok(());
                    }
                    r.status.life.status = VolumeState::Available;
                    r.status.extend_to = None;
                    match (&grown, &failure) {
                        (Some(bytes), _) => {
                            let bytes = i64::try_from(*bytes).unwrap_or(target);
                            r.spec.size_bytes = bytes.max(target);
                            r.status.life.clear_error();
                        }
                        (None, Some((code, message))) => {
                            for (k, d) in &deltas {
                                *r.spec.quota_charged.entry(k.clone()).or_insert(0) -= d;
                            }
                            r.status
                                .life
                                .fail(Operation::Extend, *code, message.clone());
                        }
                        (None, None) => {}
                    }
                    Ok(())
                }),
            )
            .await?;
        match outcome {
            Ok(_) => {
                tracing::info!(volume = %v.name, size = target, "volume extended");
            }
            Err((code, message)) => {
                self.quota.forget_release(&v.spec.project, &key).await?;
                tracing::error!(volume = %v.name, %code, %message, "volume extend failed");
            }
        }
        Ok(())
    }
}
