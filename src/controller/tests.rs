//! Unit tests of the controller domain that need no harness (the fast
//! in-process tests of whole flows live in tests/controller_flows.rs).
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::records::{
    LvsSnapshotSpec, LvsSnapshotStatus, LvsVolumeSpec, LvsVolumeStatus, SnapshotState, VolumeState,
};
use crate::store::{Record, SqliteStore};

fn controller(dir: &std::path::Path) -> Controller {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir).expect("sqlite"));
    let quota = QuotaEngine::new(
        store.clone(),
        Default::default(),
        crate::quota::system_clock(),
    );
    let config = ControllerConfig {
        wait_timeout: Duration::from_millis(200),
        ..Default::default()
    };
    Controller::new(store, quota, config)
}

fn volume(
    id: &str,
    status: VolumeState,
    snap: Option<&str>,
    vol: Option<&str>,
) -> crate::store::VolumeRecord {
    Record::new(
        id,
        LvsVolumeSpec {
            id: id.into(),
            csi_name: format!("csi-{id}"),
            project: "p".into(),
            display_name: String::new(),
            node: "n1".into(),
            vg: "vg0".into(),
            device_class: None,
            lv_name: format!("volume-{id}"),
            size_bytes: 1 << 30,
            source_snapshot_id: snap.map(str::to_string),
            source_volume_id: vol.map(str::to_string),
            ..Default::default()
        },
        LvsVolumeStatus {
            life: crate::records::Lifecycle {
                status,
                ..Default::default()
            },
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
        .insert_volume(&volume("src", VolumeState::Available, None, None))
        .await
        .expect("source volume");
    let snap = Record::new(
        "snap",
        LvsSnapshotSpec {
            id: "snap".into(),
            csi_name: "csi-snap".into(),
            source_volume_id: "src".into(),
            project: "p".into(),
            node: "n1".into(),
            vg: "vg0".into(),
            device_class: None,
            lv_name: "_snapshot-snap".into(),
            ..Default::default()
        },
        LvsSnapshotStatus {
            life: crate::records::Lifecycle {
                status: SnapshotState::Available,
                ..Default::default()
            },
            ..Default::default()
        },
    );
    c.store.insert_snapshot(&snap).await.expect("snapshot");
    c.store
        .insert_volume(&volume(
            "restore",
            VolumeState::Creating,
            Some("snap"),
            None,
        ))
        .await
        .expect("restoring volume");
    c.store
        .insert_volume(&volume("clone", VolumeState::Creating, None, Some("src")))
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
    done.status.life.status = VolumeState::Available;
    c.store.update_volume(&done).await.expect("update");
    let _ = c.delete_snapshot("snap").await; // no node here: it stays `deleting`
    let s = c.store.get_snapshot("snap").await.unwrap().unwrap();
    assert_eq!(s.status.life.status, SnapshotState::Deleting);
}

#[test]
fn ids_derive_from_names() {
    assert_eq!(record_id("snapshot", "a"), record_id("snapshot", "a"));
    assert_ne!(record_id("snapshot", "a"), record_id("volume", "a"));
    assert_ne!(record_id("snapshot", "a"), record_id("snapshot", "b"));
    assert!(uuid::Uuid::parse_str(&record_id("volume", "x")).is_ok());
}
