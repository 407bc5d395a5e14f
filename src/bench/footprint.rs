//! Section 5: the binary's size and the memory of the real serving modes,
//! each spawned as a child process (argv, no shell) and read from
//! `/proc/<pid>/status` once it answers on its socket.
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;

use super::{Latency, Memory, Outcome, memory_of};
use crate::client::CsiClients;
use crate::proto::v1 as csi;
use crate::store::fake_api::FakeApiServer;
use crate::store::fake_api::HttpApiServer;
use crate::store::{KubeStore, Store};

/// How long a mode may take to answer on its socket.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Settling time after the first answer before memory is read.
const SETTLE: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Serialize)]
pub struct Footprint {
    pub binary: PathBuf,
    pub binary_bytes: u64,
    /// The build of the measured binary when known ("release"/"debug").
    pub binary_build: String,
    pub controller_idle: Outcome<Memory>,
    pub node_idle: Outcome<Memory>,
    pub all_in_one_idle: Outcome<Memory>,
    /// all-in-one serving the scale section's store after a full walk.
    pub all_in_one_after_scale: Outcome<Memory>,
    /// controller over as many records in the (fake) Kubernetes API, after
    /// a full ListSnapshots walk; and that walk's pages.
    pub controller_after_scale: Outcome<Memory>,
    pub controller_walk: Outcome<Latency>,
}

/// What the footprint needs to know.
pub struct Setup<'a> {
    pub binary: PathBuf,
    pub work: &'a Path,
    /// A real VG (node and all-in-one check theirs at start).
    pub vg: Option<&'a str>,
    pub lvm_env: Option<&'a str>,
    /// The state directory the scale section filled, and its record count.
    pub scaled: Option<(&'a Path, usize)>,
}

/// A spawned mode; killed when dropped.
struct Spawned {
    child: Child,
    socket: PathBuf,
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn spawn(
    binary: &Path,
    args: &[&str],
    socket: PathBuf,
    env: &[(&str, &str)],
) -> anyhow::Result<Spawned> {
    let _ = std::fs::remove_file(&socket);
    let mut cmd = Command::new(binary);
    cmd.args(args)
        .arg("--endpoint")
        .arg(format!("unix://{}", socket.display()))
        .env("LVSNAP_LOG_LEVEL", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    cmd.envs(env.iter().copied());
    let child = cmd
        .spawn()
        .with_context(|| format!("spawning {} {}", binary.display(), args.join(" ")))?;
    let mut spawned = Spawned { child, socket };
    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = spawned.child.try_wait()? {
            anyhow::bail!("`lvsnap {}` exited before serving: {status}", args[0]);
        }
        if let Ok(mut c) = CsiClients::connect(&spawned.socket).await
            && c.identity
                .get_plugin_info(csi::GetPluginInfoRequest {})
                .await
                .is_ok()
        {
            tokio::time::sleep(SETTLE).await;
            return Ok(spawned);
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "`lvsnap {}` did not answer within {START_TIMEOUT:?}",
            args[0]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn memory(s: &Spawned) -> anyhow::Result<Memory> {
    Ok(memory_of(&s.child.id().to_string())?)
}

/// The environment of a spawned mode: the bench's kubeconfig, LVM's env.
fn env_of<'a>(setup: &'a Setup<'_>, kubeconfig: &'a str) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![("KUBECONFIG", kubeconfig)];
    if let Some(lvm) = setup.lvm_env {
        env.push(("LVSNAP_LVM_ENV", lvm));
    }
    env
}

/// Runs a mode, reads its memory once it serves, stops it.
async fn measure(
    setup: &Setup<'_>,
    args: &[&str],
    sock: &str,
    kubeconfig: &str,
) -> Outcome<Memory> {
    let env = env_of(setup, kubeconfig);
    let result = async {
        let s = spawn(&setup.binary, args, setup.work.join(sock), &env).await?;
        memory(&s)
    }
    .await;
    match result {
        Ok(m) => Outcome::Done(m),
        Err(e) => Outcome::Skipped(format!("failed: {e:#}")),
    }
}

pub async fn run(setup: Setup<'_>) -> anyhow::Result<Footprint> {
    let binary_bytes = std::fs::metadata(&setup.binary)
        .with_context(|| format!("reading {}", setup.binary.display()))?
        .len();
    let binary_build = match std::env::current_exe() {
        Ok(me) if me == setup.binary => (if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        })
        .to_string(),
        _ => "as given (--binary)".into(),
    };
    let work = setup.work.display().to_string();
    // controller and node talk to Kubernetes: the fake API server over HTTP
    // on loopback, in this process, through a kubeconfig.
    let api = HttpApiServer::start(FakeApiServer::new()).await?;
    let kubeconfig = api.write_kubeconfig(setup.work)?.display().to_string();
    let kc = kubeconfig.as_str();
    let controller_idle = measure(&setup, &["controller"], "fp-controller.sock", kc).await;
    let no_vg = || Outcome::Skipped("skipped (no VG): node and all-in-one check their VG".into());
    let (node_idle, all_in_one_idle, all_in_one_after_scale) = match setup.vg {
        None => (no_vg(), no_vg(), no_vg()),
        Some(vg) => {
            let node = measure(
                &setup,
                &[
                    "node",
                    "--node-id",
                    "fp",
                    "--vg",
                    vg,
                    "--state-dir",
                    &format!("{work}/fp-node"),
                ],
                "fp-node.sock",
                kc,
            )
            .await;
            let aio = measure(
                &setup,
                &[
                    "all-in-one",
                    "--node-id",
                    "fp",
                    "--vg",
                    vg,
                    "--state-dir",
                    &format!("{work}/fp-aio"),
                ],
                "fp-aio.sock",
                kc,
            )
            .await;
            let after = match setup.scaled {
                Some((dir, records)) => after_scale(&setup, vg, dir, records, kc).await,
                None => Outcome::Skipped("skipped (the scale section did not run)".into()),
            };
            (node, aio, after)
        }
    };
    let (controller_after_scale, controller_walk) = match setup.scaled {
        None => {
            let why = "skipped (the scale section did not run)".to_string();
            (Outcome::Skipped(why.clone()), Outcome::Skipped(why))
        }
        Some((_, records)) => match controller_scaled(&setup, &api.api, records, kc).await {
            Ok((m, walk)) => (Outcome::Done(m), Outcome::Done(walk)),
            Err(e) => {
                let why = format!("failed: {e:#}");
                (Outcome::Skipped(why.clone()), Outcome::Skipped(why))
            }
        },
    };
    Ok(Footprint {
        binary: setup.binary.clone(),
        binary_bytes,
        binary_build,
        controller_idle,
        node_idle,
        all_in_one_idle,
        all_in_one_after_scale,
        controller_after_scale,
        controller_walk,
    })
}

/// `lvsnap controller` over `records` snapshot records in the API server,
/// after a full ListSnapshots walk.
async fn controller_scaled(
    setup: &Setup<'_>,
    api: &FakeApiServer,
    records: usize,
    kubeconfig: &str,
) -> anyhow::Result<(Memory, Latency)> {
    let store = KubeStore::new(api.client());
    for i in 0..records {
        store
            .insert_snapshot(&super::scale::record(i, "bench-scale-vol"))
            .await?;
    }
    let env = env_of(setup, kubeconfig);
    let s = spawn(
        &setup.binary,
        &["controller"],
        setup.work.join("fp-controller-scaled.sock"),
        &env,
    )
    .await?;
    let mut c = CsiClients::connect(&s.socket).await?;
    let (pages, entries) = super::scale::walk(&mut c.controller).await?;
    anyhow::ensure!(
        entries == records,
        "the walk listed {entries} of {records} records"
    );
    Ok((memory(&s)?, Latency::of(&pages)))
}

/// all-in-one on the scale section's store (another node id, so its
/// executor leaves those records alone), after one ListSnapshots walk.
async fn after_scale(
    setup: &Setup<'_>,
    vg: &str,
    dir: &Path,
    records: usize,
    kubeconfig: &str,
) -> Outcome<Memory> {
    let env = env_of(setup, kubeconfig);
    let result = async {
        let dir = dir.display().to_string();
        let s = spawn(
            &setup.binary,
            &[
                "all-in-one",
                "--node-id",
                "fp",
                "--vg",
                vg,
                "--state-dir",
                &dir,
            ],
            setup.work.join("fp-scaled.sock"),
            &env,
        )
        .await?;
        let mut c = CsiClients::connect(&s.socket).await?;
        let (_, entries) = super::scale::walk(&mut c.controller).await?;
        anyhow::ensure!(
            entries == records,
            "the walk listed {entries} of {records} records"
        );
        memory(&s)
    }
    .await;
    match result {
        Ok(m) => Outcome::Done(m),
        Err(e) => Outcome::Skipped(format!("failed: {e:#}")),
    }
}
