//! Helpers shared by the integration tests: run the real `lvsnap` binary on a
//! Unix socket in a temporary directory and talk to it over gRPC.
#![allow(dead_code)]

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
}

impl Driver {
    /// Starts `lvsnap <args…> --endpoint unix://<tmp>/csi.sock` and waits
    /// until the socket accepts connections (or the process exits).
    pub async fn start(args: &[&str]) -> Driver {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("csi.sock");
        let endpoint = format!("unix://{}", socket.display());
        let child = Command::new(BIN)
            .args(args)
            .args(["--endpoint", &endpoint])
            .env(
                "LVSNAP_LOG_LEVEL",
                std::env::var("LVSNAP_LOG_LEVEL").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn lvsnap");
        let mut driver = Driver { child, socket, dir };
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

/// Runs `lvsnap <args…>` to completion.
pub fn run(args: &[&str], cwd: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .output()
        .expect("run lvsnap")
}
