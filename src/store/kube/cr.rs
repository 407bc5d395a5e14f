//! The pieces every lvsnap CustomResource shares in the Kubernetes store:
//! the `Cr` trait over the kube-generated types, error classification, and
//! the object ↔ record conversion.
use std::fmt::Debug;

use kube::Resource;
use serde::{Serialize, de::DeserializeOwned};

use super::super::{Kind, Record, StoreError};
use crate::records::{LvsNode, LvsQuota, LvsQuotaSpec, LvsSnapshot, LvsVolume};

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

/// The pieces every lvsnap CR shares.
pub(super) trait Cr:
    Resource<DynamicType = (), Scope = kube::core::ClusterResourceScope>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    type Spec: Clone + Serialize + DeserializeOwned + Send + Sync;
    type Status: Clone + Default + Serialize + DeserializeOwned + Send + Sync;
    const KIND: Kind;
    /// Volumes and snapshots are created in two writes (object, then status
    /// subresource); between them the object is not a record yet: readers
    /// skip it, so a node never acts on a half-created record.
    const STATUS_REQUIRED: bool;
    fn build(name: &str, spec: Self::Spec) -> Self;
    fn parts(&self) -> (&Self::Spec, Option<&Self::Status>);
    fn set_status(&mut self, status: Self::Status);
}

macro_rules! cr {
    ($t:ty, $spec:ty, $status:ty, $kind:expr, $required:expr) => {
        impl Cr for $t {
            type Spec = $spec;
            type Status = $status;
            const KIND: Kind = $kind;
            const STATUS_REQUIRED: bool = $required;
            fn build(name: &str, spec: $spec) -> Self {
                <$t>::new(name, spec)
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
    true
);
cr!(
    LvsSnapshot,
    crate::records::LvsSnapshotSpec,
    crate::records::LvsSnapshotStatus,
    Kind::Snapshot,
    true
);
cr!(
    LvsQuota,
    LvsQuotaSpec,
    crate::records::LvsQuotaStatus,
    Kind::Quota,
    false
);
cr!(
    LvsNode,
    crate::records::LvsNodeSpec,
    crate::records::LvsNodeStatus,
    Kind::Node,
    false
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
        name: obj.meta().name.clone().unwrap_or_default(),
        version: obj.meta().resource_version.clone().unwrap_or_default(),
        spec: spec.clone(),
        status: status.cloned().unwrap_or_default(),
    }
}
