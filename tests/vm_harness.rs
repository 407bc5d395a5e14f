//! VM tier: proves the harness gives real LVM with device-mapper: a VG on a
//! sparse loop file, an LV, a thick snapshot named `_snapshot-<uuid>`, a thin
//! pool, a thin LV and its snapshot, read back from `lvs --reportformat json`,
//! then everything removed. Commands are plain argv, independent of lvsnap's
//! own LVM layer, so a failure here points at the harness, not at lvsnap.
mod common;
#[path = "common/vm.rs"]
mod vm;

use std::process::Command;

fn lvm(argv: &[&str]) -> String {
    let out = Command::new("lvm")
        .args(argv)
        .env("LC_ALL", "C")
        .output()
        .expect("run lvm");
    assert!(
        out.status.success(),
        "lvm {argv:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
#[ignore = "vm tier: run inside scripts/vm-run"]
fn thick_and_thin_snapshots_on_a_loop_backed_vg() {
    let vg = vm::LoopVg::create("lvsnapharness", 2048);
    let v = &vg.name;
    let vol = format!("volume-{}", uuid::Uuid::new_v4());
    let snap = format!("_snapshot-{}", uuid::Uuid::new_v4());
    lvm(&["lvcreate", "-q", "-n", &vol, "-L", "256m", v]);
    lvm(&[
        "lvcreate",
        "-q",
        "--name",
        &snap,
        "--snapshot",
        &format!("{v}/{vol}"),
        "-L",
        "256m",
    ]);
    lvm(&[
        "lvcreate",
        "-q",
        "--type",
        "thin-pool",
        "-L",
        "256m",
        "-n",
        "pool",
        v,
    ]);
    lvm(&[
        "lvcreate",
        "-q",
        "-V",
        "512m",
        "--thin",
        &format!("{v}/pool"),
        "-n",
        "thin1",
    ]);
    lvm(&[
        "lvcreate",
        "-q",
        "-s",
        &format!("{v}/thin1"),
        "-n",
        "thinsnap",
        "--setactivationskip",
        "n",
    ]);

    let report = lvm(&[
        "lvs",
        "--reportformat",
        "json",
        "-o",
        "lv_name,lv_attr,origin,pool_lv,lv_size",
        v,
    ]);
    println!("{report}");
    let json: serde_json::Value = serde_json::from_str(&report).expect("lvs json");
    let lvs = json["report"][0]["lv"].as_array().expect("lv array");
    let attr = |name: &str| {
        lvs.iter()
            .find(|lv| lv["lv_name"] == name)
            .map(|lv| {
                (
                    lv["lv_attr"].as_str().unwrap_or("").to_string(),
                    lv["origin"].as_str().unwrap_or("").to_string(),
                )
            })
            .unwrap_or_else(|| panic!("{name} missing from {report}"))
    };
    assert_eq!(attr(&snap), ("swi-a-s---".to_string(), vol.clone()));
    assert_eq!(attr(&vol).0, "owi-a-s---");
    assert_eq!(attr("pool").0, "twi-aotz--");
    assert_eq!(attr("thin1").0, "Vwi-a-tz--");
    assert_eq!(
        attr("thinsnap"),
        ("Vwi-a-tz--".to_string(), "thin1".to_string())
    );

    for lv in ["thinsnap", "thin1", "pool", snap.as_str(), vol.as_str()] {
        lvm(&["lvremove", "-q", "-f", &format!("{v}/{lv}")]);
    }
    let left = lvm(&["lvs", "--reportformat", "json", "-o", "lv_name", v]);
    let json: serde_json::Value = serde_json::from_str(&left).expect("lvs json");
    assert_eq!(
        json["report"][0]["lv"].as_array().map(Vec::len),
        Some(0),
        "{left}"
    );
}
