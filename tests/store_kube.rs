//! The store suite on the Kubernetes backend, through kube's real `Client`
//! against the in-process fake API server, plus the API semantics the
//! backend depends on (checked on the fake itself so it cannot drift from
//! Kubernetes' behaviour unnoticed).
mod store_suite;

use std::sync::Arc;

use futures::StreamExt;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use lvsnap::records::{LvsVolume, LvsVolumeStatus, VolumeState};
use lvsnap::store::fake_api::FakeApiServer;
use lvsnap::store::{KubeStore, Store, StoreError};

fn open() -> (FakeApiServer, Arc<dyn Store>) {
    let api = FakeApiServer::new();
    let store = KubeStore::new(api.client());
    (api, Arc::new(store))
}

macro_rules! suite {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            let (_api, store) = open();
            store_suite::$name(store).await;
        }
    )*};
}

suite!(
    crud_and_optimistic_concurrency,
    find_by_csi_name_skips_deleted,
    list_filters_and_pages_in_a_stable_order,
    quota_update_is_atomic_and_aborts_cleanly,
    nodes_upsert,
    changes_are_announced,
    group_snapshots_are_records_like_the_others,
    expired_reservations_claimed_by_a_group_are_committed,
);

macro_rules! quota_suite {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $name() {
            let (_api, store) = open();
            store_suite::quota::$name(store).await;
        }
    )*};
}

quota_suite!(
    hundred_concurrent_reservations_against_fifty,
    per_type_and_shared_gigabytes,
    bad_input_changes_nothing,
    expired_reservations_are_swept,
    expired_reservations_claimed_by_records_are_committed,
    missing_usage_is_recounted_from_records,
);

fn vol(name: &str) -> LvsVolume {
    let r = store_suite::volume(name, "pvc", "n1", "p1");
    LvsVolume::new(name, r.spec)
}

#[tokio::test]
async fn api_semantics_conflict_notfound_invalid_and_status_separation() {
    let server = FakeApiServer::new();
    let api: Api<LvsVolume> = Api::all(server.client());
    let pp = PostParams::default();

    let created = api.create(&pp, &vol("v1")).await.unwrap();
    let rv1 = created.metadata.resource_version.clone().unwrap();
    let err = api.create(&pp, &vol("v1")).await.unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 409 && s.reason == "AlreadyExists"),
        "{err}"
    );
    let err = api.create(&pp, &vol("Not_A_Name")).await.unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 422),
        "{err}"
    );
    let err = api.get("missing").await.unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 404),
        "{err}"
    );

    // Status written through the main resource is ignored...
    let mut with_status = created.clone();
    with_status.status = Some(LvsVolumeStatus {
        life: lvsnap::records::Lifecycle {
            status: VolumeState::Available,
            ..Default::default()
        },
        ..Default::default()
    });
    with_status.spec.size_bytes *= 2;
    let replaced = api.replace("v1", &pp, &with_status).await.unwrap();
    assert_eq!(replaced.status, None, "main resource ignores status");
    assert_eq!(replaced.spec.size_bytes, created.spec.size_bytes * 2);
    let rv2 = replaced.metadata.resource_version.clone().unwrap();
    assert_ne!(rv1, rv2, "resourceVersion increments");
    // ...and spec written through /status is ignored.
    let mut status_write = replaced.clone();
    status_write.spec.size_bytes = 1;
    status_write.status = Some(LvsVolumeStatus {
        life: lvsnap::records::Lifecycle {
            status: VolumeState::Available,
            ..Default::default()
        },
        ..Default::default()
    });
    let after = api.replace_status("v1", &pp, &status_write).await.unwrap();
    assert_eq!(
        after.spec.size_bytes, replaced.spec.size_bytes,
        "/status ignores spec"
    );
    assert_eq!(after.status.unwrap().life.status, VolumeState::Available);

    // A stale resourceVersion is a 409 Conflict, on both endpoints.
    let err = api.replace("v1", &pp, &created).await.unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 409 && s.reason == "Conflict"),
        "{err}"
    );
    let err = api.replace_status("v1", &pp, &created).await.unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 409),
        "{err}"
    );

    // Label selectors.
    let mut other = vol("v2");
    other.metadata.labels = Some([("lvsnap.io/node".to_string(), "n2".to_string())].into());
    api.create(&pp, &other).await.unwrap();
    let n2 = api
        .list(&ListParams::default().labels("lvsnap.io/node=n2"))
        .await
        .unwrap();
    assert_eq!(
        n2.items
            .iter()
            .map(|o| o.metadata.name.clone().unwrap())
            .collect::<Vec<_>>(),
        ["v2"]
    );
    let not_n2 = api
        .list(&ListParams::default().labels("lvsnap.io/node!=n2"))
        .await
        .unwrap();
    assert_eq!(not_n2.items.len(), 1);
}

#[tokio::test]
async fn watch_streams_changes_after_a_resource_version() {
    let server = FakeApiServer::new();
    let api: Api<LvsVolume> = Api::all(server.client());
    let pp = PostParams::default();
    let first = api.create(&pp, &vol("w1")).await.unwrap();
    let rv = first.metadata.resource_version.clone().unwrap();
    let mut stream = api
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    api.create(&pp, &vol("w2")).await.unwrap();
    api.delete("w1", &Default::default()).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let ev = tokio::time::timeout(std::time::Duration::from_secs(10), stream.next())
            .await
            .expect("an event within 10 s")
            .expect("stream open")
            .unwrap();
        match ev {
            WatchEvent::Added(o) => seen.push(format!("ADDED {}", o.metadata.name.unwrap())),
            WatchEvent::Deleted(o) => seen.push(format!("DELETED {}", o.metadata.name.unwrap())),
            // WatchParams asks for bookmarks; a server may send them at any time.
            WatchEvent::Bookmark(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        seen,
        ["ADDED w2", "DELETED w1"],
        "only events after {rv}, in order"
    );
}

#[tokio::test]
async fn a_malformed_stored_object_is_a_typed_error() {
    let server = FakeApiServer::new();
    let store = KubeStore::new(server.client());
    server.insert_raw(
        "lvssnapshots",
        "bad",
        serde_json::json!({"apiVersion": "lvsnap.io/v1alpha1", "kind": "LvsSnapshot",
                           "metadata": {"name": "bad"}, "spec": {"id": 7}}),
    );
    let err = store.get_snapshot("bad").await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    // Listing answers the same typed error rather than skipping the record.
    let err = store
        .list_snapshots(&Default::default(), None, 10)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
}

/// A node hears, through the API server's watch, about records another
/// process wrote for it, and not about other nodes' records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_watch_delivers_changes_made_by_another_process() {
    let server = FakeApiServer::new();
    let node_store = KubeStore::new(server.client());
    let mut changes = node_store.subscribe();
    let _tasks = node_store.spawn_watch(Some("n1"));
    let controller_store = KubeStore::new(server.client()); // another process
    controller_store
        .insert_snapshot(&store_suite::snapshot("s-n1a", "c-n1a", "v", "p"))
        .await
        .unwrap();
    let mut elsewhere = store_suite::snapshot("s-n2", "c-n2", "v", "p");
    elsewhere.spec.node = "n2".into();
    controller_store.insert_snapshot(&elsewhere).await.unwrap();
    let mut mine = store_suite::snapshot("s-n1b", "c-n1b", "v", "p");
    mine.spec.node = "n1".into();
    controller_store.insert_snapshot(&mine).await.unwrap();
    let mut seen = Vec::new();
    while !seen.contains(&"s-n1b".to_string()) {
        let c = tokio::time::timeout(std::time::Duration::from_secs(10), changes.recv())
            .await
            .expect("a change within 10 s")
            .unwrap();
        assert_eq!(c.node.as_deref(), Some("n1"), "only n1's records: {c:?}");
        seen.push(c.name);
    }
    assert!(!seen.contains(&"s-n2".to_string()));
}
