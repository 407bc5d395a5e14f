//! Compare-and-swap retries for the Kubernetes store: a write that lost a
//! race (409 Conflict) is read again and retried after a back-off that grows
//! and is jittered, so that many writers of one object (a project's quota
//! under 1 000 concurrent creates) spread out instead of retrying in step.
use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use super::StoreError;

/// First back-off; doubled each round up to [`MAX_DELAY`].
const FIRST_DELAY: Duration = Duration::from_millis(2);
const MAX_DELAY: Duration = Duration::from_millis(250);
/// A write still conflicting after this long gives up (`Conflict`).
const DEADLINE: Duration = Duration::from_secs(30);

/// The delay before retry `round` (0-based): exponential, capped, and
/// jittered to 50–150 %.
pub(super) fn backoff(round: u32) -> Duration {
    let base = FIRST_DELAY
        .saturating_mul(1u32 << round.min(16))
        .min(MAX_DELAY);
    base.mul_f64(0.5 + fastrand::f64())
}

/// Runs `attempt` until it does not answer `Conflict` (or `AlreadyExists`
/// when `create_races` is set: two writers creating the same object), with
/// [`backoff`] between rounds; gives up with the last conflict after
/// [`DEADLINE`].
pub(super) async fn retry<T, F, Fut>(create_races: bool, mut attempt: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let started = Instant::now();
    let mut round = 0;
    loop {
        match attempt().await {
            Err(e @ StoreError::Conflict { .. }) | Err(e @ StoreError::AlreadyExists { .. })
                if matches!(e, StoreError::Conflict { .. }) || create_races =>
            {
                if started.elapsed() >= DEADLINE {
                    return Err(match e {
                        StoreError::AlreadyExists { kind, name } => StoreError::Conflict {
                            kind,
                            name,
                            version: String::new(),
                        },
                        e => e,
                    });
                }
                tokio::time::sleep(backoff(round)).await;
                round += 1;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        for round in 0..40 {
            let d = backoff(round);
            let base = FIRST_DELAY
                .saturating_mul(1u32 << round.min(16))
                .min(MAX_DELAY);
            assert!(
                d >= base.mul_f64(0.5) && d <= base.mul_f64(1.5),
                "{round}: {d:?}"
            );
        }
        assert!(backoff(30) <= MAX_DELAY.mul_f64(1.5));
    }

    #[tokio::test(start_paused = true)]
    async fn retries_conflicts_until_they_stop_and_gives_up_at_the_deadline() {
        let mut n = 0;
        let out = retry(false, || {
            n += 1;
            let fail = n < 5;
            async move {
                if fail {
                    Err(StoreError::Conflict {
                        kind: "quota",
                        name: "p".into(),
                        version: String::new(),
                    })
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(out.unwrap(), 5);

        let forever = retry::<(), _, _>(false, || async {
            Err(StoreError::Conflict {
                kind: "quota",
                name: "p".into(),
                version: String::new(),
            })
        })
        .await;
        assert!(matches!(forever, Err(StoreError::Conflict { .. })));

        // AlreadyExists is final unless the caller races creators.
        let mut calls = 0;
        let exists = retry::<(), _, _>(false, || {
            calls += 1;
            async {
                Err(StoreError::AlreadyExists {
                    kind: "node",
                    name: "n".into(),
                })
            }
        })
        .await;
        assert!(matches!(exists, Err(StoreError::AlreadyExists { .. })));
        assert_eq!(calls, 1);
    }
}
