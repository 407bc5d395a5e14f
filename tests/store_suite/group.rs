//! Group snapshot records on a store backend: the same behaviour as the
//! other kinds (CRUD, CSI-name lookup skipping deleted ones, node and
//! project filters, read-modify-write, purge), and the quota sweep seeing
//! the reservation a group claims.
use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use lvsnap::quota::{QuotaConfig, QuotaEngine};
use lvsnap::records::{
    GroupConsistency, Lifecycle, LvsGroupSnapshotSpec, LvsGroupSnapshotStatus, SnapshotState,
};
use lvsnap::store::modify;
use lvsnap::store::{GroupSnapshotFilter, GroupSnapshotRecord, Kind, Record, Store, StoreError};

pub fn group(id: &str, csi: &str, node: &str, project: &str) -> GroupSnapshotRecord {
    Record::new(
        id,
        LvsGroupSnapshotSpec {
            id: id.into(),
            csi_name: csi.into(),
            project: project.into(),
            display_name: csi.into(),
            node: node.into(),
            vg: "vg0".into(),
            source_volume_ids: vec!["va".into(), "vb".into()],
            snapshot_ids: vec![format!("{id}-a"), format!("{id}-b")],
            consistency: GroupConsistency::Freeze,
            freeze_timeout_millis: 10_000,
            quota_charged: BTreeMap::from([("snapshots".into(), 2), ("gigabytes".into(), 2)]),
            quota_reservations: Vec::new(),
        },
        LvsGroupSnapshotStatus {
            life: Lifecycle {
                status: SnapshotState::Creating,
                progress: "0%".into(),
                ..Default::default()
            },
            ..Default::default()
        },
    )
}

pub async fn group_snapshots_are_records_like_the_others(store: Arc<dyn Store>) {
    let mut changes = store.subscribe();
    let g = store
        .insert_group_snapshot(&group("g1", "vgs-1", "n1", "p1"))
        .await
        .unwrap();
    assert!(!g.version.is_empty());
    let c = changes.recv().await.unwrap();
    assert_eq!(
        (c.kind, c.name.as_str(), c.node.as_deref()),
        (Kind::GroupSnapshot, "g1", Some("n1"))
    );
    let again = store
        .insert_group_snapshot(&group("g1", "vgs-1", "n1", "p1"))
        .await
        .unwrap_err();
    assert!(matches!(again, StoreError::AlreadyExists { .. }), "{again}");
    let got = store
        .get_group_snapshot("g1")
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(got.spec, g.spec);
    assert_eq!(
        store
            .find_group_snapshot("vgs-1")
            .await
            .unwrap()
            .map(|r| r.name),
        Some("g1".to_string())
    );
    assert!(store.find_group_snapshot("vgs-x").await.unwrap().is_none());
    assert!(store.get_group_snapshot("nope").await.unwrap().is_none());

    // Read-modify-write: the freeze record, then the cut.
    let frozen = store
        .modify_group_snapshot(
            "g1",
            modify(|r: &mut GroupSnapshotRecord| {
                r.status.frozen = vec!["vg0/volume-a".into()];
                r.status.dispatched = true;
                Ok(())
            }),
        )
        .await
        .unwrap()
        .expect("present");
    assert_ne!(frozen.version, g.version);
    assert_eq!(frozen.status.frozen, ["vg0/volume-a"]);
    let refused = store
        .modify_group_snapshot("g1", modify(|_: &mut GroupSnapshotRecord| Err("no".into())))
        .await;
    assert!(matches!(refused, Err(StoreError::Aborted(_))));
    assert!(
        store
            .modify_group_snapshot("nope", modify(|_: &mut GroupSnapshotRecord| Ok(())))
            .await
            .unwrap()
            .is_none()
    );

    // Filters and paging, by name.
    store
        .insert_group_snapshot(&group("g2", "vgs-2", "n2", "p1"))
        .await
        .unwrap();
    store
        .insert_group_snapshot(&group("g3", "vgs-3", "n1", "p2"))
        .await
        .unwrap();
    let names = |v: Vec<GroupSnapshotRecord>| v.into_iter().map(|r| r.name).collect::<Vec<_>>();
    let all = GroupSnapshotFilter::default();
    assert_eq!(
        names(store.list_group_snapshots(&all, None, 10).await.unwrap()),
        ["g1", "g2", "g3"]
    );
    assert_eq!(
        names(
            store
                .list_group_snapshots(&all, Some("g1"), 1)
                .await
                .unwrap()
        ),
        ["g2"]
    );
    let on_n1 = GroupSnapshotFilter {
        node: Some("n1".into()),
        ..Default::default()
    };
    assert_eq!(
        names(store.list_group_snapshots(&on_n1, None, 10).await.unwrap()),
        ["g1", "g3"]
    );
    let of_p1 = GroupSnapshotFilter {
        project: Some("p1".into()),
        ..Default::default()
    };
    assert_eq!(
        names(store.list_group_snapshots(&of_p1, None, 10).await.unwrap()),
        ["g1", "g2"]
    );

    // A deleted group is listed only when asked for, and not found by name.
    store
        .modify_group_snapshot(
            "g2",
            modify(|r: &mut GroupSnapshotRecord| {
                r.status.life.mark_deleted();
                Ok(())
            }),
        )
        .await
        .unwrap();
    assert!(store.find_group_snapshot("vgs-2").await.unwrap().is_none());
    assert_eq!(
        names(store.list_group_snapshots(&of_p1, None, 10).await.unwrap()),
        ["g1"]
    );
    let with_deleted = GroupSnapshotFilter {
        include_deleted: true,
        ..of_p1
    };
    assert_eq!(
        names(
            store
                .list_group_snapshots(&with_deleted, None, 10)
                .await
                .unwrap()
        ),
        ["g1", "g2"]
    );
    store.purge_group_snapshot("g2").await.unwrap();
    store.purge_group_snapshot("g2").await.unwrap(); // idempotent
    assert!(store.get_group_snapshot("g2").await.unwrap().is_none());
}

/// The group's one reservation, expired while the group is live (its
/// controller died before the commit), is committed; an unclaimed one is
/// rolled back.
pub async fn expired_reservations_claimed_by_a_group_are_committed(store: Arc<dyn Store>) {
    let t0: DateTime<Utc> = Utc::now();
    let now = Arc::new(std::sync::Mutex::new(t0));
    let clock = now.clone();
    let config = QuotaConfig {
        reservation_expire: std::time::Duration::from_secs(60),
        ..Default::default()
    };
    let q = QuotaEngine::new(
        store.clone(),
        config,
        Arc::new(move || *clock.lock().unwrap()),
    );
    let two: BTreeMap<String, i64> = [("snapshots".to_string(), 2)].into();
    let claimed = q.reserve("pg", &two).await.unwrap();
    let mut g = group("gc", "vgs-claim", "n1", "pg");
    g.spec.quota_reservations = claimed.clone();
    store.insert_group_snapshot(&g).await.unwrap();
    assert!(q.pending("pg", &claimed).await.unwrap());
    let orphan = q.reserve("pg", &two).await.unwrap();
    *now.lock().unwrap() = t0 + chrono::Duration::seconds(61);
    assert_eq!(q.expire().await.unwrap(), 2);
    let (_, st) = q.show("pg").await.unwrap();
    assert_eq!(
        (st.usage["snapshots"].in_use, st.usage["snapshots"].reserved),
        (2, 0)
    );
    assert!(!q.pending("pg", &claimed).await.unwrap());
    assert!(!q.pending("pg", &orphan).await.unwrap());
}
