//! Helpers shared by the integration tests: run the real `lvsnap` binary on a
//! Unix socket in a temporary directory and talk to it over gRPC.
#![allow(dead_code)]

pub mod classes;
pub mod groups;
pub mod harness;
pub mod kube;
pub mod scrape;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::Duration;

use lvsnap::client::CsiClients;

pub const BIN: &str = env!("CARGO_BIN_EXE_lvsnap");

/// A running `lvsnap` process; killed when dropped.
pub struct Driver {
    pub child: Child,
    pub socket: PathBuf,
    pub dir: tempfile::TempDir,
    /// Its stderr, when started with `start_logged`.
    pub log: Option<Log>,
}

/// A process's stderr lines as they arrive (also echoed to the test's stderr).
#[derive(Clone, Default)]
pub struct Log(std::sync::Arc<(std::sync::Mutex<Vec<String>>, std::sync::Condvar)>);

impl Log {
    fn follow(&self, stderr: std::process::ChildStderr) {
        let log = self.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                eprintln!("{line}");
                let (lines, ready) = &*log.0;
                if let Ok(mut l) = lines.lock() {
                    l.push(line);
                }
                ready.notify_all();
            }
        });
    }

    /// Every line so far.
    pub fn lines(&self) -> Vec<String> {
        let (lines, _) = &*self.0;
        lines.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// How many lines so far contain `needle`.
    pub fn count(&self, needle: &str) -> usize {
        let (lines, _) = &*self.0;
        lines
            .lock()
            .map(|l| l.iter().filter(|x| x.contains(needle)).count())
            .unwrap_or(0)
    }

    /// Blocks until `n` lines contain `needle` (panics after `timeout`).
    pub fn wait_for(&self, needle: &str, n: usize, timeout: Duration) {
        let (lines, ready) = &*self.0;
        let deadline = std::time::Instant::now() + timeout;
        let mut guard = lines.lock().expect("log lock");
        loop {
            if guard.iter().filter(|x| x.contains(needle)).count() >= n {
                return;
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            assert!(
                !left.is_zero(),
                "no {n} log lines with {needle:?} within {timeout:?}"
            );
            guard = ready.wait_timeout(guard, left).expect("log wait").0;
        }
    }
}

impl Driver {
    /// Starts `lvsnap <args…> --endpoint unix://<tmp>/csi.sock` and waits
    /// until the socket accepts connections (or the process exits).
    pub async fn start(args: &[&str]) -> Driver {
        Self::start_env(args, &[]).await
    }

    /// `start` with extra environment (e.g. KUBECONFIG).
    pub async fn start_env(args: &[&str], env: &[(&str, &str)]) -> Driver {
        Self::spawn(args, env, false).await
    }

    /// `start_env` with stderr captured into `log` (info level, no colour).
    pub async fn start_logged(args: &[&str], env: &[(&str, &str)]) -> Driver {
        Self::spawn(args, env, true).await
    }

    async fn spawn(args: &[&str], env: &[(&str, &str)], logged: bool) -> Driver {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("csi.sock");
        let endpoint = format!("unix://{}", socket.display());
        let level = if logged {
            "info".to_string()
        } else {
            std::env::var("LVSNAP_LOG_LEVEL").unwrap_or_else(|_| "warn".into())
        };
        let mut child = Command::new(BIN)
            .args(args)
            .args(["--endpoint", &endpoint])
            .env("LVSNAP_LOG_LEVEL", level)
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::inherit())
            .stderr(if logged {
                Stdio::piped()
            } else {
                Stdio::inherit()
            })
            .spawn()
            .expect("spawn lvsnap");
        let log = child.stderr.take().map(|stderr| {
            let log = Log::default();
            log.follow(stderr);
            log
        });
        let mut driver = Driver {
            child,
            socket,
            dir,
            log,
        };
        driver.wait_ready().await;
        driver
    }

    async fn wait_ready(&mut self) {
        // Poll for the socket, bounded: the process either serves or exits.
        for _ in 0..600 {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                panic!("lvsnap exited before serving: {status}");
            }
            if tokio::net::UnixStream::connect(&self.socket).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("lvsnap did not open {} within 30 s", self.socket.display());
    }

    pub async fn clients(&self) -> CsiClients {
        CsiClients::connect(&self.socket).await.expect("connect")
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
        self.child.wait().expect("wait")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `lvsnap <args…>` to completion (clean environment).
pub fn run(args: &[&str], cwd: &Path) -> Output {
    run_env(args, cwd, &[])
}

/// `run` with only PATH and `env` set.
pub fn run_env(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run lvsnap")
}

/// The fake Kubernetes API over HTTP on loopback, and a kubeconfig for it:
/// what `lvsnap controller` / `lvsnap node` processes are pointed at.
pub struct Cluster {
    pub http: lvsnap::store::fake_api::HttpApiServer,
    pub kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl Cluster {
    pub async fn start() -> Cluster {
        let api = lvsnap::store::fake_api::FakeApiServer::new();
        let http = lvsnap::store::fake_api::HttpApiServer::start(api)
            .await
            .expect("fake API server");
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = http.write_kubeconfig(dir.path()).expect("kubeconfig");
        Cluster {
            http,
            kubeconfig,
            _dir: dir,
        }
    }

    /// The environment that points a process at this cluster.
    pub fn env(&self) -> (&'static str, &str) {
        ("KUBECONFIG", self.kubeconfig.to_str().expect("utf-8 path"))
    }
}

/// A single-node-writer mount capability (`fs` empty: the driver's default).
pub fn mount_cap(fs: &str) -> lvsnap::proto::v1::VolumeCapability {
    use csi::volume_capability::{AccessMode, AccessType, MountVolume, access_mode::Mode};
    use lvsnap::proto::v1 as csi;
    csi::VolumeCapability {
        access_mode: Some(AccessMode {
            mode: Mode::SingleNodeWriter as i32,
        }),
        access_type: Some(AccessType::Mount(MountVolume {
            fs_type: fs.into(),
            ..Default::default()
        })),
    }
}

/// A single-node-writer raw block capability.
pub fn block_cap() -> lvsnap::proto::v1::VolumeCapability {
    use csi::volume_capability::{AccessMode, AccessType, BlockVolume, access_mode::Mode};
    use lvsnap::proto::v1 as csi;
    csi::VolumeCapability {
        access_mode: Some(AccessMode {
            mode: Mode::SingleNodeWriter as i32,
        }),
        access_type: Some(AccessType::Block(BlockVolume {})),
    }
}

/// CreateVolume for `bytes` with a default mount capability.
pub fn volume_request(name: &str, bytes: i64) -> lvsnap::proto::v1::CreateVolumeRequest {
    lvsnap::proto::v1::CreateVolumeRequest {
        name: name.into(),
        capacity_range: Some(lvsnap::proto::v1::CapacityRange {
            required_bytes: bytes,
            limit_bytes: 0,
        }),
        volume_capabilities: vec![mount_cap("")],
        ..Default::default()
    }
}

/// CreateSnapshot over gRPC; any error fails the test.
pub async fn create_snapshot(
    c: &mut CsiClients,
    name: &str,
    source: &str,
) -> lvsnap::proto::v1::Snapshot {
    c.controller
        .create_snapshot(lvsnap::proto::v1::CreateSnapshotRequest {
            name: name.into(),
            source_volume_id: source.into(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("CreateSnapshot {name}: {e:?}"))
        .into_inner()
        .snapshot
        .expect("snapshot")
}
