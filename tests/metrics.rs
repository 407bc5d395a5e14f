//! The metrics in process: the all-in-one assembly (`DriverBuilder`) with
//! metrics on, SQLite and the in-memory LVM, the executor driven step by
//! step. What a scrape shows is parsed with a real parser and compared with
//! the records, the quota and what `lvs` reports; a scrape runs no LVM
//! command; autoextend and invalidation act on the fill the fake reports.
mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::scrape::Scrape;
use lvsnap::config::Mode;
use lvsnap::controller::{Controller, ControllerConfig, CreateSnapshot, CreateVolume};
use lvsnap::driver::{ControllerParts, DriverBuilder, NodeParts};
use lvsnap::lvm::{FakeRunner, LvName, Lvm};
use lvsnap::metrics::Metrics;
use lvsnap::node::{Executor, NodeSettings};
use lvsnap::records::{Operation, SnapshotState};
use lvsnap::store::events::Collect;
use lvsnap::store::{Kind, Phase, SnapshotFilter, SqliteStore, Store, VolumeFilter};

const VG: &str = "vg0";
const GIB: i64 = 1 << 30;

struct Rig {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    fake: Arc<FakeRunner>,
    lvm: Lvm,
    controller: Controller,
    executor: Executor,
    metrics: Metrics,
    events: Arc<Collect>,
    driver: Option<lvsnap::driver::Driver>,
}

async fn rig(vg_bytes: u64, thin_pool: Option<&str>) -> Rig {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).expect("sqlite"));
    let (lvm, fake) = Lvm::fake(VG, vg_bytes);
    if let Some(pool) = thin_pool {
        let name = LvName::new(pool).expect("pool name");
        lvm.create_thin_pool(VG, &name, 4 * GIB as u64)
            .await
            .expect("thin pool");
    }
    let events = Arc::new(Collect::default());
    let mut settings = NodeSettings::new("n1", VG);
    settings.thin_pool = thin_pool.map(str::to_string);
    let mut node = NodeParts::new(settings, lvm.clone());
    node.events = events.clone();
    let mut parts = ControllerParts::new(ControllerConfig {
        wait_timeout: Duration::from_millis(1),
        ..ControllerConfig::default()
    });
    parts.events = events.clone();
    let metrics = Metrics::new();
    let mut builder = DriverBuilder::new(Mode::AllInOne, "test.lvsnap.io", store.clone());
    builder.node = Some(node);
    builder.controller = Some(parts);
    builder.metrics = Some(metrics.clone());
    let mut driver = builder.build();
    let controller = driver.controller.take().expect("controller");
    let executor = driver.executor.take().expect("executor");
    executor.report_capacity().await;
    Rig {
        _dir: dir,
        store,
        fake,
        lvm,
        controller,
        executor,
        metrics,
        events,
        driver: Some(driver),
    }
}

impl Rig {
    async fn work_all(&self) {
        for _ in 0..3 {
            let f = VolumeFilter::default();
            for v in self.store.list_volumes(&f, None, usize::MAX).await.unwrap() {
                let _ = self.executor.work(Kind::Volume, &v.name).await;
            }
            let f = SnapshotFilter::default();
            for s in self
                .store
                .list_snapshots(&f, None, usize::MAX)
                .await
                .unwrap()
            {
                let _ = self.executor.work(Kind::Snapshot, &s.name).await;
            }
        }
    }

    async fn volume(&self, name: &str) -> String {
        let req = || CreateVolume {
            name: name.into(),
            required_bytes: GIB,
            limit_bytes: 0,
            parameters: HashMap::new(),
            placement: Default::default(),
            source_snapshot_id: None,
            source_volume_id: None,
            fs_type: None,
        };
        let _ = self.controller.create_volume(req()).await;
        self.work_all().await;
        self.controller
            .create_volume(req())
            .await
            .expect("volume")
            .name
    }

    async fn snapshot(&self, name: &str, source: &str, params: &[(&str, &str)]) -> String {
        let req = || CreateSnapshot {
            name: name.into(),
            source_volume_id: source.into(),
            parameters: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let _ = self.controller.create_snapshot(req()).await;
        self.work_all().await;
        let s = self.controller.create_snapshot(req()).await.expect("snap");
        assert!(s.status.ready_to_use);
        s.name
    }

    async fn lv_of(&self, id: &str) -> String {
        let s = self.store.get_snapshot(id).await.unwrap().expect("record");
        s.spec.lv_name
    }

    /// A scrape; asserts it ran no LVM command.
    async fn scrape(&self) -> Scrape {
        self.fake.clear_calls();
        let text = self.metrics.render().await;
        assert_eq!(
            self.fake.programs(),
            Vec::<String>::new(),
            "a scrape ran LVM"
        );
        Scrape::parse(&text)
    }

    fn phases(&self, id: &str) -> Vec<Phase> {
        let events = self.events.0.lock().unwrap();
        events
            .iter()
            .filter(|e| e.id == id)
            .map(|e| e.phase)
            .collect()
    }
}

#[tokio::test]
async fn a_scrape_matches_the_records_the_quota_and_lvs_and_runs_no_lvm_command() {
    let r = rig(20 * GIB as u64, None).await;
    let v = r.volume("pvc-1").await;
    let s1 = r.snapshot("snap-1", &v, &[]).await;
    let s2 = r.snapshot("snap-2", &v, &[("snapshotSize", "10%")]).await;
    r.controller.delete_snapshot(&s2).await.ok();
    r.work_all().await;
    r.fake.set_fill(VG, &r.lv_of(&s1).await, 42.5, None);
    r.executor.settle().await.expect("settle");
    r.executor.refresh_fill().await;
    assert_eq!(r.fake.argvs_of("lvextend").len(), 0, "42.5 % is under 80 %");

    // Several scrapes: none runs an LVM command (asserted in scrape()).
    let m = r.scrape().await;
    let m2 = r.scrape().await;
    assert_eq!(m.all("lvsnap_records"), m2.all("lvsnap_records"));

    // Records: the gauges count exactly the stored records, by status.
    let all = SnapshotFilter {
        include_deleted: true,
        ..Default::default()
    };
    let snaps = r
        .store
        .list_snapshots(&all, None, usize::MAX)
        .await
        .unwrap();
    for state in [
        SnapshotState::Available,
        SnapshotState::Deleted,
        SnapshotState::Error,
    ] {
        let n = snaps
            .iter()
            .filter(|s| s.status.life.status == state)
            .count();
        let labels = [("kind", "snapshot"), ("status", state.as_str())];
        assert_eq!(
            m.value("lvsnap_records", &labels),
            Some(n as f64),
            "{state:?}"
        );
    }
    assert_eq!(
        m.value(
            "lvsnap_records",
            &[("kind", "volume"), ("status", "available")]
        ),
        Some(1.0)
    );

    // Quota: the gauges are what quota-show reads.
    let (limits, status) = r.controller.quota.show("default").await.unwrap();
    for key in ["snapshots", "gigabytes", "volumes"] {
        let l = [("project", "default"), ("resource", key)];
        let u = status.usage.get(key).cloned().unwrap_or_default();
        assert_eq!(
            m.value("lvsnap_quota_in_use", &l),
            Some(u.in_use as f64),
            "{key}"
        );
        assert_eq!(
            m.value("lvsnap_quota_reserved", &l),
            Some(u.reserved as f64)
        );
        assert_eq!(m.value("lvsnap_quota_limit", &l), Some(limits[key] as f64));
    }
    assert_eq!(
        m.value(
            "lvsnap_quota_in_use",
            &[("project", "default"), ("resource", "snapshots")]
        ),
        Some(1.0)
    );

    // Node: the VG as vgs reports it, the COW fill as lvs reports it.
    let vg = r.lvm.vg(VG).await.unwrap();
    assert_eq!(
        m.value("lvsnap_vg_size_bytes", &[("vg", VG)]),
        Some(vg.size_bytes as f64)
    );
    let cow = [("snapshot_id", s1.as_str())];
    assert_eq!(
        m.value("lvsnap_snapshot_cow_used_percent", &cow),
        Some(42.5)
    );
    assert_eq!(m.value("lvsnap_snapshot_invalid", &cow), Some(0.0));
    assert_eq!(m.value("lvsnap_orphan_lvs", &[("vg", VG)]), Some(0.0));
    // The LVM commands the node ran are timed, by program.
    assert!(
        m.value(
            "lvsnap_lvm_command_duration_seconds_count",
            &[("command", "lvcreate")]
        )
        .is_some_and(|n| n >= 2.0)
    );
}

#[tokio::test]
async fn thin_pool_percentages_are_the_ones_lvs_reports() {
    let r = rig(20 * GIB as u64, Some("pool0")).await;
    r.fake.set_fill(VG, "pool0", 37.25, Some(12.5));
    r.executor.refresh_fill().await;
    let lv = r.lvm.lvs(VG).await.unwrap();
    let pool = lv
        .iter()
        .find(|l| l.name.as_str() == "pool0")
        .expect("pool");
    let m = r.scrape().await;
    let l = [("vg", VG), ("pool", "pool0")];
    assert_eq!(
        m.value("lvsnap_thinpool_data_percent", &l),
        pool.data_percent
    );
    assert_eq!(
        m.value("lvsnap_thinpool_metadata_percent", &l),
        pool.metadata_percent
    );
    assert_eq!(pool.data_percent, Some(37.25));
}

#[tokio::test]
async fn a_filling_cow_area_is_extended_and_an_overflowed_one_marks_its_record() {
    let r = rig(20 * GIB as u64, None).await;
    let v = r.volume("pvc-1").await;
    let on = r.snapshot("on", &v, &[("snapshotSize", "10%")]).await;
    let off = r
        .snapshot(
            "off",
            &v,
            &[("snapshotSize", "10%"), ("autoextendThreshold", "0")],
        )
        .await;
    let (lv_on, lv_off) = (r.lv_of(&on).await, r.lv_of(&off).await);
    let before = r.fake.lv_size(VG, &lv_on).expect("size");

    // 85 % used, default policy (80 % → +20 %): one lvextend, a larger area.
    r.fake.set_fill(VG, &lv_on, 85.0, None);
    r.fake.set_fill(VG, &lv_off, 85.0, None);
    r.fake.clear_calls();
    r.executor.refresh_fill().await;
    let extends = r.fake.argvs_of("lvextend");
    assert_eq!(extends.len(), 1, "only the snapshot with autoextend on");
    assert!(extends[0].last().is_some_and(|a| a.ends_with(&lv_on)));
    let after = r.fake.lv_size(VG, &lv_on).expect("size");
    assert!(after >= before + before / 5, "{before} → {after}");
    assert!(r.phases(&on).contains(&Phase::CowExtended));

    // The one without autoextend overflows: LVM invalidates it.
    r.fake.invalidate(VG, &lv_off);
    r.executor.refresh_fill().await;
    let rec = r.store.get_snapshot(&off).await.unwrap().expect("record");
    assert_eq!(rec.status.life.status, SnapshotState::Error);
    assert_eq!(rec.status.life.error_op, Some(Operation::Check));
    assert!(!rec.status.ready_to_use);
    assert!(
        rec.status
            .life
            .error_message
            .as_deref()
            .is_some_and(|m| m.contains("overflowed")),
        "{:?}",
        rec.status.life.error_message
    );
    assert!(r.phases(&off).contains(&Phase::SnapshotInvalidated));
    let m = r.scrape().await;
    assert_eq!(
        m.value("lvsnap_snapshot_invalid", &[("snapshot_id", &off)]),
        Some(1.0)
    );
    assert_eq!(
        m.value("lvsnap_snapshot_invalid", &[("snapshot_id", &on)]),
        Some(0.0)
    );
    assert_eq!(
        m.value(
            "lvsnap_snapshot_autoextend_total",
            &[("result", "extended")]
        ),
        Some(1.0)
    );
    assert_eq!(
        m.value("lvsnap_snapshot_cow_size_bytes", &[("snapshot_id", &on)]),
        Some(after as f64)
    );
    // Quota is not charged for the larger area (Cinder charges the volume).
    let (_, status) = r.controller.quota.show("default").await.unwrap();
    assert_eq!(
        status.usage["gigabytes"].in_use, 3,
        "1 volume + 2 snapshots of 1 GiB"
    );
    drop(r.driver);
}

#[tokio::test]
async fn no_room_to_grow_is_one_event_and_the_metric() {
    // 1 GiB volume, 10 % COW (~104 MiB), and nothing left in the VG.
    let r = rig(GIB as u64 + (120 << 20), None).await;
    let v = r.volume("pvc-1").await;
    let s = r.snapshot("s", &v, &[("snapshotSize", "10%")]).await;
    let lv = r.lv_of(&s).await;
    r.fake.set_fill(VG, &lv, 90.0, None);
    r.executor.refresh_fill().await;
    r.executor.refresh_fill().await;
    let failed: Vec<Phase> = r
        .phases(&s)
        .into_iter()
        .filter(|p| *p == Phase::CowExtendFailed)
        .collect();
    assert_eq!(failed.len(), 1, "one Event, not one per pass");
    let m = r.scrape().await;
    assert_eq!(
        m.value(
            "lvsnap_snapshot_autoextend_total",
            &[("result", "no_space")]
        ),
        Some(2.0)
    );
    assert_eq!(
        m.value("lvsnap_snapshot_cow_used_percent", &[("snapshot_id", &s)]),
        Some(90.0)
    );
    let rec = r.store.get_snapshot(&s).await.unwrap().expect("record");
    assert_eq!(
        rec.status.life.status,
        SnapshotState::Available,
        "still valid"
    );
}

#[tokio::test]
async fn the_rpc_layer_counts_every_call_with_its_code() {
    let mut r = rig(20 * GIB as u64, None).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("csi.sock");
    let socket = lvsnap::server::bind(&path).await.expect("bind");
    let driver = r.driver.take().expect("driver");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(lvsnap::server::serve(driver.router, socket, async {
        let _ = stopped.await;
    }));
    let mut c = lvsnap::client::CsiClients::connect(&path)
        .await
        .expect("connect");
    c.identity
        .get_plugin_info(lvsnap::proto::v1::GetPluginInfoRequest {})
        .await
        .expect("info");
    let refused = c
        .controller
        .create_snapshot(lvsnap::proto::v1::CreateSnapshotRequest {
            name: "s".into(),
            source_volume_id: "no-such-volume".into(),
            ..Default::default()
        })
        .await
        .expect_err("unknown source");
    assert_eq!(refused.code(), tonic::Code::NotFound);
    let m = r.scrape().await;
    let info = [("service", "csi.v1.Identity"), ("method", "GetPluginInfo")];
    let mut ok = info.to_vec();
    ok.push(("code", "OK"));
    assert_eq!(m.value("lvsnap_rpc_requests_total", &ok), Some(1.0));
    let snap = [
        ("service", "csi.v1.Controller"),
        ("method", "CreateSnapshot"),
        ("code", "NotFound"),
    ];
    assert_eq!(m.value("lvsnap_rpc_requests_total", &snap), Some(1.0));
    assert_eq!(
        m.value("lvsnap_rpc_duration_seconds_count", &info),
        Some(1.0)
    );
    let _ = stop.send(());
    server.await.expect("join").expect("serve");
}
