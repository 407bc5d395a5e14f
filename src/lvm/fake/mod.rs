//! [`FakeRunner`]: an in-memory LVM behind the [`CommandRunner`] seam, for
//! the unit tests of this layer and of the modules above it, and for
//! benchmarks that replace the LVM step by an instant one.
//!
//! It understands the commands the LVM layer builds (`vgs`, `lvs`,
//! `lvcreate` linear/thin-pool/thin/snapshot, `lvremove`, `lvextend`,
//! `lvchange`), after any command prefix, answers with lvm2's JSON reports
//! and error texts, records every call, and can be scripted to fail or hang.
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;

use super::{CommandOutput, CommandRunner, RunError};

mod commands;
mod dm;
mod model;

use model::Vg;

const PROGRAMS: [&str; 8] = [
    "vgs", "lvs", "lvcreate", "lvremove", "lvextend", "lvchange", "lvm", "dmsetup",
];

/// One recorded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeCall {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub timeout: Duration,
}

impl FakeCall {
    /// The LVM program called (`lvcreate`, …), after any prefix.
    pub fn program(&self) -> &str {
        program_index(&self.argv).map_or("", |i| base_name(&self.argv[i]))
    }
}

/// A scripted outcome for the next calls of one program.
#[derive(Debug, Clone)]
enum Scripted {
    Output(CommandOutput),
    /// Never finishes: the call ends in [`RunError::Timeout`] after its timeout.
    Hang,
    /// Runs as if nothing were scripted (lets a later scripted call wait its turn).
    Pass,
}

#[derive(Default)]
struct State {
    vgs: BTreeMap<String, Vg>,
    calls: Vec<FakeCall>,
    scripted: BTreeMap<String, VecDeque<Scripted>>,
    /// Told once when `program` is next called (see `called`).
    waiters: Vec<(String, tokio::sync::oneshot::Sender<()>)>,
}

/// An in-memory LVM; see the module docs. Cheap to create: one per test.
#[derive(Default)]
pub struct FakeRunner {
    state: Mutex<State>,
}

fn base_name(arg: &str) -> &str {
    arg.rsplit('/').next().unwrap_or(arg)
}

fn program_index(argv: &[String]) -> Option<usize> {
    argv.iter().position(|a| PROGRAMS.contains(&base_name(a)))
}

impl FakeRunner {
    /// No volume groups.
    pub fn new() -> Self {
        Self::default()
    }

    /// One volume group of `size_bytes` with 4 MiB extents.
    pub fn with_vg(vg: &str, size_bytes: u64) -> Self {
        let fake = Self::new();
        fake.add_vg(vg, size_bytes, 4 << 20);
        fake
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock leaves usable state.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds (or replaces) volume group `vg`: `size_bytes` rounded down to
    /// whole extents of `extent_bytes` (must be more than 0).
    pub fn add_vg(&self, vg: &str, size_bytes: u64, extent_bytes: u64) {
        let vg_state = Vg::new(size_bytes, extent_bytes.max(1));
        self.state().vgs.insert(vg.to_string(), vg_state);
    }

    /// The next `times` calls of `program` (`"lvcreate"`, …) return `output`
    /// instead of doing anything.
    pub fn respond_next(&self, program: &str, times: usize, output: CommandOutput) {
        let mut state = self.state();
        let queue = state.scripted.entry(program.to_string()).or_default();
        queue.extend(std::iter::repeat_n(Scripted::Output(output), times));
    }

    /// After `skip` calls of `program` that run normally, the next one
    /// returns `output` ("the second lvcreate fails").
    pub fn respond_after(&self, program: &str, skip: usize, output: CommandOutput) {
        let mut state = self.state();
        let queue = state.scripted.entry(program.to_string()).or_default();
        queue.extend(std::iter::repeat_n(Scripted::Pass, skip));
        queue.push_back(Scripted::Output(output));
    }

    /// After `skip` calls of `program` that run normally, the next one hangs
    /// until its timeout.
    pub fn hang_after(&self, program: &str, skip: usize) {
        let mut state = self.state();
        let queue = state.scripted.entry(program.to_string()).or_default();
        queue.extend(std::iter::repeat_n(Scripted::Pass, skip));
        queue.push_back(Scripted::Hang);
    }

    /// The next `times` calls of `program` hang until their timeout.
    pub fn hang_next(&self, program: &str, times: usize) {
        let mut state = self.state();
        let queue = state.scripted.entry(program.to_string()).or_default();
        queue.extend(std::iter::repeat_n(Scripted::Hang, times));
    }

    /// Resolves when `program` is next called (started, not finished).
    pub fn called(&self, program: &str) -> impl std::future::Future<Output = ()> + use<> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.state().waiters.push((program.to_string(), tx));
        async move {
            let _ = rx.await;
        }
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<FakeCall> {
        self.state().calls.clone()
    }

    /// The programs called so far, in order (`["lvs", "vgs", "lvcreate", …]`).
    pub fn programs(&self) -> Vec<String> {
        self.state()
            .calls
            .iter()
            .map(|c| c.program().to_string())
            .collect()
    }

    /// The argv of every call of `program`.
    pub fn argvs_of(&self, program: &str) -> Vec<Vec<String>> {
        let state = self.state();
        let calls = state.calls.iter().filter(|c| c.program() == program);
        calls.map(|c| c.argv.clone()).collect()
    }

    pub fn clear_calls(&self) {
        self.state().calls.clear();
    }

    /// Names of the LVs of `vg`, sorted.
    pub fn lv_names(&self, vg: &str) -> Vec<String> {
        let state = self.state();
        state
            .vgs
            .get(vg)
            .map(|v| v.lvs.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Makes LV `vg/lv` look created `age` ago (its `lv_time`); false if absent.
    pub fn set_lv_age(&self, vg: &str, lv: &str, age: Duration) -> bool {
        let mut state = self.state();
        let Some(found) = state.vgs.get_mut(vg).and_then(|v| v.lvs.get_mut(lv)) else {
            return false;
        };
        found.created = chrono::Utc::now()
            - chrono::Duration::from_std(age).unwrap_or(chrono::Duration::zero());
        true
    }

    /// Marks LV `vg/lv` open (mounted) or not; false if absent.
    pub fn set_open(&self, vg: &str, lv: &str, open: bool) -> bool {
        let mut state = self.state();
        let Some(found) = state.vgs.get_mut(vg).and_then(|v| v.lvs.get_mut(lv)) else {
            return false;
        };
        found.open = open;
        true
    }

    /// Creates LV `vg/lv` directly (linear, `size` bytes) with `tags`, as
    /// another program would: a test's stand-in for an LV no record made.
    pub fn insert_lv(&self, vg: &str, lv: &str, size: u64, tags: &[&str]) -> bool {
        let mut state = self.state();
        let Some(v) = state.vgs.get_mut(vg) else {
            return false;
        };
        v.lvs.insert(
            lv.to_string(),
            model::Lv {
                size,
                kind: model::Kind::Linear,
                tags: tags.iter().map(|t| t.to_string()).collect(),
                active: true,
                skip: false,
                created: chrono::Utc::now(),
                open: false,
                fill: None,
                invalid: false,
                suspended: false,
            },
        );
        true
    }

    /// Sets the used percent `lvs` reports for LV `vg/lv`: a thick
    /// snapshot's COW area, a thin pool's data (and `metadata`); false if absent.
    pub fn set_fill(&self, vg: &str, lv: &str, data: f64, metadata: Option<f64>) -> bool {
        let mut state = self.state();
        let Some(found) = state.vgs.get_mut(vg).and_then(|v| v.lvs.get_mut(lv)) else {
            return false;
        };
        found.fill = Some((data, metadata));
        true
    }

    /// Makes thick snapshot `vg/lv` invalid, as LVM does when its COW area
    /// overflows (attr state `I`, 100 % used); false if absent.
    pub fn invalidate(&self, vg: &str, lv: &str) -> bool {
        let mut state = self.state();
        let Some(found) = state.vgs.get_mut(vg).and_then(|v| v.lvs.get_mut(lv)) else {
            return false;
        };
        found.invalid = true;
        found.fill = Some((100.0, None));
        true
    }

    /// Size in bytes of LV `vg/lv` (for a thick snapshot: its COW area).
    pub fn lv_size(&self, vg: &str, lv: &str) -> Option<u64> {
        self.state()
            .vgs
            .get(vg)
            .and_then(|v| v.lvs.get(lv))
            .map(|l| l.size)
    }

    /// The LVs of `vg` held by `dmsetup suspend`, sorted.
    pub fn suspended(&self, vg: &str) -> Vec<String> {
        let state = self.state();
        state
            .vgs
            .get(vg)
            .map(|v| {
                let held = v.lvs.iter().filter(|(_, lv)| lv.suspended);
                held.map(|(name, _)| name.clone()).collect()
            })
            .unwrap_or_default()
    }

    /// Free bytes of `vg` as the fake counts them.
    pub fn free_bytes(&self, vg: &str) -> Option<u64> {
        self.state().vgs.get(vg).map(Vg::free)
    }
}

impl super::Lvm {
    /// An [`super::Lvm`] over a new [`FakeRunner`] holding volume group `vg`
    /// of `size_bytes` (4 MiB extents), with no retry delays, for tests and
    /// benchmarks: `let (lvm, fake) = Lvm::fake("vg0", 10 << 30);`.
    pub fn fake(vg: &str, size_bytes: u64) -> (super::Lvm, Arc<FakeRunner>) {
        let fake = Arc::new(FakeRunner::with_vg(vg, size_bytes));
        let config = super::LvmConfig {
            retry_delays: vec![Duration::ZERO; 2],
            ..super::LvmConfig::default()
        };
        (super::Lvm::new(fake.clone(), config), fake)
    }
}

#[async_trait]
impl CommandRunner for FakeRunner {
    async fn run(
        &self,
        argv: &[String],
        env: &[(String, String)],
        timeout: Duration,
    ) -> Result<CommandOutput, RunError> {
        {
            let mut state = self.state();
            state.calls.push(FakeCall {
                argv: argv.to_vec(),
                env: env.to_vec(),
                timeout,
            });
            let Some(i) = program_index(argv) else {
                let program = argv.first().cloned().unwrap_or_default();
                return Err(RunError::Spawn {
                    program,
                    source: std::io::Error::from(std::io::ErrorKind::NotFound),
                });
            };
            let program = base_name(&argv[i]).to_string();
            let (told, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut state.waiters)
                .into_iter()
                .partition(|(p, _)| *p == program);
            state.waiters = waiting;
            for (_, tx) in told {
                let _ = tx.send(());
            }
            let scripted = state
                .scripted
                .get_mut(&program)
                .and_then(VecDeque::pop_front);
            match scripted {
                Some(Scripted::Pass) | None => {
                    return Ok(commands::run(&mut state.vgs, &argv[i..]));
                }
                Some(Scripted::Output(out)) => return Ok(out),
                Some(Scripted::Hang) => {}
            }
        }
        tokio::time::sleep(timeout).await;
        Err(RunError::Timeout(timeout))
    }
}
