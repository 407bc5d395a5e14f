//! The host side of the data path: mount table reading, and the host tools
//! (`blkid`, `mkfs.*`, `mount`, `umount`, `resize2fs`, `xfs_growfs`) run as
//! argv through the same runner as LVM (never a shell).
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::lvm::{CommandRunner, SystemRunner};

/// A data-path failure, classified once for the CSI layer.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    Internal(String),
}

/// One line of /proc/self/mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// "major:minor" of the mounted filesystem's device.
    pub dev: String,
    /// The path inside that filesystem that is mounted (`/` or, for a bind
    /// mount, the bound subtree or file, e.g. `/dm-3`).
    pub root: String,
    pub mount_point: PathBuf,
    pub options: String,
    pub fs_type: String,
    pub source: String,
}

impl MountEntry {
    pub fn read_only(&self) -> bool {
        self.options.split(',').any(|o| o == "ro")
    }
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8)
        {
            out.push(v as char);
            i += 4;
            continue;
        }
        out.push(b[i] as char);
        i += 1;
    }
    out
}

/// Parses /proc/self/mountinfo text.
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let l: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            Some(MountEntry {
                dev: l.get(2)?.to_string(),
                root: unescape(l.get(3)?),
                mount_point: PathBuf::from(unescape(l.get(4)?)),
                options: l.get(5)?.to_string(),
                fs_type: r.first()?.to_string(),
                source: unescape(r.get(1).unwrap_or(&"")),
            })
        })
        .collect()
}

/// The topmost mount at `path`, if `path` is a mount point.
pub fn mount_at(path: &Path) -> Result<Option<MountEntry>, NodeError> {
    // mountinfo lists canonical paths.
    let path = &std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| NodeError::Internal(format!("reading /proc/self/mountinfo: {e}")))?;
    Ok(parse_mountinfo(&text)
        .into_iter()
        .rev()
        .find(|m| m.mount_point == *path))
}

/// Runs host tools.
#[derive(Clone)]
pub struct Host {
    runner: Arc<dyn CommandRunner>,
    timeout: Duration,
}

impl Default for Host {
    fn default() -> Self {
        Self {
            runner: Arc::new(SystemRunner),
            timeout: Duration::from_secs(300),
        }
    }
}

/// What a command printed, and how it exited.
pub struct Ran {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Host {
    /// Runs argv; any exit code is returned (the caller classifies).
    pub async fn run(&self, argv: &[&str]) -> Result<Ran, NodeError> {
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        let env = vec![("LC_ALL".to_string(), "C".to_string())];
        let out = self
            .runner
            .run(&argv, &env, self.timeout)
            .await
            .map_err(|e| NodeError::Internal(format!("{}: {e}", argv[0])))?;
        Ok(Ran {
            code: out.exit_code,
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }

    /// Runs argv and requires exit code 0.
    pub async fn check(&self, argv: &[&str]) -> Result<String, NodeError> {
        let ran = self.run(argv).await?;
        if ran.code != Some(0) {
            tracing::error!(?argv, code = ?ran.code, stderr = %ran.stderr.trim(), "host command failed");
            return Err(NodeError::Internal(format!(
                "{} failed ({:?}): {}",
                argv.join(" "),
                ran.code,
                ran.stderr.trim()
            )));
        }
        Ok(ran.stdout)
    }

    /// The filesystem (or other signature) on `device`; None when blank.
    /// `blkid -p` probes the device itself (no cache); exit 2 = nothing found.
    pub async fn signature(&self, device: &Path) -> Result<Option<String>, NodeError> {
        let dev = device.to_string_lossy();
        let ran = self
            .run(&[
                "blkid", "-p", "-s", "TYPE", "-s", "PTTYPE", "-o", "export", &dev,
            ])
            .await?;
        match ran.code {
            Some(2) => Ok(None),
            Some(0) => Ok(ran
                .stdout
                .lines()
                .find_map(|l| {
                    l.strip_prefix("TYPE=")
                        .or_else(|| l.strip_prefix("PTTYPE="))
                })
                .map(str::to_string)
                .or(Some("unknown".into()))),
            _ => Err(NodeError::Internal(format!(
                "blkid {dev}: {}",
                ran.stderr.trim()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_are_parsed_and_unescaped() {
        let text = "36 35 98:0 /mnt1 /mnt/a\\040b rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n\
                    40 22 0:5 /dm-3 /var/lib/t ro,relatime shared:2 - devtmpfs udev rw\n\
                    garbage line\n";
        let m = parse_mountinfo(text);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].mount_point, PathBuf::from("/mnt/a b"));
        assert_eq!((m[0].dev.as_str(), m[0].root.as_str()), ("98:0", "/mnt1"));
        assert_eq!(
            (m[0].fs_type.as_str(), m[0].source.as_str()),
            ("ext3", "/dev/root")
        );
        assert!(!m[0].read_only());
        assert_eq!(m[1].root, "/dm-3");
        assert!(m[1].read_only());
    }
}
