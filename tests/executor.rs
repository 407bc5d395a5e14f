//! Fast tests of the node executor, in process (SQLite + the in-memory
//! LVM, see tests/common/harness.rs): settle with and without proof,
//! orphans, a busy delete, a change arriving while a record is worked. The
//! VM tier proves the same on real LVM (vm_failure.rs).
mod common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::harness::{GIB, Harness, MIB, NODE, VG};
use lvsnap::lvm::{Lvm, LvmConfig};
use lvsnap::node::{Executor, NodeSettings};
use lvsnap::records::{FailureCode, Operation, SnapshotState, VolumeState};
use lvsnap::store::{
    Change, GroupSnapshotFilter, GroupSnapshotRecord, Kind, Modify, NodeRecord, Phase, QuotaRecord,
    QuotaUpdate, SnapshotFilter, SnapshotRecord, Store, StoreError, VolumeFilter, VolumeRecord,
};
use tokio::sync::broadcast;

const TAG: &str = "lvsnap.io/id=";

/// A store whose record listings fail on demand (an unreachable or
/// forbidding API server); everything else goes to the inner store.
#[derive(Debug)]
struct Flaky {
    inner: Arc<dyn Store>,
    fail: std::sync::atomic::AtomicBool,
    forbidden: bool,
}

impl Flaky {
    fn refusal(&self) -> StoreError {
        if self.forbidden {
            StoreError::Unavailable(
                "lvsvolumes.lvsnap.io is forbidden: User cannot list resource".into(),
            )
        } else {
            StoreError::Unavailable("connection refused".into())
        }
    }
    fn failing(&self) -> bool {
        self.fail.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[async_trait]
impl Store for Flaky {
    async fn insert_volume(&self, r: &VolumeRecord) -> Result<VolumeRecord, StoreError> {
        self.inner.insert_volume(r).await
    }
    async fn get_volume(&self, id: &str) -> Result<Option<VolumeRecord>, StoreError> {
        self.inner.get_volume(id).await
    }
    async fn find_volume(&self, n: &str) -> Result<Option<VolumeRecord>, StoreError> {
        self.inner.find_volume(n).await
    }
    async fn list_volumes(
        &self,
        f: &VolumeFilter,
        a: Option<&str>,
        l: usize,
    ) -> Result<Vec<VolumeRecord>, StoreError> {
        if self.failing() {
            return Err(self.refusal());
        }
        self.inner.list_volumes(f, a, l).await
    }
    async fn update_volume(&self, r: &VolumeRecord) -> Result<VolumeRecord, StoreError> {
        self.inner.update_volume(r).await
    }
    async fn modify_volume(
        &self,
        id: &str,
        f: Modify<VolumeRecord>,
    ) -> Result<Option<VolumeRecord>, StoreError> {
        self.inner.modify_volume(id, f).await
    }
    async fn purge_volume(&self, id: &str) -> Result<(), StoreError> {
        self.inner.purge_volume(id).await
    }
    async fn insert_snapshot(&self, r: &SnapshotRecord) -> Result<SnapshotRecord, StoreError> {
        self.inner.insert_snapshot(r).await
    }
    async fn get_snapshot(&self, id: &str) -> Result<Option<SnapshotRecord>, StoreError> {
        self.inner.get_snapshot(id).await
    }
    async fn find_snapshot(&self, n: &str) -> Result<Option<SnapshotRecord>, StoreError> {
        self.inner.find_snapshot(n).await
    }
    async fn list_snapshots(
        &self,
        f: &SnapshotFilter,
        a: Option<&str>,
        l: usize,
    ) -> Result<Vec<SnapshotRecord>, StoreError> {
        if self.failing() {
            return Err(self.refusal());
        }
        self.inner.list_snapshots(f, a, l).await
    }
    async fn update_snapshot(&self, r: &SnapshotRecord) -> Result<SnapshotRecord, StoreError> {
        self.inner.update_snapshot(r).await
    }
    async fn modify_snapshot(
        &self,
        id: &str,
        f: Modify<SnapshotRecord>,
    ) -> Result<Option<SnapshotRecord>, StoreError> {
        self.inner.modify_snapshot(id, f).await
    }
    async fn purge_snapshot(&self, id: &str) -> Result<(), StoreError> {
        self.inner.purge_snapshot(id).await
    }
    async fn insert_group_snapshot(
        &self,
        r: &GroupSnapshotRecord,
    ) -> Result<GroupSnapshotRecord, StoreError> {
        self.inner.insert_group_snapshot(r).await
    }
    async fn get_group_snapshot(
        &self,
        id: &str,
    ) -> Result<Option<GroupSnapshotRecord>, StoreError> {
        self.inner.get_group_snapshot(id).await
    }
    async fn find_group_snapshot(
        &self,
        n: &str,
    ) -> Result<Option<GroupSnapshotRecord>, StoreError> {
        self.inner.find_group_snapshot(n).await
    }
    async fn list_group_snapshots(
        &self,
        f: &GroupSnapshotFilter,
        a: Option<&str>,
        l: usize,
    ) -> Result<Vec<GroupSnapshotRecord>, StoreError> {
        if self.failing() {
            return Err(self.refusal());
        }
        self.inner.list_group_snapshots(f, a, l).await
    }
    async fn modify_group_snapshot(
        &self,
        id: &str,
        f: Modify<GroupSnapshotRecord>,
    ) -> Result<Option<GroupSnapshotRecord>, StoreError> {
        self.inner.modify_group_snapshot(id, f).await
    }
    async fn purge_group_snapshot(&self, id: &str) -> Result<(), StoreError> {
        self.inner.purge_group_snapshot(id).await
    }
    async fn get_quota(&self, p: &str) -> Result<Option<QuotaRecord>, StoreError> {
        self.inner.get_quota(p).await
    }
    async fn update_quota(&self, p: &str, u: QuotaUpdate) -> Result<QuotaRecord, StoreError> {
        self.inner.update_quota(p, u).await
    }
    async fn list_quotas(&self) -> Result<Vec<QuotaRecord>, StoreError> {
        self.inner.list_quotas().await
    }
    async fn put_node(&self, r: &NodeRecord) -> Result<NodeRecord, StoreError> {
        self.inner.put_node(r).await
    }
    async fn list_nodes(&self) -> Result<Vec<NodeRecord>, StoreError> {
        self.inner.list_nodes().await
    }
    fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.inner.subscribe()
    }
}

fn reaping(grace: Duration) -> NodeSettings {
    let mut s = NodeSettings::new(NODE, VG);
    s.reap_orphans = true;
    s.orphan_grace = grace;
    s
}

fn tag(id: &uuid::Uuid) -> String {
    format!("{TAG}{id}")
}

#[tokio::test]
async fn a_failed_or_forbidden_listing_removes_and_marks_nothing() {
    for forbidden in [false, true] {
        let h = Harness::with(4 * GIB as u64, reaping(Duration::ZERO), Harness::config()).await;
        let vol = h.volume("pvc-a", 8 * MIB).await;
        // An orphan old enough to reap, and the record whose LV "vanished".
        let orphan = uuid::Uuid::new_v4();
        h.fake
            .insert_lv(VG, &format!("volume-{orphan}"), 4 << 20, &[&tag(&orphan)]);
        h.fake
            .set_lv_age(VG, &format!("volume-{orphan}"), Duration::from_secs(3600));
        let flaky = Arc::new(Flaky {
            inner: h.store.clone(),
            fail: true.into(),
            forbidden,
        });
        let executor = Executor::new(
            flaky.clone(),
            h.controller.quota.clone(),
            h.lvm.clone(),
            reaping(Duration::ZERO),
        );
        let before = h.lvs();
        assert!(executor.settle().await.is_err(), "no complete view");
        assert_eq!(
            h.lvs(),
            before,
            "every LV survives (forbidden: {forbidden})"
        );
        let v = h.store.get_volume(&vol).await.unwrap().unwrap();
        assert_eq!(v.status.life.status, VolumeState::Available);

        // The view completes: now the orphan goes.
        flaky.fail.store(false, std::sync::atomic::Ordering::SeqCst);
        let settled = executor.settle().await.expect("complete view");
        assert_eq!(settled.reaped, vec![format!("volume-{orphan}")]);
        assert!(
            h.lvs().contains(&format!("volume-{vol}")),
            "the record's LV stays"
        );
    }
}

#[tokio::test]
async fn orphans_are_reaped_only_when_old_closed_and_unclaimed() {
    let h = Harness::with(
        4 * GIB as u64,
        reaping(Duration::from_secs(600)),
        Harness::config(),
    )
    .await;
    let claimed = h.volume("pvc-claimed", 8 * MIB).await;
    let (old, young, open) = (
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
    );
    for (id, age, is_open) in [(old, 3600, false), (young, 60, false), (open, 3600, true)] {
        let lv = format!("volume-{id}");
        h.fake.insert_lv(VG, &lv, 4 << 20, &[&tag(&id)]);
        h.fake.set_lv_age(VG, &lv, Duration::from_secs(age));
        h.fake.set_open(VG, &lv, is_open);
    }
    // Not lvsnap's: no tag, never touched.
    h.fake.insert_lv(VG, "someone-elses", 4 << 20, &[]);
    h.fake
        .set_lv_age(VG, "someone-elses", Duration::from_secs(3600));

    let settled = h.executor.settle().await.expect("settle");
    let mut orphans = settled.orphans.clone();
    orphans.sort();
    let mut want = vec![
        format!("volume-{old}"),
        format!("volume-{young}"),
        format!("volume-{open}"),
    ];
    want.sort();
    assert_eq!(orphans, want);
    assert_eq!(settled.reaped, vec![format!("volume-{old}")]);
    let lvs = h.lvs();
    assert!(!lvs.contains(&format!("volume-{old}")));
    for kept in [
        format!("volume-{young}"),
        format!("volume-{open}"),
        format!("volume-{claimed}"),
        "someone-elses".into(),
    ] {
        assert!(lvs.contains(&kept), "{kept} kept");
    }
    let events = h.events.0.lock().unwrap().clone();
    let reaped: Vec<_> = events
        .iter()
        .filter(|e| e.phase == Phase::OrphanReaped)
        .collect();
    assert_eq!(reaped.len(), 1);
    assert_eq!(reaped[0].kind, Kind::Node);
    assert!(
        reaped[0].note.contains(&format!("volume-{old}")) && reaped[0].note.contains(&tag(&old)),
        "{:?}",
        reaped[0]
    );
}

#[tokio::test]
async fn without_reap_orphans_are_reported_and_left() {
    let h = Harness::new(4 * GIB as u64).await;
    let id = uuid::Uuid::new_v4();
    h.fake
        .insert_lv(VG, &format!("volume-{id}"), 4 << 20, &[&tag(&id)]);
    h.fake
        .set_lv_age(VG, &format!("volume-{id}"), Duration::from_secs(86_400));
    let settled = h.executor.settle().await.expect("settle");
    assert_eq!(settled.orphans, vec![format!("volume-{id}")]);
    assert!(settled.reaped.is_empty());
    assert!(h.lvs().contains(&format!("volume-{id}")));
}

#[tokio::test]
async fn a_vanished_lv_marks_its_record_error() {
    let h = Harness::new(4 * GIB as u64).await;
    let vol = h.volume("pvc-v", 8 * MIB).await;
    let snap = h.snapshot("snap-v", &vol).await;
    // Someone removes the snapshot's LV behind lvsnap's back.
    let lv = format!("_snapshot-{snap}");
    h.lvm
        .remove(VG, &lvsnap::lvm::LvName::new(&lv).unwrap())
        .await
        .unwrap();
    let settled = h.executor.settle().await.expect("settle");
    assert_eq!(settled.vanished, vec![snap.clone()]);
    let s = h.store.get_snapshot(&snap).await.unwrap().unwrap();
    assert_eq!(s.status.life.status, SnapshotState::Error);
    assert_eq!(s.status.life.error_code, Some(FailureCode::NotFound));
    assert_eq!(s.status.life.error_op, Some(Operation::Check));
    assert!(!s.status.ready_to_use);
    // Not a failed create: asking again answers the recorded error, it
    // does not silently cut a new point in time.
    let err = h
        .controller
        .create_snapshot(Harness::snapshot_request("snap-v", &vol))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("vanished"), "{err}");
    let v = h.store.get_volume(&vol).await.unwrap().unwrap();
    assert_eq!(
        v.status.life.status,
        VolumeState::Available,
        "its origin is still there"
    );
}

#[tokio::test]
async fn a_busy_delete_goes_back_to_available() {
    let h = Harness::new(4 * GIB as u64).await;
    let vol = h.volume("pvc-busy", 8 * MIB).await;
    // A thick snapshot no record knows makes the origin busy.
    let origin = lvsnap::lvm::LvName::new(&format!("volume-{vol}")).unwrap();
    let other = lvsnap::lvm::LvName::snapshot(uuid::Uuid::new_v4());
    h.lvm
        .lvcreate_snapshot(VG, &origin, &other, Some(4 << 20), &[])
        .await
        .unwrap();
    let err = h.controller.delete_volume(&vol).await.unwrap_err();
    assert!(
        matches!(err, lvsnap::controller::ControllerError::Aborted(_)),
        "still deleting: {err:?}"
    );
    h.work_all().await;
    let v = h.store.get_volume(&vol).await.unwrap().unwrap();
    assert_eq!(v.status.life.status, VolumeState::Available);
    assert_eq!(v.status.life.error_op, Some(Operation::Delete));
    assert_eq!(
        v.status.life.error_code,
        Some(FailureCode::FailedPrecondition)
    );
    assert_eq!(h.usage("default", "volumes").await, (1, 0), "quota kept");
}

/// The executor running on its own: a record changed to `deleting` while
/// its create still runs is worked once more when the create is done (not
/// left for the resync an hour later).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_arriving_while_a_record_is_worked_is_worked_once_more() {
    let h = Harness::new(4 * GIB as u64).await;
    let config = LvmConfig {
        timeout: Duration::from_millis(300),
        retry_delays: vec![Duration::ZERO; 2],
        ..LvmConfig::default()
    };
    let slow = Lvm::new(h.fake.clone(), config);
    let mut settings = NodeSettings::new(NODE, VG);
    settings.resync = Duration::from_secs(3600);
    let executor = Executor::new(h.store.clone(), h.controller.quota.clone(), slow, settings);
    // The first lvcreate hangs until its timeout; the retry succeeds.
    h.fake.hang_next("lvcreate", 1);
    let lvcreate = h.fake.called("lvcreate");
    let task = tokio::spawn(executor.run());
    let _ = h
        .controller
        .create_volume(Harness::volume_request("pvc-slow", 8 * MIB))
        .await;
    let id = lvsnap::controller::record_id("volume", "pvc-slow");
    lvcreate.await;
    // Mid-create, the record is wanted gone.
    let mut changes = h.store.subscribe();
    h.store
        .modify_volume(
            &id,
            lvsnap::store::modify(|r: &mut VolumeRecord| {
                r.status.life.status = VolumeState::Deleting;
                Ok(())
            }),
        )
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let v = h.store.get_volume(&id).await.unwrap().unwrap();
        if v.status.life.deleted {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "deleted through notifications, not the resync: {v:?}"
        );
        let _ = tokio::time::timeout_at(deadline, changes.recv()).await;
    }
    assert!(
        !h.lvs().contains(&format!("volume-{id}")),
        "its LV went too"
    );
    assert_eq!(h.usage("default", "volumes").await, (0, 0));
    task.abort();
}
