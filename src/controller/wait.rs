//! Waiting on a record until the node has moved it on, bounded: the
//! controller's stand-in for Cinder's synchronous RPC reply.
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use super::ControllerError;

const RECHECK: Duration = Duration::from_secs(2);
use crate::store::{Kind, Store, StoreError};

/// Calls `check` now and after every change to record `kind/name` until it
/// returns `Some`, or `timeout` passes (then `Ok(None)`).
pub(super) async fn until<T, F, Fut>(
    store: &dyn Store,
    kind: Kind,
    name: &str,
    timeout: Duration,
    mut check: F,
) -> Result<Option<T>, ControllerError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>, ControllerError>>,
{
    let deadline = Instant::now() + timeout;
    // Subscribe before the first check so no change falls in between.
    let mut changes = store.subscribe();
    loop {
        if let Some(done) = check().await? {
            return Ok(Some(done));
        }
        loop {
            if Instant::now() >= deadline {
                return Ok(None);
            }
            // Re-check at least every RECHECK even without a notification: a
            // store fed by a remote watch may miss one.
            let wake = deadline.min(Instant::now() + RECHECK);
            match tokio::time::timeout_at(wake, changes.recv()).await {
                Err(_) => break,
                Ok(Ok(c)) if c.kind == kind && c.name == name => break,
                Ok(Ok(_)) => continue,
                // Missed notifications: re-check from the store.
                Ok(Err(RecvError::Lagged(_))) => break,
                Ok(Err(RecvError::Closed)) => {
                    return Err(ControllerError::Unavailable(
                        "store notifications closed".into(),
                    ));
                }
            }
        }
    }
}

/// Waits (bounded) while `get` shows record `kind/name` in a state where
/// `pending` holds. `Ok(None)`: still pending at the deadline;
/// `Some(None)`: the record is gone; `Some(Some(r))`: it moved on.
pub(super) async fn while_pending<R, G, Fut, P>(
    store: &dyn Store,
    kind: Kind,
    name: &str,
    timeout: Duration,
    get: G,
    pending: P,
) -> Result<Option<Option<R>>, ControllerError>
where
    P: Fn(&R) -> bool + Copy,
    G: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<Option<R>, StoreError>>,
{
    until(store, kind, name, timeout, || {
        let read = get();
        async move {
            Ok(match read.await? {
                None => Some(None),
                Some(r) if pending(&r) => None,
                Some(r) => Some(Some(r)),
            })
        }
    })
    .await
}
