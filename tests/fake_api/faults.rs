//! Fault injection: 403, 503, request counts, and a closed port over HTTP.
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams, PostParams, WatchParams};
use lvsnap::records::LvsSnapshot;
use lvsnap::store::fake_api::{FakeApiServer, HttpApiServer, RequestKey, kubeconfig};

use super::{message_of, node, server, status_of};

#[tokio::test]
async fn forbidden_requests_get_the_authorizers_answer() {
    let (server, client) = server();
    server.create_node("n1", &[]).expect("node");
    let nodes: Api<Node> = Api::all(client.clone());
    server.forbid("list", "", "nodes");
    let refused = nodes.list(&ListParams::default()).await;
    assert_eq!(
        message_of(nodes.list(&ListParams::default()).await),
        "nodes is forbidden: User \"system:serviceaccount:lvsnap:lvsnap\" cannot list resource \
         \"nodes\" in API group \"\" at the cluster scope"
    );
    assert_eq!(status_of(refused), (403, "Forbidden".into()));
    assert!(nodes.get("n1").await.is_ok(), "only list is forbidden");

    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-system");
    server.forbid("get", "coordination.k8s.io", "leases");
    assert_eq!(
        message_of(leases.get("l1").await),
        "leases.coordination.k8s.io \"l1\" is forbidden: User \"system:serviceaccount:lvsnap:lvsnap\" \
         cannot get resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"kube-system\""
    );

    let snaps: Api<LvsSnapshot> = Api::all(client.clone());
    let spec = super::fixtures::snapshot_spec("s1");
    let made = snaps
        .create(&PostParams::default(), &LvsSnapshot::new("s1", spec))
        .await
        .expect("create");
    server.forbid("update", "lvsnap.io", "lvssnapshots/status");
    let status_put = snaps
        .replace_status("s1", &PostParams::default(), &made)
        .await;
    assert!(message_of(status_put).contains("cannot update resource \"lvssnapshots/status\""));
    let mut renamed = made.clone();
    renamed.spec.display_name = "x".into();
    let renamed = snaps
        .replace("s1", &PostParams::default(), &renamed)
        .await
        .expect("the object itself may be updated");
    server.forbid("update", "lvsnap.io", "lvssnapshots");
    assert_eq!(
        status_of(snaps.replace("s1", &PostParams::default(), &renamed).await).0,
        403
    );

    server.allow_all();
    assert!(nodes.list(&ListParams::default()).await.is_ok());
    assert!(
        snaps
            .replace_status("s1", &PostParams::default(), &renamed)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn an_unavailable_server_answers_503_and_ends_watches() {
    let (server, client) = server();
    let nodes: Api<Node> = Api::all(client.clone());
    let mut events = nodes
        .watch(&WatchParams::default().disable_bookmarks(), "0")
        .await
        .expect("watch")
        .boxed();
    server.set_unavailable(true);
    assert!(events.next().await.is_none(), "the open watch ends");
    assert_eq!(
        status_of(nodes.list(&ListParams::default()).await),
        (503, "ServiceUnavailable".into())
    );
    assert!(client.apiserver_version().await.is_err(), "/version too");
    server.set_unavailable(false);
    assert!(client.apiserver_version().await.is_ok());
    assert!(
        nodes
            .create(&PostParams::default(), &node("n1", &[]))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn requests_are_counted_by_verb_group_and_resource() {
    let (server, client) = server();
    let store = lvsnap::store::KubeStore::new(client.clone());
    use lvsnap::store::Store;
    store.get_snapshot("nope").await.expect("get");
    let key = RequestKey {
        verb: "get".into(),
        group: "lvsnap.io".into(),
        resource: "lvssnapshots".into(),
    };
    assert_eq!(server.requests().get(&key), Some(&1));
    let spec = super::fixtures::snapshot_spec("s1");
    let snaps: Api<LvsSnapshot> = Api::all(client);
    let made = snaps
        .create(&PostParams::default(), &LvsSnapshot::new("s1", spec))
        .await
        .expect("create");
    snaps
        .replace_status("s1", &PostParams::default(), &made)
        .await
        .expect("status");
    assert_eq!(
        server.request_count("create", "lvsnap.io", "lvssnapshots"),
        1
    );
    assert_eq!(
        server.request_count("update", "lvsnap.io", "lvssnapshots/status"),
        1
    );
    assert_eq!(server.request_count("*", "lvsnap.io", "*"), 3);
    server.reset_requests();
    assert_eq!(server.total_requests(), 0);
    let _ = store.subscribe(); // local: no API call
    assert_eq!(server.total_requests(), 0);
}

async fn client_for(http: &HttpApiServer) -> kube::Client {
    let kc = kube::config::Kubeconfig::from_yaml(&kubeconfig(http.addr)).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("config");
    kube::Client::try_from(config).expect("client")
}

#[tokio::test]
async fn over_http_every_route_is_served_and_a_stopped_server_refuses_connections() {
    let mut http = HttpApiServer::start(FakeApiServer::new())
        .await
        .expect("start");
    let client = client_for(&http).await;
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-system");
    let lease = Lease {
        metadata: super::meta("lvsnap-controller"),
        ..Default::default()
    };
    leases
        .create(&PostParams::default(), &lease)
        .await
        .expect("a lease over HTTP");
    let nodes: Api<Node> = Api::all(client.clone());
    http.api.create_node("n1", &[]).expect("node");
    assert_eq!(
        nodes
            .list(&ListParams::default())
            .await
            .expect("nodes")
            .items
            .len(),
        1
    );

    http.stop().await;
    assert!(!http.is_serving());
    let refused = std::net::TcpStream::connect(http.addr);
    assert!(refused.is_err(), "the port is closed");
    match nodes.list(&ListParams::default()).await {
        Err(kube::Error::Api(s)) => panic!("expected a transport error, got the API's {s:?}"),
        Err(_) => {}
        Ok(l) => panic!("listed {} nodes from a stopped server", l.items.len()),
    }
    http.restart().await.expect("restart on the same port");
    let back = nodes
        .list(&ListParams::default())
        .await
        .expect("served again, same state");
    assert_eq!(back.items.len(), 1);
    assert!(leases.get("lvsnap-controller").await.is_ok());
}
