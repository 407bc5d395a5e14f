//! Fixture helpers: what they store is what clients see.
use k8s_openapi::api::core::v1::{Node, PersistentVolumeClaim};
use kube::api::{Api, ListParams};
use lvsnap::records::LvsSnapshotSpec;
use serde_json::json;

use super::{names, server, status_of};

pub fn snapshot_spec(id: &str) -> LvsSnapshotSpec {
    LvsSnapshotSpec {
        id: id.into(),
        csi_name: format!("csi-{id}"),
        source_volume_id: "v1".into(),
        project: "p1".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn nodes_made_and_removed_by_fixtures_are_seen_by_clients() {
    let (server, client) = server();
    let nodes: Api<Node> = Api::all(client);
    let made = server
        .create_node("worker-1", &[("lvsnap.io/vg", "vg0")])
        .expect("create_node");
    assert_eq!(
        made["metadata"]["labels"]["kubernetes.io/hostname"],
        "worker-1"
    );
    server.create_node("worker-2", &[]).expect("create_node");
    let n = nodes.get("worker-1").await.expect("get");
    assert_eq!(n.metadata.labels.expect("labels")["lvsnap.io/vg"], "vg0");
    let ready = n.status.and_then(|s| s.conditions).expect("conditions");
    assert_eq!(
        (ready[0].type_.as_str(), ready[0].status.as_str()),
        ("Ready", "True")
    );
    let with_vg = nodes
        .list(&ListParams::default().labels("lvsnap.io/vg"))
        .await
        .expect("list");
    assert_eq!(names(&with_vg.items), ["worker-1"]);
    server.delete_node("worker-1").expect("delete_node");
    assert_eq!(status_of(nodes.get("worker-1").await).0, 404);
    assert_eq!(server.delete_node("worker-1").expect_err("gone").code, 404);
}

#[tokio::test]
async fn put_object_creates_or_replaces_with_status_and_namespace() {
    let (server, client) = server();
    let pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                     "metadata": {"name": "data"}, "spec": {"storageClassName": "lvsnap"},
                     "status": {"phase": "Bound"}});
    let first = server.put_object(pvc.clone()).expect("put");
    assert_eq!(
        first["metadata"]["namespace"], "default",
        "the default namespace"
    );
    assert_eq!(
        first["status"]["phase"], "Bound",
        "status written as /status would"
    );
    let mut changed = pvc;
    changed["spec"]["storageClassName"] = json!("other");
    let second = server.put_object(changed).expect("put again replaces");
    assert_eq!(
        second["metadata"]["uid"], first["metadata"]["uid"],
        "the same object"
    );
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client, "default");
    let seen = api.get("data").await.expect("get");
    assert_eq!(
        seen.spec.and_then(|s| s.storage_class_name).as_deref(),
        Some("other")
    );
    assert_eq!(
        server
            .object_in("persistentvolumeclaims", "default", "data")
            .expect("stored")["status"]["phase"],
        "Bound"
    );
    let unknown = server.put_object(json!({"apiVersion": "example.com/v1", "kind": "Widget",
                                           "metadata": {"name": "w"}}));
    assert_eq!(unknown.expect_err("unknown kind").code, 400);
    let invalid = server.put_object(json!({"apiVersion": "v1", "kind": "Node",
                                           "metadata": {"name": "Bad_Name"}}));
    assert_eq!(invalid.expect_err("invalid name").code, 422);
}

#[tokio::test]
async fn fixtures_bypass_faults_and_the_request_counter() {
    let (server, client) = server();
    server.set_unavailable(true);
    server.forbid("*", "", "*");
    server
        .create_node("n1", &[])
        .expect("fixtures work while the API is down");
    assert!(server.object("nodes", "n1").is_some());
    assert_eq!(server.total_requests(), 0, "{:?}", server.requests());
    server.set_unavailable(false);
    let nodes: Api<Node> = Api::all(client);
    assert_eq!(status_of(nodes.get("n1").await).0, 403);
    assert_eq!(server.total_requests(), 1);
}

#[tokio::test]
async fn insert_raw_stores_a_namespaced_object_as_is() {
    let (server, _client) = server();
    server.insert_raw(
        "leases.coordination.k8s.io",
        "odd",
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
               "metadata": {"name": "odd", "namespace": "ns1"}, "spec": {"leaseDurationSeconds": "x"}}),
    );
    let got = server.object_in("leases", "ns1", "odd").expect("stored");
    assert_eq!(got["spec"]["leaseDurationSeconds"], "x");
    assert!(got["metadata"]["resourceVersion"].is_string());
    assert_eq!(server.objects("leases").len(), 1);
    assert!(server.object_in("leases", "ns2", "odd").is_none());
}

#[test]
#[should_panic(expected = "ambiguous")]
fn an_ambiguous_resource_name_is_a_test_mistake() {
    let server = lvsnap::store::fake_api::FakeApiServer::new();
    server.register(lvsnap::store::fake_api::ResourceInfo::builtin(
        "example.com",
        "v1",
        "lvsnodes",
        "LvsNode",
        false,
        true,
    ));
    let _ = server.object("lvsnodes", "n1");
}
