//! The VM tier's shared fixture: one sparse, loop-backed volume group per
//! test binary, made on first use (the VM is thrown away afterwards, so it
//! is never torn down), and helpers to write and read block devices.
use std::future::Future;
use std::io::{Read, Seek, SeekFrom, Write};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use lvsnap::lvm::{CommandOutput, CommandRunner, LvName, LvTag, Lvm, LvmConfig, SystemRunner};
use uuid::Uuid;

pub const MIB: u64 = 1 << 20;
const BLOCK: usize = 64 * 1024;

pub struct Fixture {
    /// `lvsnap-vm-<pid>`: with a hyphen, so device paths exercise the doubling.
    pub vg: String,
    /// How the tests run LVM: no udev in the VM.
    pub config: LvmConfig,
}

static FIXTURE: OnceLock<Fixture> = OnceLock::new();

pub fn fixture() -> &'static Fixture {
    FIXTURE.get_or_init(setup)
}

fn run(argv: &[&str], config: &LvmConfig) -> String {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .envs(config.command_env())
        .output()
        .unwrap_or_else(|e| panic!("{argv:?} could not start: {e}"));
    assert!(
        out.status.success(),
        "{argv:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn setup() -> Fixture {
    let vg = format!("lvsnap-vm-{}", std::process::id());
    let config = LvmConfig::default()
        .with_env("DM_DISABLE_UDEV", "1")
        .with_env("LVM_SUPPRESS_FD_WARNINGS", "1");
    let image = format!("/tmp/{vg}.img");
    run(&["truncate", "--size", "1G", &image], &config);
    let dev = run(&["losetup", "--find", "--show", &image], &config);
    run(
        &["vgcreate", "--physicalextentsize", "4m", &vg, &dev],
        &config,
    );
    eprintln!("[vm-fixture] volume group {vg} on {dev} ({image})");
    Fixture { vg, config }
}

/// 64 KiB of `byte`, with the byte's position mixed in so that a shifted
/// read cannot pass for a correct one.
pub fn pattern(byte: u8) -> Vec<u8> {
    (0..BLOCK).map(|i| byte ^ (i % 251) as u8).collect()
}

pub fn write_block(dev: &str, offset: u64, data: &[u8]) {
    let mut f = std::fs::OpenOptions::new().write(true).open(dev).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(data).unwrap();
    f.sync_all().unwrap();
}

pub fn read_block(dev: &str, offset: u64) -> Vec<u8> {
    let mut f = std::fs::File::open(dev).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    let mut buf = vec![0u8; BLOCK];
    f.read_exact(&mut buf).unwrap();
    buf
}

pub fn lvm() -> Lvm {
    Lvm::system(fixture().config.clone())
}

pub fn lvm_no_retry() -> Lvm {
    let config = LvmConfig {
        retry_delays: vec![],
        ..fixture().config.clone()
    };
    Lvm::system(config)
}

pub fn vg() -> &'static str {
    &fixture().vg
}

pub fn vol() -> (LvName, LvTag) {
    let id = Uuid::new_v4();
    (LvName::volume(id), LvTag::record(id))
}

pub fn snap() -> (LvName, LvTag) {
    let id = Uuid::new_v4();
    (LvName::snapshot(id), LvTag::record(id))
}

/// Runs `f`, printing how long it took.
pub async fn timed<T>(label: &str, f: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let out = f.await;
    eprintln!(
        "[vm-timing] {label}: {:.2}s",
        started.elapsed().as_secs_f64()
    );
    out
}

/// One raw LVM command with the fixture's environment (to see lvm2's own
/// error texts, bypassing the layer's pre-checks).
pub async fn raw(argv: &[&str]) -> CommandOutput {
    let argv: Vec<String> = argv.iter().map(|a| a.to_string()).collect();
    let env = fixture().config.command_env();
    SystemRunner
        .run(&argv, &env, Duration::from_secs(120))
        .await
        .unwrap()
}
