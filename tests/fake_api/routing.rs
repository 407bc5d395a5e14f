//! Routing: core and named groups, cluster-scoped and namespaced kinds,
//! lists across namespaces, the status subresource table.
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{Node, NodeStatus, PersistentVolumeClaim};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, PostParams};
use kube::core::ObjectMeta;
use lvsnap::records::LvsSnapshot;
use lvsnap::store::fake_api::ResourceInfo;

use super::{meta, names, node, server, status_of, vsc, vsc_resource};

fn pvc(ns: &str, name: &str) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            namespace: Some(ns.into()),
            ..meta(name)
        },
        ..Default::default()
    }
}

#[tokio::test]
async fn namespaced_objects_live_in_their_namespace_and_list_across_all() {
    let (_server, client) = server();
    let pp = PostParams::default();
    let in_a: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "a");
    let in_b: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "b");
    let made = in_a
        .create(&pp, &pvc("a", "data"))
        .await
        .expect("create in a");
    assert_eq!(made.metadata.namespace.as_deref(), Some("a"));
    // Without a namespace in the body, the path's is set.
    let mut bare = pvc("b", "data");
    bare.metadata.namespace = None;
    let made_b = in_b.create(&pp, &bare).await.expect("same name in b");
    assert_eq!(made_b.metadata.namespace.as_deref(), Some("b"));
    in_b.create(&pp, &pvc("b", "logs")).await.expect("create");
    assert_eq!(
        names(&in_a.list(&ListParams::default()).await.expect("list").items),
        ["data"]
    );
    let all: Api<PersistentVolumeClaim> = Api::all(client.clone());
    let list = all.list(&ListParams::default()).await.expect("list all");
    assert_eq!(list.types.kind, "PersistentVolumeClaimList");
    assert_eq!(list.types.api_version, "v1");
    let where_: Vec<_> = list
        .items
        .iter()
        .map(|p| {
            format!(
                "{}/{}",
                p.metadata.namespace.clone().unwrap_or_default(),
                p.metadata.name.clone().unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(
        where_,
        ["a/data", "b/data", "b/logs"],
        "by namespace, then name"
    );
    assert_eq!(status_of(in_a.get("logs").await), (404, "NotFound".into()));
    // A body naming another namespace than the path is refused.
    assert_eq!(status_of(in_a.create(&pp, &pvc("b", "x")).await).0, 400);
    let mut moved = in_a.get("data").await.expect("get");
    moved.metadata.namespace = Some("b".into());
    assert_eq!(status_of(in_a.replace("data", &pp, &moved).await).0, 400);
}

#[tokio::test]
async fn the_same_plural_in_two_groups_never_collides() {
    let (server, client) = server();
    server.register(ResourceInfo::builtin(
        "example.com",
        "v1",
        "lvssnapshots",
        "LvsSnapshot",
        false,
        false,
    ));
    let other_ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", "v1", "LvsSnapshot"),
        "lvssnapshots",
    );
    let other: Api<DynamicObject> = Api::all_with(client.clone(), &other_ar);
    let ours: Api<LvsSnapshot> = Api::all(client.clone());
    let pp = PostParams::default();
    let foreign = DynamicObject::new("s1", &other_ar).data(serde_json::json!({"spec": {"x": 1}}));
    other.create(&pp, &foreign).await.expect("example.com's");
    assert_eq!(status_of(ours.get("s1").await), (404, "NotFound".into()));
    let spec = super::fixtures::snapshot_spec("s1");
    ours.create(&pp, &LvsSnapshot::new("s1", spec))
        .await
        .expect("lvsnap.io's, same name");
    other
        .delete("s1", &Default::default())
        .await
        .expect("delete example.com's");
    assert!(ours.get("s1").await.is_ok(), "lvsnap.io's is untouched");
    assert!(
        other
            .list(&ListParams::default())
            .await
            .expect("list")
            .items
            .is_empty()
    );
    assert!(server.object("lvssnapshots.lvsnap.io", "s1").is_some());
    assert!(server.object("lvssnapshots.example.com", "s1").is_none());
}

#[tokio::test]
async fn a_kind_with_a_status_subresource_keeps_status_and_spec_apart() {
    let (_server, client) = server();
    let nodes: Api<Node> = Api::all(client);
    let pp = PostParams::default();
    let mut n = node("n1", &[("zone", "a")]);
    n.status = Some(NodeStatus {
        phase: Some("Running".into()),
        ..Default::default()
    });
    let created = nodes.create(&pp, &n).await.expect("create");
    assert!(created.status.is_none(), "create ignores status");
    let mut st = created.clone();
    st.status = Some(NodeStatus {
        phase: Some("Running".into()),
        ..Default::default()
    });
    st.metadata.labels = Some([("zone".to_string(), "b".to_string())].into());
    let after = nodes.replace_status("n1", &pp, &st).await.expect("status");
    assert_eq!(
        after.status.and_then(|s| s.phase).as_deref(),
        Some("Running")
    );
    assert_eq!(
        after.metadata.labels.expect("labels")["zone"],
        "a",
        "/status changes only status"
    );
    let mut relabel = nodes.get("n1").await.expect("get");
    relabel.metadata.labels = Some([("zone".to_string(), "c".to_string())].into());
    relabel.status = None;
    let relabelled = nodes.replace("n1", &pp, &relabel).await.expect("replace");
    assert_eq!(relabelled.metadata.labels.expect("labels")["zone"], "c");
    assert!(
        relabelled.status.is_some(),
        "a write of the object keeps the stored status"
    );
    assert_eq!(
        nodes
            .list(&ListParams::default())
            .await
            .expect("list")
            .types
            .kind,
        "NodeList"
    );
}

#[tokio::test]
async fn a_lease_has_no_status_subresource_so_a_put_replaces_it_whole() {
    let (_server, client) = server();
    let leases: Api<Lease> = Api::namespaced(client, "kube-system");
    let pp = PostParams::default();
    let mut lease = Lease {
        metadata: meta("lvsnap-controller"),
        spec: Some(LeaseSpec {
            holder_identity: Some("a".into()),
            ..Default::default()
        }),
    };
    let created = leases.create(&pp, &lease).await.expect("create");
    assert_eq!(created.metadata.namespace.as_deref(), Some("kube-system"));
    lease = created.clone();
    lease.spec = Some(LeaseSpec {
        holder_identity: Some("b".into()),
        lease_duration_seconds: Some(15),
        ..Default::default()
    });
    let replaced = leases
        .replace("lvsnap-controller", &pp, &lease)
        .await
        .expect("replace");
    let spec = replaced.spec.expect("spec");
    assert_eq!(
        (spec.holder_identity.as_deref(), spec.lease_duration_seconds),
        (Some("b"), Some(15))
    );
    assert_eq!(
        status_of(leases.replace("lvsnap-controller", &pp, &created).await),
        (409, "Conflict".into())
    );
    let current = leases.get("lvsnap-controller").await.expect("get");
    let put_status = leases
        .replace_status("lvsnap-controller", &pp, &current)
        .await;
    assert_eq!(status_of(put_status).0, 404, "leases have no /status");
}

#[tokio::test]
async fn volume_snapshot_contents_as_dynamic_objects() {
    let (_server, client) = server();
    let api: Api<DynamicObject> = Api::all_with(client, &vsc_resource());
    let pp = PostParams::default();
    let made = api
        .create(&pp, &vsc("snapcontent-1", "h1"))
        .await
        .expect("create");
    assert_eq!(made.metadata.generation, Some(1));
    assert_eq!(made.data["spec"]["source"]["snapshotHandle"], "h1");
    let list = api.list(&ListParams::default()).await.expect("list");
    assert_eq!(list.types.kind, "VolumeSnapshotContentList");
    assert_eq!(list.types.api_version, "snapshot.storage.k8s.io/v1");
    let no_spec = DynamicObject::new("bare", &vsc_resource());
    assert_eq!(
        status_of(api.create(&pp, &no_spec).await),
        (422, "Invalid".into())
    );
    let mut changed = made.clone();
    changed.data["spec"]["deletionPolicy"] = "Retain".into();
    let changed = api
        .replace("snapcontent-1", &pp, &changed)
        .await
        .expect("replace");
    assert_eq!(
        changed.metadata.generation,
        Some(2),
        "a spec change bumps generation"
    );
}

#[tokio::test]
async fn unknown_resources_wrong_scopes_and_version() {
    let (_server, client) = server();
    let widgets = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", "v1", "Widget"),
        "widgets",
    );
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &widgets);
    assert_eq!(
        status_of(api.list(&ListParams::default()).await),
        (404, "NotFound".into())
    );
    let nodes_ar = ApiResource::erase::<Node>(&());
    let namespaced_nodes: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "default", &nodes_ar);
    assert_eq!(
        status_of(namespaced_nodes.get("n1").await).0,
        404,
        "nodes are cluster-scoped"
    );
    let v2 = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("coordination.k8s.io", "v2", "Lease"),
        "leases",
    );
    let leases_v2: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &v2);
    assert_eq!(
        status_of(leases_v2.list(&ListParams::default()).await).0,
        404,
        "unserved version"
    );
    let version = client.apiserver_version().await.expect("version");
    assert_eq!(version.minor, "34");
}
