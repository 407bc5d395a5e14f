//! Decisions over a Kubernetes store that reads from its watch caches:
//! two controllers on one API server, one with a cache that stopped
//! following, make no duplicate record and no over-commit; GetCapacity makes
//! no API call and a refused placement is decided again on the API server;
//! a half-created object in the cache is no proof of "no record".
#[path = "common/kube_cache.rs"]
mod kube_cache;
mod store_suite;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use kube_cache::{cached, heard, node_record};
use lvsnap::controller::{Controller, ControllerConfig, ControllerError, CreateSnapshot};
use lvsnap::quota::{QuotaConfig, QuotaEngine, system_clock};
use lvsnap::records::{LvsQuotaSpec, VolumeState};
use lvsnap::store::fake_api::FakeApiServer;
use lvsnap::store::{KubeStore, Store};

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
        assert_eq!(
            c.capacity(None, &HashMap::new()).await.unwrap(),
            (8 << 30, 5 << 30)
        );
        assert_eq!(
            c.capacity(Some("n1"), &HashMap::from([("vg".into(), "vg0".into())]))
                .await
                .unwrap()
                .0,
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
    assert_eq!(
        c.capacity(None, &HashMap::new()).await.unwrap().0,
        8 << 30,
        "stale"
    );
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
