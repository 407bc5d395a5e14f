//! ControllerExpandVolume: Cinder's extend. The added gigabytes are reserved
//! (over quota → RESOURCE_EXHAUSTED, nothing changes), the record goes
//! `extending` with the target size and claims the reservation, which is
//! then committed (a controller dying in between leaves a claimed
//! reservation the sweep commits); the owning node runs lvextend and puts
//! the record back to `available` with the new size, or, when lvextend
//! fails, releases the added gigabytes and records the error.
use super::volume::size_for;
use super::{Controller, ControllerError, params, refuse};
use crate::quota::QuotaEngine;
use crate::records::{FailureCode, VolumeState};
use crate::store::{VolumeRecord, modify};

impl Controller {
    /// Grows volume `id` to at least `required` bytes; returns its new size.
    #[tracing::instrument(skip_all, fields(volume = %id))]
    pub async fn expand_volume(
        &self,
        id: &str,
        required: i64,
        limit: i64,
    ) -> Result<i64, ControllerError> {
        params::check_name("volume_id", id)?;
        let size = size_for(required, limit)?;
        let v = self.live_volume(id).await?;
        if v.spec.size_bytes >= size && v.status.life.status != VolumeState::Extending {
            return Ok(v.spec.size_bytes); // already that big (idempotent)
        }
        match v.status.life.status {
            VolumeState::Available => {
                if let Some(refused) = self
                    .unhealthy(&v.spec.node, "the volume can be extended")
                    .await
                {
                    return Err(refused);
                }
                self.dispatch_extend(&v, size).await?;
            }
            VolumeState::Extending if v.status.extend_to.is_some_and(|t| t >= size) => {}
            other => {
                return Err(ControllerError::FailedPrecondition(format!(
                    "volume {id} is {}; only an available volume can be extended",
                    other.as_str()
                )));
            }
        }
        let done = self
            .wait_volume_leaves(id, VolumeState::Extending, "extended")
            .await?;
        match done {
            None => Err(ControllerError::Aborted(format!(
                "volume {id} is still being extended; retry"
            ))),
            Some(r) if r.spec.size_bytes >= size => Ok(r.spec.size_bytes),
            Some(r) => Err(ControllerError::Recorded {
                code: r.status.life.error_code.unwrap_or(FailureCode::Internal),
                message: format!(
                    "extending volume {id} failed: {}",
                    r.status.life.error_message.unwrap_or_default()
                ),
            }),
        }
    }

    /// Reserve, record `extending` claiming the reservation, commit.
    async fn dispatch_extend(&self, v: &VolumeRecord, size: i64) -> Result<(), ControllerError> {
        let project = v.spec.project.clone();
        // The growth must fit the volume's class on its node (thin: the
        // pool's overprovisioning room; thick: the VG's, per copy).
        let (class, pool) = (v.spec.device_class.as_deref(), v.spec.thin_pool.as_ref());
        let grow = size - v.spec.size_bytes;
        self.class_room(&v.spec.node, class, &v.spec.vg, pool, grow)
            .await?;
        let deltas = QuotaEngine::extend_deltas(&v.spec.volume_type, v.spec.size_bytes, size);
        let ids = self.quota.reserve(&project, &deltas).await?;
        let (claim, charge) = (ids.clone(), deltas.clone());
        let from = v.spec.size_bytes;
        let written = self
            .store
            .modify_volume(
                &v.name,
                modify(move |r: &mut VolumeRecord| {
                    if r.status.life.status != VolumeState::Available || r.spec.size_bytes != from {
                        return Err(refuse(ControllerError::Aborted(format!(
                            "volume {} changed while being extended; retry",
                            r.name
                        ))));
                    }
                    r.status.life.status = VolumeState::Extending;
                    r.status.extend_to = Some(size);
                    r.status.life.clear_error();
                    for (k, d) in &charge {
                        *r.spec.quota_charged.entry(k.clone()).or_insert(0) += d;
                    }
                    r.spec.quota_reservations.extend(claim.iter().cloned());
                    Ok(())
                }),
            )
            .await;
        if let Err(e) = written {
            self.quota.rollback(&project, &ids).await?;
            return Err(e.into());
        }
        self.quota.commit(&project, &ids).await?;
        tracing::info!(from, to = size, "volume extend dispatched to its node");
        Ok(())
    }
}
