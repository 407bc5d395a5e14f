//! The controller domain: validation, placement, quota and records, with
//! Cinder's semantics. Knows no proto and no kube: the CSI glue in
//! `csi/controller.rs` turns requests into these calls and [`ControllerError`]
//! into gRPC codes.
pub mod expand;
pub mod params;
mod retention;
mod snapshot;
mod volume;
mod wait;

use std::sync::Arc;
use std::time::Duration;

pub use snapshot::{CreateSnapshot, SnapshotPage};
pub use volume::{CreateVolume, Placement};

use crate::quota::{QuotaEngine, QuotaError};
use crate::store::{Store, StoreError};

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
    /// Testing only: where to abort the process (crash-safety tests).
    pub failpoint: Option<Failpoint>,
}

/// Points where a test can make the controller die mid-request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failpoint {
    /// Quota reserved, no record written yet.
    SnapshotAfterReserve,
    /// Record written, reservation not committed yet.
    SnapshotAfterRecord,
}

impl std::str::FromStr for Failpoint {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "snapshot-after-reserve" => Ok(Self::SnapshotAfterReserve),
            "snapshot-after-record" => Ok(Self::SnapshotAfterRecord),
            other => Err(format!(
                "{other:?} is not a failpoint (snapshot-after-reserve, snapshot-after-record)"
            )),
        }
    }
}

impl ControllerConfig {
    /// Aborts the process (no unwinding, no cleanup: a crash) at `point`
    /// when it is the configured failpoint.
    pub(crate) fn failpoint(&self, point: Failpoint) {
        if self.failpoint == Some(point) {
            tracing::error!(?point, "failpoint reached: aborting");
            std::process::abort();
        }
    }
}

impl Default for ControllerConfig {
    fn default() -> Self {
        Self {
            default_project: "default".into(),
            wait_timeout: Duration::from_secs(20),
            deleted_retention: Duration::from_secs(7 * 86_400),
            failpoint: None,
        }
    }
}

/// The one context of the controller: store, quota engine and settings.
#[derive(Clone)]
pub struct Controller {
    pub store: Arc<dyn Store>,
    pub quota: QuotaEngine,
    pub config: ControllerConfig,
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
    /// The node recorded a failure: its code (a gRPC code name) and message.
    #[error("{message}")]
    Recorded { code: String, message: String },
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
            StoreError::Unavailable(_) => ControllerError::Unavailable(e.to_string()),
            StoreError::Invalid { .. } => ControllerError::Invalid(e.to_string()),
            other => ControllerError::Internal(other.to_string()),
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

/// Now, RFC 3339 with nanoseconds.
pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{
        LvmSnapshotSpec, LvmSnapshotStatus, LvmVolumeSpec, LvmVolumeStatus, SnapshotState,
        VolumeState,
    };
    use crate::store::{Record, SqliteStore};

    fn controller(dir: &std::path::Path) -> Controller {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir).expect("sqlite"));
        Controller {
            quota: QuotaEngine::new(
                store.clone(),
                Default::default(),
                crate::quota::system_clock(),
            ),
            store,
            config: ControllerConfig {
                wait_timeout: Duration::from_millis(200),
                ..Default::default()
            },
        }
    }

    fn volume(
        id: &str,
        status: VolumeState,
        snap: Option<&str>,
        vol: Option<&str>,
    ) -> crate::store::VolumeRecord {
        Record::new(
            id,
            LvmVolumeSpec {
                id: id.into(),
                csi_name: format!("csi-{id}"),
                project: "p".into(),
                node: "n1".into(),
                vg: "vg0".into(),
                lv_name: format!("volume-{id}"),
                size_bytes: 1 << 30,
                source_snapshot_id: snap.map(str::to_string),
                source_volume_id: vol.map(str::to_string),
                ..Default::default()
            },
            LvmVolumeStatus {
                status,
                ..Default::default()
            },
        )
    }

    /// Cinder's delete lock: while a restore reads a snapshot (or a clone a
    /// volume), the source cannot be deleted; once it is done, it can.
    #[tokio::test]
    async fn a_source_being_read_cannot_be_deleted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = controller(dir.path());
        c.store
            .create_volume(&volume("src", VolumeState::Available, None, None))
            .await
            .expect("source volume");
        let snap = Record::new(
            "snap",
            LvmSnapshotSpec {
                id: "snap".into(),
                csi_name: "csi-snap".into(),
                source_volume_id: "src".into(),
                project: "p".into(),
                node: "n1".into(),
                vg: "vg0".into(),
                lv_name: "_snapshot-snap".into(),
                ..Default::default()
            },
            LvmSnapshotStatus {
                status: SnapshotState::Available,
                ..Default::default()
            },
        );
        c.store.create_snapshot(&snap).await.expect("snapshot");
        c.store
            .create_volume(&volume(
                "restore",
                VolumeState::Creating,
                Some("snap"),
                None,
            ))
            .await
            .expect("restoring volume");
        c.store
            .create_volume(&volume("clone", VolumeState::Creating, None, Some("src")))
            .await
            .expect("cloning volume");

        let err = c.delete_snapshot("snap").await.expect_err("busy");
        assert!(
            matches!(err, ControllerError::FailedPrecondition(ref m) if m.contains("restore")),
            "{err:?}"
        );
        let err = c.delete_volume("src").await.expect_err("busy");
        assert!(
            matches!(err, ControllerError::FailedPrecondition(_)),
            "{err:?}"
        );

        // The restore finished: the snapshot may go (to `deleting`, for its node).
        let mut done = c.store.get_volume("restore").await.unwrap().unwrap();
        done.status.status = VolumeState::Available;
        c.store.update_volume(&done).await.expect("update");
        let _ = c.delete_snapshot("snap").await; // no node here: it stays `deleting`
        let s = c.store.get_snapshot("snap").await.unwrap().unwrap();
        assert_eq!(s.status.status, SnapshotState::Deleting);
    }

    #[test]
    fn ids_derive_from_names() {
        assert_eq!(record_id("snapshot", "a"), record_id("snapshot", "a"));
        assert_ne!(record_id("snapshot", "a"), record_id("volume", "a"));
        assert_ne!(record_id("snapshot", "a"), record_id("snapshot", "b"));
        assert!(uuid::Uuid::parse_str(&record_id("volume", "x")).is_ok());
    }
}
