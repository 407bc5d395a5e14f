//! The pieces every lvsnap CustomResource shares in the Kubernetes store:
//! the `Cr` trait over the kube-generated types, error classification, and
//! the object ↔ record conversion.

use kube::{Api, Client, Resource};
use serde::{Serialize, de::DeserializeOwned};

use super::super::{Kind, Record, StoreError};
use super::cache::{Cache, Caches, Object};
use crate::records::{LvsGroupSnapshot, LvsNode, LvsQuota, LvsQuotaSpec, LvsSnapshot, LvsVolume};

pub(super) fn classify(kind: Kind, name: &str, e: kube::Error) -> StoreError {
    let (kind, name) = (kind.as_str(), name.to_string());
    match e {
        kube::Error::Api(s) if s.code == 404 => StoreError::NotFound { kind, name },
        kube::Error::Api(s) if s.code == 409 && s.reason == "AlreadyExists" => {
            StoreError::AlreadyExists { kind, name }
        }
        kube::Error::Api(s) if s.code == 409 => StoreError::Conflict {
            kind,
            name,
            version: String::new(),
        },
        kube::Error::Api(s) if s.code == 422 || s.code == 400 => StoreError::Invalid {
            kind,
            name,
            message: s.message,
        },
        kube::Error::SerdeError(e) => StoreError::Corrupt {
            kind,
            name,
            message: e.to_string(),
        },
        other => StoreError::Unavailable(other.to_string()),
    }
}

/// The name of a project's LvsQuota object in the project's namespace:
/// one per namespace, as a ResourceQuota (the record's name is the project).
pub const QUOTA_OBJECT: &str = "quota";

/// The pieces every lvsnap CR shares.
pub(super) trait Cr: Object {
    type Spec: Clone + PartialEq + Serialize + DeserializeOwned + Send + Sync;
    type Status: Clone + Default + Serialize + DeserializeOwned + Send + Sync;
    const KIND: Kind;
    /// Volumes and snapshots are created in two writes (object, then status
    /// subresource); between them the object is not a record yet: readers
    /// skip it, so a node never acts on a half-created record.
    const STATUS_REQUIRED: bool;
    /// The object of record `name`, built from `spec`.
    fn build(name: &str, spec: Self::Spec) -> Self;
    /// The API and the object name for record `name` (cluster-scoped kinds:
    /// the name itself; quota: [`QUOTA_OBJECT`] in namespace `name`).
    fn scoped(client: &Client, name: &str) -> (Api<Self>, String);
    /// The record name of a stored object.
    fn record_name(&self) -> String {
        self.meta().name.clone().unwrap_or_default()
    }
    /// The read cache of this kind (`None`: never cached).
    fn cache(caches: &Caches) -> Option<&Cache<Self>>;
    fn parts(&self) -> (&Self::Spec, Option<&Self::Status>);
    fn set_status(&mut self, status: Self::Status);
}

macro_rules! cr {
    ($t:ty, $spec:ty, $status:ty, $kind:expr, $required:expr, $c:ident => $cache:expr) => {
        impl Cr for $t {
            type Spec = $spec;
            type Status = $status;
            const KIND: Kind = $kind;
            const STATUS_REQUIRED: bool = $required;
            fn build(name: &str, spec: $spec) -> Self {
                <$t>::new(name, spec)
            }
            fn scoped(client: &Client, name: &str) -> (Api<Self>, String) {
                (Api::all(client.clone()), name.to_string())
            }
            fn cache($c: &Caches) -> Option<&Cache<Self>> {
                $cache
            }
            fn parts(&self) -> (&$spec, Option<&$status>) {
                (&self.spec, self.status.as_ref())
            }
            fn set_status(&mut self, status: $status) {
                self.status = Some(status);
            }
        }
    };
}

cr!(
    LvsVolume,
    crate::records::LvsVolumeSpec,
    crate::records::LvsVolumeStatus,
    Kind::Volume,
    true,
    c => Some(&c.volumes)
);
cr!(
    LvsSnapshot,
    crate::records::LvsSnapshotSpec,
    crate::records::LvsSnapshotStatus,
    Kind::Snapshot,
    true,
    c => Some(&c.snapshots)
);
cr!(
    LvsGroupSnapshot,
    crate::records::LvsGroupSnapshotSpec,
    crate::records::LvsGroupSnapshotStatus,
    Kind::GroupSnapshot,
    true,
    _c => None
);
impl Cr for LvsQuota {
    type Spec = LvsQuotaSpec;
    type Status = crate::records::LvsQuotaStatus;
    const KIND: Kind = Kind::Quota;
    const STATUS_REQUIRED: bool = false;
    fn build(name: &str, spec: LvsQuotaSpec) -> Self {
        let mut q = LvsQuota::new(QUOTA_OBJECT, spec);
        q.metadata.namespace = Some(name.to_string());
        q
    }
    fn scoped(client: &Client, name: &str) -> (Api<Self>, String) {
        (Api::namespaced(client.clone(), name), QUOTA_OBJECT.into())
    }
    fn record_name(&self) -> String {
        self.meta().namespace.clone().unwrap_or_default()
    }
    fn cache(_: &Caches) -> Option<&Cache<Self>> {
        None
    }
    fn parts(&self) -> (&LvsQuotaSpec, Option<&crate::records::LvsQuotaStatus>) {
        (&self.spec, self.status.as_ref())
    }
    fn set_status(&mut self, status: crate::records::LvsQuotaStatus) {
        self.status = Some(status);
    }
}
cr!(
    LvsNode,
    crate::records::LvsNodeSpec,
    crate::records::LvsNodeStatus,
    Kind::Node,
    false,
    c => Some(&c.nodes)
);

/// The labels a record of `K` is stored with.
pub(super) type LabelsOf<K> =
    fn(&Record<<K as Cr>::Spec, <K as Cr>::Status>) -> Vec<(&'static str, String)>;

/// Whether readers see `obj` as a record (see `Cr::STATUS_REQUIRED`).
pub(super) fn is_record<K: Cr>(obj: &K) -> bool {
    !K::STATUS_REQUIRED || obj.parts().1.is_some()
}

pub(super) fn to_record<K: Cr>(obj: &K) -> Record<K::Spec, K::Status> {
    let (spec, status) = obj.parts();
    Record {
        name: obj.record_name(),
        version: obj.meta().resource_version.clone().unwrap_or_default(),
        spec: spec.clone(),
        status: status.cloned().unwrap_or_default(),
    }
}
