//! Device classes in process (tests/common/harness.rs: SQLite + the
//! in-memory LVM with two VGs): volumes, snapshots and restores routed to
//! the class asked; capacity per class (thin overprovisioning up to the
//! ratio, limited by the pool's data and the reserve) used by GetCapacity
//! and placement alike; a per-type quota on a class (`gigabytes_fast`);
//! raid1 options reaching lvcreate's argv; bad class flags refused at start.
mod common;

use std::collections::{BTreeMap, HashMap};

use common::classes::{self, NVME, in_class};
use common::harness::{GIB, Harness, NODE, VG};
use common::run;
use lvsnap::controller::{ControllerError, CreateVolume};
use lvsnap::records::LvsQuotaSpec;

const FAST_VG: &str = NVME;

/// n1 with `slow` (vg0, thick, default), `mirror` (vg0, raid1) and `fast`
/// (vg-nvme: a 1 GiB thin pool, overprovisionRatio=4, spareGb=0).
async fn harness() -> Harness {
    let classes = [
        format!("name=slow,vg={VG},default=true"),
        format!("name=mirror,vg={VG},type=raid1,mirrors=1"),
        format!("name=fast,vg={FAST_VG},thinPool=pool,overprovisionRatio=4"),
    ];
    classes::harness(&classes, 20 * GIB as u64, 10 * GIB as u64).await
}

async fn capacity(h: &Harness, class: &str) -> i64 {
    let p = HashMap::from([("deviceClass".to_string(), class.to_string())]);
    h.controller.capacity(None, &p).await.expect("capacity").0
}

/// Create, work, report: what a node does after a create.
async fn asked(h: &Harness, req: CreateVolume) -> lvsnap::store::VolumeRecord {
    let name = req.name.clone();
    match h.controller.create_volume(req).await {
        // The harness's executor is not running: "not yet", then work.
        Ok(_) | Err(ControllerError::Aborted(_)) => {}
        Err(e) => panic!("{name}: {e:?}"),
    }
    h.work_all().await;
    h.executor.report_capacity().await;
    h.store
        .find_volume(&name)
        .await
        .expect("find")
        .expect(&name)
}

/// [`asked`], and it is available.
async fn made(h: &Harness, req: CreateVolume) -> lvsnap::store::VolumeRecord {
    let v = asked(h, req).await;
    assert_eq!(v.status.life.status.as_str(), "available", "{v:?}");
    v
}

#[tokio::test]
async fn volumes_snapshots_and_restores_stay_in_the_class_asked() {
    let h = harness().await;
    let node = h.store.list_nodes().await.unwrap();
    let names: Vec<_> = node[0].status.classes.iter().map(|c| &c.name).collect();
    assert_eq!(names, ["slow", "mirror", "fast"], "{node:?}");

    let fast = made(&h, in_class("pvc-fast", GIB, "fast")).await;
    assert_eq!(fast.spec.device_class.as_deref(), Some("fast"));
    assert_eq!(fast.spec.vg, FAST_VG);
    assert_eq!(fast.spec.thin_pool.as_deref(), Some("pool"));
    assert_eq!(fast.spec.volume_type, "fast", "volume type = class");
    assert!(h.fake.lv_names(FAST_VG).contains(&fast.spec.lv_name));

    // No class named: the node's default.
    let slow = made(&h, Harness::volume_request("pvc-slow", GIB)).await;
    assert_eq!(slow.spec.device_class.as_deref(), Some("slow"));
    assert_eq!(
        (slow.spec.vg.as_str(), slow.spec.thin_pool.as_deref()),
        (VG, None)
    );
    // The old parameter still chooses by VG.
    let mut by_vg = Harness::volume_request("pvc-by-vg", GIB);
    by_vg.parameters = HashMap::from([("vg".into(), FAST_VG.into())]);
    let by_vg = made(&h, by_vg).await;
    assert_eq!(by_vg.spec.device_class.as_deref(), Some("fast"));

    // A snapshot and a restore of each live in its source's class.
    for v in [&fast, &slow] {
        let snap = h
            .snapshot(&format!("snap-{}", v.spec.csi_name), &v.name)
            .await;
        h.work_all().await;
        let s = h.store.get_snapshot(&snap).await.unwrap().unwrap();
        assert_eq!(
            (&s.spec.device_class, &s.spec.vg),
            (&v.spec.device_class, &v.spec.vg)
        );
        assert!(h.fake.lv_names(&v.spec.vg).contains(&s.spec.lv_name));
        let mut req = Harness::volume_request(&format!("restore-{}", v.spec.csi_name), GIB);
        req.source_snapshot_id = Some(snap);
        // (A thick restore copies blocks: the fake has no devices, so only
        // where its record and lvcreate went is checked.)
        let r = asked(&h, req).await;
        assert_eq!(
            (&r.spec.device_class, &r.spec.vg),
            (&v.spec.device_class, &v.spec.vg)
        );
        assert_eq!(r.spec.thin_pool, v.spec.thin_pool);
    }

    // Unknown class, or a class with vg/thinPool: INVALID_ARGUMENT.
    let err = h
        .controller
        .create_volume(in_class("pvc-gold", GIB, "gold"))
        .await;
    assert!(
        matches!(&err, Err(ControllerError::Invalid(m)) if m.contains("gold") && m.contains("fast")),
        "{err:?}"
    );
    let mut both = in_class("pvc-both", GIB, "fast");
    both.parameters.insert("vg".into(), VG.into());
    let err = h.controller.create_volume(both).await;
    assert!(
        matches!(&err, Err(ControllerError::Invalid(m)) if m.contains("deviceClass alone")),
        "{err:?}"
    );
}

#[tokio::test]
async fn thin_capacity_overprovisions_up_to_the_ratio_and_placement_uses_it() {
    let h = harness().await;
    // 1 GiB pool × 4, nothing allocated; slow = vg0's free space (the pool
    // is in the other VG), mirror half of it.
    assert_eq!(capacity(&h, "fast").await, 4 * GIB);
    let slow0 = capacity(&h, "slow").await;
    assert_eq!(slow0, 20 * GIB);
    // raid1: half the free space, and each copy on its own PV (the fake's
    // VG is two PVs of half its free space: less one metadata extent).
    assert_eq!(capacity(&h, "mirror").await, 10 * GIB - (4 << 20));

    // 3 GiB of thin volumes in a 1 GiB pool: beyond the pool, within 4×.
    let a = made(&h, in_class("pvc-a", 2 * GIB, "fast")).await;
    made(&h, in_class("pvc-b", GIB, "fast")).await;
    assert_eq!(capacity(&h, "fast").await, GIB);
    assert_eq!(
        capacity(&h, "slow").await,
        slow0,
        "the other VG is untouched"
    );
    // Past the ratio: placement refuses, nothing is made or charged.
    let err = h
        .controller
        .create_volume(in_class("pvc-c", 2 * GIB, "fast"))
        .await;
    assert!(
        matches!(&err, Err(ControllerError::Exhausted(_))),
        "{err:?}"
    );
    assert!(h.store.find_volume("pvc-c").await.unwrap().is_none());
    // A thin snapshot of the 2 GiB volume needs 2 GiB of the pool's room.
    let err = h
        .controller
        .create_snapshot(Harness::snapshot_request("snap-a", &a.name))
        .await;
    assert!(
        matches!(&err, Err(ControllerError::Exhausted(m)) if m.contains("fast")),
        "{err:?}"
    );
    assert_eq!(
        h.usage("default", "snapshots").await,
        (0, 0),
        "nothing charged"
    );

    // The pool's data fills: 75 % used leaves 256 MiB real × 4 = 1 GiB, so
    // still 1 GiB; at 90 % only 4 × 102.4 MiB.
    assert!(h.fake.set_fill(FAST_VG, "pool", 75.0, Some(10.0)));
    h.executor.report_capacity().await;
    assert_eq!(capacity(&h, "fast").await, GIB);
    assert!(h.fake.set_fill(FAST_VG, "pool", 90.0, Some(10.0)));
    h.executor.report_capacity().await;
    let tight = capacity(&h, "fast").await;
    let used = (GIB * 9000).div_euclid(10_000) + 1; // rounded up, as lvm2's percent
    assert_eq!(tight, (GIB - used) * 4, "{tight}");
    // The node's gauges carry the same figure (lvsnap_device_class_available_bytes).
    let fill = h.executor.fill();
    let reported = fill.read().unwrap().classes.clone();
    assert!(
        reported.contains(&("fast".to_string(), tight as u64)),
        "{reported:?}"
    );
    let node = &h.store.list_nodes().await.unwrap()[0];
    let pool = node.status.classes[2].pool.clone().expect("pool figures");
    assert_eq!((pool.size_bytes, pool.virtual_bytes), (GIB, 3 * GIB));
    assert_eq!(pool.metadata_percent, 10.0);
}

#[tokio::test]
async fn raid1_class_passes_its_options_and_counts_both_copies() {
    let h = harness().await;
    let m = made(&h, in_class("pvc-m", GIB, "mirror")).await;
    assert_eq!(m.spec.vg, VG);
    let argv = h
        .fake
        .argvs_of("lvcreate")
        .into_iter()
        .find(|a| a.contains(&m.spec.lv_name))
        .expect("lvcreate of the raid1 volume");
    let at = argv.iter().position(|a| a == "--type").expect("--type");
    assert_eq!(argv[at..at + 4], ["--type", "raid1", "--mirrors", "1"]);
    // Two copies need twice the room: placement offers half the VG's free
    // space (the fake keeps one copy: (20 - 1) / 2 GiB < 10 GiB).
    let err = h
        .controller
        .create_volume(in_class("pvc-m2", 10 * GIB, "mirror"))
        .await;
    assert!(
        matches!(&err, Err(ControllerError::Exhausted(_))),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_per_type_quota_on_a_class_refuses_only_that_class() {
    let h = harness().await;
    let limit = LvsQuotaSpec {
        hard: BTreeMap::from([("gigabytes_fast".into(), 1)]),
    };
    h.store.set_quota_limits("default", &limit).await.unwrap();
    made(&h, in_class("pvc-fast-1", GIB, "fast")).await;
    let err = h
        .controller
        .create_volume(in_class("pvc-fast-2", GIB, "fast"))
        .await;
    let Err(ControllerError::Exhausted(msg)) = &err else {
        panic!("{err:?}");
    };
    assert!(
        msg.contains("exceeds allowed gigabytes_fast quota"),
        "Cinder's message: {msg}"
    );
    // The slow class has no such limit.
    made(&h, in_class("pvc-slow-1", 5 * GIB, "slow")).await;
    assert_eq!(h.usage("default", "gigabytes_fast").await, (1, 0));
    assert_eq!(h.usage("default", "gigabytes_slow").await, (5, 0));
}

/// Bad classes: the node refuses to start with one line naming the flag.
#[test]
fn bad_device_classes_refuse_to_start_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["name=a,vg=vg0", "name=a,vg=vg1"], "given twice"),
        (&["name=a,vg=vg0,color=red"], "unknown key \"color\""),
        (&["name=a,vg=vg0,type=raid5"], "not allowed"),
        (&["name=a,vg=vg0,stripes=1"], "stripes"),
        (&["name=a,vg=vg0,thinPool=p,stripes=2"], "thick classes"),
        (&["name=a,vg=vg0,overprovisionRatio=4"], "needs a thinPool"),
        (&["name=a,vg=vg0", "name=b,vg=vg1"], "none is default"),
        (&["name=a b,vg=vg0"], "name="),
        (&["vg=vg0"], "no name="),
        (&["name=a,vg=lvsnap-no-such-vg"], "lvsnap-no-such-vg"),
    ];
    for (classes, needle) in cases {
        let sock = format!("unix://{}/s.sock", dir.path().display());
        let state = dir.path().join("state").display().to_string();
        let mut args = vec![
            "node",
            "--endpoint",
            &sock,
            "--node-id",
            "n1",
            "--state-dir",
            &state,
        ];
        for c in *classes {
            args.extend(["--device-class", c]);
        }
        let out = run(&args, dir.path());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{classes:?} must fail");
        assert!(
            err.contains("--device-class") && err.contains(needle),
            "{classes:?}: {err}"
        );
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{classes:?}: one line: {err}"
        );
    }
    // The same from a file: the line at fault is named.
    let file = dir.path().join("classes");
    std::fs::write(
        &file,
        "# classes\nname=a,vg=vg0\n\nname=b,vg=vg1,stripes=200\n",
    )
    .unwrap();
    let file_s = file.display().to_string();
    let sock = format!("unix://{}/s.sock", dir.path().display());
    let args = [
        "node",
        "--endpoint",
        &sock,
        "--node-id",
        "n1",
        "--device-class-file",
        &file_s,
    ];
    let out = run(&args, dir.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("--device-class-file") && err.contains("line 4") && err.contains("stripes"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
}

#[tokio::test]
async fn an_expand_must_fit_its_class() {
    let h = harness().await;
    let v = made(&h, in_class("pvc-grow", 3 * GIB, "fast")).await;
    assert_eq!(capacity(&h, "fast").await, GIB);
    // 2 GiB more virtual size than the pool's 4 GiB allows: refused, no quota.
    let err = h.controller.expand_volume(&v.name, 5 * GIB, 0).await;
    assert!(
        matches!(&err, Err(ControllerError::Exhausted(m)) if m.contains("fast")),
        "{err:?}"
    );
    assert_eq!(h.usage("default", "gigabytes_fast").await, (3, 0));
    // 1 GiB more fits: the record goes extending.
    match h.controller.expand_volume(&v.name, 4 * GIB, 0).await {
        Ok(_) | Err(ControllerError::Aborted(_)) => {}
        Err(e) => panic!("{e:?}"),
    }
    let r = h.store.get_volume(&v.name).await.unwrap().unwrap();
    assert_eq!(r.status.extend_to, Some(4 * GIB), "{r:?}");
}

/// Nodes may map a class to different VGs: the record carries the class and
/// the VG it is on the node chosen; GetCapacity per node answers that node's.
#[tokio::test]
async fn a_class_maps_to_each_nodes_own_vg() {
    use lvsnap::records::{LvsNodeSpec, LvsNodeStatus, NodeClass, now_rfc3339};
    let h = harness().await;
    let fast = NodeClass {
        name: "fast".into(),
        vg: "nvme0".into(),
        thin_pool: Some("tp".into()),
        default: true,
        size_bytes: 100 * GIB,
        free_bytes: 50 * GIB,
        available_bytes: 30 * GIB,
        ..Default::default()
    };
    let n2 = lvsnap::store::Record::new(
        "n2",
        LvsNodeSpec {
            vg: "nvme0".into(),
            ..Default::default()
        },
        LvsNodeStatus {
            free_bytes: 50 * GIB,
            last_heartbeat: now_rfc3339(),
            classes: vec![fast],
            ..Default::default()
        },
    );
    h.store.put_node(&n2).await.unwrap();
    let at = |node: &str| {
        let p = HashMap::from([("deviceClass".to_string(), "fast".to_string())]);
        let c = h.controller.clone();
        let node = node.to_string();
        async move { c.capacity(Some(&node), &p).await.unwrap().0 }
    };
    assert_eq!((at(NODE).await, at("n2").await), (4 * GIB, 30 * GIB));
    // No topology: the node with the most room in the class.
    let mut req = in_class("pvc-n2", 8 * GIB, "fast");
    let r = h.controller.create_volume(req.clone()).await;
    assert!(
        matches!(r, Ok(_) | Err(ControllerError::Aborted(_))),
        "{r:?}"
    );
    let v = h.store.find_volume("pvc-n2").await.unwrap().unwrap();
    assert_eq!(
        (
            v.spec.node.as_str(),
            v.spec.vg.as_str(),
            v.spec.thin_pool.as_deref()
        ),
        ("n2", "nvme0", Some("tp"))
    );
    // Topology asks for n1: its own VG for the class (where 8 GiB would
    // not fit: 4 GiB of room).
    req.name = "pvc-n1".into();
    req.placement.requisite = vec![NODE.into()];
    let r = h.controller.create_volume(req.clone()).await;
    assert!(matches!(r, Err(ControllerError::Exhausted(_))), "{r:?}");
    req.required_bytes = 2 * GIB;
    let r = h.controller.create_volume(req).await;
    assert!(
        matches!(r, Ok(_) | Err(ControllerError::Aborted(_))),
        "{r:?}"
    );
    let v = h.store.find_volume("pvc-n1").await.unwrap().unwrap();
    assert_eq!((v.spec.node.as_str(), v.spec.vg.as_str()), (NODE, FAST_VG));
    assert_eq!(v.spec.device_class.as_deref(), Some("fast"));
}
