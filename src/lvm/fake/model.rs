//! The in-memory volume groups behind [`super::FakeRunner`]: just enough of
//! lvm2's behaviour (extents, free space, origins, thin pools, tags, the
//! activation skip flag, lvm2's error texts) for the LVM layer above it to
//! behave as on a real host.
use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::lvm::CommandOutput;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Kind {
    Linear,
    ThickSnapshot {
        origin: String,
    },
    ThinPool,
    Thin {
        pool: String,
        origin: Option<String>,
    },
}

#[derive(Debug, Clone)]
pub(super) struct Lv {
    pub size: u64,
    pub kind: Kind,
    pub tags: BTreeSet<String>,
    pub active: bool,
    pub skip: bool,
    /// `lv_time`: when it was created.
    pub created: chrono::DateTime<chrono::Utc>,
    /// Open (mounted, or held by a process): attr character 6 is `o`.
    pub open: bool,
    /// Used percent a test set: a thick snapshot's COW area, a thin pool's
    /// data and metadata (`data_percent`/`snap_percent`, `metadata_percent`).
    pub fill: Option<(f64, Option<f64>)>,
    /// LVM invalidated this thick snapshot (attr state `I`).
    pub invalid: bool,
    /// Held by `dmsetup suspend`: attr character 5 is `s`.
    pub suspended: bool,
}

#[derive(Debug, Clone)]
pub(super) struct Vg {
    pub size: u64,
    pub extent: u64,
    pub lvs: BTreeMap<String, Lv>,
}

/// lvm2's usual failure exit code.
const FAILED: i32 = 5;

pub(super) fn fail(stderr: String) -> CommandOutput {
    CommandOutput::failed(FAILED, format!("  {stderr}\n"))
}

pub(super) fn vg_not_found(vg: &str) -> CommandOutput {
    fail(format!(
        "Volume group \"{vg}\" not found\n  Cannot process volume group {vg}"
    ))
}

pub(super) fn lv_not_found(vg: &str, lv: &str) -> CommandOutput {
    fail(format!("Failed to find logical volume \"{vg}/{lv}\""))
}

impl Vg {
    pub fn new(size: u64, extent: u64) -> Self {
        Self {
            size: size / extent * extent,
            extent,
            lvs: BTreeMap::new(),
        }
    }

    /// Extents allocated from the PVs: linear LVs, COW areas, pool data, one
    /// metadata extent per pool and one spare while any pool exists.
    pub fn used(&self) -> u64 {
        let mut used = 0;
        let mut pools = 0;
        for lv in self.lvs.values() {
            match lv.kind {
                Kind::Linear | Kind::ThickSnapshot { .. } => used += lv.size,
                Kind::ThinPool => {
                    used += lv.size + self.extent;
                    pools += 1;
                }
                Kind::Thin { .. } => {}
            }
        }
        used + if pools > 0 { self.extent } else { 0 }
    }

    pub fn free(&self) -> u64 {
        self.size.saturating_sub(self.used())
    }

    pub fn round(&self, bytes: u64) -> u64 {
        bytes.div_ceil(self.extent) * self.extent
    }

    /// `Err` with lvm2's message when `bytes` more do not fit.
    pub fn check_space(&self, vg: &str, bytes: u64) -> Result<(), CommandOutput> {
        let (needed, free) = (bytes / self.extent, self.free() / self.extent);
        if needed > free {
            return Err(fail(format!(
                "Volume group \"{vg}\" has insufficient free space ({free} extents): {needed} required."
            )));
        }
        Ok(())
    }

    fn has_thick_snapshots(&self, name: &str) -> bool {
        self.lvs
            .values()
            .any(|lv| matches!(&lv.kind, Kind::ThickSnapshot { origin } if origin == name))
    }

    fn attr(&self, name: &str, lv: &Lv) -> String {
        let active = match (lv.active, lv.suspended) {
            (true, true) => 's',
            (true, false) => 'a',
            (false, _) => '-',
        };
        let skip = if lv.skip { 'k' } else { '-' };
        let o = if lv.open { 'o' } else { '-' };
        match &lv.kind {
            Kind::Linear if self.has_thick_snapshots(name) => format!("owi-{active}{o}s---"),
            Kind::Linear => format!("-wi-{active}{o}----"),
            Kind::ThickSnapshot { .. } if lv.invalid => format!("swi-I{o}s---"),
            Kind::ThickSnapshot { .. } => format!("swi-{active}{o}s---"),
            Kind::ThinPool => {
                let open = self.lvs.values().any(|o| {
                    o.active && matches!(&o.kind, Kind::Thin { pool, .. } if pool == name)
                });
                format!("twi-{active}{}tz--", if open { 'o' } else { '-' })
            }
            Kind::Thin { .. } => format!("Vwi-{active}{o}tz-{skip}"),
        }
    }

    /// One `lvs --reportformat json` row with every field of `LV_FIELDS`.
    pub fn lv_row(&self, vg: &str, name: &str, lv: &Lv) -> Value {
        let (origin, pool) = match &lv.kind {
            Kind::ThickSnapshot { origin } => (origin.clone(), String::new()),
            Kind::Thin { pool, origin } => (origin.clone().unwrap_or_default(), pool.clone()),
            _ => (String::new(), String::new()),
        };
        // As lvm2 2.03 reports them: origin_size only on thick snapshots and
        // thick origins; percentages on everything but linear LVs; metadata
        // use only on pools (10.94 % is a fresh 64 MiB pool's).
        let origin_size = match &lv.kind {
            Kind::ThickSnapshot { origin } => self.lvs.get(origin).map(|o| o.size),
            Kind::Linear if self.has_thick_snapshots(name) => Some(lv.size),
            _ => None,
        };
        let origin_size = origin_size.map(|s| s.to_string()).unwrap_or_default();
        let pct = |v: f64| format!("{v:.2}");
        let (data, meta) = match (&lv.kind, lv.fill) {
            (Kind::Linear, _) => (String::new(), String::new()),
            (Kind::ThinPool, None) => ("0.00".into(), "10.94".into()),
            (Kind::ThinPool, Some((d, m))) => (pct(d), pct(m.unwrap_or(10.94))),
            (_, None) => ("0.00".into(), String::new()),
            (_, Some((d, _))) => (pct(d), String::new()),
        };
        let snap = data.clone();
        let tags: Vec<&str> = lv.tags.iter().map(String::as_str).collect();
        json!({
            "vg_name": vg, "lv_name": name, "lv_attr": self.attr(name, lv),
            "lv_size": lv.size.to_string(), "origin": origin, "origin_size": origin_size,
            "pool_lv": pool, "lv_tags": tags.join(","), "data_percent": data,
            "snap_percent": snap, "metadata_percent": meta,
            "lv_time": lv.created.format("%Y-%m-%d %H:%M:%S %z").to_string(),
            "vg_size": self.size.to_string(), "vg_free": self.free().to_string(),
            "vg_extent_size": self.extent.to_string(),
        })
    }

    pub fn vg_row(&self, vg: &str) -> Value {
        json!({
            "vg_name": vg, "vg_size": self.size.to_string(), "vg_free": self.free().to_string(),
            "vg_extent_size": self.extent.to_string(),
        })
    }

    /// `vgs -o vg_name,pv_name,pv_free`: the fake's VG is two PVs of half
    /// its free space each (whole extents).
    pub fn pv_rows(&self, vg: &str) -> Vec<Value> {
        let half = self.free() / 2 / self.extent.max(1) * self.extent.max(1);
        (0..2)
            .map(|i| json!({"vg_name": vg, "pv_name": format!("/dev/fake-{vg}-{i}"), "pv_free": half.to_string()}))
            .collect()
    }

    /// `lvremove -f`: as lvm2, removes a thick origin's snapshots and a thin
    /// pool's thin LVs along with it.
    pub fn remove(&mut self, name: &str) {
        let dependants: Vec<String> = self
            .lvs
            .iter()
            .filter(|(_, lv)| match &lv.kind {
                Kind::ThickSnapshot { origin } => origin == name,
                Kind::Thin { pool, .. } => pool == name,
                _ => false,
            })
            .map(|(n, _)| n.clone())
            .collect();
        for d in dependants {
            self.lvs.remove(&d);
        }
        self.lvs.remove(name);
        // A thin snapshot outlives its origin and loses its origin field.
        for lv in self.lvs.values_mut() {
            if let Kind::Thin { origin, .. } = &mut lv.kind {
                if origin.as_deref() == Some(name) {
                    *origin = None;
                }
            }
        }
    }
}

/// `{"report":[{"<section>":[rows…]}]}`, indented as lvm2 prints it.
pub(super) fn report(section: &str, rows: Vec<Value>) -> String {
    let report = json!({ "report": [ { section: rows } ] });
    serde_json::to_string_pretty(&report).unwrap_or_default() + "\n"
}
