//! The LVM layer: the only code in lvsnap that runs LVM commands.
//!
//! Every command goes through [`Lvm::exec`]: argv only (never a shell), the
//! configured command prefix (e.g. `nsenter` into the host's mount
//! namespace), `LC_ALL=C` plus the configured environment (a host without
//! udev needs `DM_DISABLE_UDEV=1`), a timeout with the process killed when it
//! passes, and retries of transient failures (3 attempts, 1 s then 2 s, as
//! Cinder) — never of "not found", "already exists" or "insufficient space".
//! Reports are read as JSON in bytes (`--reportformat json --units b
//! --nosuffix`); failures are [`LvmError`]s carrying the command, exit code
//! and stderr, classified by [`ErrorKind`]. Names and tags are validated
//! types ([`LvName`], [`LvTag`]) checked before any command is built.
//!
//! [`FakeRunner`] is an in-memory LVM (VGs, linear, thin and snapshot LVs,
//! scripted failures) for the tests and benchmarks of other modules.
use std::sync::Arc;
use std::time::{Duration, Instant};

mod attr;
mod class;
mod create;
mod dm;
mod error;
#[cfg(feature = "testing")]
mod fake;
mod names;
mod ops;
mod pvs;
mod report;
mod runner;
mod snapshot;
#[cfg(all(test, feature = "testing"))]
mod tests;
mod view;

pub use attr::{AttrError, LvAttr, LvState, VolumeType};
pub use class::{
    CLASS_KEYS, ClassCapacity, ClassError, DeviceClass, LvOptions, PoolCapacity, check_classes,
};
pub use create::Made;
pub use dm::dm_name;
pub use error::{CommandFailure, ErrorKind, LvmError, classify};
#[cfg(feature = "testing")]
pub use fake::{FakeCall, FakeRunner};
pub use names::{
    LvName, LvRole, LvTag, MAX_NAME_LEN, MAX_TAG_LEN, NameError, RESERVED_LV_PREFIXES,
    RESERVED_LV_SUBSTRINGS, TAG_PREFIX, device_mapper_path, validate_vg_name,
};
pub use ops::{VgReport, max_cow_bytes};
pub use report::{
    LV_FIELDS, LvInfo, ReportError, VG_FIELDS, VgInfo, parse_lv_report, parse_lvs, parse_vgs,
    round_up,
};
pub use runner::{CommandOutput, CommandRunner, RunError, SystemRunner};
pub use snapshot::SnapshotPlan;

/// Told about every LVM command run (each attempt): the program, how long
/// it took, and how it failed if it did (`ErrorKind::as_str`, or
/// `"timeout"`). The metrics implement it; the LVM layer knows no metrics.
pub trait CommandObserver: Send + Sync {
    fn observe(&self, program: &str, elapsed: Duration, failure: Option<&'static str>);
}

/// How LVM commands are run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LvmConfig {
    /// Put before every command, e.g. `["nsenter", "--target=1", "--mount",
    /// "--"]` to run the host's LVM from a container.
    pub command_prefix: Vec<String>,
    /// Extra environment, e.g. `DM_DISABLE_UDEV=1` where udev does not run.
    /// `LC_ALL=C` is always set (and wins over an `LC_ALL` given here):
    /// errors are classified from English stderr. `LVM_SUPPRESS_FD_WARNINGS=1`
    /// is added unless set here.
    pub env: Vec<(String, String)>,
    /// Per command; the process is killed when it passes.
    pub timeout: Duration,
    /// Waits between attempts; `n` delays mean `n + 1` attempts in total.
    pub retry_delays: Vec<Duration>,
}

impl Default for LvmConfig {
    fn default() -> Self {
        Self {
            command_prefix: Vec::new(),
            env: Vec::new(),
            timeout: Duration::from_secs(120),
            retry_delays: vec![Duration::from_secs(1), Duration::from_secs(2)],
        }
    }
}

impl LvmConfig {
    /// The default configuration with one more environment variable.
    pub fn with_env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// The environment each command gets: the configured one, then `LC_ALL=C`,
    /// then `LVM_SUPPRESS_FD_WARNINGS=1` if not configured.
    pub fn command_env(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = self
            .env
            .iter()
            .filter(|(k, _)| k != "LC_ALL")
            .cloned()
            .collect();
        env.push(("LC_ALL".into(), "C".into()));
        // Inherited descriptors (a CO's pipes, a test harness's jobserver) make
        // LVM print a warning per command into stderr, which errors carry.
        if !env.iter().any(|(k, _)| k == "LVM_SUPPRESS_FD_WARNINGS") {
            env.push(("LVM_SUPPRESS_FD_WARNINGS".into(), "1".into()));
        }
        env
    }
}

/// The LVM operations lvsnap needs (see `ops.rs`), over a [`CommandRunner`].
/// Clones share the runner and what is known of each VG (`view.rs`).
#[derive(Clone)]
pub struct Lvm {
    runner: Arc<dyn CommandRunner>,
    config: LvmConfig,
    observer: Option<Arc<dyn CommandObserver>>,
    views: Arc<view::Views>,
}

impl std::fmt::Debug for Lvm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lvm").field("config", &self.config).finish()
    }
}

impl Lvm {
    /// Runs LVM on this machine.
    pub fn system(config: LvmConfig) -> Self {
        Self::new(Arc::new(SystemRunner), config)
    }

    pub fn new(runner: Arc<dyn CommandRunner>, config: LvmConfig) -> Self {
        Self {
            runner,
            config,
            observer: None,
            views: Arc::default(),
        }
    }

    /// Tells `observer` about every command (the LVM command metrics).
    pub fn with_observer(mut self, observer: Arc<dyn CommandObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    pub fn config(&self) -> &LvmConfig {
        &self.config
    }

    /// Runs one LVM command (`args[0]` is the program) with retries; returns
    /// its stdout. `what` names the operation in errors and logs.
    async fn exec(&self, what: &str, args: Vec<String>) -> Result<String, LvmError> {
        let mut argv = self.config.command_prefix.clone();
        argv.extend(args);
        let mut attempt = 0;
        loop {
            match self.exec_once(what, &argv).await {
                Ok(stdout) => return Ok(stdout),
                Err(e) => {
                    let delay = self.config.retry_delays.get(attempt).copied();
                    match delay {
                        Some(delay) if e.kind().is_transient() => {
                            tracing::warn!(
                                error = %e,
                                attempt = attempt + 1,
                                retry_in = ?delay,
                                "LVM command failed; retrying"
                            );
                            tokio::time::sleep(delay).await;
                            attempt += 1;
                        }
                        _ => {
                            tracing::warn!(error = %e, kind = ?e.kind(), attempts = attempt + 1, "LVM command failed");
                            return Err(e);
                        }
                    }
                }
            }
        }
    }

    async fn exec_once(&self, what: &str, argv: &[String]) -> Result<String, LvmError> {
        let started = Instant::now();
        let result = self
            .runner
            .run(argv, &self.config.command_env(), self.config.timeout)
            .await;
        let elapsed = started.elapsed();
        if let Some(observer) = &self.observer {
            let program = argv
                .get(self.config.command_prefix.len())
                .map(|p| p.rsplit('/').next().unwrap_or(p))
                .unwrap_or_default();
            let failure = match &result {
                Ok(out) if out.success() => None,
                Ok(out) => Some(classify(&out.stderr).as_str()),
                Err(RunError::Timeout(_)) => Some("timeout"),
                Err(_) => Some(ErrorKind::Other.as_str()),
            };
            observer.observe(program, elapsed, failure);
        }
        let failure = |exit_code, stderr: String| CommandFailure {
            argv: argv.to_vec(),
            exit_code,
            stderr: stderr.trim().to_string(),
        };
        match result {
            Ok(out) if out.success() => {
                tracing::debug!(command = %argv.join(" "), ?elapsed, "LVM command done");
                Ok(out.stdout)
            }
            Ok(out) => Err(LvmError::from_failure(
                format!("{what} failed"),
                failure(out.exit_code, out.stderr),
            )),
            Err(e) => Err(LvmError::with_failure(
                ErrorKind::Other,
                format!("{what} failed"),
                Some(failure(None, e.to_string())),
            )),
        }
    }
}
