//! ControllerExpandVolume: Cinder's extend. The added gigabytes are charged
//! first (over quota → RESOURCE_EXHAUSTED, nothing changes), the record goes
//! `extending` with the target size, the owning node runs lvextend and puts
//! it back to `available` with the new size, or, when lvextend fails,
//! releases the added gigabytes and records the error.
use super::params;
use super::volume::size_for;
use super::{Controller, ControllerError};
use crate::quota::gib_ceil;
use crate::records::VolumeState;
use crate::store::StoreError;

/// Quota deltas of growing a volume of `volume_type` from `from` to `to` bytes.
pub fn extend_deltas(volume_type: &str, from: i64, to: i64) -> crate::quota::arith::Deltas {
    let delta = gib_ceil(to) - gib_ceil(from);
    let mut d = crate::quota::arith::Deltas::new();
    if delta > 0 {
        d.insert("gigabytes".into(), delta);
        d.insert(format!("gigabytes_{volume_type}"), delta);
    }
    d
}

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
        let mut v = match self.store.get_volume(id).await? {
            Some(v) if !v.status.deleted => v,
            _ => return Err(ControllerError::NotFound(format!("volume {id} not found"))),
        };
        if v.spec.size_bytes >= size && v.status.status != VolumeState::Extending {
            return Ok(v.spec.size_bytes); // already that big (idempotent)
        }
        match v.status.status {
            VolumeState::Available => {
                let deltas = extend_deltas(&v.spec.volume_type, v.spec.size_bytes, size);
                if !deltas.is_empty() {
                    self.quota.charge(&v.spec.project, &deltas).await?;
                }
                v.status.status = VolumeState::Extending;
                v.status.extend_to = Some(size);
                v.status.error_code = None;
                v.status.error_message = None;
                for (k, d) in &deltas {
                    *v.spec.quota_charged.entry(k.clone()).or_insert(0) += d;
                }
                if let Err(e) = self.store.update_volume(&v).await {
                    let release = deltas.iter().map(|(k, d)| (k.clone(), -d)).collect();
                    let _ = self.quota.charge(&v.spec.project, &release).await;
                    return Err(match e {
                        StoreError::Conflict { .. } => ControllerError::Aborted(format!(
                            "volume {id} changed while being extended; retry"
                        )),
                        e => e.into(),
                    });
                }
                tracing::info!(
                    from = v.spec.size_bytes,
                    to = size,
                    "volume extend dispatched to its node"
                );
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
                code: r.status.error_code.unwrap_or_else(|| "INTERNAL".into()),
                message: format!(
                    "extending volume {id} failed: {}",
                    r.status.error_message.unwrap_or_default()
                ),
            }),
        }
    }
}
