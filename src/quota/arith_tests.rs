//! Cinder's quota cases, as a table where it fits.
use super::*;
use crate::records::{LvsQuotaStatus, Usage};
use chrono::TimeZone;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("valid time")
}

fn status(usage: &[(&str, i64, i64)]) -> LvsQuotaStatus {
    LvsQuotaStatus {
        usage: usage
            .iter()
            .map(|(k, in_use, reserved)| {
                (
                    k.to_string(),
                    Usage {
                        in_use: *in_use,
                        reserved: *reserved,
                        ..Default::default()
                    },
                )
            })
            .collect(),
        reservations: vec![],
        released: vec![],
    }
}

fn deltas(d: &[(&str, i64)]) -> Deltas {
    d.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

fn ids() -> impl FnMut() -> String {
    let mut n = 0;
    move || {
        n += 1;
        format!("r{n}")
    }
}

#[test]
fn reserve_table() {
    // (name, limits, usage (key, in_use, reserved), deltas, expected error or Ok)
    type Case<'a> = (
        &'a str,
        &'a [(&'a str, i64)],
        &'a [(&'a str, i64, i64)],
        &'a [(&'a str, i64)],
        Option<&'a str>,
    );
    let cases: &[Case] = &[
        (
            "under",
            &[("snapshots", 10)],
            &[("snapshots", 3, 1)],
            &[("snapshots", 1)],
            None,
        ),
        (
            "exactly at limit",
            &[("snapshots", 5)],
            &[("snapshots", 3, 1)],
            &[("snapshots", 1)],
            None,
        ),
        (
            "over by one",
            &[("snapshots", 5)],
            &[("snapshots", 4, 1)],
            &[("snapshots", 1)],
            Some("Maximum number of snapshots allowed (5) exceeded"),
        ),
        (
            "reserved counts",
            &[("snapshots", 2)],
            &[("snapshots", 0, 2)],
            &[("snapshots", 1)],
            Some("Maximum number of snapshots allowed (2) exceeded"),
        ),
        (
            "unlimited",
            &[("snapshots", -1)],
            &[("snapshots", 1000, 1000)],
            &[("snapshots", 1)],
            None,
        ),
        (
            "zero limit",
            &[("volumes", 0)],
            &[("volumes", 0, 0)],
            &[("volumes", 1)],
            Some("Maximum number of volumes allowed (0) exceeded for quota 'volumes'."),
        ),
        (
            "per-type over while global under",
            &[("snapshots", 10), ("snapshots_fast", 1)],
            &[("snapshots", 1, 0), ("snapshots_fast", 1, 0)],
            &[("snapshots", 1), ("snapshots_fast", 1)],
            Some("Maximum number of snapshots allowed (1) exceeded"),
        ),
        (
            "gigabytes message",
            &[("gigabytes", 10)],
            &[("gigabytes", 8, 1)],
            &[("gigabytes", 2)],
            Some(
                "Requested volume or snapshot exceeds allowed gigabytes quota. Requested 2G, quota is 10G and 9G has been consumed.",
            ),
        ),
        (
            "gigabytes wins over snapshots",
            &[("snapshots", 1), ("gigabytes", 1)],
            &[("snapshots", 1, 0), ("gigabytes", 1, 0)],
            &[("snapshots", 1), ("gigabytes", 5)],
            Some(
                "Requested volume or snapshot exceeds allowed gigabytes quota. Requested 5G, quota is 1G and 1G has been consumed.",
            ),
        ),
        (
            "per-type gigabytes wins",
            &[("snapshots_t", 0), ("gigabytes_t", 1)],
            &[],
            &[("snapshots_t", 1), ("gigabytes_t", 2)],
            Some(
                "Requested volume or snapshot exceeds allowed gigabytes_t quota. Requested 2G, quota is 1G and 0G has been consumed.",
            ),
        ),
        (
            "negative delta never over",
            &[("snapshots", 0)],
            &[("snapshots", 5, 0)],
            &[("snapshots", -1)],
            None,
        ),
    ];
    for (name, limits, usage, d, expected) in cases {
        let mut st = status(usage);
        let before = st.clone();
        let limits: BTreeMap<String, i64> =
            limits.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        let hard = |k: &str| limits.get(k).copied().unwrap_or(-1);
        let r = reserve(&mut st, &hard, &deltas(d), now(), &mut ids());
        match expected {
            None => {
                let ids = r.unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(ids.len(), d.len(), "{name}");
                for (k, v) in d.iter() {
                    let b = before.usage.get(*k).map(|u| u.reserved).unwrap_or(0);
                    let expect = if *v > 0 { b + v } else { b };
                    assert_eq!(st.usage[*k].reserved, expect, "{name}: reserved {k}");
                }
            }
            Some(msg) => {
                assert_eq!(r, Err(QuotaError::OverQuota(msg.to_string())), "{name}");
                assert_eq!(st, before, "{name}: a refused reservation changes nothing");
            }
        }
    }
}

#[test]
fn commit_rollback_and_expire_move_usage() {
    let mut st = status(&[("snapshots", 1, 0), ("gigabytes", 10, 0)]);
    let hard = |_: &str| -1;
    let a = reserve(
        &mut st,
        &hard,
        &deltas(&[("snapshots", 1), ("gigabytes", 5)]),
        now(),
        &mut ids(),
    )
    .unwrap();
    assert_eq!(
        (st.usage["snapshots"].in_use, st.usage["snapshots"].reserved),
        (1, 1)
    );
    assert_eq!(commit(&mut st, &a), 2);
    assert_eq!(
        (st.usage["snapshots"].in_use, st.usage["snapshots"].reserved),
        (2, 0)
    );
    assert_eq!(
        (st.usage["gigabytes"].in_use, st.usage["gigabytes"].reserved),
        (15, 0)
    );
    assert!(st.reservations.is_empty());
    assert_eq!(commit(&mut st, &a), 0, "committing twice applies nothing");

    let mut next = {
        let mut n = 100;
        move || {
            n += 1;
            format!("r{n}")
        }
    };
    let b = reserve(
        &mut st,
        &hard,
        &deltas(&[("snapshots", 1)]),
        now(),
        &mut next,
    )
    .unwrap();
    assert_eq!(rollback(&mut st, &b), 1);
    assert_eq!(
        (st.usage["snapshots"].in_use, st.usage["snapshots"].reserved),
        (2, 0)
    );

    // Expiry: one expired, one not.
    let past = now() - chrono::Duration::seconds(1);
    let future = now() + chrono::Duration::hours(1);
    reserve(
        &mut st,
        &hard,
        &deltas(&[("snapshots", 1)]),
        past,
        &mut next,
    )
    .unwrap();
    let keep = reserve(
        &mut st,
        &hard,
        &deltas(&[("snapshots", 1)]),
        future,
        &mut next,
    )
    .unwrap();
    assert_eq!(st.usage["snapshots"].reserved, 2);
    assert_eq!(expire(&mut st, now(), &Default::default()), (0, 1));
    assert_eq!(st.usage["snapshots"].reserved, 1);
    assert_eq!(
        st.reservations
            .iter()
            .map(|r| r.id.clone())
            .collect::<Vec<_>>(),
        keep
    );
}

#[test]
fn negative_deltas_release_and_clamp_at_zero() {
    let mut st = status(&[("snapshots", 1, 0), ("gigabytes", 3, 0)]);
    let hard = |_: &str| 0; // even at a zero limit, releasing is allowed
    let r = reserve(
        &mut st,
        &hard,
        &deltas(&[("snapshots", -1), ("gigabytes", -5)]),
        now(),
        &mut ids(),
    )
    .unwrap();
    assert_eq!(
        st.usage["snapshots"].reserved, 0,
        "negative deltas reserve nothing"
    );
    commit(&mut st, &r);
    assert_eq!(st.usage["snapshots"].in_use, 0);
    assert_eq!(st.usage["gigabytes"].in_use, 0, "clamped at 0, not -2");
}

#[test]
fn refresh_rules() {
    let mut st = status(&[("snapshots", 2, 0), ("volumes", -1, 0)]);
    assert!(
        needs_refresh(&st, "gigabytes", None, None, now()),
        "missing usage"
    );
    assert!(
        needs_refresh(&st, "volumes", None, None, now()),
        "negative in_use"
    );
    assert!(!needs_refresh(&st, "snapshots", None, None, now()));
    refresh(&mut st, "volumes", 4, Some(2), now());
    assert_eq!(st.usage["volumes"].in_use, 4);
    assert!(!needs_refresh(&st, "volumes", Some(2), None, now()));
    // until_refresh counts down per reservation.
    let hard = |_: &str| -1;
    reserve(
        &mut st,
        &hard,
        &deltas(&[("volumes", 1)]),
        now(),
        &mut ids(),
    )
    .unwrap();
    assert!(!needs_refresh(&st, "volumes", Some(2), None, now()));
    reserve(
        &mut st,
        &hard,
        &deltas(&[("volumes", 1)]),
        now(),
        &mut ids(),
    )
    .unwrap();
    assert!(
        needs_refresh(&st, "volumes", Some(2), None, now()),
        "countdown reached 0"
    );
    // max_age.
    let age = chrono::Duration::minutes(10);
    assert!(!needs_refresh(
        &st,
        "volumes",
        None,
        Some(age),
        now() + chrono::Duration::minutes(5)
    ));
    assert!(needs_refresh(
        &st,
        "volumes",
        None,
        Some(age),
        now() + chrono::Duration::minutes(11)
    ));
    assert!(
        needs_refresh(&st, "snapshots", None, Some(age), now()),
        "never refreshed"
    );
}

/// An expired reservation a live record claims is committed (the controller
/// died between writing the record and committing); an unclaimed one is
/// rolled back (it died before the record).
#[test]
fn expiry_commits_claimed_reservations_and_rolls_back_the_rest() {
    let mut st = status(&[("snapshots", 0, 0)]);
    let hard = |_: &str| -1;
    let mut n = 0;
    let mut next = || {
        n += 1;
        format!("r{n}")
    };
    let past = now() - chrono::Duration::seconds(1);
    let claimed = reserve(
        &mut st,
        &hard,
        &deltas(&[("snapshots", 1)]),
        past,
        &mut next,
    )
    .unwrap();
    reserve(
        &mut st,
        &hard,
        &deltas(&[("snapshots", 1)]),
        past,
        &mut next,
    )
    .unwrap();
    assert_eq!(st.usage["snapshots"].reserved, 2);
    let claimed: std::collections::HashSet<String> = claimed.into_iter().collect();
    assert_eq!(expire(&mut st, now(), &claimed), (1, 1));
    assert_eq!(
        (st.usage["snapshots"].in_use, st.usage["snapshots"].reserved),
        (1, 0)
    );
    assert!(st.reservations.is_empty());
}
