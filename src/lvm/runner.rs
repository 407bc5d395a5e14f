//! Running one command: the [`CommandRunner`] seam and the real
//! [`SystemRunner`]. A runner only runs; the LVM layer decides what an exit
//! code means.
use std::time::Duration;

use async_trait::async_trait;
use tokio::process::Command;

/// What a finished command left behind. A non-zero exit is not an error at
/// this level.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandOutput {
    /// `None` when the process was ended by a signal.
    pub exit_code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl CommandOutput {
    /// Exit code 0 with this stdout.
    pub fn ok(stdout: impl Into<String>) -> Self {
        Self {
            exit_code: Some(0),
            stdout: stdout.into(),
            stderr: String::new(),
        }
    }

    /// A failed command (LVM exits 5 on most failures).
    pub fn failed(exit_code: i32, stderr: impl Into<String>) -> Self {
        Self {
            exit_code: Some(exit_code),
            stdout: String::new(),
            stderr: stderr.into(),
        }
    }

    pub fn success(&self) -> bool {
        self.exit_code == Some(0)
    }
}

/// A command that could not be run to its end.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("empty command")]
    Empty,
    #[error("could not start {program:?}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("waiting for the command failed: {0}")]
    Wait(#[source] std::io::Error),
    #[error("timed out after {0:?} (the process was killed)")]
    Timeout(Duration),
}

/// Runs argv (never through a shell) with extra environment and a timeout.
/// Implementations must kill the process when the timeout passes or the
/// returned future is dropped.
#[async_trait]
pub trait CommandRunner: Send + Sync + 'static {
    async fn run(
        &self,
        argv: &[String],
        env: &[(String, String)],
        timeout: Duration,
    ) -> Result<CommandOutput, RunError>;
}

/// Runs commands on this machine with `tokio::process`: stdin closed, output
/// captured, `kill_on_drop(true)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemRunner;

#[async_trait]
impl CommandRunner for SystemRunner {
    async fn run(
        &self,
        argv: &[String],
        env: &[(String, String)],
        timeout: Duration,
    ) -> Result<CommandOutput, RunError> {
        let (program, args) = argv.split_first().ok_or(RunError::Empty)?;
        let child = Command::new(program)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| RunError::Spawn {
                program: program.clone(),
                source,
            })?;
        // Dropping the wait future on timeout drops the child, which kills it.
        let output = tokio::time::timeout(timeout, child.wait_with_output())
            .await
            .map_err(|_| RunError::Timeout(timeout))?
            .map_err(RunError::Wait)?;
        Ok(CommandOutput {
            exit_code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }
}
