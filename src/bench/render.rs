//! The report as plain-text tables (the JSON form is the serde form).
use std::fmt::Write as _;

use super::{Latency, Memory, Outcome, Report};

fn lat(l: &Latency) -> String {
    format!(
        "{:>8.3} {:>8.3} {:>8.3} {:>8.3}",
        l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms
    )
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn mem(m: &Outcome<Memory>) -> String {
    match m {
        Outcome::Done(m) => format!("RSS {}  (peak {})", mib(m.rss_kib), mib(m.hwm_kib)),
        Outcome::Skipped(why) => why.clone(),
    }
}

pub fn table(r: &Report) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "lvsnap bench ({} build{})",
        r.build,
        if r.short { ", --short" } else { "" }
    );

    let _ = writeln!(
        o,
        "\n1. Controller overhead: CreateSnapshot / DeleteSnapshot over gRPC, instant fake LVM (ms)"
    );
    let _ = writeln!(
        o,
        "{:<34} {:<8} {:>5}  {:>8} {:>8} {:>8} {:>8}",
        "store", "call", "n", "p50", "p90", "p99", "max"
    );
    for row in &r.overhead {
        for (call, l) in [
            ("create", &row.create),
            ("delete", &row.delete),
            ("both", &row.round_trip),
        ] {
            let _ = writeln!(o, "{:<34} {call:<8} {:>5}  {}", row.store, l.n, lat(l));
        }
        if row.slow_calls > 0 {
            let _ = writeln!(
                o,
                "{:<34} {} of {} calls took over {} ms",
                row.store,
                row.slow_calls,
                row.create.n + row.delete.n,
                super::overhead::SLOW.as_millis()
            );
        }
    }

    let _ = writeln!(
        o,
        "\n2. Real LVM: driver end to end vs bare lvcreate/lvremove (ms)"
    );
    match &r.real_lvm {
        Outcome::Skipped(why) => {
            let _ = writeln!(o, "{why}");
        }
        Outcome::Done(x) => {
            let _ = writeln!(
                o,
                "{:<34} {:>5}  {:>8} {:>8} {:>8} {:>8}",
                format!("VG {}", x.vg),
                "n",
                "p50",
                "p90",
                "p99",
                "max"
            );
            for (what, l) in [
                ("driver CreateSnapshot", &x.driver.create),
                ("bare lvcreate --snapshot", &x.bare_create),
                ("driver DeleteSnapshot", &x.driver.delete),
                ("bare lvremove", &x.bare_delete),
            ] {
                let _ = writeln!(o, "{what:<30} {:>5}  {}", l.n, lat(l));
            }
            let _ = writeln!(
                o,
                "ratio (p50 driver / p50 bare): create {:.2}x, delete {:.2}x",
                x.ratio_create, x.ratio_delete
            );
            for (what, l) in [
                ("group of 2: members frozen", &x.group.frozen),
                ("CreateVolumeGroupSnapshot", &x.group.create),
                ("2 single snapshots: between", &x.group.single_gap),
            ] {
                let _ = writeln!(o, "{what:<30} {:>5}  {}", l.n, lat(l));
            }
            let _ = writeln!(o, "LVM commands per create+delete (node executor):");
            for p in &x.profile {
                let _ = writeln!(
                    o,
                    "  {:<10} {:>5.1} calls {:>9.1} ms",
                    p.program, p.calls_per_op, p.ms_per_op
                );
            }
        }
    }

    let _ = writeln!(
        o,
        "\n3. Concurrency: C concurrent CreateSnapshot, quota snapshots=ceil(C/2), fake LVM"
    );
    let _ = writeln!(
        o,
        "{:<34} {:>4} {:>8} {:>9}  {:>8} {:>8} {:>8} {:>8}  {:>3} {:>9} {:>6} {:>8} {:>5}",
        "store",
        "C",
        "wall ms",
        "calls/s",
        "p50",
        "p90",
        "p99",
        "max",
        "ok",
        "EXHAUSTED",
        "in_use",
        "reserved",
        "check"
    );
    for c in &r.concurrency {
        let _ = writeln!(
            o,
            "{:<34} {:>4} {:>8.1} {:>9.1}  {}  {:>3} {:>9} {:>6} {:>8} {:>5}",
            c.store,
            c.calls,
            c.wall_ms,
            c.calls_per_s,
            lat(&c.latency),
            c.succeeded,
            c.exhausted,
            c.in_use,
            c.reserved,
            if c.correct { "ok" } else { "FAIL" }
        );
    }

    let _ = writeln!(o, "\n4. Scale: ListSnapshots, pages of 500");
    scale_table(&mut o, &r.scale);
    scale_table(&mut o, &r.scale_kube);

    let _ = writeln!(o, "\n5. Footprint");
    match &r.footprint {
        Outcome::Skipped(why) => {
            let _ = writeln!(o, "{why}");
        }
        Outcome::Done(f) => {
            let _ = writeln!(
                o,
                "binary {} ({}): {:.1} MB ({} bytes)",
                f.binary.display(),
                f.binary_build,
                f.binary_bytes as f64 / 1e6,
                f.binary_bytes
            );
            for (what, m) in [
                ("controller, idle", &f.controller_idle),
                ("node, idle", &f.node_idle),
                ("all-in-one, idle", &f.all_in_one_idle),
                ("all-in-one, after scale", &f.all_in_one_after_scale),
                ("controller, after scale", &f.controller_after_scale),
            ] {
                let _ = writeln!(o, "{what:<26} {}", mem(m));
            }
            if let Outcome::Done(l) = &f.controller_walk {
                let _ = writeln!(
                    o,
                    "controller ListSnapshots over the Kubernetes store: {} pages, p50 {:.1} ms, max {:.1} ms",
                    l.n, l.p50_ms, l.max_ms
                );
            }
        }
    }

    let _ = writeln!(o);
    if r.failures.is_empty() {
        let _ = writeln!(o, "correctness: all checks held");
    } else {
        for f in &r.failures {
            let _ = writeln!(o, "FAILED: {f}");
        }
    }
    let _ = writeln!(
        o,
        "\n6. Metrics: one /metrics scrape (records, quota, node gauges)"
    );
    match &r.metrics {
        Outcome::Skipped(why) => {
            let _ = writeln!(o, "{why}");
        }
        Outcome::Done(rows) => {
            let _ = writeln!(
                o,
                "{:<24} {:>8} {:>7}  {:>8} {:>8} {:>8} {:>8}  {:>9} {:>8}",
                "store", "records", "scrapes", "p50 ms", "p90", "p99", "max", "bytes", "samples"
            );
            for m in rows {
                let _ = writeln!(
                    o,
                    "{:<24} {:>8} {:>7}  {}  {:>9} {:>8}",
                    m.store,
                    m.records,
                    m.scrapes,
                    lat(&m.latency),
                    m.bytes,
                    m.samples
                );
            }
        }
    }
    o
}

fn scale_table(o: &mut String, scale: &Outcome<super::scale::Scale>) {
    match scale {
        Outcome::Skipped(why) => {
            let _ = writeln!(o, "{why}");
        }
        Outcome::Done(s) => {
            let _ = writeln!(o, "store {}: {}", s.store, s.how);
            let _ = writeln!(
                o,
                "{:>8} {:>5}  {:>8} {:>8} {:>8} {:>8}  {:>9} {:>10} {:>10} {:>10} {:>10}",
                "records",
                "pages",
                "page p50",
                "p90",
                "p99",
                "max",
                "walk ms",
                "inserts/s",
                "store",
                "RSS",
                "peak RSS"
            );
            for row in &s.rows {
                let _ = writeln!(
                    o,
                    "{:>8} {:>5}  {}  {:>9.1} {:>10.0} {:>10} {:>10} {:>10}",
                    row.records,
                    row.pages,
                    lat(&row.page),
                    row.walk_ms,
                    row.insert_per_s,
                    format!("{:.1} MiB", row.store_bytes as f64 / 1048576.0),
                    mib(row.memory.rss_kib),
                    mib(row.memory.hwm_kib)
                );
            }
            let _ = writeln!(o, "(RSS: this process: driver, executor and bench client)");
        }
    }
}
