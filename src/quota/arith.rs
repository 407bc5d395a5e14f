//! The pure arithmetic of Cinder's quota engine (db/sqlalchemy/api.py
//! `quota_reserve`, `reservation_commit`, `reservation_rollback`,
//! `reservation_expire`), on a project's usage and reservations. No I/O.
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::QuotaError;
use crate::records::{LvsQuotaStatus, ReservationRecord, Usage};

/// Requested changes per resource key (negative on delete).
pub type Deltas = BTreeMap<String, i64>;

/// Whether `usage[key]` must be recounted before reserving (Cinder: a new
/// usage row, `in_use < 0`, the `until_refresh` countdown at 0, or older
/// than `max_age`).
pub fn needs_refresh(
    status: &LvsQuotaStatus,
    key: &str,
    until_refresh: Option<i64>,
    max_age: Option<chrono::Duration>,
    now: DateTime<Utc>,
) -> bool {
    let Some(u) = status.usage.get(key) else {
        return true;
    };
    if u.in_use < 0 {
        return true;
    }
    if until_refresh.is_some() && u.until_refresh.is_some_and(|n| n <= 0) {
        return true;
    }
    if let Some(max_age) = max_age {
        let fresh = u
            .refreshed_at
            .as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .is_some_and(|t| now.signed_duration_since(t) <= max_age);
        if !fresh {
            return true;
        }
    }
    false
}

/// Sets `usage[key].in_use` from a recount.
pub fn refresh(
    status: &mut LvsQuotaStatus,
    key: &str,
    in_use: i64,
    until_refresh: Option<i64>,
    now: DateTime<Utc>,
) {
    let u = status.usage.entry(key.to_string()).or_default();
    u.in_use = in_use.max(0);
    u.until_refresh = until_refresh;
    u.refreshed_at = Some(now.to_rfc3339());
}

/// Reserves `deltas`: all or nothing. `hard(key)` gives the limit (negative =
/// unlimited); `new_id` names each reservation. Over quota → Cinder's message
/// for the first over key in sorted order (so `gigabytes*` wins).
pub fn reserve(
    status: &mut LvsQuotaStatus,
    hard: &dyn Fn(&str) -> i64,
    deltas: &Deltas,
    expires_at: DateTime<Utc>,
    new_id: &mut dyn FnMut() -> String,
) -> Result<Vec<String>, QuotaError> {
    let mut overs: Vec<&String> = deltas
        .iter()
        .filter(|(key, delta)| {
            let limit = hard(key);
            let u = status.usage.get(*key).cloned().unwrap_or_default();
            limit >= 0 && **delta >= 0 && limit < u.in_use + u.reserved + **delta
        })
        .map(|(k, _)| k)
        .collect();
    overs.sort();
    if let Some(key) = overs.first() {
        let limit = hard(key);
        let u = status.usage.get(*key).cloned().unwrap_or_default();
        let msg = if key.starts_with("gigabytes") {
            format!(
                "Requested volume or snapshot exceeds allowed {key} quota. Requested {}G, quota is {limit}G and {}G has been consumed.",
                deltas[*key],
                u.in_use + u.reserved
            )
        } else if key.starts_with("snapshots") {
            format!("Maximum number of snapshots allowed ({limit}) exceeded")
        } else {
            format!("Maximum number of volumes allowed ({limit}) exceeded for quota '{key}'.")
        };
        return Err(QuotaError::OverQuota(msg));
    }
    let mut ids = Vec::with_capacity(deltas.len());
    for (key, delta) in deltas {
        let u = status.usage.entry(key.clone()).or_default();
        if *delta > 0 {
            u.reserved += delta;
        }
        if let Some(n) = u.until_refresh.as_mut() {
            *n -= 1;
        }
        let id = new_id();
        status.reservations.push(ReservationRecord {
            id: id.clone(),
            resource: key.clone(),
            delta: *delta,
            expires_at: expires_at.to_rfc3339(),
        });
        ids.push(id);
    }
    Ok(ids)
}

/// Commits reservations: `reserved -= delta` (delta ≥ 0), `in_use += delta`,
/// both clamped at 0. Unknown ids (already expired or committed) are skipped;
/// returns how many were applied.
pub fn commit(status: &mut LvsQuotaStatus, ids: &[String]) -> usize {
    finish(status, ids, true)
}

/// Rolls reservations back: `reserved -= delta` (delta ≥ 0).
pub fn rollback(status: &mut LvsQuotaStatus, ids: &[String]) -> usize {
    finish(status, ids, false)
}

/// Settles every reservation that expired before `now`: those in `claimed`
/// (a live record holds them) are committed, the others rolled back.
/// Returns (committed, rolled back).
pub fn expire(
    status: &mut LvsQuotaStatus,
    now: DateTime<Utc>,
    claimed: &std::collections::HashSet<String>,
) -> (usize, usize) {
    let (keep, drop): (Vec<String>, Vec<String>) = expired_ids(status, now)
        .into_iter()
        .partition(|id| claimed.contains(id));
    (commit(status, &keep), rollback(status, &drop))
}

/// Releases what a record charged, once: applies `deltas` (negative) to
/// `in_use` (clamped at 0) and remembers `key` in `released`, unless `key`
/// is there already (a release retried after a crash). Returns whether it
/// applied now.
pub fn release_once(status: &mut LvsQuotaStatus, key: &str, deltas: &Deltas) -> bool {
    if status.released.iter().any(|k| k == key) {
        return false;
    }
    for (resource, delta) in deltas {
        let u: &mut Usage = status.usage.entry(resource.clone()).or_default();
        u.in_use = (u.in_use + delta).max(0);
    }
    status.released.push(key.to_string());
    true
}

/// Forgets a release (its record is marked deleted): returns whether it was there.
pub fn forget_release(status: &mut LvsQuotaStatus, key: &str) -> bool {
    let before = status.released.len();
    status.released.retain(|k| k != key);
    status.released.len() != before
}

/// The ids of the reservations that expired before `now`.
pub fn expired_ids(status: &LvsQuotaStatus, now: DateTime<Utc>) -> Vec<String> {
    status
        .reservations
        .iter()
        .filter(|r| {
            DateTime::parse_from_rfc3339(&r.expires_at)
                .map(|t| t < now)
                .unwrap_or(true) // unreadable expiry: treat as expired
        })
        .map(|r| r.id.clone())
        .collect()
}

fn finish(status: &mut LvsQuotaStatus, ids: &[String], commit: bool) -> usize {
    let (done, kept): (Vec<ReservationRecord>, Vec<ReservationRecord>) =
        std::mem::take(&mut status.reservations)
            .into_iter()
            .partition(|r| ids.contains(&r.id));
    status.reservations = kept;
    for r in &done {
        let u: &mut Usage = status.usage.entry(r.resource.clone()).or_default();
        if r.delta >= 0 {
            u.reserved = (u.reserved - r.delta).max(0);
        }
        if commit {
            u.in_use = (u.in_use + r.delta).max(0);
        }
    }
    done.len()
}

#[cfg(test)]
#[path = "arith_tests.rs"]
mod tests;
