//! Section 2: CreateSnapshot/DeleteSnapshot with the real LVM runner on a
//! real VG, next to the bare `lvcreate --snapshot` / `lvremove` of the same
//! origin and size run by this process, and the ratio. The driver's runner
//! is wrapped to count and time every LVM command it runs: the profile that
//! says where the difference goes.
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Serialize;

use super::harness::{LvmKind, StoreKind, Target};
use super::overhead::{OverheadRow, measure};
use super::{Latency, ms};
use crate::lvm::{CommandOutput, CommandRunner, LvmConfig, RunError, SystemRunner};

/// Size of the origin volume and of each thick snapshot's COW area.
const VOLUME_BYTES: i64 = 8 << 20;

/// Counts and times the commands of the runner it wraps, by program.
#[derive(Default)]
pub struct ProfilingRunner {
    inner: SystemRunner,
    seen: Mutex<BTreeMap<String, (usize, Duration)>>,
}

impl ProfilingRunner {
    pub fn reset(&self) {
        if let Ok(mut s) = self.seen.lock() {
            s.clear();
        }
    }

    pub fn profile(&self) -> BTreeMap<String, (usize, Duration)> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl CommandRunner for ProfilingRunner {
    async fn run(
        &self,
        argv: &[String],
        env: &[(String, String)],
        timeout: Duration,
    ) -> Result<CommandOutput, RunError> {
        let t = Instant::now();
        let out = self.inner.run(argv, env, timeout).await;
        // The LVM program, past any command prefix (nsenter …).
        let program = argv
            .iter()
            .map(|a| a.rsplit('/').next().unwrap_or(a))
            .find(|a| {
                matches!(
                    *a,
                    "lvs" | "vgs" | "lvcreate" | "lvremove" | "lvm" | "lvchange"
                )
            })
            .unwrap_or("other")
            .to_string();
        if let Ok(mut s) = self.seen.lock() {
            let e = s.entry(program).or_default();
            e.0 += 1;
            e.1 += t.elapsed();
        }
        out
    }
}

/// One LVM program's share of the measured operations.
#[derive(Debug, Clone, Serialize)]
pub struct ProgramShare {
    pub program: String,
    pub calls_per_op: f64,
    pub ms_per_op: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RealLvm {
    pub vg: String,
    pub driver: OverheadRow,
    pub bare_create: Latency,
    pub bare_delete: Latency,
    /// Driver p50 / bare p50.
    pub ratio_create: f64,
    pub ratio_delete: f64,
    /// LVM commands the driver's node executor ran per create+delete pair
    /// (including its capacity reports after each change).
    pub profile: Vec<ProgramShare>,
    /// Group snapshots of two volumes: how long the members stay frozen.
    pub group: super::group_freeze::GroupFreeze,
}

/// `argv` with `LC_ALL=C` and the driver's extra environment; its time.
async fn timed(argv: &[String], config: &LvmConfig) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let out = SystemRunner
        .run(argv, &config.command_env(), config.timeout)
        .await?;
    let took = t.elapsed();
    anyhow::ensure!(
        out.success(),
        "{argv:?} failed ({:?}): {}",
        out.exit_code,
        out.stderr.trim()
    );
    Ok(took)
}

pub async fn run(
    vg: &str,
    config: LvmConfig,
    work: &std::path::Path,
    n: usize,
) -> anyhow::Result<RealLvm> {
    let profiler = Arc::new(ProfilingRunner::default());
    let mut target = Target::start(
        StoreKind::Sqlite,
        LvmKind::Real {
            vg: vg.into(),
            runner: profiler.clone(),
            config: config.clone(),
        },
        work,
        "real-lvm",
        super::harness::RESYNC_DEFAULT,
    )
    .await?;
    let (samples, volume) = measure(&mut target, "real", "bench-real", VOLUME_BYTES, n, || {
        profiler.reset()
    })
    .await?;
    // Capacity reports run in the background after each change: let the
    // last ones land in the profile.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let profile = profiler
        .profile()
        .into_iter()
        .map(|(program, (calls, time))| ProgramShare {
            program,
            calls_per_op: calls as f64 / n.max(1) as f64,
            ms_per_op: ms(time) / n.max(1) as f64,
        })
        .collect();
    let driver = samples.row("sqlite", "real");
    let group = super::group_freeze::run(&mut target, "bench-real", VOLUME_BYTES, n).await?;

    // The bare commands on the same origin, same COW size.
    let origin = format!("{vg}/volume-{volume}");
    let (mut create, mut delete) = (Vec::new(), Vec::new());
    let s = |x: &str| x.to_string();
    for i in 0..n {
        let name = format!("benchbare{i}");
        create.push(
            timed(
                &[
                    s("lvcreate"),
                    s("--yes"),
                    s("--name"),
                    name.clone(),
                    s("--snapshot"),
                    s("--size"),
                    format!("{VOLUME_BYTES}b"),
                    origin.clone(),
                ],
                &config,
            )
            .await?,
        );
        delete.push(timed(&[s("lvremove"), s("-f"), format!("{vg}/{name}")], &config).await?);
    }
    target.delete_volume(&volume).await?;
    target.stop().await;
    let (bare_create, bare_delete) = (Latency::of(&create), Latency::of(&delete));
    Ok(RealLvm {
        vg: vg.into(),
        ratio_create: driver.create.p50_ms / bare_create.p50_ms.max(1e-9),
        ratio_delete: driver.delete.p50_ms / bare_delete.p50_ms.max(1e-9),
        driver,
        bare_create,
        bare_delete,
        profile,
        group,
    })
}
