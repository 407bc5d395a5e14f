//! The Kubernetes store reading from its watch caches (kube-runtime
//! reflectors): the store suite on a cached store, another client's writes
//! read from memory once the watch delivers them, a watch through a 410
//! Gone re-list, and two controllers on one API server, one with a cache
//! that stopped following, that still make no duplicate record and no
//! over-commit (writes are compare-and-swaps on the API server, quota is
//! read from it).
mod store_suite;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use lvsnap::controller::{Controller, ControllerConfig, ControllerError, CreateSnapshot};
use lvsnap::quota::{QuotaConfig, QuotaEngine, system_clock};
use lvsnap::records::{LvsQuotaSpec, SnapshotState, VolumeState};
use lvsnap::store::fake_api::FakeApiServer;
use lvsnap::store::{Change, KubeStore, Store};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

const GROUP: &str = "lvsnap.io";

/// A store whose watches run and whose caches are in step.
async fn cached(api: &FakeApiServer) -> (Arc<KubeStore>, Vec<JoinHandle<()>>) {
    let store = KubeStore::new(api.client());
    let tasks = store.spawn_watch(None);
    store.synced().await;
    (Arc::new(store), tasks)
}

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

/// Until `seen` holds, checked now and after every change announced,
/// within 10 s (a create is two writes: the watch shows the object, then
/// its status).
async fn heard<F, Fut>(rx: &mut broadcast::Receiver<Change>, what: &str, seen: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    tokio::time::timeout(Duration::from_secs(10), async {
        while !seen().await {
            match rx.recv().await {
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("changes: {e}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what} within 10 s"));
}

fn node_record(name: &str, free: i64) -> lvsnap::store::NodeRecord {
    lvsnap::store::Record::new(
        name,
        lvsnap::records::LvsNodeSpec {
            vg: "vg0".into(),
            thin_pool: None,
        },
        lvsnap::records::LvsNodeStatus {
            size_bytes: free,
            free_bytes: free,
            ..Default::default()
        },
    )
}

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

fn controller(store: Arc<KubeStore>) -> Controller {
    let store: Arc<dyn Store> = store;
    let quota = QuotaEngine::new(store.clone(), QuotaConfig::default(), system_clock());
    let config = ControllerConfig {
        // No node cuts here: creates answer at once with the record.
        wait_timeout: Duration::from_millis(1),
        ..ControllerConfig::default()
    };
    Controller::new(store, quota, config)
}

fn request(name: &str) -> CreateSnapshot {
    CreateSnapshot {
        name: name.into(),
        source_volume_id: "vol".into(),
        parameters: HashMap::new(),
    }
}

/// Two controllers on one API server; A's cache stopped following (its
/// watch ends without a word), so it never hears of B's records. Neither a
/// create of a name B already made nor a race for the last of the quota
/// makes a second record or charges past the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stale_cache_makes_no_duplicate_record_and_no_over_commit() {
    let api = FakeApiServer::new();
    let (a, a_watch) = cached(&api).await;
    let (b, _b_watch) = cached(&api).await;
    let mut vol = store_suite::volume("vol", "pvc-vol", "n1", "default");
    vol.status.life.status = VolumeState::Available;
    b.insert_volume(&vol).await.unwrap();
    let limit = LvsQuotaSpec {
        hard: BTreeMap::from([("snapshots".into(), 5), ("gigabytes".into(), -1)]),
    };
    b.set_quota_limits("default", &limit).await.unwrap();
    for t in &a_watch {
        t.abort();
    }
    let (ca, cb) = (controller(a.clone()), controller(b.clone()));

    // B makes "dup"; A, which will never hear of it, is asked for it too.
    cb.create_snapshot(request("dup"))
        .await
        .expect("B's create");
    assert!(
        a.find_snapshot("dup").await.unwrap().is_none(),
        "A is stale"
    );
    match ca.create_snapshot(request("dup")).await {
        Ok(r) => assert_eq!(r.spec.csi_name, "dup"),
        Err(ControllerError::Aborted(_)) => {}
        Err(e) => panic!("A's create of dup: {e:?}"),
    }

    // Both race for the 4 snapshots left with 10 names each.
    let calls: Vec<_> = (0..20)
        .map(|i| {
            let c = if i % 2 == 0 { ca.clone() } else { cb.clone() };
            tokio::spawn(async move { c.create_snapshot(request(&format!("race-{i}"))).await })
        })
        .collect();
    let mut made = 0;
    for call in calls {
        match call.await.expect("task") {
            Ok(_) => made += 1,
            Err(ControllerError::Exhausted(_)) => {}
            Err(e) => panic!("unexpected answer: {e:?}"),
        }
    }
    assert_eq!(made, 4, "exactly the quota left");

    let records = api.objects("lvssnapshots");
    let mut names: Vec<&str> = records
        .iter()
        .filter_map(|o| o["spec"]["csiName"].as_str())
        .collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(names.len(), before, "one record per name: {names:?}");
    assert_eq!(names.len(), 5, "{names:?}");
    let q = b.get_quota("default").await.unwrap().expect("quota");
    let usage = &q.status.usage["snapshots"];
    assert_eq!((usage.in_use, usage.reserved), (5, 0));
}

/// GetCapacity (the CO polls it per node and class) is answered from the
/// node cache: no API call; a node registered by another process is
/// counted once the watch delivers it, and CreateVolume placement, refused
/// on a cache that has not heard of any node yet, asks the API server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_capacity_makes_no_api_call_and_placement_rechecks_a_refusal() {
    let api = FakeApiServer::new();
    let (store, watch) = cached(&api).await;
    let other = KubeStore::new(api.client());
    let mut rx = store.subscribe();
    let fresh = |name: &str, free: i64| {
        let mut n = node_record(name, free);
        n.status.last_heartbeat = lvsnap::records::now_rfc3339();
        n
    };
    other.put_node(&fresh("n1", 3 << 30)).await.unwrap();
    other.put_node(&fresh("n2", 5 << 30)).await.unwrap();
    let st = store.clone();
    heard(&mut rx, "both nodes with their status", || async {
        let nodes = st.list_nodes().await.unwrap_or_default();
        nodes.len() == 2 && nodes.iter().all(|n| n.status.free_bytes > 0)
    })
    .await;
    let c = controller(store.clone());
    api.reset_requests();
    for _ in 0..100 {
        assert_eq!(c.capacity(None, None).await.unwrap(), (8 << 30, 5 << 30));
        assert_eq!(
            c.capacity(Some("n1"), Some("vg0")).await.unwrap().0,
            3 << 30
        );
    }
    assert_eq!(api.requests().len(), 0, "{:?}", api.requests());

    // A cache that stopped following never hears of n3; placing a volume
    // too big for n1 and n2 still finds it on the API server.
    for t in &watch {
        t.abort();
    }
    other.put_node(&fresh("n3", 50 << 30)).await.unwrap();
    assert_eq!(c.capacity(None, None).await.unwrap().0, 8 << 30, "stale");
    let req = lvsnap::controller::CreateVolume {
        name: "pvc-big".into(),
        required_bytes: 20 << 30,
        limit_bytes: 0,
        parameters: HashMap::new(),
        placement: Default::default(),
        source_snapshot_id: None,
        source_volume_id: None,
        fs_type: None,
    };
    // No node cuts here: the wait ends at once (ABORTED, the CO retries);
    // the record says where it went.
    match c.create_volume(req).await {
        Ok(_) | Err(ControllerError::Aborted(_)) => {}
        Err(e) => panic!("placement on the API server's nodes: {e:?}"),
    }
    let placed = other.find_volume("pvc-big").await.unwrap().expect("record");
    assert_eq!(placed.spec.node, "n3");
}

/// An object the cache holds without its status (another process between
/// its create's two writes) proves nothing: a get asks the API server, so
/// a delete does not answer "no such record" while the record exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_created_object_in_the_cache_is_read_from_the_api_server() {
    let api = FakeApiServer::new();
    let (store, watch) = cached(&api).await;
    let mut rx = store.subscribe();
    let s = store_suite::snapshot("s9", "c-s9", "v1", "p1");
    let obj =
        serde_json::to_value(lvsnap::records::LvsSnapshot::new("s9", s.spec.clone())).unwrap();
    api.put_object(obj).expect("object without status");
    tokio::time::timeout(Duration::from_secs(10), async {
        while rx.recv().await.map(|c| c.name).ok().as_deref() != Some("s9") {}
    })
    .await
    .expect("the watch delivered it");
    for t in &watch {
        t.abort(); // the cache keeps the half-created object
    }
    let mut full = api.object("lvssnapshots", "s9").expect("s9");
    full["status"] = serde_json::to_value(&s.status).unwrap();
    api.put_object(full).expect("status");
    let got = store.get_snapshot("s9").await.unwrap();
    assert_eq!(got.map(|r| r.spec), Some(s.spec));
}
