//! The container orchestrator's own objects lvsnap consults before acting:
//! whether a node still exists (a deleted Node object is the proof that lets
//! a delete finish without it), and whether the CO object behind a create
//! (the VolumeSnapshotContent, the PVC) is still wanted. A port below the
//! controller: Kubernetes answers from its API, all-in-one has no CO
//! objects to ask ("present": nothing is ever concluded from them).
use std::fmt::Debug;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::{Node, PersistentVolumeClaim};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::{Client, Resource};

use super::StoreError;

/// What the CO says of an object. Only `Gone` (the API answered 404) is
/// evidence that it no longer exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    Present,
    /// It exists with a deletion timestamp (finalizers still hold it).
    Deleting,
    Gone,
}

/// Queries about the CO's objects.
#[async_trait]
pub trait Cluster: Send + Sync + Debug {
    /// The node `name` (Kubernetes: the Node object).
    async fn node(&self, name: &str) -> Result<Presence, StoreError>;
    /// The VolumeSnapshotContent a CreateSnapshot names.
    async fn snapshot_content(&self, name: &str) -> Result<Presence, StoreError>;
    /// The PersistentVolumeClaim a CreateVolume names.
    async fn claim(&self, namespace: &str, name: &str) -> Result<Presence, StoreError>;
}

/// all-in-one: no CO objects; every node and object is taken as present.
#[derive(Debug, Default, Clone, Copy)]
pub struct Standalone;

#[async_trait]
impl Cluster for Standalone {
    async fn node(&self, _name: &str) -> Result<Presence, StoreError> {
        Ok(Presence::Present)
    }
    async fn snapshot_content(&self, _name: &str) -> Result<Presence, StoreError> {
        Ok(Presence::Present)
    }
    async fn claim(&self, _namespace: &str, _name: &str) -> Result<Presence, StoreError> {
        Ok(Presence::Present)
    }
}

/// The Kubernetes API.
#[derive(Clone)]
pub struct KubeCluster {
    client: Client,
}

impl Debug for KubeCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KubeCluster")
    }
}

impl KubeCluster {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

fn presence<K: Resource>(obj: Option<K>) -> Presence {
    match obj {
        None => Presence::Gone,
        Some(o) if o.meta().deletion_timestamp.is_some() => Presence::Deleting,
        Some(_) => Presence::Present,
    }
}

fn unavailable(what: &str, e: kube::Error) -> StoreError {
    StoreError::Unavailable(format!("reading {what}: {e}"))
}

/// Reads object `name`: `Gone` only on the API's own "<kind> \"<name>\" not
/// found" (404 with reason NotFound naming the object), never on a route
/// the server does not serve, a refusal or an outage.
async fn read<K>(api: &Api<K>, name: &str, what: &str) -> Result<Presence, StoreError>
where
    K: Resource + Clone + serde::de::DeserializeOwned + Debug,
{
    match api.get(name).await {
        Ok(obj) => Ok(presence(Some(obj))),
        Err(kube::Error::Api(s))
            if s.code == 404
                && s.reason == "NotFound"
                && s.message.contains(&format!("\"{name}\"")) =>
        {
            Ok(Presence::Gone)
        }
        Err(e) => Err(unavailable(what, e)),
    }
}

#[async_trait]
impl Cluster for KubeCluster {
    async fn node(&self, name: &str) -> Result<Presence, StoreError> {
        let api: Api<Node> = Api::all(self.client.clone());
        read(&api, name, &format!("node {name}")).await
    }

    async fn snapshot_content(&self, name: &str) -> Result<Presence, StoreError> {
        let gvk = GroupVersionKind::gvk("snapshot.storage.k8s.io", "v1", "VolumeSnapshotContent");
        let resource = ApiResource::from_gvk_with_plural(&gvk, "volumesnapshotcontents");
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &resource);
        read(&api, name, &format!("VolumeSnapshotContent {name}")).await
    }

    async fn claim(&self, namespace: &str, name: &str) -> Result<Presence, StoreError> {
        let api: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), namespace);
        read(
            &api,
            name,
            &format!("PersistentVolumeClaim {namespace}/{name}"),
        )
        .await
    }
}
