//! The quota engine over a real store backend.
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use chrono::{DateTime, Utc};
use lvsnap::quota::{QuotaConfig, QuotaEngine, QuotaError, system_clock};
use lvsnap::store::Store;

fn engine(store: Arc<dyn Store>, defaults: &[(&str, i64)]) -> QuotaEngine {
    let mut config = QuotaConfig::default();
    for (k, v) in defaults {
        config.defaults.insert(k.to_string(), *v);
    }
    QuotaEngine::new(store, config, system_clock())
}

fn one(key: &str, n: i64) -> BTreeMap<String, i64> {
    [(key.to_string(), n)].into()
}

/// 100 concurrent reservations of `snapshots: 1` against a limit of 50:
/// exactly 50 succeed, `in_use + reserved` never exceeds 50 at any observed
/// moment, and after committing some and rolling back the rest, usage equals
/// the committed count.
pub async fn hundred_concurrent_reservations_against_fifty(store: Arc<dyn Store>) {
    let q = engine(store.clone(), &[("snapshots", 50)]);
    // Start from a known, refreshed usage.
    q.set_limits("race", [("snapshots".to_string(), 50)].into())
        .await
        .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let max_seen = Arc::new(AtomicI64::new(0));
    let observer = {
        let (store, stop, max_seen) = (store.clone(), stop.clone(), max_seen.clone());
        tokio::spawn(async move {
            let mut reads = 0u64;
            while !stop.load(Ordering::SeqCst) {
                if let Ok(Some(r)) = store.get_quota("race").await {
                    let u = r.status.usage.get("snapshots").cloned().unwrap_or_default();
                    max_seen.fetch_max(u.in_use + u.reserved, Ordering::SeqCst);
                    reads += 1;
                }
                tokio::task::yield_now().await;
            }
            reads
        })
    };
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let q = q.clone();
            tokio::spawn(async move { q.reserve("race", &one("snapshots", 1)).await })
        })
        .collect();
    let mut ok = Vec::new();
    let mut over = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(ids) => ok.push(ids),
            Err(QuotaError::OverQuota(msg)) => {
                assert_eq!(msg, "Maximum number of snapshots allowed (50) exceeded");
                over += 1;
            }
            Err(e) => panic!("unexpected: {e}"),
        }
    }
    stop.store(true, Ordering::SeqCst);
    let reads = observer.await.unwrap();
    assert_eq!((ok.len(), over), (50, 50));
    assert!(
        max_seen.load(Ordering::SeqCst) <= 50,
        "observed {} > 50",
        max_seen.load(Ordering::SeqCst)
    );
    let after = store.get_quota("race").await.unwrap().unwrap();
    assert_eq!(after.status.usage["snapshots"].reserved, 50);
    assert_eq!(
        after.status.usage["snapshots"].in_use + after.status.usage["snapshots"].reserved,
        50
    );

    // Commit 30 concurrently, roll 20 back.
    let (commit, rollback) = ok.split_at(30);
    let mut jobs = Vec::new();
    for ids in commit {
        let (q, ids) = (q.clone(), ids.clone());
        jobs.push(tokio::spawn(async move { q.commit("race", &ids).await }));
    }
    for ids in rollback {
        let (q, ids) = (q.clone(), ids.clone());
        jobs.push(tokio::spawn(async move { q.rollback("race", &ids).await }));
    }
    for j in jobs {
        j.await.unwrap().unwrap();
    }
    let done = store.get_quota("race").await.unwrap().unwrap();
    let u = &done.status.usage["snapshots"];
    assert_eq!((u.in_use, u.reserved), (30, 0));
    assert!(done.status.reservations.is_empty());
    eprintln!(
        "observer read the quota record {reads} times; max in_use+reserved seen {}",
        max_seen.load(Ordering::SeqCst)
    );
}

pub async fn per_type_and_shared_gigabytes(store: Arc<dyn Store>) {
    let q = engine(store.clone(), &[("gigabytes", 10), ("snapshots_fast", 1)]);
    let vol = q.volume_deltas("fast", 6, 1);
    assert_eq!(
        vol.keys().cloned().collect::<Vec<_>>(),
        ["gigabytes", "gigabytes_fast", "volumes", "volumes_fast"]
    );
    let ids = q.reserve("p", &vol).await.unwrap();
    q.commit("p", &ids).await.unwrap();
    // gigabytes is shared by volumes and snapshots.
    let err = q
        .reserve("p", &q.snapshot_deltas("fast", 6, 1))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        QuotaError::OverQuota("Requested volume or snapshot exceeds allowed gigabytes quota. Requested 6G, quota is 10G and 6G has been consumed.".into())
    );
    // A smaller one fits gigabytes; the per-type snapshot limit of 1 applies next.
    let ids = q
        .reserve("p", &q.snapshot_deltas("fast", 4, 1))
        .await
        .unwrap();
    q.commit("p", &ids).await.unwrap();
    let err = q
        .reserve("p", &q.snapshot_deltas("fast", 0, 1))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        QuotaError::OverQuota("Maximum number of snapshots allowed (1) exceeded".into())
    );
    // Deleting releases with negative deltas.
    q.charge("p", &q.snapshot_deltas("fast", 4, -1))
        .await
        .unwrap();
    let (_, st) = q.show("p").await.unwrap();
    assert_eq!(st.usage["snapshots_fast"].in_use, 0);
    assert_eq!(st.usage["gigabytes"].in_use, 6);
}

pub async fn bad_input_changes_nothing(store: Arc<dyn Store>) {
    let q = engine(store.clone(), &[]);
    let err = q.reserve("p", &one("backups", 1)).await.unwrap_err();
    assert!(matches!(err, QuotaError::Invalid(_)), "{err}");
    assert!(
        store.get_quota("p").await.unwrap().is_none(),
        "nothing written"
    );
    let err = q
        .set_limits("p", [("bogus".to_string(), 1)].into())
        .await
        .unwrap_err();
    assert!(matches!(err, QuotaError::Invalid(_)), "{err}");
    assert!(store.get_quota("p").await.unwrap().is_none());
    // Over quota: nothing reserved.
    let q = engine(store.clone(), &[("snapshots", 0)]);
    assert!(q.reserve("p", &one("snapshots", 1)).await.is_err());
    let st = store
        .get_quota("p")
        .await
        .unwrap()
        .map(|r| r.status)
        .unwrap_or_default();
    assert!(st.reservations.is_empty());
    assert_eq!(
        st.usage.get("snapshots").map(|u| u.reserved).unwrap_or(0),
        0
    );
}

pub async fn expired_reservations_are_swept(store: Arc<dyn Store>) {
    let t0: DateTime<Utc> = Utc::now();
    let now = Arc::new(std::sync::Mutex::new(t0));
    let clock_now = now.clone();
    let config = QuotaConfig {
        reservation_expire: std::time::Duration::from_secs(60),
        ..Default::default()
    };
    let q = QuotaEngine::new(
        store.clone(),
        config,
        Arc::new(move || *clock_now.lock().unwrap()),
    );
    let _leaked = q.reserve("p", &one("snapshots", 1)).await.unwrap(); // never committed: a crash
    assert_eq!(q.expire().await.unwrap(), 0, "not expired yet");
    *now.lock().unwrap() = t0 + chrono::Duration::seconds(61);
    let kept = q.reserve("p", &one("snapshots", 1)).await.unwrap();
    assert_eq!(q.expire().await.unwrap(), 1);
    let (_, st) = q.show("p").await.unwrap();
    assert_eq!(st.usage["snapshots"].reserved, 1);
    assert_eq!(st.usage["snapshots"].in_use, 0, "unclaimed: rolled back");
    assert_eq!(
        st.reservations
            .iter()
            .map(|r| r.id.clone())
            .collect::<Vec<_>>(),
        kept
    );
}

/// The controller wrote the record and died before committing: when the
/// reservation expires, the live record claiming it keeps it charged
/// (committed); a deleted record's claim does not count.
pub async fn expired_reservations_claimed_by_records_are_committed(store: Arc<dyn Store>) {
    let t0: DateTime<Utc> = Utc::now();
    let now = Arc::new(std::sync::Mutex::new(t0));
    let clock_now = now.clone();
    let config = QuotaConfig {
        reservation_expire: std::time::Duration::from_secs(60),
        ..Default::default()
    };
    let q = QuotaEngine::new(
        store.clone(),
        config,
        Arc::new(move || *clock_now.lock().unwrap()),
    );
    let claimed = q.reserve("pc", &one("snapshots", 1)).await.unwrap();
    let mut rec = super::snapshot("claim-1", "claim-csi-1", "v", "pc");
    rec.spec.quota_reservations = claimed.clone();
    store.insert_snapshot(&rec).await.unwrap();
    let orphan = q.reserve("pc", &one("snapshots", 1)).await.unwrap();
    let mut gone = super::snapshot("claim-2", "claim-csi-2", "v", "pc");
    gone.spec.quota_reservations = orphan;
    gone.status.life.deleted = true;
    store.insert_snapshot(&gone).await.unwrap();
    *now.lock().unwrap() = t0 + chrono::Duration::seconds(61);
    assert_eq!(q.expire().await.unwrap(), 2);
    let (_, st) = q.show("pc").await.unwrap();
    assert_eq!(
        (st.usage["snapshots"].in_use, st.usage["snapshots"].reserved),
        (1, 0)
    );
    assert!(st.reservations.is_empty());
    // A late commit by a controller that was only slow is a no-op.
    q.commit("pc", &claimed).await.unwrap();
    let (_, st) = q.show("pc").await.unwrap();
    assert_eq!(st.usage["snapshots"].in_use, 1);
}

pub async fn missing_usage_is_recounted_from_records(store: Arc<dyn Store>) {
    // Records exist but the quota record does not (e.g. restored records).
    for i in 0..3 {
        store
            .insert_snapshot(&super::snapshot(
                &format!("rs{i}"),
                &format!("rc{i}"),
                "v",
                "recount",
            ))
            .await
            .unwrap();
    }
    let q = engine(store.clone(), &[("snapshots", 4)]);
    q.reserve("recount", &one("snapshots", 1)).await.unwrap();
    let err = q
        .reserve("recount", &one("snapshots", 1))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        QuotaError::OverQuota("Maximum number of snapshots allowed (4) exceeded".into())
    );
    let (_, st) = q.show("recount").await.unwrap();
    assert_eq!(
        (st.usage["snapshots"].in_use, st.usage["snapshots"].reserved),
        (3, 1)
    );
}
