//! DeleteSnapshot and DeleteVolume after their own checks: one path for
//! both kinds. The record goes `deleting` (an atomic read-modify-write that
//! also re-checks its status), its node removes the LV and releases the
//! quota, the controller waits, bounded. A node that is gone (the CO's Node
//! object deleted) cannot remove anything: the record is deleted and its
//! quota released here, with an Event saying the LV was not removed. A node
//! that is only stale gets the record `deleting` for when it is back, and
//! the caller UNAVAILABLE naming it.
use super::nodes::{NodeHealth, stale_message};
use super::{Controller, ControllerError, refuse, wait};
use crate::failpoint::points;
use crate::records::LifeState;
use crate::store::{Phase, Tracked, modify};

impl Controller {
    /// Deletes record `r` (already checked by the caller). `r` may be in
    /// any state but `deleted`; `creating` (and, for volumes, `extending`)
    /// answers ABORTED unless the node is gone.
    pub(super) async fn delete_tracked<R: Tracked>(
        &self,
        r: R,
        id: &str,
        busy: fn(&R) -> Option<ControllerError>,
    ) -> Result<(), ControllerError> {
        let kind = R::KIND.as_str();
        let node = r.node().to_string();
        match self.node_health(&node).await {
            NodeHealth::Gone => return self.abandon(&r, id).await,
            NodeHealth::Stale { last_heartbeat } => {
                self.mark_deleting(id, busy).await?;
                return Err(ControllerError::Unavailable(stale_message(
                    &node,
                    &last_heartbeat,
                    &format!("{kind} {id} is deleted"),
                )));
            }
            NodeHealth::Live => {}
        }
        self.mark_deleting(id, busy).await?;
        self.failpoints.hit(points::DELETE_AFTER_MARK)?;
        let store = self.store.as_ref();
        let done = wait::while_pending(
            store,
            R::KIND,
            id,
            self.config.wait_timeout,
            || R::get(store, id),
            |r: &R| !r.life().deleted && r.life().status == R::State::DELETING,
        )
        .await?;
        match done {
            None => Err(ControllerError::Aborted(format!(
                "{kind} {id} is still being deleted"
            ))),
            Some(None) => Ok(()),
            Some(Some(r)) if r.life().deleted => Ok(()),
            Some(Some(r)) if r.life().status == R::State::AVAILABLE => {
                Err(ControllerError::FailedPrecondition(format!(
                    "{kind} {id} is busy: {}",
                    r.life().error_message.clone().unwrap_or_default()
                )))
            }
            Some(Some(r)) => Err(ControllerError::Recorded {
                code: r
                    .life()
                    .error_code
                    .unwrap_or(crate::records::FailureCode::Internal),
                message: format!(
                    "deleting {kind} {id} failed: {}",
                    r.life().error_message.clone().unwrap_or_default()
                ),
            }),
        }
    }

    /// `available | error | error_deleting → deleting`, atomically; a record
    /// already `deleting` stays so. `busy` refuses records in states that
    /// cannot be deleted now (it sees the record as stored at the write).
    pub(super) async fn mark_deleting<R: Tracked>(
        &self,
        id: &str,
        busy: fn(&R) -> Option<ControllerError>,
    ) -> Result<(), ControllerError> {
        R::modify(
            self.store.as_ref(),
            id,
            modify(move |r: &mut R| {
                if r.life().deleted || r.life().status == R::State::DELETING {
                    return Ok(());
                }
                if let Some(refused) = busy(r) {
                    return Err(refuse(refused));
                }
                let life = r.life_mut();
                life.transition(R::State::DELETING)
                    .map_err(|e| refuse(ControllerError::FailedPrecondition(e.to_string())))?;
                life.clear_error();
                Ok(())
            }),
        )
        .await?;
        Ok(())
    }

    /// The node is gone: release what the record charged (once), mark it
    /// deleted, and say the LV could not be removed.
    pub(super) async fn abandon<R: Tracked>(&self, r: &R, id: &str) -> Result<(), ControllerError> {
        self.quota
            .retire::<R, ControllerError>(r, &self.failpoints)
            .await?;
        let note = format!(
            "node {} is gone (its Node object was deleted): LV {}/{} was not removed; the record is deleted and its quota released",
            r.node(),
            r.vg(),
            r.lv_name()
        );
        self.notify(R::KIND, id, Phase::LvAbandoned, note).await;
        Ok(())
    }
}
