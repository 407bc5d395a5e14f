//! VM-tier fixtures: a loop-backed volume group, created with real LVM
//! commands (argv, never a shell). Only usable inside `scripts/vm-run`.
#![allow(dead_code)]
use std::path::PathBuf;
use std::process::Command;

/// A volume group on a sparse loop file; removed when dropped.
pub struct LoopVg {
    pub name: String,
    pub device: String,
    pub file: PathBuf,
    /// Further PVs (device, file) of a VG made by [`LoopVg::create_pvs`].
    pub more: Vec<(String, PathBuf)>,
}

fn run(argv: &[&str]) -> String {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .env("LC_ALL", "C")
        .output()
        .unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    assert!(
        out.status.success(),
        "{argv:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl LoopVg {
    /// Creates VG `name` on a sparse file of `size_mib` MiB in /tmp.
    pub fn create(name: &str, size_mib: u64) -> LoopVg {
        assert!(
            std::env::var_os("LVSNAP_IN_VM").is_some(),
            "VM-tier test: run it through scripts/vm-run (see docs/testing.md)"
        );
        let file = PathBuf::from(format!("/tmp/{name}.img"));
        let f = std::fs::File::create(&file).expect("create loop file");
        f.set_len(size_mib << 20).expect("size loop file");
        drop(f);
        let file_s = file.display().to_string();
        let device = run(&["losetup", "-f", "--show", &file_s]);
        run(&["pvcreate", "-q", &device]);
        run(&["vgcreate", "-q", name, &device]);
        LoopVg {
            name: name.to_string(),
            device,
            file,
            more: Vec::new(),
        }
    }

    /// VG `name` on one loop PV per entry of `sizes_mib` (a raid1 LV needs
    /// two PVs).
    pub fn create_pvs(name: &str, sizes_mib: &[u64]) -> LoopVg {
        let (first, rest) = sizes_mib.split_first().expect("at least one PV");
        let mut vg = LoopVg::create(name, *first);
        for (i, mib) in rest.iter().enumerate() {
            let file = PathBuf::from(format!("/tmp/{name}-{}.img", i + 1));
            let f = std::fs::File::create(&file).expect("create loop file");
            f.set_len(mib << 20).expect("size loop file");
            drop(f);
            let device = run(&["losetup", "-f", "--show", &file.display().to_string()]);
            run(&["pvcreate", "-q", &device]);
            run(&["vgextend", "-q", name, &device]);
            vg.more.push((device, file));
        }
        vg
    }
}

impl Drop for LoopVg {
    fn drop(&mut self) {
        let _ = Command::new("vgremove")
            .args(["-f", "-q", &self.name])
            .status();
        let more = self.more.iter().map(|(d, f)| (d.as_str(), f));
        for (device, file) in std::iter::once((self.device.as_str(), &self.file)).chain(more) {
            let _ = Command::new("pvremove").args(["-q", device]).status();
            let _ = Command::new("losetup").args(["-d", device]).status();
            let _ = std::fs::remove_file(file);
        }
    }
}

/// `lvsnap all-in-one` on `vg` keeping its records in `state` (so that a
/// restart finds them), stderr captured.
pub async fn all_in_one_at(
    vg: &LoopVg,
    state: &std::path::Path,
    extra: &[&str],
) -> crate::common::Driver {
    let state_s = state.display().to_string();
    let mut args = vec![
        "all-in-one",
        "--node-id",
        "vm-node",
        "--vg",
        &vg.name,
        "--state-dir",
        &state_s,
        "--create-timeout",
        "45s",
    ];
    args.extend_from_slice(extra);
    crate::common::Driver::start_logged(&args, &[]).await
}

/// `lvsnap all-in-one` on `vg` (node id `vm-node`, a 45 s create timeout),
/// with its state directory.
pub async fn all_in_one(vg: &LoopVg, extra: &[&str]) -> (crate::common::Driver, tempfile::TempDir) {
    let state = tempfile::tempdir().expect("tempdir");
    let state_s = state.path().display().to_string();
    let mut args = vec![
        "all-in-one",
        "--node-id",
        "vm-node",
        "--vg",
        &vg.name,
        "--state-dir",
        &state_s,
        "--create-timeout",
        "45s",
    ];
    args.extend_from_slice(extra);
    (crate::common::Driver::start(&args).await, state)
}

/// Makes LV `vg/lv` look created `secs` seconds earlier than it was: its
/// `creation_time` (what `lvs -o lv_time` reports) rewritten in the VG's
/// metadata (vgcfgbackup, edit, deactivate the VG, vgcfgrestore, activate).
/// No LV of the VG may be open.
pub fn age_lv(vg: &str, lv: &str, secs: u64) {
    let file = format!("/tmp/{vg}-{lv}.meta");
    run(&["vgcfgbackup", "-q", "-f", &file, vg]);
    let meta = std::fs::read_to_string(&file).expect("metadata");
    let mut out = String::new();
    let mut in_lv = false;
    let mut done = false;
    for line in meta.lines() {
        let t = line.trim();
        if t == format!("{lv} {{") {
            in_lv = true;
        }
        if in_lv && !done && t.starts_with("creation_time = ") {
            let now: u64 = t["creation_time = ".len()..]
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .expect("creation_time");
            let indent = &line[..line.len() - line.trim_start().len()];
            out.push_str(&format!("{indent}creation_time = {}\n", now - secs));
            done = true;
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    assert!(done, "no creation_time for {lv} in the metadata of {vg}");
    std::fs::write(&file, out).expect("write metadata");
    run(&["vgchange", "-q", "-an", vg]);
    run(&["vgcfgrestore", "-q", "-f", &file, vg]);
    run(&["vgchange", "-q", "-ay", vg]);
    let _ = std::fs::remove_file(&file);
}

/// Creates linear LV `vg/lv` of `mib` MiB with `tags`, behind lvsnap's back.
pub fn lvcreate(vg: &str, lv: &str, mib: u64, tags: &[&str]) {
    let size = format!("{mib}m");
    let mut argv = vec!["lvcreate", "-q", "-y", "-n", lv, "-L", &size];
    for t in tags {
        argv.push("--addtag");
        argv.push(t);
    }
    argv.push(vg);
    run(&argv);
}

/// Removes LV `vg/lv`.
pub fn lvremove(vg: &str, lv: &str) {
    run(&["lvremove", "-q", "-f", &format!("{vg}/{lv}")]);
}

/// The LV names of `vg`, sorted.
pub fn lv_names(vg: &str) -> Vec<String> {
    let out = run(&["lvs", "--noheadings", "-o", "lv_name", vg]);
    let mut names: Vec<String> = out
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    names.sort();
    names
}

/// Writes `data` at offset 0 of a device and syncs.
pub fn write_at(dev: &str, data: &[u8]) {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(dev)
        .expect("open device");
    f.seek(SeekFrom::Start(0)).expect("seek");
    f.write_all(data).expect("write");
    f.sync_all().expect("sync");
}

/// Reads `len` bytes at offset 0 of a device.
pub fn read_at(dev: &str, len: usize) -> Vec<u8> {
    use std::io::Read;
    let mut f = std::fs::File::open(dev).expect("open device");
    let mut buf = vec![0; len];
    f.read_exact(&mut buf).expect("read");
    buf
}
