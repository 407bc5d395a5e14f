//! The write commands: quota-update, reset-state, force-delete. Each is one
//! read-modify-write through the store (a SQLite transaction, or a
//! Kubernetes compare-and-swap), as the driver's own writes are; none runs
//! LVM. A running all-in-one's node sees a change made by another process
//! at its next resync (`--capacity-interval`); in Kubernetes at once (watch).
use std::sync::Arc;

use super::{IdArgs, QuotaUpdateArgs, ResetStateArgs, views};
use crate::quota::validate_key;
use crate::records::{FailureCode, LifeState, Operation, SnapshotState, VolumeState};
use crate::store::{BoxError, SnapshotRecord, Store, Tracked, VolumeRecord, modify};

pub(super) async fn quota_update(a: &QuotaUpdateArgs) -> anyhow::Result<String> {
    if !crate::controller::params::is_dns_label(&a.project) {
        anyhow::bail!("{:?} is not a valid project (namespace) name", a.project);
    }
    let mut set: Vec<(String, i64)> = Vec::new();
    for (key, v) in [
        ("snapshots", a.snapshots),
        ("gigabytes", a.gigabytes),
        ("volumes", a.volumes),
    ] {
        if let Some(v) = v {
            set.push((key.into(), v));
        }
    }
    for pair in &a.set {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--set {pair:?}: use KEY=LIMIT"))?;
        let v: i64 = v
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("--set {pair:?}: the limit must be a whole number"))?;
        set.push((k.trim().to_string(), v));
    }
    if set.is_empty() && a.unset.is_empty() {
        anyhow::bail!(
            "nothing to update: give --snapshots, --gigabytes, --volumes, --set or --unset"
        );
    }
    for (k, v) in &set {
        validate_key(k)?;
        if *v < -1 {
            anyhow::bail!("{k}={v}: a limit is -1 (unlimited) or more");
        }
    }
    for k in &a.unset {
        validate_key(k)?;
    }
    let store = a.backend.open().await?;
    let unset = a.unset.clone();
    store
        .update_quota(
            &a.project,
            Box::new(move |cur| {
                let mut spec = cur.map(|r| r.spec.clone()).unwrap_or_default();
                for (k, v) in &set {
                    spec.hard.insert(k.clone(), *v);
                }
                for k in &unset {
                    spec.hard.remove(k);
                }
                Ok((spec, cur.map(|r| r.status.clone()).unwrap_or_default()))
            }),
        )
        .await?;
    views::quota_show(&a.backend, &a.project).await
}

/// Which kind an id is (volumes first; ids of both kinds never collide).
enum Found {
    Volume,
    Snapshot,
}

async fn find(store: &Arc<dyn Store>, id: &str) -> anyhow::Result<Found> {
    if store.get_volume(id).await?.is_some() {
        return Ok(Found::Volume);
    }
    if store.get_snapshot(id).await?.is_some() {
        return Ok(Found::Snapshot);
    }
    anyhow::bail!("no volume or snapshot with id {id}")
}

fn refuse(msg: String) -> BoxError {
    msg.into()
}

/// Sets `to` (already checked) on record `id` of kind `R`.
async fn set_state<R: Tracked>(
    store: &dyn Store,
    id: &str,
    to: R::State,
    extra: fn(&mut R, bool),
) -> anyhow::Result<String> {
    let from = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let seen = from.clone();
    let owned = id.to_string();
    let done = R::modify(
        store,
        id,
        modify(move |r: &mut R| {
            let life = r.life_mut();
            if life.deleted {
                return Err(refuse(format!("{owned} is deleted")));
            }
            if let Ok(mut s) = seen.lock() {
                *s = life.status.as_str().to_string();
            }
            life.status = to;
            let available = to.is_ready();
            if available {
                life.clear_error();
                life.progress = "100%".into();
            } else if to == R::State::ERROR || to == R::State::ERROR_DELETING {
                life.fail(
                    Operation::Check,
                    FailureCode::Internal,
                    "status reset by an administrator (lvsnap reset-state)",
                );
            }
            extra(r, available);
            Ok(())
        }),
    )
    .await?;
    if done.is_none() {
        anyhow::bail!("{id} vanished");
    }
    let from = from.lock().map(|s| s.clone()).unwrap_or_default();
    Ok(format!(
        "{} {id}: {from} -> {}\n",
        R::KIND.as_str(),
        to.as_str()
    ))
}

pub(super) async fn reset_state(a: &ResetStateArgs) -> anyhow::Result<String> {
    let store = a.backend.open().await?;
    let hint = "; to delete a record use force-delete";
    match find(&store, &a.id).await? {
        Found::Volume => {
            let to = match a.state.as_str() {
                "available" => VolumeState::Available,
                "in-use" => VolumeState::InUse,
                "error" => VolumeState::Error,
                "error_deleting" => VolumeState::ErrorDeleting,
                other => anyhow::bail!(
                    "--state {other:?}: a volume can be reset to available, in-use, error or error_deleting{hint}"
                ),
            };
            set_state::<VolumeRecord>(store.as_ref(), &a.id, to, |_, _| {}).await
        }
        Found::Snapshot => {
            let to = match a.state.as_str() {
                "available" => SnapshotState::Available,
                "error" => SnapshotState::Error,
                "error_deleting" => SnapshotState::ErrorDeleting,
                other => anyhow::bail!(
                    "--state {other:?}: a snapshot can be reset to available, error or error_deleting{hint}"
                ),
            };
            set_state::<SnapshotRecord>(store.as_ref(), &a.id, to, |s, ready| {
                s.status.ready_to_use = ready;
            })
            .await
        }
    }
}

/// Marks `id` deleting whatever its status; its node removes the LV.
async fn mark_deleting<R: Tracked>(store: &dyn Store, id: &str) -> anyhow::Result<String> {
    let from = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let seen = from.clone();
    let owned = id.to_string();
    let done = R::modify(
        store,
        id,
        modify(move |r: &mut R| {
            let life = r.life_mut();
            if life.deleted {
                return Err(refuse(format!("{owned} is already deleted")));
            }
            if let Ok(mut s) = seen.lock() {
                *s = life.status.as_str().to_string();
            }
            life.status = R::State::DELETING;
            life.clear_error();
            Ok(())
        }),
    )
    .await?;
    let Some(r) = done else {
        anyhow::bail!("{id} vanished");
    };
    let from = from.lock().map(|s| s.clone()).unwrap_or_default();
    Ok(format!(
        "{} {id}: {from} -> deleting; node {} removes {}/{} and releases its quota\n",
        R::KIND.as_str(),
        r.node(),
        r.vg(),
        r.lv_name()
    ))
}

pub(super) async fn force_delete(a: &IdArgs) -> anyhow::Result<String> {
    let store = a.backend.open().await?;
    match find(&store, &a.id).await? {
        Found::Volume => mark_deleting::<VolumeRecord>(store.as_ref(), &a.id).await,
        Found::Snapshot => mark_deleting::<SnapshotRecord>(store.as_ref(), &a.id).await,
    }
}
