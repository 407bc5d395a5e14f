//! The controller domain: validation, placement, quota and records, with
//! Cinder's semantics. Knows no proto and no kube: the CSI glue in
//! `csi/controller.rs` turns requests into these calls and [`ControllerError`]
//! into gRPC codes.
pub mod classes;
mod delete;
pub mod expand;
mod group;
mod group_delete;
mod group_members;
pub mod group_params;
mod nodes;
pub mod params;
mod placement;
mod refusals;
mod snapshot;
mod snapshot_list;
mod snapshot_once;
mod source;
pub mod storage_class;
mod sweep;
#[cfg(test)]
mod tests;
mod volume;
mod wait;

use std::sync::Arc;
use std::time::Duration;

pub use group::{CreateGroupSnapshot, GroupSnapshot};
pub use group_members::member_id;
pub use nodes::NodeHealth;
pub use placement::Placement;
pub use snapshot::{CreateSnapshot, SnapshotPage};
pub use sweep::Swept;
pub use volume::CreateVolume;

use crate::failpoint::{Failpoints, Halted};
use crate::quota::{QuotaEngine, QuotaError};
use crate::records::FailureCode;
use crate::store::{Cluster, EventSink, LogOnly, Phase, Standalone, Store};
use crate::store::{Kind, StoreError};

/// Namespace for name-derived record ids (uuid v5): the same CSI name always
/// gives the same id, which makes creation idempotent and atomic on every
/// store (a second create of the same object name is refused by the store).
const ID_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6c76_736e_6170_2e69_6f2f_6964_7300_0001);

/// The id of the record for CSI name `name` of `kind` ("volume"/"snapshot").
pub fn record_id(kind: &str, name: &str) -> String {
    uuid::Uuid::new_v5(&ID_NAMESPACE, format!("{kind}/{name}").as_bytes()).to_string()
}

/// Controller settings.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// Project charged when a request names no namespace.
    pub default_project: String,
    /// How long Create*/Delete* wait on the node before answering "not yet".
    pub wait_timeout: Duration,
    /// How long soft-deleted records are kept before they are purged.
    pub deleted_retention: Duration,
    /// A failed create nobody asked for again is released this long after it failed.
    pub failed_create_grace: Duration,
    /// A node whose heartbeat is older than this gets no new volumes, and
    /// deletes aimed at it answer UNAVAILABLE.
    pub node_stale_after: Duration,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        Self {
            default_project: "default".into(),
            wait_timeout: Duration::from_secs(20),
            deleted_retention: Duration::from_secs(7 * 86_400),
            failed_create_grace: Duration::from_secs(15 * 60),
            node_stale_after: Duration::from_secs(5 * 60),
        }
    }
}

/// The one context of the controller: store, quota engine, the CO's
/// objects, event sink, settings.
#[derive(Clone)]
pub struct Controller {
    pub store: Arc<dyn Store>,
    pub quota: QuotaEngine,
    pub config: ControllerConfig,
    pub cluster: Arc<dyn Cluster>,
    pub events: Arc<dyn EventSink>,
    pub failpoints: Failpoints,
}

impl Controller {
    /// A controller on `store` with no CO (all-in-one) and log-only events.
    pub fn new(store: Arc<dyn Store>, quota: QuotaEngine, config: ControllerConfig) -> Self {
        Self {
            store,
            quota,
            config,
            cluster: Arc::new(Standalone),
            events: Arc::new(LogOnly),
            failpoints: Failpoints::default(),
        }
    }

    pub fn with_cluster(mut self, cluster: Arc<dyn Cluster>) -> Self {
        self.cluster = cluster;
        self
    }

    pub fn with_events(mut self, events: Arc<dyn EventSink>) -> Self {
        self.events = events;
        self
    }

    pub fn with_failpoints(mut self, failpoints: Failpoints) -> Self {
        self.failpoints = failpoints;
        self
    }

    /// Logs a notification and hands it to the event sink.
    pub(crate) async fn notify(&self, kind: Kind, id: &str, phase: Phase, note: String) {
        crate::store::events::notify(self.events.as_ref(), kind, id, phase, note).await;
    }

    /// ValidateVolumeCapabilities' lookup: a live volume, else NOT_FOUND.
    pub async fn live_volume(
        &self,
        id: &str,
    ) -> Result<crate::store::VolumeRecord, ControllerError> {
        params::check_name("volume_id", id)?;
        match self.store.get_volume(id).await? {
            Some(v) if !v.status.life.deleted => Ok(v),
            _ => Err(ControllerError::NotFound(format!("volume {id} not found"))),
        }
    }
}

/// Domain errors, each with one gRPC code (DESIGN §6).
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    /// Over quota or out of space.
    #[error("{0}")]
    Exhausted(String),
    /// The same object is being worked on; retry.
    #[error("{0}")]
    Aborted(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    OutOfRange(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
    /// The node recorded a failure: its code and message.
    #[error("{message}")]
    Recorded { code: FailureCode, message: String },
    /// The store failed (its cause kept).
    #[error(transparent)]
    Store(StoreError),
    /// A failpoint stopped the call (tests).
    #[error(transparent)]
    Halted(#[from] Halted),
}

impl From<params::Invalid> for ControllerError {
    fn from(e: params::Invalid) -> Self {
        ControllerError::Invalid(e.0)
    }
}

impl From<StoreError> for ControllerError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { .. } => ControllerError::NotFound(e.to_string()),
            StoreError::AlreadyExists { .. } => ControllerError::AlreadyExists(e.to_string()),
            StoreError::Conflict { .. } => ControllerError::Aborted(e.to_string()),
            StoreError::Invalid { .. } => ControllerError::Invalid(e.to_string()),
            StoreError::Aborted(inner) => match inner.downcast::<ControllerError>() {
                Ok(refused) => *refused,
                Err(other) => ControllerError::Internal(other.to_string()),
            },
            other => ControllerError::Store(other),
        }
    }
}

impl From<QuotaError> for ControllerError {
    fn from(e: QuotaError) -> Self {
        match e {
            QuotaError::OverQuota(m) => ControllerError::Exhausted(m),
            QuotaError::Invalid(m) => ControllerError::Invalid(m),
            QuotaError::Store(m) => ControllerError::Unavailable(m),
        }
    }
}

/// A `ControllerError` refusing a read-modify-write (it comes back as itself).
pub(crate) fn refuse(e: ControllerError) -> crate::store::BoxError {
    Box::new(e)
}
