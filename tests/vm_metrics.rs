//! VM tier: `lvsnap all-in-one --metrics-address` on real LVM. `/metrics`
//! is read over HTTP and parsed with a real parser; the quota gauges equal
//! `lvsnap quota-show` and the record gauges `lvsnap snapshot-list` (the
//! admin commands run against the running all-in-one's SQLite); writes into
//! thick origins fill real copy-on-write areas: one overflows and LVM
//! invalidates it (autoextend off), one is extended in time (autoextend on);
//! thin pool percentages are `lvs`'s.
mod common;
#[path = "common/vm.rs"]
mod vm;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::mount_cap;
use common::scrape::{Scrape, get, served_addr};
use lvsnap::client::CsiClients;
use lvsnap::proto::v1 as csi;
use vm::{LoopVg, all_in_one_at};

const MIB: i64 = 1 << 20;

async fn volume(c: &mut CsiClients, name: &str) -> String {
    let req = csi::CreateVolumeRequest {
        name: name.into(),
        capacity_range: Some(csi::CapacityRange {
            required_bytes: 64 * MIB,
            limit_bytes: 0,
        }),
        volume_capabilities: vec![mount_cap("")],
        ..Default::default()
    };
    let v = c.controller.create_volume(req).await.expect("CreateVolume");
    v.into_inner().volume.expect("volume").volume_id
}

async fn snapshot(c: &mut CsiClients, name: &str, source: &str, params: &[(&str, &str)]) -> String {
    let req = csi::CreateSnapshotRequest {
        name: name.into(),
        source_volume_id: source.into(),
        parameters: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<HashMap<_, _>>(),
        ..Default::default()
    };
    let s = c
        .controller
        .create_snapshot(req)
        .await
        .expect("CreateSnapshot");
    let s = s.into_inner().snapshot.expect("snapshot");
    assert!(s.ready_to_use);
    s.snapshot_id
}

/// `lvs -o <fields>` of one LV, as JSON strings.
fn lvs(vg: &str, lv: &str, fields: &str) -> serde_json::Value {
    let out = std::process::Command::new("lvs")
        .args([
            "--reportformat",
            "json",
            "--units",
            "b",
            "--nosuffix",
            "-o",
            fields,
        ])
        .arg(format!("{vg}/{lv}"))
        .env("LC_ALL", "C")
        .output()
        .expect("lvs");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("lvs json");
    v["report"][0]["lv"][0].clone()
}

fn run(argv: &[&str]) {
    let out = std::process::Command::new(argv[0])
        .args(&argv[1..])
        .env("LC_ALL", "C")
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{argv:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `n` MiB of non-zero data at MiB offset `at` of `dev`, synced.
fn write_mib(dev: &str, at: u64, n: usize) {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(dev)
        .expect("open");
    f.seek(SeekFrom::Start(at << 20)).expect("seek");
    f.write_all(&vec![0xa5; n << 20]).expect("write");
    f.sync_all().expect("sync");
}

/// Scrapes until `ok` holds, bounded: the fill watch reads `lvs` on its own
/// interval and nothing notifies a reader of /metrics.
async fn scrape_until(addr: &str, what: &str, ok: impl Fn(&Scrape) -> bool) -> Scrape {
    scrape_until_at(addr, what, |m, _| ok(m)).await
}

/// `scrape_until`, `ok` also told when the scrape was asked for.
async fn scrape_until_at(addr: &str, what: &str, ok: impl Fn(&Scrape, Instant) -> bool) -> Scrape {
    for _ in 0..240 {
        let asked = Instant::now();
        let (code, body) = get(addr, "/metrics");
        assert_eq!(code, 200);
        let m = Scrape::parse(&body);
        if ok(&m, asked) {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("not within 120 s: {what}");
}

fn admin_json(args: &[&str]) -> serde_json::Value {
    let out = std::process::Command::new(common::BIN)
        .args(args)
        .output()
        .expect("lvsnap");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "vm tier: run inside scripts/vm-run"]
async fn metrics_autoextend_and_invalidation_on_real_lvm() {
    let vg = LoopVg::create("lvsnapmetrics", 1024);
    run(&[
        "lvcreate",
        "-q",
        "-y",
        "--type",
        "thin-pool",
        "-L",
        "64m",
        "-n",
        "pool0",
        &vg.name,
    ]);
    run(&[
        "lvcreate",
        "-q",
        "-y",
        "-V",
        "32m",
        "-T",
        &format!("{}/pool0", vg.name),
        "-n",
        "t1",
    ]);
    write_mib(&format!("/dev/{}/t1", vg.name), 0, 8);
    let state = tempfile::tempdir().expect("state");
    let extra = ["--metrics-address", "127.0.0.1:0", "--fill-interval", "1s"];
    let driver = all_in_one_at(&vg, state.path(), &extra).await;
    let addr = served_addr(driver.log.as_ref().expect("log"));
    let mut c = driver.clients().await;
    let dev = |id: &str| format!("/dev/{}/volume-{id}", vg.name);

    // Thick origin, full-size COW: writing 30 % of it shows in cow_used_percent.
    let a = volume(&mut c, "pvc-a").await;
    let s_full = snapshot(&mut c, "s-full", &a, &[]).await;
    write_mib(&dev(&a), 0, 20);
    let m = scrape_until(&addr, "cow_used_percent > 0", |m| {
        m.value(
            "lvsnap_snapshot_cow_used_percent",
            &[("snapshot_id", &s_full)],
        )
        .is_some_and(|v| v > 0.0)
    })
    .await;
    let real = lvs(&vg.name, &format!("_snapshot-{s_full}"), "snap_percent");
    let pct: f64 = real["snap_percent"]
        .as_str()
        .unwrap_or("0")
        .parse()
        .unwrap_or(0.0);
    assert!(pct > 0.0, "lvs says {real}");
    assert_eq!(
        m.value("lvsnap_snapshot_invalid", &[("snapshot_id", &s_full)]),
        Some(0.0)
    );

    // Thin pool: the gauges are lvs's percentages.
    let pool = lvs(&vg.name, "pool0", "data_percent,metadata_percent");
    let (data, meta): (f64, f64) = (
        pool["data_percent"].as_str().unwrap().parse().unwrap(),
        pool["metadata_percent"].as_str().unwrap().parse().unwrap(),
    );
    assert!(data > 0.0, "{pool}");
    let l = [("vg", vg.name.as_str()), ("pool", "pool0")];
    scrape_until(&addr, "thin pool percentages of lvs", |m| {
        m.value("lvsnap_thinpool_data_percent", &l) == Some(data)
            && m.value("lvsnap_thinpool_metadata_percent", &l) == Some(meta)
    })
    .await;

    // 10 % COW (8 MiB), autoextend off: a full overwrite of the origin
    // overflows it, LVM invalidates it, the record goes error.
    let b = volume(&mut c, "pvc-b").await;
    let s_off = snapshot(
        &mut c,
        "s-off",
        &b,
        &[("snapshotSize", "10%"), ("autoextendThreshold", "0")],
    )
    .await;
    write_mib(&dev(&b), 0, 64);
    scrape_until(&addr, "snapshot_invalid 1 and the record error", |m| {
        m.value("lvsnap_snapshot_invalid", &[("snapshot_id", &s_off)]) == Some(1.0)
            && m.value(
                "lvsnap_records",
                &[("kind", "snapshot"), ("status", "error")],
            ) == Some(1.0)
    })
    .await;
    let state_s = state.path().display().to_string();
    let show = admin_json(&[
        "snapshot-show",
        &s_off,
        "-o",
        "json",
        "--state-dir",
        &state_s,
    ]);
    assert_eq!(show["status"]["status"], "error");
    assert_eq!(show["status"]["errorOp"], "check");
    assert!(
        show["status"]["errorMessage"]
            .as_str()
            .unwrap_or("")
            .contains("overflowed"),
        "{show}"
    );
    let attr = lvs(&vg.name, &format!("_snapshot-{s_off}"), "lv_attr");
    assert_eq!(
        attr["lv_attr"].as_str().and_then(|a| a.chars().nth(4)),
        Some('I'),
        "{attr}"
    );

    // 10 % COW, autoextend on (80 % → +20 %): written 1 MiB at a time, each
    // step waited out, it stays valid and its COW area grows.
    let cv = volume(&mut c, "pvc-c").await;
    let s_on = snapshot(&mut c, "s-on", &cv, &[("snapshotSize", "10%")]).await;
    let lv_on = format!("_snapshot-{s_on}");
    let size = |v: &serde_json::Value| {
        v["lv_size"]
            .as_str()
            .unwrap_or("0")
            .parse::<u64>()
            .unwrap_or(0)
    };
    let before = size(&lvs(&vg.name, &lv_on, "lv_size"));
    let on = [("snapshot_id", s_on.as_str())];
    let vg_l = [("vg", vg.name.as_str())];
    for step in 0..16 {
        write_mib(&dev(&cv), step, 1);
        let written = Instant::now();
        // A fill pass that read the LVs after this write, and found the area
        // under the threshold (extended by an earlier pass if it had to be).
        scrape_until_at(
            &addr,
            "the COW area under the threshold again",
            |m, asked| {
                let since = asked.duration_since(written).as_secs_f64();
                m.value("lvsnap_node_refresh_age_seconds", &vg_l)
                    .is_some_and(|age| age < since)
                    && m.value("lvsnap_snapshot_cow_used_percent", &on)
                        .is_some_and(|v| v < 80.0)
                    && m.value("lvsnap_snapshot_invalid", &on) == Some(0.0)
            },
        )
        .await;
    }
    let after = size(&lvs(&vg.name, &lv_on, "lv_size"));
    assert!(after > before, "lvs: COW {before} → {after} bytes");
    let m = scrape_until(&addr, "extensions counted", |m| {
        m.value(
            "lvsnap_snapshot_autoextend_total",
            &[("result", "extended")],
        )
        .is_some_and(|n| n >= 1.0)
    })
    .await;
    assert_eq!(
        m.value("lvsnap_snapshot_cow_size_bytes", &on),
        Some(after as f64)
    );
    let rec = admin_json(&[
        "snapshot-show",
        &s_on,
        "-o",
        "json",
        "--state-dir",
        &state_s,
    ]);
    assert_eq!(rec["status"]["status"], "available");

    // A delete, then the gauges against the admin commands (run against the
    // running all-in-one's database).
    c.controller
        .delete_snapshot(csi::DeleteSnapshotRequest {
            snapshot_id: s_full.clone(),
            ..Default::default()
        })
        .await
        .expect("DeleteSnapshot");
    let (_, body) = get(&addr, "/metrics");
    let m = Scrape::parse(&body);
    let snaps = admin_json(&[
        "snapshot-list",
        "--all",
        "-o",
        "json",
        "--state-dir",
        &state_s,
    ]);
    let mut by_status: HashMap<String, f64> = HashMap::new();
    for s in snaps.as_array().expect("list") {
        *by_status
            .entry(s["status"]["status"].as_str().unwrap().to_string())
            .or_default() += 1.0;
    }
    for status in ["available", "error", "deleted", "creating", "deleting"] {
        let want = by_status.get(status).copied().unwrap_or(0.0);
        let l = [("kind", "snapshot"), ("status", status)];
        assert_eq!(m.value("lvsnap_records", &l), Some(want), "{status}");
    }
    let quota = admin_json(&[
        "quota-show",
        "default",
        "-o",
        "json",
        "--state-dir",
        &state_s,
    ]);
    for (key, u) in quota["usage"].as_object().expect("usage") {
        let l = [("project", "default"), ("resource", key.as_str())];
        assert_eq!(
            m.value("lvsnap_quota_in_use", &l),
            u["inUse"].as_f64(),
            "{key}"
        );
        assert_eq!(
            m.value("lvsnap_quota_reserved", &l),
            u["reserved"].as_f64(),
            "{key}"
        );
        assert_eq!(
            m.value("lvsnap_quota_limit", &l),
            u["limit"].as_f64(),
            "{key}"
        );
    }
    assert!(
        m.value(
            "lvsnap_lvm_command_duration_seconds_count",
            &[("command", "lvextend")]
        )
        .is_some_and(|n| n >= 1.0)
    );
    let vgs = m
        .value("lvsnap_vg_size_bytes", &[("vg", &vg.name)])
        .expect("vg size");
    assert!(vgs >= 1000.0 * MIB as f64, "{vgs}");
}
