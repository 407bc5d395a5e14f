//! The fake Kubernetes API server, driven through kube's real `Api` and
//! `Client` (k8s-openapi types and `DynamicObject`s), so tests written
//! against it can trust it behaves as Kubernetes does.
mod deletion;
mod faults;
mod fixtures;
mod paging;
mod patch;
mod routing;
mod watch;

use k8s_openapi::api::core::v1::Node;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use kube::core::ObjectMeta;
use lvsnap::store::fake_api::FakeApiServer;

/// The server and a client of it.
pub fn server() -> (FakeApiServer, kube::Client) {
    let server = FakeApiServer::new();
    let client = server.client();
    (server, client)
}

/// The API error's (code, reason), or a panic naming what came instead.
pub fn status_of<T: std::fmt::Debug>(r: Result<T, kube::Error>) -> (u16, String) {
    match r {
        Err(kube::Error::Api(s)) => (s.code, s.reason.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// The API error's message.
pub fn message_of<T: std::fmt::Debug>(r: Result<T, kube::Error>) -> String {
    match r {
        Err(kube::Error::Api(s)) => s.message.clone(),
        other => panic!("expected an API error, got {other:?}"),
    }
}

pub fn meta(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        ..Default::default()
    }
}

pub fn node(name: &str, labels: &[(&str, &str)]) -> Node {
    Node {
        metadata: ObjectMeta {
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..meta(name)
        },
        ..Default::default()
    }
}

/// volumesnapshotcontents.snapshot.storage.k8s.io/v1, untyped.
pub fn vsc_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("snapshot.storage.k8s.io", "v1", "VolumeSnapshotContent"),
        "volumesnapshotcontents",
    )
}

pub fn vsc(name: &str, handle: &str) -> DynamicObject {
    DynamicObject::new(name, &vsc_resource()).data(serde_json::json!({
        "spec": {
            "driver": "lvsnap.io",
            "deletionPolicy": "Delete",
            "source": {"snapshotHandle": handle},
            "volumeSnapshotRef": {"name": "vs", "namespace": "default"},
        }
    }))
}

/// Names of a list's items, in order.
pub fn names<K: kube::Resource>(items: &[K]) -> Vec<String> {
    items
        .iter()
        .map(|o| o.meta().name.clone().unwrap_or_default())
        .collect()
}
