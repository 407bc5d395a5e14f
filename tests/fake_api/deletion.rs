//! Deletion: finalizers, preconditions, 404, collections.
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{
    Api, DeleteParams, ListParams, PostParams, Preconditions, WatchEvent, WatchParams,
};
use kube::core::ObjectMeta;

use super::{message_of, meta, names, server, status_of};

fn lease(name: &str, finalizers: &[&str]) -> Lease {
    Lease {
        metadata: ObjectMeta {
            finalizers: Some(finalizers.iter().map(|f| f.to_string()).collect()),
            labels: Some([("app".to_string(), "lvsnap".to_string())].into()),
            ..meta(name)
        },
        ..Default::default()
    }
}

async fn next_event(
    s: &mut (impl futures::Stream<Item = kube::Result<WatchEvent<Lease>>> + Unpin),
) -> WatchEvent<Lease> {
    loop {
        let ev = tokio::time::timeout(std::time::Duration::from_secs(10), s.next())
            .await
            .expect("an event within 10 s")
            .expect("stream open")
            .expect("event");
        if !matches!(ev, WatchEvent::Bookmark(_)) {
            return ev;
        }
    }
}

#[tokio::test]
async fn finalizers_hold_a_deleted_object_until_the_last_is_removed() {
    let (_server, client) = server();
    let api: Api<Lease> = Api::namespaced(client, "ns1");
    let pp = PostParams::default();
    let created = api
        .create(&pp, &lease("held", &["example.com/hold"]))
        .await
        .expect("create");
    let rv = created.metadata.resource_version.clone().expect("rv");
    let mut events = api
        .watch(&WatchParams::default(), &rv)
        .await
        .expect("watch")
        .boxed();

    let marked = api
        .delete("held", &DeleteParams::default())
        .await
        .expect("delete");
    let marked = marked.left().expect("the object, not a Status");
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert_eq!(marked.metadata.deletion_grace_period_seconds, Some(0));
    assert!(
        matches!(next_event(&mut events).await, WatchEvent::Modified(o) if o.metadata.deletion_timestamp.is_some())
    );
    let still = api.get("held").await.expect("still there");
    assert_eq!(
        still.metadata.resource_version,
        marked.metadata.resource_version
    );
    let again = api
        .delete("held", &DeleteParams::default())
        .await
        .expect("delete again");
    assert_eq!(
        again.left().expect("object").metadata.resource_version,
        marked.metadata.resource_version,
        "a second delete changes nothing"
    );

    let mut more = still.clone();
    more.metadata.finalizers = Some(vec!["example.com/hold".into(), "example.com/late".into()]);
    let err = api.replace("held", &pp, &more).await;
    assert!(message_of(api.replace("held", &pp, &more).await).contains("no new finalizers"));
    assert_eq!(status_of(err), (422, "Invalid".into()));

    let mut released = still;
    released.metadata.finalizers = Some(vec![]);
    api.replace("held", &pp, &released)
        .await
        .expect("remove the finalizer");
    assert_eq!(
        status_of(api.get("held").await).0,
        404,
        "removed with its last finalizer"
    );
    assert!(
        matches!(next_event(&mut events).await, WatchEvent::Deleted(o) if o.metadata.name.as_deref() == Some("held"))
    );
}

#[tokio::test]
async fn delete_preconditions_are_checked() {
    let (_server, client) = server();
    let api: Api<Lease> = Api::namespaced(client, "ns1");
    let created = api
        .create(&PostParams::default(), &lease("l1", &[]))
        .await
        .expect("create");
    let pre = |uid: Option<&str>, rv: Option<&str>| DeleteParams {
        preconditions: Some(Preconditions {
            uid: uid.map(String::from),
            resource_version: rv.map(String::from),
        }),
        ..Default::default()
    };
    let wrong_uid = api.delete("l1", &pre(Some("not-the-uid"), None)).await;
    assert!(
        message_of(api.delete("l1", &pre(Some("not-the-uid"), None)).await)
            .contains("Precondition failed: UID")
    );
    assert_eq!(status_of(wrong_uid), (409, "Conflict".into()));
    assert_eq!(
        status_of(api.delete("l1", &pre(None, Some("1234"))).await).0,
        409
    );
    assert!(api.get("l1").await.is_ok(), "nothing deleted");
    let (uid, rv) = (
        created.metadata.uid.as_deref(),
        created.metadata.resource_version.as_deref(),
    );
    api.delete("l1", &pre(uid, rv))
        .await
        .expect("matching preconditions");
    assert_eq!(
        status_of(api.delete("l1", &DeleteParams::default()).await),
        (404, "NotFound".into())
    );
}

#[tokio::test]
async fn delete_collection_honours_selectors() {
    let (_server, client) = server();
    let api: Api<Lease> = Api::namespaced(client, "ns1");
    let pp = PostParams::default();
    api.create(&pp, &lease("a", &[])).await.expect("create");
    api.create(&pp, &lease("b", &["example.com/hold"]))
        .await
        .expect("create");
    let mut other = lease("c", &[]);
    other.metadata.labels = None;
    api.create(&pp, &other).await.expect("create");
    api.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("app=lvsnap"),
    )
    .await
    .expect("delete collection");
    let left = api.list(&ListParams::default()).await.expect("list");
    assert_eq!(names(&left.items), ["b", "c"], "b waits for its finalizer");
    assert!(left.items[0].metadata.deletion_timestamp.is_some());
}
