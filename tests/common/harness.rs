//! The in-process harness: the driver as `lvsnap all-in-one` assembles it
//! (`driver::DriverBuilder`), on SQLite in a temporary directory and the
//! in-memory LVM, with its executor NOT running: a test drives it the way
//! kube-rs's controller-rs tests call `reconcile()`, one step at a time
//! (`work`, `settle`), so nothing waits and nothing races. `restart()` is a
//! crash: a fresh controller and executor on the same store and LVM.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use lvsnap::config::Mode;
use lvsnap::controller::{Controller, ControllerConfig, CreateSnapshot, CreateVolume};
use lvsnap::driver::{ControllerParts, DriverBuilder, NodeParts};
use lvsnap::failpoint::{Action, Failpoints};
use lvsnap::lvm::{FakeRunner, Lvm};
use lvsnap::node::{Executor, NodeSettings};
use lvsnap::quota::QuotaConfig;
use lvsnap::store::events::Collect;
use lvsnap::store::{Kind, SnapshotFilter, SqliteStore, Store, VolumeFilter};

pub const VG: &str = "vg0";
pub const NODE: &str = "n1";
pub const GIB: i64 = 1 << 30;
pub const MIB: i64 = 1 << 20;

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub store: Arc<dyn Store>,
    pub fake: Arc<FakeRunner>,
    pub lvm: Lvm,
    pub controller: Controller,
    pub executor: Executor,
    pub failpoints: Failpoints,
    pub events: Arc<Collect>,
    pub settings: NodeSettings,
    pub config: ControllerConfig,
    pub quota: QuotaConfig,
    /// How far the harness's clock runs ahead of the wall clock.
    pub ahead: Arc<std::sync::Mutex<chrono::Duration>>,
}

impl Harness {
    /// A node `n1` with a VG of `vg_bytes`, quota defaults of `quota`.
    pub async fn new(vg_bytes: u64) -> Harness {
        Self::with(vg_bytes, NodeSettings::new(NODE, VG), Self::config()).await
    }

    /// The harness's controller settings: the executor does not run by
    /// itself, so a create or delete answers at once ("not yet").
    pub fn config() -> ControllerConfig {
        ControllerConfig {
            wait_timeout: Duration::from_millis(1),
            ..ControllerConfig::default()
        }
    }

    pub async fn with(vg_bytes: u64, settings: NodeSettings, config: ControllerConfig) -> Harness {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).expect("sqlite"));
        let (lvm, fake) = Lvm::fake(VG, vg_bytes);
        let quota = QuotaConfig::default();
        let events = Arc::new(Collect::default());
        let ahead = Arc::new(std::sync::Mutex::new(chrono::Duration::zero()));
        let (controller, executor, failpoints) =
            assemble(&store, &lvm, &settings, &config, &quota, &events, &ahead);
        let h = Harness {
            dir,
            store,
            fake,
            lvm,
            controller,
            executor,
            failpoints,
            events,
            settings,
            config,
            quota,
            ahead,
        };
        h.executor.report_capacity().await;
        h
    }

    /// A crash and a restart: new controller, executor and failpoints on
    /// the same store and LVM (nothing of the old ones runs on).
    pub fn restart(&mut self) {
        let (controller, executor, failpoints) = assemble(
            &self.store,
            &self.lvm,
            &self.settings,
            &self.config,
            &self.quota,
            &self.events,
            &self.ahead,
        );
        (self.controller, self.executor, self.failpoints) = (controller, executor, failpoints);
    }

    /// The harness's clock (what the quota engine sees).
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now()
            + self
                .ahead
                .lock()
                .map(|d| *d)
                .unwrap_or_else(|_| chrono::Duration::zero())
    }

    /// Moves the harness's clock `by` ahead.
    pub fn advance(&self, by: chrono::Duration) {
        if let Ok(mut d) = self.ahead.lock() {
            *d += by;
        }
    }

    /// Arms `point` to halt the in-process driver there.
    pub fn halt_at(&self, point: &str) {
        self.failpoints.arm(point, Action::Halt).expect("failpoint");
    }

    /// Works every record of the node that has work (as the executor's
    /// watch would), until nothing changes.
    pub async fn work_all(&self) {
        for _ in 0..5 {
            let vols = self
                .store
                .list_volumes(&VolumeFilter::default(), None, usize::MAX)
                .await
                .expect("list");
            for v in vols {
                let _ = self.executor.work(Kind::Volume, &v.name).await;
            }
            let snaps = self
                .store
                .list_snapshots(&SnapshotFilter::default(), None, usize::MAX)
                .await
                .expect("list");
            for s in snaps {
                let _ = self.executor.work(Kind::Snapshot, &s.name).await;
            }
            let groups = self
                .store
                .list_group_snapshots(&Default::default(), None, usize::MAX)
                .await
                .expect("list");
            for g in groups {
                if let Err(e) = self.executor.work(Kind::GroupSnapshot, &g.name).await {
                    eprintln!("group {}: {e}", g.name);
                }
            }
        }
    }

    /// (in_use, reserved) of `key` in `project`.
    pub async fn usage(&self, project: &str, key: &str) -> (i64, i64) {
        let q = self.store.get_quota(project).await.expect("quota");
        q.and_then(|q| q.status.usage.get(key).map(|u| (u.in_use, u.reserved)))
            .unwrap_or((0, 0))
    }

    /// LV names in the VG.
    pub fn lvs(&self) -> Vec<String> {
        self.fake.lv_names(VG)
    }

    /// Live (not deleted) records: (volumes, snapshots).
    pub async fn live(
        &self,
    ) -> (
        Vec<lvsnap::store::VolumeRecord>,
        Vec<lvsnap::store::SnapshotRecord>,
    ) {
        let v = self
            .store
            .list_volumes(&VolumeFilter::default(), None, usize::MAX)
            .await
            .expect("list");
        let s = self
            .store
            .list_snapshots(&SnapshotFilter::default(), None, usize::MAX)
            .await
            .expect("list");
        (v, s)
    }

    /// See [`assert_consistent`].
    pub async fn assert_consistent(&self, project: &str, step: &str) {
        assert_consistent(self.store.as_ref(), self.lvs(), project, step).await;
    }

    pub fn volume_request(name: &str, bytes: i64) -> CreateVolume {
        CreateVolume {
            name: name.into(),
            required_bytes: bytes,
            limit_bytes: 0,
            parameters: HashMap::new(),
            placement: Default::default(),
            source_snapshot_id: None,
            source_volume_id: None,
            fs_type: None,
        }
    }

    pub fn snapshot_request(name: &str, source: &str) -> CreateSnapshot {
        CreateSnapshot {
            name: name.into(),
            source_volume_id: source.into(),
            parameters: HashMap::new(),
        }
    }

    /// CreateVolume, the node's work, CreateVolume again: the volume's id.
    pub async fn volume(&self, name: &str, bytes: i64) -> String {
        let _ = self
            .controller
            .create_volume(Self::volume_request(name, bytes))
            .await;
        self.work_all().await;
        let v = self
            .controller
            .create_volume(Self::volume_request(name, bytes))
            .await
            .unwrap_or_else(|e| panic!("CreateVolume {name}: {e:?}"));
        v.name
    }

    /// CreateSnapshot, the node's work, CreateSnapshot again: the snapshot's id.
    pub async fn snapshot(&self, name: &str, source: &str) -> String {
        let _ = self
            .controller
            .create_snapshot(Self::snapshot_request(name, source))
            .await;
        self.work_all().await;
        let s = self
            .controller
            .create_snapshot(Self::snapshot_request(name, source))
            .await
            .unwrap_or_else(|e| panic!("CreateSnapshot {name}: {e:?}"));
        assert!(s.status.ready_to_use, "{name} cut");
        s.name
    }
}

/// The controller and executor of an all-in-one driver on `store`/`lvm`.
fn assemble(
    store: &Arc<dyn Store>,
    lvm: &Lvm,
    settings: &NodeSettings,
    config: &ControllerConfig,
    quota: &QuotaConfig,
    events: &Arc<Collect>,
    ahead: &Arc<std::sync::Mutex<chrono::Duration>>,
) -> (Controller, Executor, Failpoints) {
    let failpoints = Failpoints::default();
    let mut node = NodeParts::new(settings.clone(), lvm.clone());
    node.events = events.clone();
    let mut parts = ControllerParts::new(config.clone());
    parts.events = events.clone();
    let mut builder = DriverBuilder::new(Mode::AllInOne, "test.lvsnap.io", store.clone());
    builder.quota = quota.clone();
    let ahead = ahead.clone();
    builder.clock = Arc::new(move || {
        chrono::Utc::now()
            + ahead
                .lock()
                .map(|d| *d)
                .unwrap_or_else(|_| chrono::Duration::zero())
    });
    builder.node = Some(node);
    builder.controller = Some(parts);
    builder.failpoints = failpoints.clone();
    let driver = builder.build();
    let controller = driver.controller.expect("controller");
    let executor = driver.executor.expect("executor");
    (controller, executor, failpoints)
}

/// The invariants a crash must keep: quota in_use equals the sum of what
/// the live records charged, nothing stays reserved, and the LVs are
/// exactly the live records' LVs (failed creates own none).
pub async fn assert_consistent(store: &dyn Store, mut lvs: Vec<String>, project: &str, step: &str) {
    let vols = store
        .list_volumes(&VolumeFilter::default(), None, usize::MAX)
        .await
        .expect("list");
    let snaps = store
        .list_snapshots(&SnapshotFilter::default(), None, usize::MAX)
        .await
        .expect("list");
    let mut charged: HashMap<String, i64> = HashMap::new();
    for c in vols
        .iter()
        .map(|v| &v.spec.quota_charged)
        .chain(snaps.iter().map(|s| &s.spec.quota_charged))
    {
        for (k, d) in c {
            *charged.entry(k.clone()).or_insert(0) += d;
        }
    }
    for key in ["volumes", "snapshots", "gigabytes"] {
        let q = store.get_quota(project).await.expect("quota");
        let (in_use, reserved) = q
            .and_then(|q| q.status.usage.get(key).map(|u| (u.in_use, u.reserved)))
            .unwrap_or((0, 0));
        let want = charged.get(key).copied().unwrap_or(0);
        assert_eq!(
            (in_use, reserved),
            (want, 0),
            "{step}: quota {key} (in_use, reserved) vs the live records"
        );
    }
    // A failed create owns no LV (the node removes what it left).
    let mut want: Vec<String> = vols
        .iter()
        .filter(|v| !v.status.life.is_failed_create())
        .map(|v| v.spec.lv_name.clone())
        .chain(
            snaps
                .iter()
                .filter(|s| !s.status.life.is_failed_create())
                .map(|s| s.spec.lv_name.clone()),
        )
        .collect();
    want.sort();
    lvs.sort();
    assert_eq!(lvs, want, "{step}: LVs vs the live records");
}
