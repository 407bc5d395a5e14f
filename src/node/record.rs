//! What the executor does the same way for snapshots and volumes: record
//! the outcome of a create, remove an LV and retire the record (release its
//! quota once, soft-delete it), record a failed delete. One code path for
//! both kinds, over the store's `Tracked` trait.
use super::executor::{Executor, WorkError};
use super::{Failure, failure_of};
use crate::failpoint::points;
use crate::lvm::{ErrorKind, LvName, LvmError};
use crate::records::{FailureCode, LifeState, Operation};
use crate::store::{Phase, Tracked, modify};

/// Whether the record is (still) in `state`: writes are guarded by it, so a
/// record that moved on meanwhile (deleted, re-placed) is left alone.
fn still<R: Tracked>(r: &R, state: R::State) -> bool {
    r.life().status == state && !r.life().deleted
}

impl Executor {
    /// Records the outcome of a create: `available` (+ `extra` on the
    /// record), or `error` with the failure, after removing whatever a
    /// failed attempt left behind (an LV carrying this record's tag), so a
    /// failed create owns no LV.
    pub(super) async fn finish_create<R: Tracked>(
        &self,
        r: &R,
        id: &str,
        outcome: Result<(), Failure>,
        extra: impl Fn(&mut R) + Send + Sync + 'static,
    ) -> Result<(), WorkError> {
        let (vg, lv) = (r.vg().to_string(), r.lv_name().to_string());
        match outcome {
            Ok(()) => {
                self.failpoints.hit(points::NODE_AFTER_LVCREATE)?;
                R::modify(
                    self.store.as_ref(),
                    id,
                    modify(move |r: &mut R| {
                        if still(r, R::State::CREATING) {
                            r.set_available();
                            extra(r);
                        }
                        Ok(())
                    }),
                )
                .await?;
                let note = format!("{vg}/{lv} available");
                self.notify(R::KIND, id, Phase::CreateEnd, note).await;
            }
            Err((code, message)) => {
                self.remove_partial(id, &vg, &lv).await;
                self.notify(
                    R::KIND,
                    id,
                    Phase::CreateError,
                    format!("{code}: {message}"),
                )
                .await;
                // Cinder: the record goes to error; its quota stays charged
                // until it is deleted (or, never answered, released: DESIGN §9).
                R::modify(
                    self.store.as_ref(),
                    id,
                    modify(move |r: &mut R| {
                        if still(r, R::State::CREATING) {
                            r.life_mut().fail_create(code, message.clone());
                        }
                        Ok(())
                    }),
                )
                .await?;
            }
        }
        Ok(())
    }

    /// After a failed create: removes LV `lv` if it carries record `id`'s tag.
    pub(super) async fn remove_partial(&self, id: &str, vg: &str, lv: &str) {
        let (Ok(name), Ok(tag)) = (LvName::new(lv), super::executor::tag_for(id)) else {
            return;
        };
        match self.lvm.lv(vg, &name).await {
            Ok(Some(found)) if found.has_tag(&tag) => {
                if let Err(e) = self.lvm.remove(vg, &name).await {
                    tracing::error!(lv = %name, error = %e, "cannot remove what a failed create left");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(lv = %name, error = %e, "cannot check for a partial LV"),
        }
    }

    /// A `deleting` record: removes its LV (absent = done), then retires it;
    /// a failure is recorded (busy → back to `available`, else `error_deleting`).
    pub(super) async fn delete_record<R: Tracked>(&self, r: R, id: &str) -> Result<(), WorkError> {
        let (vg, lv) = (r.vg().to_string(), r.lv_name().to_string());
        self.notify(
            R::KIND,
            id,
            Phase::DeleteStart,
            format!("lvremove {vg}/{lv}"),
        )
        .await;
        let removed = async {
            let name = LvName::new(&lv)
                .map_err(|e| LvmError::new(ErrorKind::InvalidArgument, e.to_string()))?;
            self.lvm.remove(&vg, &name).await
        }
        .await;
        match removed {
            Ok(_) => {
                self.failpoints.hit(points::NODE_AFTER_LVREMOVE)?;
                self.quota
                    .retire::<R, WorkError>(&r, &self.failpoints)
                    .await?;
                self.notify(
                    R::KIND,
                    id,
                    Phase::DeleteEnd,
                    "removed; quota released".into(),
                )
                .await;
            }
            Err(e) => {
                let busy = e.kind() == ErrorKind::Busy;
                let (code, message) = (failure_of(&e), e.to_string());
                self.notify(
                    R::KIND,
                    id,
                    Phase::DeleteError,
                    format!("{code}: {message}"),
                )
                .await;
                R::modify(
                    self.store.as_ref(),
                    id,
                    modify(move |r: &mut R| {
                        if still(r, R::State::DELETING) {
                            record_failed_delete(r, busy, code, &message);
                        }
                        Ok(())
                    }),
                )
                .await?;
            }
        }
        Ok(())
    }
}

/// Cinder: busy goes back to available; anything else is error_deleting.
fn record_failed_delete<R: Tracked>(r: &mut R, busy: bool, code: FailureCode, message: &str) {
    let life = r.life_mut();
    life.status = if busy {
        R::State::AVAILABLE
    } else {
        R::State::ERROR_DELETING
    };
    life.fail(Operation::Delete, code, message);
}
