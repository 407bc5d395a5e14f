//! `lvsnap bench`: figures for the driver's own cost, its concurrency and
//! scale, and its memory and disk footprint (issue #8). Every call goes over
//! real gRPC on a Unix socket, to a driver started in this process (or a
//! running one, `--endpoint`). Benchmarks measure; the only things checked
//! here are correctness lines (quota never over-committed, every record
//! listed), which make the run fail.
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

pub mod concurrency;
pub mod footprint;
pub mod group_freeze;
pub mod harness;
pub mod metrics;
pub mod overhead;
pub mod real_lvm;
pub mod render;
pub mod scale;

/// Latency percentiles over a set of samples, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Latency {
    pub n: usize,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Latency {
    /// Nearest-rank percentiles (p99 of 20 samples is the largest one).
    pub fn of(samples: &[Duration]) -> Latency {
        if samples.is_empty() {
            return Latency::default();
        }
        let mut sorted = samples.to_vec();
        sorted.sort();
        let n = sorted.len();
        let rank = |p: f64| {
            let r = (p * n as f64).ceil() as usize;
            ms(sorted[r.clamp(1, n) - 1])
        };
        let total: Duration = sorted.iter().sum();
        Latency {
            n,
            p50_ms: rank(0.50),
            p90_ms: rank(0.90),
            p99_ms: rank(0.99),
            max_ms: ms(sorted[n - 1]),
            mean_ms: ms(total) / n as f64,
        }
    }
}

/// Milliseconds as a float.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A section that ran, or why it did not.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "value")]
pub enum Outcome<T> {
    Done(T),
    Skipped(String),
}

/// Memory of a process, from `/proc/<pid>/status`, in KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Memory {
    pub rss_kib: u64,
    pub hwm_kib: u64,
}

/// Reads VmRSS and VmHWM of `pid` ("self" for this process).
pub fn memory_of(pid: &str) -> std::io::Result<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_status(&status).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("/proc/{pid}/status has no VmRSS/VmHWM"),
        )
    })
}

/// The VmRSS and VmHWM lines of a `/proc/<pid>/status` text.
pub fn parse_status(text: &str) -> Option<Memory> {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
    };
    Some(Memory {
        rss_kib: field("VmRSS:")?,
        hwm_kib: field("VmHWM:")?,
    })
}

/// A scratch directory, removed when dropped.
#[derive(Debug)]
pub struct WorkDir {
    pub path: PathBuf,
}

impl WorkDir {
    /// Creates `<base>/lvsnap-bench-<pid>-<label>`.
    pub fn new(base: &Path, label: &str) -> std::io::Result<WorkDir> {
        let path = base.join(format!("lvsnap-bench-{}-{label}", std::process::id()));
        if path.exists() {
            std::fs::remove_dir_all(&path)?;
        }
        std::fs::create_dir_all(&path)?;
        Ok(WorkDir { path })
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The whole report, printed as a table or as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// "release" or "debug": the build of this binary.
    pub build: &'static str,
    pub short: bool,
    pub overhead: Vec<overhead::OverheadRow>,
    pub real_lvm: Outcome<real_lvm::RealLvm>,
    pub concurrency: Vec<concurrency::ConcurrencyRow>,
    pub scale: Outcome<scale::Scale>,
    /// The same listing over the Kubernetes store (fake API in process,
    /// the controller reading from its watch cache).
    pub scale_kube: Outcome<scale::Scale>,
    pub footprint: Outcome<footprint::Footprint>,
    pub metrics: Outcome<Vec<metrics::ScrapeRow>>,
    /// Correctness lines that did not hold (the run then exits non-zero).
    pub failures: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let samples: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let l = Latency::of(&samples);
        assert_eq!(l.n, 100);
        assert_eq!(l.p50_ms, 50.0);
        assert_eq!(l.p90_ms, 90.0);
        assert_eq!(l.p99_ms, 99.0);
        assert_eq!(l.max_ms, 100.0);
        assert!((l.mean_ms - 50.5).abs() < 1e-9);
        let few = Latency::of(&[Duration::from_millis(3), Duration::from_millis(1)]);
        assert_eq!((few.p50_ms, few.p99_ms), (1.0, 3.0));
        assert_eq!(Latency::of(&[]), Latency::default());
    }

    #[test]
    fn proc_status_lines() {
        let text = "Name:\tlvsnap\nVmHWM:\t   12345 kB\nVmRSS:\t    9876 kB\nThreads:\t3\n";
        assert_eq!(
            parse_status(text),
            Some(Memory {
                rss_kib: 9876,
                hwm_kib: 12345
            })
        );
        assert_eq!(parse_status("Name:\tx\nVmRSS:\t1 kB\n"), None);
        let me = memory_of("self").expect("own status");
        assert!(me.rss_kib > 0 && me.hwm_kib >= me.rss_kib);
    }
}
