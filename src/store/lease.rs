//! Leader election on a `coordination.k8s.io` Lease, so that of several
//! controller replicas exactly one runs the sweeps. client-go's algorithm:
//! take the Lease when it is absent or expired (`renewTime +
//! leaseDurationSeconds` in the past), renew it while held, every write a
//! compare-and-swap on its resourceVersion, so two candidates can never both
//! win a round. Written here on kube's `Api<Lease>` rather than with
//! kube-lease-manager: that crate takes the Lease by server-side apply field
//! ownership, which the in-process fake API server the tests run against
//! does not implement; resourceVersion CAS is what the fake (and client-go)
//! does implement.
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::sync::watch;

/// Which Lease, who we are, how long a term lasts.
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    /// This replica (the pod name).
    pub identity: String,
    /// A leader that has not renewed for this long may be replaced.
    pub duration: Duration,
    /// How often a candidate tries, and a leader renews.
    pub retry: Duration,
}

/// Leadership as a watch: `true` while this replica holds the Lease.
pub type Leadership = watch::Receiver<bool>;

/// A leadership that is always held (all-in-one: one process).
pub fn always_leader() -> Leadership {
    // The value stays readable after the sender is gone.
    watch::channel(true).1
}

/// Runs the election on its own task; returns the leadership watch.
pub fn spawn_election(
    client: Client,
    config: LeaseConfig,
) -> (Leadership, tokio::task::JoinHandle<()>) {
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        let api: Api<Lease> = Api::namespaced(client, &config.namespace);
        let mut last_renewed: Option<tokio::time::Instant> = None;
        loop {
            match try_acquire_or_renew(&api, &config).await {
                Ok(true) => {
                    if !*tx.borrow() {
                        tracing::info!(lease = %config.name, identity = %config.identity, "became the leader: this replica runs the sweeps");
                    }
                    last_renewed = Some(tokio::time::Instant::now());
                    let _ = tx.send(true);
                }
                Ok(false) => {
                    if *tx.borrow() {
                        tracing::warn!(lease = %config.name, "lost the lease to another replica");
                    }
                    last_renewed = None;
                    let _ = tx.send(false);
                }
                Err(e) => {
                    // Keep leading only while the term we renewed still runs.
                    let held = last_renewed.is_some_and(|t| t.elapsed() < config.duration * 2 / 3);
                    if *tx.borrow() && !held {
                        tracing::warn!(lease = %config.name, error = %e, "cannot renew the lease: stepping down");
                        let _ = tx.send(false);
                    } else {
                        tracing::warn!(lease = %config.name, error = %e, "lease election round failed");
                    }
                }
            }
            tokio::time::sleep(config.retry).await;
        }
    });
    (rx, task)
}

fn micro(t: Timestamp) -> MicroTime {
    MicroTime(t)
}

fn spec(
    config: &LeaseConfig,
    now: Timestamp,
    acquired: Option<MicroTime>,
    transitions: i32,
) -> LeaseSpec {
    LeaseSpec {
        holder_identity: Some(config.identity.clone()),
        lease_duration_seconds: Some(i32::try_from(config.duration.as_secs()).unwrap_or(i32::MAX)),
        acquire_time: Some(acquired.unwrap_or(micro(now))),
        renew_time: Some(micro(now)),
        lease_transitions: Some(transitions),
        ..Default::default()
    }
}

/// One round: `Ok(true)` when this replica holds the Lease afterwards.
pub async fn try_acquire_or_renew(
    api: &Api<Lease>,
    config: &LeaseConfig,
) -> Result<bool, kube::Error> {
    let now = Timestamp::now();
    let Some(current) = api.get_opt(&config.name).await? else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(config.name.clone()),
                namespace: Some(config.namespace.clone()),
                ..Default::default()
            },
            spec: Some(spec(config, now, None, 0)),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        };
    };
    let held = current.spec.clone().unwrap_or_default();
    let mine = held.holder_identity.as_deref() == Some(config.identity.as_str());
    let expired = match (&held.renew_time, held.lease_duration_seconds) {
        (Some(MicroTime(renewed)), Some(secs)) => renewed
            .checked_add(SignedDuration::from_secs(i64::from(secs)))
            .map(|end| end < now)
            .unwrap_or(true),
        _ => true,
    };
    if !mine && !expired && held.holder_identity.is_some() {
        return Ok(false);
    }
    let transitions = held.lease_transitions.unwrap_or(0) + i32::from(!mine);
    let acquired = if mine {
        held.acquire_time.clone()
    } else {
        None
    };
    let mut next = current.clone();
    next.spec = Some(spec(config, now, acquired, transitions));
    match api
        .replace(&config.name, &PostParams::default(), &next)
        .await
    {
        Ok(_) => Ok(true),
        // Someone else wrote first: not ours this round.
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}
