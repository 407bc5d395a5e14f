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
        }
    }
}

impl Drop for LoopVg {
    fn drop(&mut self) {
        let _ = Command::new("vgremove")
            .args(["-f", "-q", &self.name])
            .status();
        let _ = Command::new("pvremove").args(["-q", &self.device]).status();
        let _ = Command::new("losetup").args(["-d", &self.device]).status();
        let _ = std::fs::remove_file(&self.file);
    }
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
