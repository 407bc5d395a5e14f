//! `lvsnap bench`: runs the benchmark sections of `crate::bench` and prints
//! their figures as a table (or JSON). Exits non-zero when a correctness
//! line fails (quota over-committed, a reservation leaked, a record missing
//! from a listing) or a section could not run: CI runs `--short`.
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, ValueEnum};

use crate::bench::concurrency;
use crate::bench::harness::{self, LvmKind, StoreKind, Target};
use crate::bench::{Outcome, Report, footprint, overhead, real_lvm, render, scale};
use crate::config::Endpoint;
use crate::lvm::LvmConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Section {
    Overhead,
    RealLvm,
    Concurrency,
    Scale,
    Footprint,
    Metrics,
}

#[derive(Debug, Args)]
pub struct BenchCmd {
    /// CI size: 20 calls, C = 1, 10, 100, 1 000 records, 5 real-LVM calls.
    #[arg(long)]
    pub short: bool,
    /// Print the report as JSON instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Sections to run (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub sections: Vec<Section>,
    /// Create/delete pairs measured per store (default 1000; 20 with --short).
    #[arg(long)]
    pub calls: Option<usize>,
    /// Create/delete pairs on real LVM (default 30; 5 with --short).
    #[arg(long)]
    pub real_calls: Option<usize>,
    /// Concurrency levels C.
    #[arg(long, value_delimiter = ',', default_value = "1,10,100")]
    pub concurrency: Vec<usize>,
    /// Record counts listed (default 1000,10000; 1000 with --short).
    #[arg(long, value_delimiter = ',')]
    pub records: Vec<usize>,
    /// A real volume group for the real-LVM section and for the node and
    /// all-in-one footprint (without it they are skipped).
    #[arg(long)]
    pub vg: Option<String>,
    /// Extra environment for LVM commands, KEY=VALUE,… (e.g. DM_DISABLE_UDEV=1).
    #[arg(long, env = "LVSNAP_LVM_ENV", default_value = "")]
    pub lvm_env: String,
    /// Drive a running driver instead (unix:///…/csi.sock): overhead and,
    /// with --state-dir, concurrency run against it.
    #[arg(long)]
    pub endpoint: Option<String>,
    /// The running all-in-one's state directory (its SQLite store), to set
    /// quota limits and read usage.
    #[arg(long, requires = "endpoint")]
    pub state_dir: Option<PathBuf>,
    /// Where stores, sockets and spawned modes live (default: the temp dir).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// The binary whose size and modes' memory are measured (default: this one).
    #[arg(long)]
    pub binary: Option<PathBuf>,
}

fn lvm_config(raw: &str) -> anyhow::Result<LvmConfig> {
    let mut config = LvmConfig::default();
    for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .with_context(|| format!("--lvm-env: {pair:?} is not KEY=VALUE"))?;
        config = config.with_env(k, v);
    }
    Ok(config)
}

/// Progress goes to stderr; the report to stdout.
fn step(what: &str) {
    eprintln!("lvsnap bench: {what}");
}

pub(super) async fn run(cmd: BenchCmd) -> anyhow::Result<()> {
    let on = |s: Section| cmd.sections.is_empty() || cmd.sections.contains(&s);
    let n = cmd.calls.unwrap_or(if cmd.short { 20 } else { 1000 });
    let real_n = cmd.real_calls.unwrap_or(if cmd.short { 5 } else { 30 });
    let records = match (&cmd.records[..], cmd.short) {
        ([], true) => vec![1000],
        ([], false) => vec![1000, 10_000],
        (r, _) => r.to_vec(),
    };
    let work = cmd.work_dir.clone().unwrap_or_else(std::env::temp_dir);
    let lvm = lvm_config(&cmd.lvm_env)?;
    let external = match &cmd.endpoint {
        Some(e) => Some(Endpoint::parse(e)?),
        None => None,
    };
    let mut failures = Vec::new();
    let mut report = Report {
        build: if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        short: cmd.short,
        overhead: Vec::new(),
        real_lvm: Outcome::Skipped("skipped (no VG)".into()),
        concurrency: Vec::new(),
        scale: Outcome::Skipped("not run".into()),
        scale_kube: Outcome::Skipped("not run".into()),
        footprint: Outcome::Skipped("not run".into()),
        metrics: Outcome::Skipped("not run".into()),
        failures: Vec::new(),
    };
    // A section that cannot run is a failure of the run, recorded and passed.
    let mut failed = |what: &str, e: anyhow::Error| {
        let line = format!("{what}: {e:#}");
        step(&format!("FAILED {line}"));
        failures.push(line);
    };

    let stores = [StoreKind::Sqlite, StoreKind::Kube];
    if on(Section::Overhead) || on(Section::Concurrency) {
        if let Some(endpoint) = &external {
            let mut t = Target::external(endpoint.path(), cmd.state_dir.as_deref()).await?;
            if on(Section::Overhead) {
                step(&format!(
                    "overhead: {n} create/delete pairs on {}",
                    endpoint.path().display()
                ));
                match overhead::run(&mut t, "external", "as served", n).await {
                    Ok(row) => report.overhead.push(row),
                    Err(e) => failed("overhead (external)", e),
                }
            }
            if on(Section::Concurrency) && t.store.is_some() {
                step("concurrency: external driver");
                match concurrency::run(&mut t, "external", &cmd.concurrency).await {
                    Ok(rows) => report.concurrency.extend(rows),
                    Err(e) => failed("concurrency (external)", e),
                }
            }
        } else {
            for store in stores {
                let label = store.label().split(' ').next().unwrap_or("store");
                let mut t =
                    Target::start(store, LvmKind::Fake, &work, label, harness::RESYNC_DEFAULT)
                        .await?;
                if on(Section::Overhead) {
                    step(&format!(
                        "overhead: {n} create/delete pairs, {}",
                        store.label()
                    ));
                    match overhead::run(&mut t, store.label(), "fake", n).await {
                        Ok(row) => report.overhead.push(row),
                        Err(e) => failed(&format!("overhead ({})", store.label()), e),
                    }
                }
                if on(Section::Concurrency) {
                    step(&format!(
                        "concurrency: C = {:?}, {}",
                        cmd.concurrency,
                        store.label()
                    ));
                    match concurrency::run(&mut t, store.label(), &cmd.concurrency).await {
                        Ok(rows) => report.concurrency.extend(rows),
                        Err(e) => failed(&format!("concurrency ({})", store.label()), e),
                    }
                }
                t.stop().await;
            }
        }
    }
    for row in &report.concurrency {
        if let Err(line) = concurrency::check(row) {
            failed("correctness", anyhow::anyhow!(line));
        }
    }

    if on(Section::RealLvm)
        && let Some(vg) = &cmd.vg
    {
        step(&format!(
            "real LVM: {real_n} create/delete pairs on VG {vg}, then the bare commands"
        ));
        match real_lvm::run(vg, lvm.clone(), &work, real_n).await {
            Ok(r) => report.real_lvm = Outcome::Done(r),
            Err(e) => {
                report.real_lvm = Outcome::Skipped(format!("failed: {e:#}"));
                failed("real LVM", e);
            }
        }
    }

    // The scale store stays up for the footprint's "after scale" figure.
    let mut scaled = None;
    if on(Section::Scale) && external.is_none() {
        step(&format!("scale: ListSnapshots over {records:?} records"));
        let mut t = Target::start(
            StoreKind::Sqlite,
            LvmKind::Fake,
            &work,
            "scale",
            harness::RESYNC_DEFAULT,
        )
        .await?;
        let mut scale_failures = Vec::new();
        match scale::run(&mut t, "sqlite", &records, &mut scale_failures).await {
            Ok(s) => {
                let count = s.rows.last().map_or(0, |r| r.records);
                report.scale = Outcome::Done(s);
                scaled = Some((t, count));
            }
            Err(e) => {
                report.scale = Outcome::Skipped(format!("failed: {e:#}"));
                failed("scale", e);
                t.stop().await;
            }
        }
        // The Kubernetes store (fake API in process): the controller lists
        // from its watch cache.
        let mut t = Target::start(
            StoreKind::Kube,
            LvmKind::Fake,
            &work,
            "scale-kube",
            harness::RESYNC_DEFAULT,
        )
        .await?;
        let label = "kubernetes (fake API, watch cache)";
        match scale::run(&mut t, label, &records, &mut scale_failures).await {
            Ok(s) => report.scale_kube = Outcome::Done(s),
            Err(e) => {
                report.scale_kube = Outcome::Skipped(format!("failed: {e:#}"));
                failed("scale (kubernetes)", e);
            }
        }
        t.stop().await;
        for f in scale_failures {
            failed("scale", anyhow::anyhow!(f));
        }
    }

    if on(Section::Footprint) {
        step("footprint: binary size, memory of the serving modes");
        let binary = match &cmd.binary {
            Some(b) => b.clone(),
            None => std::env::current_exe().context("locating this binary")?,
        };
        let state = scaled
            .as_ref()
            .and_then(|(t, n)| t.dir.as_ref().map(|d| (d.path.join("state"), *n)));
        let fp_dir = crate::bench::WorkDir::new(&work, "footprint")?;
        let setup = footprint::Setup {
            binary,
            work: &fp_dir.path,
            vg: cmd.vg.as_deref(),
            lvm_env: (!cmd.lvm_env.is_empty()).then_some(cmd.lvm_env.as_str()),
            scaled: state.as_ref().map(|(p, n)| (p.as_path(), *n)),
        };
        match footprint::run(setup).await {
            Ok(f) => {
                // A mode that should have started and did not is a failure.
                for (mode, m) in [
                    ("controller", &f.controller_idle),
                    ("node", &f.node_idle),
                    ("all-in-one", &f.all_in_one_idle),
                    ("all-in-one after scale", &f.all_in_one_after_scale),
                ] {
                    if let Outcome::Skipped(why) = m
                        && why.starts_with("failed")
                    {
                        failed(&format!("footprint {mode}"), anyhow::anyhow!(why.clone()));
                    }
                }
                report.footprint = Outcome::Done(f);
            }
            Err(e) => {
                report.footprint = Outcome::Skipped(format!("failed: {e:#}"));
                failed("footprint", e);
            }
        }
    }
    if let Some((t, _)) = scaled {
        t.stop().await;
    }
    if on(Section::Metrics) {
        let n = cmd.records.iter().copied().min().unwrap_or(1000);
        let scrapes = if cmd.short { 10 } else { 100 };
        step(&format!("metrics: {scrapes} scrapes at {n} snapshots"));
        match crate::bench::metrics::run(&work, n, scrapes).await {
            Ok(rows) => report.metrics = Outcome::Done(rows),
            Err(e) => {
                report.metrics = Outcome::Skipped(format!("failed: {e:#}"));
                failed("metrics", e);
            }
        }
    }

    report.failures = failures;
    if cmd.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render::table(&report));
    }
    anyhow::ensure!(
        report.failures.is_empty(),
        "{} benchmark check(s) failed (see above)",
        report.failures.len()
    );
    Ok(())
}
