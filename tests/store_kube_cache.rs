//! The Kubernetes store reading from its watch caches (kube-runtime
//! reflectors): the store suite on a cached store, another client's writes
//! read from memory once the watch delivers them, a watch through a 410
//! Gone re-list, own writes read back at once (kube_cache_decisions.rs:
//! what the domain decides over such a store).
#[path = "common/kube_cache.rs"]
mod kube_cache;
mod store_suite;

use std::time::Duration;

use kube_cache::{cached, heard, node_record};
use lvsnap::records::{SnapshotState, VolumeState};
use lvsnap::store::fake_api::FakeApiServer;
use lvsnap::store::{KubeStore, Store};

const GROUP: &str = "lvsnap.io";

macro_rules! suite {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let api = FakeApiServer::new();
            let (store, _tasks) = cached(&api).await;
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
            let api = FakeApiServer::new();
            let (store, _tasks) = cached(&api).await;
            store_suite::quota::$name(store).await;
        }
    )*};
}

quota_suite!(
    hundred_concurrent_reservations_against_fifty,
    expired_reservations_claimed_by_records_are_committed,
    missing_usage_is_recounted_from_records,
);

fn reads(api: &FakeApiServer) -> u64 {
    ["lvssnapshots", "lvsvolumes", "lvsnodes"]
        .iter()
        .map(|r| api.request_count("get", GROUP, r) + api.request_count("list", GROUP, r))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_clients_writes_are_read_from_the_cache_once_the_watch_delivers_them() {
    let api = FakeApiServer::new();
    let (store, _tasks) = cached(&api).await;
    let other = KubeStore::new(api.client()); // another process
    let mut rx = store.subscribe();
    let s = store_suite::snapshot("s1", "c-s1", "v1", "p1");
    other.insert_snapshot(&s).await.expect("insert");
    let mut node = node_record("n1", 10 << 30);
    other.put_node(&node).await.expect("node");
    let st = store.clone();
    heard(&mut rx, "both", || async {
        let snap = st.get_snapshot("s1").await.ok().flatten().is_some();
        let nodes = st.list_nodes().await.unwrap_or_default();
        snap && nodes
            .first()
            .is_some_and(|n| n.status.free_bytes == 10 << 30)
    })
    .await;

    api.reset_requests();
    let got = store
        .get_snapshot("s1")
        .await
        .unwrap()
        .expect("in the cache");
    assert_eq!(got.spec, s.spec);
    assert_eq!(got.status.life.status, SnapshotState::Creating);
    let found = store.find_snapshot("c-s1").await.unwrap().expect("found");
    assert_eq!(found.name, "s1");
    let listed = store
        .list_snapshots(&Default::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    let nodes = store.list_nodes().await.unwrap();
    assert_eq!(nodes[0].status.free_bytes, 10 << 30);
    assert_eq!(reads(&api), 0, "all from memory: {:?}", api.requests());

    // A change by the other process: heard, then read as changed.
    other
        .modify_snapshot(
            "s1",
            lvsnap::store::modify(|r: &mut lvsnap::store::SnapshotRecord| {
                r.status.life.status = SnapshotState::Available;
                r.status.ready_to_use = true;
                Ok(())
            }),
        )
        .await
        .unwrap();
    node.status.free_bytes = 1 << 30;
    other.put_node(&node).await.unwrap();
    heard(&mut rx, "the changes", || async {
        let nodes = st.list_nodes().await.unwrap_or_default();
        nodes
            .first()
            .is_some_and(|n| n.status.free_bytes == 1 << 30)
            && st
                .list_snapshots(&Default::default(), None, 1)
                .await
                .unwrap_or_default()
                .first()
                .is_some_and(|s| s.status.ready_to_use)
    })
    .await;
    api.reset_requests();
    let got = store.get_snapshot("s1").await.unwrap().unwrap();
    assert!(got.status.ready_to_use);
    assert_eq!(
        store.list_nodes().await.unwrap()[0].status.free_bytes,
        1 << 30
    );
    assert_eq!(reads(&api), 0, "{:?}", api.requests());

    // Gone: not listed; a get of it asks the API server (a cache miss
    // proves nothing), which says so.
    other.purge_snapshot("s1").await.unwrap();
    heard(&mut rx, "the purge", || async {
        st.list_snapshots(&Default::default(), None, 1)
            .await
            .unwrap_or_default()
            .is_empty()
    })
    .await;
    api.reset_requests();
    let listed = store
        .list_snapshots(&Default::default(), None, 10)
        .await
        .unwrap();
    assert!(listed.is_empty());
    assert_eq!(reads(&api), 0);
    assert_eq!(store.get_snapshot("s1").await.unwrap(), None);
    assert_eq!(api.request_count("get", GROUP, "lvssnapshots"), 1);
}

/// A process reads its own writes at once, before its watch shows them;
/// what it has not heard of is what other processes wrote since.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_writes_are_read_back_before_the_watch_shows_them() {
    let api = FakeApiServer::new();
    let (store, tasks) = cached(&api).await;
    // The watch stops delivering (and reports nothing: the worst case).
    for t in &tasks {
        t.abort();
    }
    store
        .insert_volume(&store_suite::volume("v1", "pvc-1", "n1", "p1"))
        .await
        .unwrap();
    let v = store.get_volume("v1").await.unwrap().expect("own insert");
    assert_eq!(v.spec.csi_name, "pvc-1");
    store
        .modify_volume(
            "v1",
            lvsnap::store::modify(|r: &mut lvsnap::store::VolumeRecord| {
                r.status.life.status = VolumeState::Available;
                Ok(())
            }),
        )
        .await
        .unwrap();
    api.reset_requests();
    let v = store.get_volume("v1").await.unwrap().unwrap();
    assert_eq!(v.status.life.status, VolumeState::Available, "own update");
    let found = store.find_volume("pvc-1").await.unwrap().expect("own");
    assert_eq!(found.status.life.status, VolumeState::Available);
    assert_eq!(reads(&api), 0, "{:?}", api.requests());
    store.purge_volume("v1").await.unwrap();
    assert_eq!(store.get_volume("v1").await.unwrap(), None, "own purge");
    assert!(store.find_volume("pvc-1").await.unwrap().is_none());
    assert_eq!(reads(&api), 0);
}

/// The watch ends while records change and the history is compacted: the
/// re-watch gets 410 Gone, kube's watcher re-lists, the cache takes the new
/// state, and what changed in the gap is announced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_follows_through_a_410_relist() {
    let api = FakeApiServer::new();
    let (store, _tasks) = cached(&api).await;
    let other = KubeStore::new(api.client());
    let mut rx = store.subscribe();
    for id in ["s1", "s2", "s3"] {
        let s = store_suite::snapshot(id, &format!("c-{id}"), "v1", "p1");
        other.insert_snapshot(&s).await.unwrap();
    }
    let st = store.clone();
    heard(&mut rx, "three records", || async {
        st.list_snapshots(&Default::default(), None, 10)
            .await
            .unwrap_or_default()
            .len()
            == 3
    })
    .await;
    let lists = api.request_count("list", GROUP, "lvssnapshots");

    // The open watches end and cannot come back until the history the
    // store knows is compacted away: its re-watch gets 410 and re-lists.
    let watches = api.request_count("watch", GROUP, "lvssnapshots");
    api.set_unavailable(true);
    api.drop_watches();
    // Until the store has tried to watch again (refused): its stream ended.
    // A bounded poll: nothing tells of a refused request.
    tokio::time::timeout(Duration::from_secs(10), async {
        while api.request_count("watch", GROUP, "lvssnapshots") == watches {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("a refused re-watch within 10 s");
    // In the gap (written as another client would, past the outage): s1
    // cut, s2 gone, s4 new; then the history is compacted.
    let mut s1 = api.object("lvssnapshots", "s1").expect("s1");
    s1["status"]["status"] = "available".into();
    s1["status"]["readyToUse"] = true.into();
    api.put_object(s1).expect("s1 available");
    api.delete_object("lvssnapshots", None, "s2")
        .expect("s2 gone");
    let s4 = store_suite::snapshot("s4", "c-s4", "v1", "p1");
    let mut obj = serde_json::to_value(lvsnap::records::LvsSnapshot::new("s4", s4.spec)).unwrap();
    obj["status"] = serde_json::to_value(&s4.status).unwrap();
    api.put_object(obj).expect("s4");
    api.compact();
    api.set_unavailable(false);

    let mut seen = std::collections::BTreeSet::new();
    tokio::time::timeout(Duration::from_secs(30), async {
        while seen.len() < 3 {
            if let Ok(c) = rx.recv().await
                && ["s1", "s2", "s4"].contains(&c.name.as_str())
            {
                seen.insert(c.name);
            }
        }
    })
    .await
    .expect("the gap's changes announced after the re-list");
    store.synced().await;
    assert!(
        api.request_count("list", GROUP, "lvssnapshots") > lists,
        "re-listed: {:?}",
        api.requests()
    );
    api.reset_requests();
    let names: Vec<String> = store
        .list_snapshots(&Default::default(), None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["s1", "s3", "s4"]);
    let s1 = store.get_snapshot("s1").await.unwrap().unwrap();
    assert!(s1.status.ready_to_use, "{s1:?}");
    assert_eq!(reads(&api), 0, "{:?}", api.requests());
}
