//! VM tier: `lvsnap bench --short` on a real loop-backed VG, so the
//! real-LVM section and the node/all-in-one footprint cannot rot (the host
//! tier runs the other sections). Asserts what the bench reports (sections
//! ran, no failure, nothing left on the VG), never a time.
mod common;
#[path = "common/vm.rs"]
mod vm;

use vm::LoopVg;

#[test]
#[ignore = "vm tier: run inside scripts/vm-run"]
fn bench_short_runs_every_section_on_a_real_vg() {
    let vg = LoopVg::create("lvsnapbenchvg", 512);
    let work = tempfile::tempdir().expect("tempdir");
    let work_s = work.path().display().to_string();
    let out = common::run(
        &[
            "bench",
            "--short",
            "--json",
            "--sections",
            "real-lvm,footprint",
            "--real-calls",
            "3",
            "--vg",
            &vg.name,
            "--lvm-env",
            "DM_DISABLE_UDEV=1",
            "--work-dir",
            &work_s,
        ],
        work.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed: {stderr}");
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("the report is JSON");
    assert_eq!(report["failures"], serde_json::json!([]), "{report:#}");

    let real = &report["real_lvm"];
    assert_eq!(real["state"], "done", "{real:#}");
    let real = &real["value"];
    assert_eq!(real["driver"]["create"]["n"], 3);
    assert_eq!(real["bare_create"]["n"], 3);
    // Group snapshots of two volumes: the freeze is measured per group.
    assert_eq!(real["group"]["frozen"]["n"], 3, "{real:#}");
    assert_eq!(real["group"]["single_gap"]["n"], 3);
    let programs: Vec<&str> = real["profile"]
        .as_array()
        .expect("profile")
        .iter()
        .filter_map(|p| p["program"].as_str())
        .collect();
    assert!(
        programs.contains(&"lvcreate") && programs.contains(&"lvremove"),
        "the driver's profile names the LVM commands it ran: {programs:?}"
    );

    let fp = &report["footprint"]["value"];
    for mode in ["controller_idle", "node_idle", "all_in_one_idle"] {
        assert_eq!(fp[mode]["state"], "done", "{mode}: {:#}", fp[mode]);
        assert!(
            fp[mode]["value"]["rss_kib"].as_u64().unwrap_or(0) > 0,
            "{mode}"
        );
    }
    // No LV of the bench is left behind.
    let lvs = std::process::Command::new("lvs")
        .args(["--noheadings", "-o", "lv_name", &vg.name])
        .env("LC_ALL", "C")
        .output()
        .expect("lvs");
    let left = String::from_utf8_lossy(&lvs.stdout);
    assert!(left.trim().is_empty(), "LVs left behind: {left}");
}
