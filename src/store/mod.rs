//! The `Store`: where records live. Two backends behind one trait: the
//! Kubernetes API (CRDs, optimistic concurrency on resourceVersion) and
//! embedded SQLite (all-in-one). The same behavioural suite runs on both.
use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Serialize, de::DeserializeOwned};
use tokio::sync::broadcast;

use crate::records::{
    LvsNodeSpec, LvsNodeStatus, LvsQuotaSpec, LvsQuotaStatus, LvsSnapshotSpec, LvsSnapshotStatus,
    LvsVolumeSpec, LvsVolumeStatus,
};

mod cas;
mod cluster;
pub mod events;
#[cfg(feature = "testing")]
pub mod fake_api;
mod group;
mod kube;
mod kube_client;
mod kube_events;
pub mod lease;
mod sqlite;
mod tracked;

pub use self::kube::{KubeStore, QUOTA_OBJECT};
pub use cluster::{Cluster, KubeCluster, Presence, Standalone};
pub use events::{EventSink, LogOnly, Phase, RecordEvent};
pub use group::{GroupSnapshotFilter, GroupSnapshotRecord};
pub use kube_client::{ClientError, USER_AGENT, kube_client, kube_config};
pub use kube_events::KubeEvents;
pub use sqlite::SqliteStore;
pub use tracked::Tracked;

/// A record as stored: its name (the id, project or node), the version the
/// store saw (resourceVersion / row counter), spec and status.
#[derive(Debug, Clone, PartialEq)]
pub struct Record<S, T> {
    pub name: String,
    pub version: String,
    pub spec: S,
    pub status: T,
}

impl<S, T> Record<S, T> {
    /// A record not yet stored (empty version).
    pub fn new(name: impl Into<String>, spec: S, status: T) -> Self {
        Self {
            name: name.into(),
            version: String::new(),
            spec,
            status,
        }
    }
}

pub type VolumeRecord = Record<LvsVolumeSpec, LvsVolumeStatus>;
pub type SnapshotRecord = Record<LvsSnapshotSpec, LvsSnapshotStatus>;
pub type QuotaRecord = Record<LvsQuotaSpec, LvsQuotaStatus>;
pub type NodeRecord = Record<LvsNodeSpec, LvsNodeStatus>;

/// The record kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Volume,
    Snapshot,
    Quota,
    Node,
    GroupSnapshot,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Volume => "volume",
            Kind::Snapshot => "snapshot",
            Kind::Quota => "quota",
            Kind::Node => "node",
            Kind::GroupSnapshot => "group_snapshot",
        }
    }
}

/// What changed, for watchers (the node executor, waiting controllers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: Kind,
    pub name: String,
    /// The node the record is assigned to, when it has one.
    pub node: Option<String>,
}

/// Store failures, classified so callers can act on them.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{kind} {name} not found")]
    NotFound { kind: &'static str, name: String },
    #[error("{kind} {name} already exists")]
    AlreadyExists { kind: &'static str, name: String },
    /// The record changed since it was read: read again and retry.
    #[error("{kind} {name} was changed concurrently (stale version {version})")]
    Conflict {
        kind: &'static str,
        name: String,
        version: String,
    },
    /// The store refused the object (Kubernetes 422, a bad name).
    #[error("invalid {kind} {name}: {message}")]
    Invalid {
        kind: &'static str,
        name: String,
        message: String,
    },
    /// A stored record that cannot be read back.
    #[error("{kind} {name} is malformed in the store: {message}")]
    Corrupt {
        kind: &'static str,
        name: String,
        message: String,
    },
    /// A read-modify-write closure refused the change.
    #[error(transparent)]
    Aborted(Box<dyn std::error::Error + Send + Sync>),
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    #[error("store error: {0}")]
    Other(String),
}

/// Which snapshots to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotFilter {
    pub source_volume_id: Option<String>,
    pub node: Option<String>,
    pub project: Option<String>,
    pub include_deleted: bool,
}

/// Which volumes to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VolumeFilter {
    pub node: Option<String>,
    pub project: Option<String>,
    pub include_deleted: bool,
}

/// A quota read-modify-write: given the current record (None: none yet),
/// returns the new spec/status, or an error that aborts without writing.
/// It may run more than once (on conflicts) and must not have side effects.
pub type QuotaUpdate = Box<
    dyn FnMut(
            Option<&QuotaRecord>,
        )
            -> Result<(LvsQuotaSpec, LvsQuotaStatus), Box<dyn std::error::Error + Send + Sync>>
        + Send,
>;

/// Why a read-modify-write closure refused to write.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Checks a snapshot's source volume as stored at the moment of an atomic
/// write (`None`: no such record); an error refuses the write.
pub type SourceCheck = Box<dyn FnMut(Option<&VolumeRecord>) -> Result<(), BoxError> + Send>;

/// A record read-modify-write: changes the current record in place, or
/// refuses with an error (nothing is written). It may run more than once (on
/// conflicts) and must not have side effects. A closure that changes nothing
/// writes nothing.
pub type Modify<R> = Box<dyn FnMut(&mut R) -> Result<(), BoxError> + Send>;

/// A `Modify` from a closure (saves the `Box::new` at call sites).
pub fn modify<R>(f: impl FnMut(&mut R) -> Result<(), BoxError> + Send + 'static) -> Modify<R> {
    Box::new(f)
}

/// The records store. Lists are ordered by name, and `after` continues a
/// listing after the given name (stable pagination).
#[async_trait]
pub trait Store: Send + Sync + Debug {
    async fn insert_volume(&self, record: &VolumeRecord) -> Result<VolumeRecord, StoreError>;
    async fn get_volume(&self, id: &str) -> Result<Option<VolumeRecord>, StoreError>;
    /// The live (not deleted) volume with this CSI name.
    async fn find_volume(&self, csi_name: &str) -> Result<Option<VolumeRecord>, StoreError>;
    async fn list_volumes(
        &self,
        filter: &VolumeFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<VolumeRecord>, StoreError>;
    /// Compare-and-swap on `record.version`: spec and status.
    async fn update_volume(&self, record: &VolumeRecord) -> Result<VolumeRecord, StoreError>;
    /// One atomic read-modify-write of volume `id` (SQLite: a transaction;
    /// Kubernetes: a resourceVersion compare-and-swap retried with back-off).
    /// `Ok(None)`: there is no such record.
    async fn modify_volume(
        &self,
        id: &str,
        f: Modify<VolumeRecord>,
    ) -> Result<Option<VolumeRecord>, StoreError>;
    /// Removes the record for good (purge after retention, rollback).
    async fn purge_volume(&self, id: &str) -> Result<(), StoreError>;

    async fn insert_snapshot(&self, record: &SnapshotRecord) -> Result<SnapshotRecord, StoreError>;
    async fn get_snapshot(&self, id: &str) -> Result<Option<SnapshotRecord>, StoreError>;
    async fn find_snapshot(&self, csi_name: &str) -> Result<Option<SnapshotRecord>, StoreError>;
    async fn list_snapshots(
        &self,
        filter: &SnapshotFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<SnapshotRecord>, StoreError>;
    async fn update_snapshot(&self, record: &SnapshotRecord) -> Result<SnapshotRecord, StoreError>;
    /// One atomic read-modify-write of snapshot `id` (see `modify_volume`).
    async fn modify_snapshot(
        &self,
        id: &str,
        f: Modify<SnapshotRecord>,
    ) -> Result<Option<SnapshotRecord>, StoreError>;
    async fn purge_snapshot(&self, id: &str) -> Result<(), StoreError>;
    /// A new snapshot record, its quota and the re-check of its source as
    /// ONE atomic write, where the backend has transactions across records
    /// (SQLite): `source` sees the source volume, `quota` updates the
    /// record's project (a reservation committed at once), then the record
    /// is inserted; a refusal of either (`Aborted`) or a taken name
    /// (`AlreadyExists`) writes nothing. `Ok(None)`: this backend cannot (the
    /// Kubernetes API has no transaction across objects), nothing was
    /// written, and the caller takes Cinder's steps (reserve, record,
    /// re-check, commit).
    async fn insert_snapshot_charged(
        &self,
        _record: &SnapshotRecord,
        _source: SourceCheck,
        _quota: QuotaUpdate,
    ) -> Result<Option<SnapshotRecord>, StoreError> {
        Ok(None)
    }

    async fn insert_group_snapshot(
        &self,
        record: &GroupSnapshotRecord,
    ) -> Result<GroupSnapshotRecord, StoreError>;
    async fn get_group_snapshot(&self, id: &str)
    -> Result<Option<GroupSnapshotRecord>, StoreError>;
    /// The live (not deleted) group snapshot with this CSI name.
    async fn find_group_snapshot(
        &self,
        csi_name: &str,
    ) -> Result<Option<GroupSnapshotRecord>, StoreError>;
    async fn list_group_snapshots(
        &self,
        filter: &GroupSnapshotFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<GroupSnapshotRecord>, StoreError>;
    /// One atomic read-modify-write of group snapshot `id` (see `modify_volume`).
    async fn modify_group_snapshot(
        &self,
        id: &str,
        f: Modify<GroupSnapshotRecord>,
    ) -> Result<Option<GroupSnapshotRecord>, StoreError>;
    async fn purge_group_snapshot(&self, id: &str) -> Result<(), StoreError>;

    async fn get_quota(&self, project: &str) -> Result<Option<QuotaRecord>, StoreError>;
    /// One atomic read-modify-write of a project's quota record.
    async fn update_quota(
        &self,
        project: &str,
        update: QuotaUpdate,
    ) -> Result<QuotaRecord, StoreError>;
    /// Sets a project's limits (creating the record if needed), keeping its usage.
    async fn set_quota_limits(
        &self,
        project: &str,
        spec: &LvsQuotaSpec,
    ) -> Result<QuotaRecord, StoreError> {
        let spec = spec.clone();
        self.update_quota(
            project,
            Box::new(move |cur| {
                Ok((
                    spec.clone(),
                    cur.map(|r| r.status.clone()).unwrap_or_default(),
                ))
            }),
        )
        .await
    }
    async fn list_quotas(&self) -> Result<Vec<QuotaRecord>, StoreError>;

    async fn put_node(&self, record: &NodeRecord) -> Result<NodeRecord, StoreError>;
    async fn list_nodes(&self) -> Result<Vec<NodeRecord>, StoreError>;

    /// Change notifications (best effort: a lagging receiver re-lists).
    fn subscribe(&self) -> broadcast::Receiver<Change>;

    /// The same store with reads that see every write completed before the
    /// call, whoever made it (the Kubernetes store: from the API server
    /// instead of its watch caches). `None`: this store's reads already do.
    /// For the reads a decision needs fresh: a re-check racing another
    /// writer (the source of a snapshot), the proof before a destructive
    /// step, a recount of quota.
    fn direct(&self) -> Option<Arc<dyn Store>> {
        None
    }
}

/// `store`'s reads that see every completed write (see [`Store::direct`]).
pub fn direct(store: &Arc<dyn Store>) -> Arc<dyn Store> {
    store.direct().unwrap_or_else(|| store.clone())
}

/// Serializes a record part to JSON, classifying the failure.
pub(crate) fn to_json<T: Serialize>(kind: Kind, name: &str, v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Invalid {
        kind: kind.as_str(),
        name: name.to_string(),
        message: e.to_string(),
    })
}

/// Parses a stored record part; malformed data is `Corrupt`, never a panic.
pub(crate) fn from_json<T: DeserializeOwned>(
    kind: Kind,
    name: &str,
    raw: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(raw).map_err(|e| StoreError::Corrupt {
        kind: kind.as_str(),
        name: name.to_string(),
        message: e.to_string(),
    })
}
