//! The behavioural suite every `Store` backend must pass. Written once,
//! generic over `Arc<dyn Store>`; each backend's test file instantiates it.
#![allow(dead_code)]

pub mod group;

// Not every file that includes the suite runs the group tests.
#[allow(unused_imports)]
pub use group::{
    expired_reservations_claimed_by_a_group_are_committed,
    group_snapshots_are_records_like_the_others,
};

use std::collections::BTreeMap;
use std::sync::Arc;

use lvsnap::records::{
    LvsNodeSpec, LvsNodeStatus, LvsQuotaSpec, LvsQuotaStatus, LvsSnapshotSpec, LvsSnapshotStatus,
    LvsVolumeSpec, LvsVolumeStatus, SnapshotState, VolumeState,
};
use lvsnap::store::{
    Kind, NodeRecord, Record, SnapshotFilter, SnapshotRecord, Store, StoreError, VolumeFilter,
    VolumeRecord,
};

pub fn volume(id: &str, csi: &str, node: &str, project: &str) -> VolumeRecord {
    Record::new(
        id,
        LvsVolumeSpec {
            id: id.into(),
            csi_name: csi.into(),
            project: project.into(),
            display_name: csi.into(),
            volume_type: "vg0".into(),
            node: node.into(),
            vg: "vg0".into(),
            device_class: None,
            lv_name: format!("volume-{id}"),
            size_bytes: 1 << 30,
            thin_pool: None,
            fs_type: None,
            source_snapshot_id: None,
            source_volume_id: None,
            quota_charged: BTreeMap::new(),
            quota_reservations: Vec::new(),
        },
        LvsVolumeStatus::default(),
    )
}

pub fn snapshot(id: &str, csi: &str, source: &str, project: &str) -> SnapshotRecord {
    Record::new(
        id,
        LvsSnapshotSpec {
            id: id.into(),
            csi_name: csi.into(),
            source_volume_id: source.into(),
            project: project.into(),
            user: None,
            display_name: csi.into(),
            display_description: String::new(),
            metadata: BTreeMap::new(),
            volume_type: "vg0".into(),
            volume_size: 1,
            cow_size_bytes: Some(1 << 30),
            autoextend: None,
            node: "n1".into(),
            vg: "vg0".into(),
            device_class: None,
            lv_name: format!("_snapshot-{id}"),
            group_snapshot_id: None,
            quota_charged: BTreeMap::new(),
            quota_reservations: Vec::new(),
        },
        LvsSnapshotStatus {
            life: lvsnap::records::Lifecycle {
                status: SnapshotState::Creating,
                progress: "0%".into(),
                ..Default::default()
            },
            ..Default::default()
        },
    )
}

pub async fn crud_and_optimistic_concurrency(store: Arc<dyn Store>) {
    let v = store
        .insert_volume(&volume("v1", "pvc-1", "n1", "p1"))
        .await
        .unwrap();
    assert!(!v.version.is_empty());
    let err = store
        .insert_volume(&volume("v1", "pvc-1", "n1", "p1"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists { .. }), "{err}");

    let got = store.get_volume("v1").await.unwrap().expect("stored");
    assert_eq!(got.spec, v.spec);
    assert_eq!(got.version, v.version);

    let mut next = got.clone();
    next.status.life.status = VolumeState::Available;
    let updated = store.update_volume(&next).await.unwrap();
    assert_ne!(updated.version, got.version, "a write bumps the version");
    assert_eq!(
        store
            .get_volume("v1")
            .await
            .unwrap()
            .unwrap()
            .status
            .life
            .status,
        VolumeState::Available
    );

    // A write based on the old version is refused and changes nothing.
    let mut stale = got.clone();
    stale.status.life.status = VolumeState::Error;
    let err = store.update_volume(&stale).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    assert_eq!(
        store
            .get_volume("v1")
            .await
            .unwrap()
            .unwrap()
            .status
            .life
            .status,
        VolumeState::Available
    );

    let mut missing = volume("nope", "x", "n1", "p1");
    missing.version = "1".into();
    let err = store.update_volume(&missing).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::NotFound { .. } | StoreError::Conflict { .. }
        ),
        "{err}"
    );
    assert!(store.get_volume("nope").await.unwrap().is_none());

    store.purge_volume("v1").await.unwrap();
    assert!(store.get_volume("v1").await.unwrap().is_none());
    store.purge_volume("v1").await.unwrap(); // idempotent
}

pub async fn find_by_csi_name_skips_deleted(store: Arc<dyn Store>) {
    let s = store
        .insert_snapshot(&snapshot("s1", "snap-a", "v1", "p1"))
        .await
        .unwrap();
    assert_eq!(
        store.find_snapshot("snap-a").await.unwrap().map(|r| r.name),
        Some("s1".into())
    );
    assert!(store.find_snapshot("snap-b").await.unwrap().is_none());
    let mut deleted = s.clone();
    deleted.status.life.deleted = true;
    deleted.status.life.status = SnapshotState::Deleted;
    store.update_snapshot(&deleted).await.unwrap();
    assert!(
        store.find_snapshot("snap-a").await.unwrap().is_none(),
        "deleted records do not answer by name"
    );
    // The name is free again: a new record may take it.
    store
        .insert_snapshot(&snapshot("s2", "snap-a", "v1", "p1"))
        .await
        .unwrap();
    assert_eq!(
        store.find_snapshot("snap-a").await.unwrap().map(|r| r.name),
        Some("s2".into())
    );
    assert_eq!(
        store
            .get_snapshot("s1")
            .await
            .unwrap()
            .map(|r| r.status.life.deleted),
        Some(true)
    );
}

pub async fn list_filters_and_pages_in_a_stable_order(store: Arc<dyn Store>) {
    for i in 0..7 {
        let source = if i % 2 == 0 { "va" } else { "vb" };
        let project = if i < 5 { "p1" } else { "p2" };
        store
            .insert_snapshot(&snapshot(
                &format!("s{i:02}"),
                &format!("c{i}"),
                source,
                project,
            ))
            .await
            .unwrap();
    }
    let all = SnapshotFilter::default();
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store
            .list_snapshots(&all, after.as_deref(), 3)
            .await
            .unwrap();
        assert!(page.len() <= 3);
        seen.extend(page.iter().map(|r| r.name.clone()));
        if page.len() < 3 {
            break;
        }
        after = page.last().map(|r| r.name.clone());
    }
    let expected: Vec<String> = (0..7).map(|i| format!("s{i:02}")).collect();
    assert_eq!(seen, expected, "every record once, in name order");

    let by_source = SnapshotFilter {
        source_volume_id: Some("vb".into()),
        ..Default::default()
    };
    let names: Vec<String> = store
        .list_snapshots(&by_source, None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["s01", "s03", "s05"]);
    let by_project = SnapshotFilter {
        project: Some("p2".into()),
        ..Default::default()
    };
    assert_eq!(
        store
            .list_snapshots(&by_project, None, 100)
            .await
            .unwrap()
            .len(),
        2
    );
    let none = SnapshotFilter {
        source_volume_id: Some("zz".into()),
        ..Default::default()
    };
    assert!(
        store
            .list_snapshots(&none, None, 100)
            .await
            .unwrap()
            .is_empty()
    );

    // Deleted records are listed only when asked for.
    let mut s = store.get_snapshot("s00").await.unwrap().unwrap();
    s.status.life.deleted = true;
    store.update_snapshot(&s).await.unwrap();
    assert_eq!(
        store.list_snapshots(&all, None, 100).await.unwrap().len(),
        6
    );
    let with_deleted = SnapshotFilter {
        include_deleted: true,
        ..Default::default()
    };
    assert_eq!(
        store
            .list_snapshots(&with_deleted, None, 100)
            .await
            .unwrap()
            .len(),
        7
    );

    // Volumes by node.
    store
        .insert_volume(&volume("va", "pvc-a", "n1", "p1"))
        .await
        .unwrap();
    store
        .insert_volume(&volume("vb", "pvc-b", "n2", "p1"))
        .await
        .unwrap();
    let on_n2 = VolumeFilter {
        node: Some("n2".into()),
        ..Default::default()
    };
    let names: Vec<String> = store
        .list_volumes(&on_n2, None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["vb"]);
}

pub async fn quota_update_is_atomic_and_aborts_cleanly(store: Arc<dyn Store>) {
    assert!(store.get_quota("p1").await.unwrap().is_none());
    let q = store
        .update_quota(
            "p1",
            Box::new(|current| {
                assert!(current.is_none());
                let mut st = LvsQuotaStatus::default();
                st.usage.entry("snapshots".into()).or_default().in_use = 1;
                Ok((LvsQuotaSpec::default(), st))
            }),
        )
        .await
        .unwrap();
    assert_eq!(q.status.usage["snapshots"].in_use, 1);
    // An aborted update writes nothing.
    let err = store
        .update_quota("p1", Box::new(|_| Err("refused".into())))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Aborted(_)), "{err}");
    assert_eq!(err.to_string(), "refused");
    let now = store.get_quota("p1").await.unwrap().unwrap();
    assert_eq!(now.status.usage["snapshots"].in_use, 1);
    assert_eq!(now.version, q.version);

    let limits = LvsQuotaSpec {
        hard: [("snapshots".to_string(), 3)].into(),
    };
    let set = store.set_quota_limits("p1", &limits).await.unwrap();
    assert_eq!(set.spec, limits);
    assert_eq!(set.status.usage["snapshots"].in_use, 1, "limits keep usage");
    assert_eq!(store.list_quotas().await.unwrap().len(), 1);
}

pub async fn nodes_upsert(store: Arc<dyn Store>) {
    let node = |free: i64| -> NodeRecord {
        Record::new(
            "n1",
            LvsNodeSpec {
                vg: "vg0".into(),
                thin_pool: None,
            },
            LvsNodeStatus {
                size_bytes: 10,
                free_bytes: free,
                ..Default::default()
            },
        )
    };
    store.put_node(&node(5)).await.unwrap();
    store.put_node(&node(4)).await.unwrap();
    let nodes = store.list_nodes().await.unwrap();
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0].status.free_bytes, 4);
}

pub async fn changes_are_announced(store: Arc<dyn Store>) {
    let mut rx = store.subscribe();
    store
        .insert_volume(&volume("vw", "pvc-w", "n7", "p1"))
        .await
        .unwrap();
    let change = tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
        .await
        .expect("a change within 10 s")
        .expect("channel open");
    assert_eq!(change.kind, Kind::Volume);
    assert_eq!(change.name, "vw");
    assert_eq!(change.node.as_deref(), Some("n7"));
}
pub mod quota;

/// Two live records cannot share a CSI name, even when created at once.
pub async fn csi_names_are_unique_among_live_records(store: Arc<dyn Store>) {
    let a = store
        .insert_snapshot(&snapshot("u1", "same", "v1", "p1"))
        .await;
    let b = store
        .insert_snapshot(&snapshot("u2", "same", "v1", "p1"))
        .await;
    assert!(a.is_ok());
    assert!(matches!(b, Err(StoreError::AlreadyExists { .. })), "{b:?}");
    assert_eq!(
        store.find_snapshot("same").await.unwrap().map(|r| r.name),
        Some("u1".into())
    );
}
