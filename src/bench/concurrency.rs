//! Section 3: C concurrent CreateSnapshot calls of one volume against a
//! project limit of `snapshots = ceil(C/2)`. Throughput, latencies, and the
//! correctness line: exactly the limit succeeds, the rest is
//! RESOURCE_EXHAUSTED, and the project's usage ends at `in_use = limit`,
//! `reserved = 0` (no over-commit, no leaked reservation).
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Serialize;

use super::Latency;
use super::harness::{Target, snapshot_request};
use crate::records::LvsQuotaSpec;

#[derive(Debug, Clone, Serialize)]
pub struct ConcurrencyRow {
    pub store: String,
    pub calls: usize,
    pub limit: i64,
    pub wall_ms: f64,
    pub calls_per_s: f64,
    pub latency: Latency,
    pub succeeded: usize,
    pub exhausted: usize,
    /// Any other answer (each one is a failure of the run).
    pub other_errors: usize,
    pub in_use: i64,
    /// Summed over every quota key of the project.
    pub reserved: i64,
    pub correct: bool,
}

/// The correctness line: what must hold after C calls against `limit`.
pub fn check(row: &ConcurrencyRow) -> Result<(), String> {
    let want_ok = usize::try_from(row.limit).unwrap_or(0).min(row.calls);
    let want_exhausted = row.calls - want_ok;
    if row.succeeded == want_ok
        && row.exhausted == want_exhausted
        && row.other_errors == 0
        && row.in_use == row.limit.min(row.calls as i64)
        && row.reserved == 0
    {
        Ok(())
    } else {
        Err(format!(
            "concurrency {} C={}: succeeded {} (want {want_ok}), RESOURCE_EXHAUSTED {} (want {want_exhausted}), \
             other errors {}, in_use {} (want {}), reserved {} (want 0)",
            row.store,
            row.calls,
            row.succeeded,
            row.exhausted,
            row.other_errors,
            row.in_use,
            row.limit,
            row.reserved
        ))
    }
}

/// Runs C = each of `levels` against one target whose store the bench can
/// reach; each level in its own project.
pub async fn run(
    target: &mut Target,
    store_label: &str,
    levels: &[usize],
) -> anyhow::Result<Vec<ConcurrencyRow>> {
    let store = target
        .store
        .clone()
        .context("the concurrency section needs the driver's store (--state-dir)")?;
    let label = store_label.split_whitespace().next().unwrap_or("store");
    let volume = target
        .create_volume(&format!("bench-conc-{label}-vol"), 4 << 20, "bench-conc")
        .await?;
    let mut rows = Vec::new();
    for &c in levels {
        let project = format!("bench-c{c}-{label}");
        let limit = i64::try_from(c.div_ceil(2))?;
        store
            .set_quota_limits(
                &project,
                &LvsQuotaSpec {
                    hard: BTreeMap::from([("snapshots".into(), limit), ("gigabytes".into(), -1)]),
                },
            )
            .await?;
        let start = Instant::now();
        let calls: Vec<_> = (0..c)
            .map(|i| {
                let mut client = target.clients.controller.clone();
                let req = snapshot_request(&format!("bench-c{c}-{i}"), &volume, &project);
                tokio::spawn(async move {
                    let t = Instant::now();
                    let answer = client.create_snapshot(req).await;
                    (t.elapsed(), answer)
                })
            })
            .collect();
        let mut latencies: Vec<Duration> = Vec::with_capacity(c);
        let (mut ok, mut exhausted, mut other) = (Vec::new(), 0, 0);
        for call in calls {
            let (took, answer) = call.await?;
            latencies.push(took);
            match answer {
                Ok(r) => match r.into_inner().snapshot {
                    Some(s) if s.ready_to_use => ok.push(s.snapshot_id),
                    _ => other += 1,
                },
                Err(s) if s.code() == tonic::Code::ResourceExhausted => exhausted += 1,
                Err(s) => {
                    eprintln!("lvsnap bench: C={c}: unexpected answer: {s}");
                    other += 1;
                }
            }
        }
        let wall = start.elapsed();
        let usage = store
            .get_quota(&project)
            .await?
            .map(|q| q.status.usage)
            .unwrap_or_default();
        let row = ConcurrencyRow {
            store: store_label.into(),
            calls: c,
            limit,
            wall_ms: super::ms(wall),
            calls_per_s: c as f64 / wall.as_secs_f64().max(1e-9),
            latency: Latency::of(&latencies),
            succeeded: ok.len(),
            exhausted,
            other_errors: other,
            in_use: usage.get("snapshots").map_or(0, |u| u.in_use),
            reserved: usage.values().map(|u| u.reserved).sum(),
            correct: false,
        };
        let correct = check(&row).is_ok();
        rows.push(ConcurrencyRow { correct, ..row });
        // Leave the volume free of snapshots for the next level.
        for id in ok {
            target
                .clients
                .controller
                .delete_snapshot(crate::proto::v1::DeleteSnapshotRequest {
                    snapshot_id: id.clone(),
                    ..Default::default()
                })
                .await
                .with_context(|| format!("DeleteSnapshot {id}"))?;
        }
    }
    target.delete_volume(&volume).await?;
    if let Some(fake) = &target.fake {
        fake.clear_calls();
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(succeeded: usize, exhausted: usize, in_use: i64, reserved: i64) -> ConcurrencyRow {
        ConcurrencyRow {
            store: "sqlite".into(),
            calls: 10,
            limit: 5,
            wall_ms: 1.0,
            calls_per_s: 1.0,
            latency: Latency::default(),
            succeeded,
            exhausted,
            other_errors: 0,
            in_use,
            reserved,
            correct: false,
        }
    }

    #[test]
    fn the_correctness_line_catches_over_commit_and_leaks() {
        assert!(check(&row(5, 5, 5, 0)).is_ok());
        // Over-commit: one call too many got through.
        assert!(check(&row(6, 4, 6, 0)).is_err());
        // Usage out of step with the answers.
        assert!(check(&row(5, 5, 6, 0)).is_err());
        // A reservation left behind.
        assert!(check(&row(5, 5, 5, 1)).is_err());
        // A failure that was not RESOURCE_EXHAUSTED.
        assert!(
            check(&ConcurrencyRow {
                other_errors: 1,
                ..row(5, 4, 5, 0)
            })
            .is_err()
        );
        let one = ConcurrencyRow {
            calls: 1,
            limit: 1,
            ..row(1, 0, 1, 0)
        };
        assert!(check(&one).is_ok());
    }
}
