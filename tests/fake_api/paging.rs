//! Lists: set-based label selectors, field selectors, limit and continue.
use k8s_openapi::api::core::v1::{Node, PersistentVolumeClaim};
use kube::api::{Api, ListParams};
use serde_json::json;

use super::{names, server, status_of};

async fn listed(api: &Api<Node>, labels: &str) -> Vec<String> {
    let list = api.list(&ListParams::default().labels(labels)).await;
    names(&list.unwrap_or_else(|e| panic!("{labels}: {e}")).items)
}

#[tokio::test]
async fn label_selectors_equality_and_set_based() {
    let (server, client) = server();
    server
        .create_node("n1", &[("zone", "a"), ("gpu", "yes")])
        .expect("node");
    server.create_node("n2", &[("zone", "b")]).expect("node");
    server.create_node("n3", &[("zone", "c")]).expect("node");
    let api: Api<Node> = Api::all(client);
    assert_eq!(listed(&api, "zone in (a,b)").await, ["n1", "n2"]);
    assert_eq!(listed(&api, "zone notin (a,b)").await, ["n3"]);
    assert_eq!(listed(&api, "gpu").await, ["n1"]);
    assert_eq!(listed(&api, "!gpu").await, ["n2", "n3"]);
    assert_eq!(listed(&api, "zone!=a,!gpu").await, ["n2", "n3"]);
    assert_eq!(listed(&api, "zone=b").await, ["n2"]);
    let bad = api.list(&ListParams::default().labels("zone in a")).await;
    assert_eq!(status_of(bad), (400, "BadRequest".into()));
}

#[tokio::test]
async fn field_selectors_on_name_and_namespace() {
    let (server, client) = server();
    for (ns, name) in [("a", "x"), ("a", "y"), ("b", "x")] {
        server
            .put_object(json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                               "metadata": {"name": name, "namespace": ns}, "spec": {}}))
            .expect("pvc");
    }
    let all: Api<PersistentVolumeClaim> = Api::all(client);
    let where_ = |fields: &'static str| {
        let all = all.clone();
        async move {
            let list = all
                .list(&ListParams::default().fields(fields))
                .await
                .expect(fields);
            list.items
                .iter()
                .map(|p| {
                    format!(
                        "{}/{}",
                        p.metadata.namespace.clone().unwrap_or_default(),
                        p.metadata.name.clone().unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(where_("metadata.name=x").await, ["a/x", "b/x"]);
    assert_eq!(where_("metadata.namespace!=a").await, ["b/x"]);
    assert_eq!(
        where_("metadata.namespace==a,metadata.name!=x").await,
        ["a/y"]
    );
    let bad = all
        .list(&ListParams::default().fields("spec.volumeName=v"))
        .await;
    assert_eq!(status_of(bad).0, 400);
}

#[tokio::test]
async fn limit_and_continue_page_in_a_stable_order() {
    let (server, client) = server();
    for i in [4, 1, 3, 0, 2] {
        server
            .create_node(&format!("n{i}"), &[("pool", "p")])
            .expect("node");
    }
    server.create_node("other", &[]).expect("node");
    let api: Api<Node> = Api::all(client);
    let (mut pages, mut seen, mut token) = (0, Vec::new(), None::<String>);
    let mut versions = Vec::new();
    loop {
        let mut lp = ListParams::default().labels("pool=p").limit(2);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = api.list(&lp).await.expect("page");
        pages += 1;
        assert!(page.items.len() <= 2);
        seen.extend(names(&page.items));
        versions.push(page.metadata.resource_version.clone());
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
        // A write between pages does not move the continued list's version.
        server
            .create_node(&format!("late-{pages}"), &[])
            .expect("node");
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ["n0", "n1", "n2", "n3", "n4"]);
    assert!(versions.windows(2).all(|w| w[0] == w[1]), "{versions:?}");
    let any = api
        .list(&ListParams::default().match_any())
        .await
        .expect("resourceVersion=0");
    assert_eq!(any.items.len(), 8, "5 in the pool, other, 2 late");
}

#[tokio::test]
async fn a_garbled_or_compacted_continue_token_is_gone() {
    let (server, client) = server();
    for i in 0..3 {
        server.create_node(&format!("n{i}"), &[]).expect("node");
    }
    let api: Api<Node> = Api::all(client);
    let garbled = api
        .list(&ListParams::default().limit(1).continue_token("not-a-token"))
        .await;
    assert_eq!(status_of(garbled), (410, "Expired".into()));
    let first = api
        .list(&ListParams::default().limit(1))
        .await
        .expect("page");
    let token = first.metadata.continue_.expect("more pages");
    assert!(
        api.list(&ListParams::default().limit(1).continue_token(&token))
            .await
            .is_ok()
    );
    server.create_node("n9", &[]).expect("node");
    server.compact();
    let stale = api
        .list(&ListParams::default().limit(1).continue_token(&token))
        .await;
    assert_eq!(status_of(stale), (410, "Expired".into()));
}
