//! Watches: namespaces and selectors, synthetic ADDED from now, compaction
//! (ERROR 410 and kube's watcher re-listing), bookmarks, timeouts.
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, PostParams, WatchEvent, WatchParams};
use kube::core::ObjectMeta;
use kube::runtime::watcher;

use super::{meta, node, server};

/// The next item, or a panic after 10 s (of the test's clock).
async fn next<T>(s: &mut (impl Stream<Item = T> + Unpin)) -> T {
    tokio::time::timeout(Duration::from_secs(10), s.next())
        .await
        .expect("an item within 10 s")
        .expect("stream open")
}

fn describe(ev: WatchEvent<Lease>) -> String {
    match ev {
        WatchEvent::Added(o) => format!("ADDED {}", o.metadata.name.unwrap_or_default()),
        WatchEvent::Modified(o) => format!("MODIFIED {}", o.metadata.name.unwrap_or_default()),
        WatchEvent::Deleted(o) => format!("DELETED {}", o.metadata.name.unwrap_or_default()),
        WatchEvent::Bookmark(b) => format!("BOOKMARK {}", b.metadata.resource_version),
        WatchEvent::Error(e) => format!("ERROR {} {}", e.code, e.reason),
    }
}

fn lease(ns: &str, name: &str, app: &str) -> Lease {
    Lease {
        metadata: ObjectMeta {
            namespace: Some(ns.into()),
            labels: Some([("app".to_string(), app.to_string())].into()),
            ..meta(name)
        },
        ..Default::default()
    }
}

#[tokio::test]
async fn watches_honour_namespaces_and_selectors_and_report_transitions() {
    let (server, client) = server();
    let pp = PostParams::default();
    let ns1: Api<Lease> = Api::namespaced(client.clone(), "ns1");
    let ns2: Api<Lease> = Api::namespaced(client.clone(), "ns2");
    ns1.create(&pp, &lease("ns1", "before", "x"))
        .await
        .expect("create");
    let wp = WatchParams::default().labels("app=x").disable_bookmarks();
    let mut events = ns1.watch(&wp, "0").await.expect("watch").boxed();
    assert_eq!(
        describe(next(&mut events).await.expect("event")),
        "ADDED before",
        "synthetic ADDED"
    );
    ns2.create(&pp, &lease("ns2", "elsewhere", "x"))
        .await
        .expect("create");
    ns1.create(&pp, &lease("ns1", "other-app", "y"))
        .await
        .expect("create");
    let mut l = ns1
        .create(&pp, &lease("ns1", "mine", "x"))
        .await
        .expect("create");
    l.metadata.labels = Some([("app".to_string(), "y".to_string())].into());
    let mut l = ns1
        .replace("mine", &pp, &l)
        .await
        .expect("leave the selection");
    l.metadata.labels = Some([("app".to_string(), "x".to_string())].into());
    ns1.replace("mine", &pp, &l).await.expect("enter it again");
    ns1.delete("mine", &Default::default())
        .await
        .expect("delete");
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(describe(next(&mut events).await.expect("event")));
    }
    assert_eq!(
        seen,
        ["ADDED mine", "DELETED mine", "ADDED mine", "DELETED mine"]
    );
    assert_eq!(
        server.request_count("watch", "coordination.k8s.io", "leases"),
        1
    );
}

#[tokio::test]
async fn a_watch_from_a_compacted_version_gets_an_expired_error_event() {
    let (server, client) = server();
    let nodes: Api<Node> = Api::all(client);
    let first = nodes
        .create(&PostParams::default(), &node("n1", &[]))
        .await
        .expect("create");
    let rv = first.metadata.resource_version.expect("rv");
    nodes
        .create(&PostParams::default(), &node("n2", &[]))
        .await
        .expect("create");
    server.compact();
    let mut events = nodes
        .watch(&WatchParams::default(), &rv)
        .await
        .expect("a 200 stream")
        .boxed();
    match next(&mut events).await.expect("event") {
        WatchEvent::Error(e) => assert_eq!((e.code, e.reason.as_str()), (410, "Expired")),
        other => panic!("expected ERROR 410, got {other:?}"),
    }
    assert!(
        events.next().await.is_none(),
        "the stream ends after the error"
    );
    // From the current version it is fine.
    let now = server.resource_version().to_string();
    let mut events = nodes
        .watch(&WatchParams::default(), &now)
        .await
        .expect("watch")
        .boxed();
    nodes
        .create(&PostParams::default(), &node("n3", &[]))
        .await
        .expect("create");
    loop {
        match next(&mut events).await.expect("event") {
            WatchEvent::Bookmark(_) => continue,
            WatchEvent::Added(o) => break assert_eq!(o.metadata.name.as_deref(), Some("n3")),
            other => panic!("{other:?}"),
        }
    }
}

fn names_of(ev: &watcher::Event<Node>) -> String {
    match ev {
        watcher::Event::Init => "Init".into(),
        watcher::Event::InitApply(o) => {
            format!("InitApply {}", o.metadata.name.clone().unwrap_or_default())
        }
        watcher::Event::InitDone => "InitDone".into(),
        watcher::Event::Apply(o) => {
            format!("Apply {}", o.metadata.name.clone().unwrap_or_default())
        }
        watcher::Event::Delete(o) => {
            format!("Delete {}", o.metadata.name.clone().unwrap_or_default())
        }
    }
}

/// The next `n` watcher events, described.
async fn take(
    w: &mut (impl Stream<Item = Result<watcher::Event<Node>, watcher::Error>> + Unpin),
    n: usize,
) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(names_of(&next(w).await.expect("no error")));
    }
    out
}

/// kube's watcher through a gap: its watch ends, changes happen and the
/// history is compacted meanwhile; it re-watches from its old version,
/// gets 410, re-lists (so the object deleted in the gap is absent from the
/// new Init…InitDone) and goes on delivering changes.
#[tokio::test]
async fn kube_watcher_relists_after_compaction_and_carries_on() {
    let (server, client) = server();
    server.create_node("a", &[]).expect("node");
    server.create_node("b", &[]).expect("node");
    let nodes: Api<Node> = Api::all(client);
    let mut w = watcher::watcher(nodes.clone(), watcher::Config::default()).boxed();
    assert_eq!(
        take(&mut w, 4).await,
        ["Init", "InitApply a", "InitApply b", "InitDone"]
    );
    nodes
        .create(&PostParams::default(), &node("c", &[]))
        .await
        .expect("create");
    assert_eq!(take(&mut w, 1).await, ["Apply c"]);

    // The server goes away: the watch ends and re-watching is refused.
    server.set_unavailable(true);
    let err = next(&mut w).await.expect_err("re-watch refused");
    assert!(
        err.to_string().contains("503") || format!("{err:?}").contains("503"),
        "{err:?}"
    );
    server.delete_node("a").expect("deleted in the gap");
    server.create_node("d", &[]).expect("created in the gap");
    server.compact();
    server.set_unavailable(false);

    let err = next(&mut w).await.expect_err("the old version is gone");
    assert!(format!("{err:?}").contains("410"), "{err:?}");
    assert_eq!(
        take(&mut w, 5).await,
        [
            "Init",
            "InitApply b",
            "InitApply c",
            "InitApply d",
            "InitDone"
        ],
        "re-listed: a is gone"
    );
    nodes
        .create(&PostParams::default(), &node("e", &[]))
        .await
        .expect("create");
    assert_eq!(take(&mut w, 1).await, ["Apply e"]);
    assert_eq!(
        server.request_count("list", "", "nodes"),
        2,
        "{:?}",
        server.requests()
    );
}

#[tokio::test(start_paused = true)]
async fn a_watch_ends_after_timeout_seconds_with_a_bookmark() {
    let (_server, client) = server();
    let leases: Api<Lease> = Api::namespaced(client, "ns1");
    let start = tokio::time::Instant::now();
    let mut events = leases
        .watch(&WatchParams::default().timeout(30), "0")
        .await
        .expect("watch")
        .boxed();
    let opening = describe(next(&mut events).await.expect("event"));
    assert!(opening.starts_with("BOOKMARK "), "{opening}");
    let made = leases
        .create(&PostParams::default(), &lease("ns1", "l", "x"))
        .await
        .expect("create");
    assert_eq!(describe(next(&mut events).await.expect("event")), "ADDED l");
    let rv = made.metadata.resource_version.expect("rv");
    let closing = tokio::time::timeout(Duration::from_secs(60), events.next())
        .await
        .expect("by the timeout");
    assert_eq!(
        describe(closing.expect("a last bookmark").expect("event")),
        format!("BOOKMARK {rv}")
    );
    assert!(events.next().await.is_none(), "then the stream ends");
    assert_eq!(
        start.elapsed().as_secs(),
        30,
        "after timeoutSeconds of the (paused) clock"
    );
}

#[tokio::test(start_paused = true)]
async fn kube_watcher_rewatches_cleanly_when_its_watches_time_out() {
    let (server, client) = server();
    let nodes: Api<Node> = Api::all(client);
    let mut w = watcher::watcher(nodes.clone(), watcher::Config::default().timeout(5)).boxed();
    for want in ["Init", "InitDone"] {
        assert_eq!(names_of(&next(&mut w).await.expect("no error")), want);
    }
    // A minute of the paused clock: a dozen watches time out and are renewed.
    let idle = tokio::time::timeout(Duration::from_secs(60), w.next()).await;
    assert!(
        idle.is_err(),
        "nothing to report: {:?}",
        idle.map(|e| e.map(|e| e.map(|e| names_of(&e))))
    );
    assert!(
        server.request_count("watch", "", "nodes") >= 10,
        "{:?}",
        server.requests()
    );
    assert_eq!(server.request_count("list", "", "nodes"), 1, "no re-list");
    nodes
        .create(&PostParams::default(), &node("late", &[]))
        .await
        .expect("create");
    assert_eq!(
        names_of(&next(&mut w).await.expect("no error")),
        "Apply late"
    );
}

#[tokio::test]
async fn kube_watcher_with_streaming_lists() {
    let (server, client) = server();
    server.create_node("a", &[]).expect("node");
    let nodes: Api<Node> = Api::all(client);
    let config = watcher::Config::default().streaming_lists();
    let mut w = watcher::watcher(nodes.clone(), config).boxed();
    assert_eq!(take(&mut w, 3).await, ["Init", "InitApply a", "InitDone"]);
    nodes
        .create(&PostParams::default(), &node("b", &[]))
        .await
        .expect("create");
    assert_eq!(take(&mut w, 1).await, ["Apply b"]);
    assert_eq!(
        server.request_count("list", "", "nodes"),
        0,
        "no list at all"
    );
}
