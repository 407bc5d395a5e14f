//! The node side's gauges, copied from the node's last fill report at
//! scrape time: no LVM command runs for a scrape (the fill watch reads the
//! LVs on its own interval, the capacity report the VG).
use futures::future::BoxFuture;

use super::{Families, Source, labels};
use crate::node::FillState;

/// The volume group, thin pools, thick snapshots and orphans of one node.
pub struct NodeSource {
    fill: FillState,
}

impl NodeSource {
    pub fn new(fill: FillState) -> Self {
        Self { fill }
    }
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Source for NodeSource {
    fn refresh<'a>(&'a self, f: &'a Families) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let Ok(r) = self.fill.read().map(|r| r.clone()) else {
                return;
            };
            for family in [
                &f.vg_size,
                &f.vg_free,
                &f.cow_size,
                &f.snapshot_invalid,
                &f.class_available,
            ] {
                family.clear();
            }
            for family in [&f.thinpool_data, &f.thinpool_metadata, &f.cow_used] {
                family.clear();
            }
            let vg = r.vg_name.as_str();
            if let Some(info) = &r.vg {
                let l = labels([("vg", &info.name)]);
                f.vg_size.get_or_create(&l).set(clamp(info.size_bytes));
                f.vg_free.get_or_create(&l).set(clamp(info.free_bytes));
            }
            for (class, bytes) in &r.classes {
                let l = labels([("class", class)]);
                f.class_available.get_or_create(&l).set(clamp(*bytes));
            }
            for p in &r.thin_pools {
                let l = labels([("vg", p.vg.as_str()), ("pool", &p.name)]);
                if let Some(v) = p.data_percent {
                    f.thinpool_data.get_or_create(&l).set(v);
                }
                if let Some(v) = p.metadata_percent {
                    f.thinpool_metadata.get_or_create(&l).set(v);
                }
            }
            for s in &r.snapshots {
                let l = labels([("snapshot_id", &s.id)]);
                if let Some(v) = s.cow_used_percent {
                    f.cow_used.get_or_create(&l).set(v);
                }
                f.cow_size.get_or_create(&l).set(clamp(s.cow_size_bytes));
                f.snapshot_invalid
                    .get_or_create(&l)
                    .set(i64::from(s.invalid));
            }
            if let Some(n) = r.orphans
                && !vg.is_empty()
            {
                f.orphan_lvs
                    .get_or_create(&labels([("vg", vg)]))
                    .set(clamp(n as u64));
            }
            for result in ["extended", "no_space", "failed"] {
                // A counter mirrored from the node's own count.
                let n = r.autoextend.get(result).copied().unwrap_or(0);
                let c = f.autoextend.get_or_create(&labels([("result", result)]));
                let seen = c.get();
                if n > seen {
                    c.inc_by(n - seen);
                }
            }
            if let Some(at) = r.refreshed {
                f.refresh_age
                    .get_or_create(&labels([("vg", vg)]))
                    .set(at.elapsed().as_secs_f64());
            }
        })
    }
}
