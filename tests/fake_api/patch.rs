//! PATCH: merge patch, strategic merge patch, resourceVersion preconditions,
//! the status subresource, and what the fake refuses.
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams, PostParams};
use lvsnap::records::{LvsSnapshot, LvsSnapshotStatus, SnapshotState};
use serde_json::json;

use super::{node, server, status_of};

#[tokio::test]
async fn merge_and_strategic_patches_of_a_node() {
    let (_server, client) = server();
    let nodes: Api<Node> = Api::all(client);
    let pp = PatchParams::default();
    nodes
        .create(
            &PostParams::default(),
            &node("n1", &[("a", "1"), ("b", "2")]),
        )
        .await
        .expect("create");
    let patch = json!({"metadata": {"labels": {"a": null, "c": "3"}}});
    let patched = nodes
        .patch("n1", &pp, &Patch::Merge(&patch))
        .await
        .expect("merge");
    let labels = patched.metadata.labels.expect("labels");
    assert_eq!(labels.keys().collect::<Vec<_>>(), ["b", "c"]);
    let patch = json!({"spec": {"unschedulable": true}});
    let patched = nodes
        .patch("n1", &pp, &Patch::Strategic(&patch))
        .await
        .expect("strategic");
    assert_eq!(patched.spec.and_then(|s| s.unschedulable), Some(true));
    let status = json!({"status": {"phase": "Running"}, "metadata": {"labels": {"d": "4"}}});
    let patched = nodes
        .patch_status("n1", &pp, &Patch::Merge(&status))
        .await
        .expect("status");
    assert_eq!(
        patched.status.and_then(|s| s.phase).as_deref(),
        Some("Running")
    );
    assert!(
        !patched.metadata.labels.expect("labels").contains_key("d"),
        "/status changes only status"
    );
    assert_eq!(
        status_of(nodes.patch("missing", &pp, &Patch::Merge(&patch)).await),
        (404, "NotFound".into())
    );
}

#[tokio::test]
async fn a_resource_version_in_a_patch_is_a_precondition() {
    let (_server, client) = server();
    let nodes: Api<Node> = Api::all(client);
    let pp = PatchParams::default();
    let made = nodes
        .create(&PostParams::default(), &node("n1", &[]))
        .await
        .expect("create");
    let rv = made.metadata.resource_version.expect("rv");
    let first = json!({"metadata": {"resourceVersion": rv, "labels": {"x": "1"}}});
    let after = nodes
        .patch("n1", &pp, &Patch::Merge(&first))
        .await
        .expect("current version");
    assert_ne!(
        after.metadata.resource_version.as_deref(),
        Some(rv.as_str())
    );
    let stale = json!({"metadata": {"resourceVersion": rv, "labels": {"x": "2"}}});
    assert_eq!(
        status_of(nodes.patch("n1", &pp, &Patch::Merge(&stale)).await),
        (409, "Conflict".into())
    );
    let kept = nodes.get("n1").await.expect("get");
    assert_eq!(kept.metadata.labels.expect("labels")["x"], "1");
}

#[tokio::test]
async fn custom_resources_take_merge_patches_on_spec_and_status_apart() {
    let (_server, client) = server();
    let api: Api<LvsSnapshot> = Api::all(client);
    let pp = PatchParams::default();
    let spec = super::fixtures::snapshot_spec("s1");
    api.create(&PostParams::default(), &LvsSnapshot::new("s1", spec))
        .await
        .expect("create");
    let both = json!({"spec": {"displayName": "nightly"},
                      "status": {"status": "creating", "progress": "50%"}});
    let patched = api
        .patch("s1", &pp, &Patch::Merge(&both))
        .await
        .expect("merge");
    assert_eq!(patched.spec.display_name, "nightly");
    assert!(
        patched.status.is_none(),
        "status through the object is ignored"
    );
    let patched = api
        .patch_status("s1", &pp, &Patch::Merge(&both))
        .await
        .expect("status");
    assert_eq!(
        patched.status.map(|s: LvsSnapshotStatus| s.life.progress),
        Some("50%".into())
    );
    assert_eq!(
        patched.spec.display_name, "nightly",
        "/status leaves spec alone"
    );
    let progress = json!({"status": {"progress": "75%"}, "spec": {"displayName": "ignored"}});
    let patched = api
        .patch_status("s1", &pp, &Patch::Merge(&progress))
        .await
        .expect("status");
    assert_eq!(patched.spec.display_name, "nightly");
    let status = patched.status.expect("status");
    assert_eq!(
        (status.life.status, status.life.progress.as_str()),
        (SnapshotState::Creating, "75%"),
        "merged"
    );
    let strategic = api.patch("s1", &pp, &Patch::Strategic(&both)).await;
    assert_eq!(
        status_of(strategic),
        (415, "UnsupportedMediaType".into()),
        "as for any CRD"
    );
    let apply = api
        .patch("s1", &PatchParams::apply("test"), &Patch::Apply(&both))
        .await;
    assert_eq!(
        status_of(apply).0,
        415,
        "server-side apply is not supported by the fake"
    );
}

/// Malformed requests get a Status, never a crash of the server.
#[tokio::test]
async fn malformed_bodies_are_bad_requests() {
    let (_server, client) = server();
    let nodes: Api<Node> = Api::all(client.clone());
    nodes
        .create(&PostParams::default(), &node("n1", &[]))
        .await
        .expect("create");
    let pp = PatchParams::default();
    for patch in [
        json!({"metadata": "x"}),
        json!({"metadata": null}),
        json!([1, 2]),
    ] {
        let r = nodes.patch("n1", &pp, &Patch::Merge(&patch)).await;
        assert_eq!(status_of(r).0, 400, "{patch}");
    }
    let raw = |method: &str, body: &'static str| {
        http::Request::builder()
            .method(method)
            .uri("/api/v1/nodes")
            .header("content-type", "application/json")
            .body(body.as_bytes().to_vec())
            .expect("request")
    };
    for (method, body) in [
        ("POST", "{not json"),
        ("POST", "[]"),
        ("POST", r#"{"metadata": 7}"#),
    ] {
        let r = client.request::<Node>(raw(method, body)).await;
        assert_eq!(status_of(r).0, 400, "{method} {body}");
    }
    let del = http::Request::delete("/api/v1/nodes/n1")
        .body(b"{oops".to_vec())
        .expect("request");
    assert_eq!(status_of(client.request::<Node>(del).await).0, 400);
    assert!(nodes.get("n1").await.is_ok(), "nothing changed");
}
