//! What this node last knew of each volume group: the last `lvs` report
//! (its LVs, and the VG's size, free space and extent size that every row
//! carries), kept current with the effect of lvsnap's own commands.
//!
//! It saves the report before `lvcreate` and the `vgs` behind a capacity
//! report, under one rule: the view may let a create *proceed*, never
//! refuse it, find it already done, or justify removing anything. lvm2
//! decides every create the view lets through (an LV of that name, a
//! missing origin, too little room: `lvcreate` fails and nothing is made),
//! and any other answer is decided again on a fresh report. A command that
//! failed, a change the view does not model (a thin pool), or a report that
//! ran while a command did, leaves the view unknown until the next report.
//! Changes made behind lvsnap's back are seen at the next report (every
//! `lvs`, the settle pass, the periodic heartbeat).
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use super::attr::VolumeType;
use super::names::LvName;
use super::report::{LvInfo, VgInfo};

/// An LV as the view knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Known {
    pub volume_type: VolumeType,
    pub size_bytes: u64,
    /// A thin LV's pool (its size is virtual, counted against the pool).
    pub pool: Option<LvName>,
}

impl Known {
    pub fn new(volume_type: VolumeType, size_bytes: u64) -> Self {
        Self {
            volume_type,
            size_bytes,
            pool: None,
        }
    }

    /// Bytes it takes from the VG's free space; `None`: not modelled.
    fn allocated(&self) -> Option<u64> {
        match self.volume_type {
            VolumeType::Plain | VolumeType::Origin | VolumeType::Snapshot => Some(self.size_bytes),
            VolumeType::Thin => Some(0),
            _ => None,
        }
    }
}

/// A thin pool's use of its data and metadata, as last reported (lvsnap's
/// own thin creates allocate no data, so they leave it as it is).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct PoolFill {
    pub data_used_bytes: u64,
    /// `metadata_percent` in hundredths of a percent.
    pub metadata_basis_points: u32,
}

/// One VG as last reported, plus lvsnap's own changes since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct View {
    pub vg: VgInfo,
    pub lvs: BTreeMap<LvName, Known>,
    pub pools: BTreeMap<LvName, PoolFill>,
}

impl View {
    pub fn of(vg: VgInfo, report: &[LvInfo]) -> Self {
        let lvs = report
            .iter()
            .map(|lv| {
                let known = Known {
                    volume_type: lv.attr.volume_type,
                    size_bytes: lv.size_bytes,
                    pool: lv.pool.clone(),
                };
                (lv.name.clone(), known)
            })
            .collect();
        let basis_points = |p: Option<f64>| (p.unwrap_or(0.0).clamp(0.0, 100.0) * 100.0) as u32;
        let pools = report
            .iter()
            .filter(|lv| lv.attr.is_thin_pool())
            .map(|lv| {
                let data = basis_points(lv.data_percent);
                let fill = PoolFill {
                    data_used_bytes: (u128::from(lv.size_bytes) * u128::from(data)).div_ceil(10_000)
                        as u64,
                    metadata_basis_points: basis_points(lv.metadata_percent),
                };
                (lv.name.clone(), fill)
            })
            .collect();
        Self { vg, lvs, pools }
    }

    /// The virtual size of the thin LVs in `pool`.
    pub fn thin_virtual_bytes(&self, pool: &LvName) -> u64 {
        self.lvs
            .values()
            .filter(|k| k.pool.as_ref() == Some(pool))
            .map(|k| k.size_bytes)
            .sum()
    }

    /// The view after `effect`; `None` when it cannot say.
    fn after(mut self, effect: Effect) -> Option<Self> {
        match effect {
            Effect::Made { name, known } => {
                let taken = known.allocated()?;
                self.vg.free_bytes = self.vg.free_bytes.checked_sub(taken)?;
                self.lvs.insert(name, known);
            }
            Effect::Removed(name) => {
                let known = self.lvs.remove(&name)?;
                self.vg.free_bytes = self.vg.free_bytes.checked_add(known.allocated()?)?;
            }
            Effect::Resized { name, size_bytes } => {
                let known = self.lvs.get_mut(&name)?;
                let before = known.allocated()?;
                known.size_bytes = size_bytes;
                let after = known.allocated()?;
                let free = self.vg.free_bytes.checked_add(before)?;
                self.vg.free_bytes = free.checked_sub(after)?;
            }
            Effect::Unchanged => {}
            Effect::Unknown => return None,
        }
        Some(self)
    }
}

/// What one of lvsnap's commands did to its VG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Effect {
    Made {
        name: LvName,
        known: Known,
    },
    Removed(LvName),
    Resized {
        name: LvName,
        size_bytes: u64,
    },
    /// Nothing the view holds changed (an activation).
    Unchanged,
    /// Failed, or not modelled: the view is unknown until the next report.
    Unknown,
}

#[derive(Debug, Default)]
struct Slot {
    view: Option<View>,
    /// Changing commands running now.
    running: u32,
    /// Bumped when one starts or ends: a report that saw it change is stale.
    generation: u64,
}

/// The views of every VG this node's LVM layer touched (shared by clones).
#[derive(Debug, Default)]
pub(super) struct Views {
    slots: Mutex<HashMap<String, Slot>>,
}

impl Views {
    fn with<R>(&self, vg: &str, f: impl FnOnce(&mut Slot) -> R) -> Option<R> {
        let mut slots = self.slots.lock().ok()?;
        Some(f(slots.entry(vg.to_string()).or_default()))
    }

    /// The view of `vg`, when known.
    pub fn get(&self, vg: &str) -> Option<View> {
        self.with(vg, |s| s.view.clone()).flatten()
    }

    /// A report of `vg` is about to run: the generation it must find at
    /// the end to be kept.
    pub fn report_starts(&self, vg: &str) -> u64 {
        self.with(vg, |s| s.generation).unwrap_or(0)
    }

    /// Keeps `view` if no changing command ran during the report.
    pub fn report_done(&self, vg: &str, generation: u64, view: View) {
        self.with(vg, |s| {
            if s.running == 0 && s.generation == generation {
                s.view = Some(view);
            }
        });
    }

    /// A command that changes `vg` starts.
    pub fn change_starts(&self, vg: &str) {
        self.with(vg, |s| {
            s.running += 1;
            s.generation += 1;
        });
    }

    /// It ended having done `effect`.
    pub fn change_done(&self, vg: &str, effect: Effect) {
        self.with(vg, |s| {
            s.running = s.running.saturating_sub(1);
            s.generation += 1;
            s.view = s.view.take().and_then(|v| v.after(effect));
        });
    }

    /// Forgets what is known of `vg`.
    #[cfg(test)]
    pub fn forget(&self, vg: &str) {
        self.with(vg, |s| s.view = None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn view() -> View {
        let vg = VgInfo {
            name: "vg0".into(),
            size_bytes: 100 * MIB,
            free_bytes: 92 * MIB,
            extent_size_bytes: 4 * MIB,
        };
        let mut v = View {
            vg,
            lvs: BTreeMap::new(),
            pools: BTreeMap::new(),
        };
        v.lvs.insert(lv("volume-a"), known(VolumeType::Plain, 8));
        v
    }

    fn lv(n: &str) -> LvName {
        LvName::new(n).expect("name")
    }

    fn known(volume_type: VolumeType, mib: u64) -> Known {
        Known::new(volume_type, mib * MIB)
    }

    #[test]
    fn own_changes_move_the_free_space_and_unmodelled_ones_forget() {
        let made = Effect::Made {
            name: lv("_snapshot-a"),
            known: known(VolumeType::Snapshot, 8),
        };
        let v = view().after(made).expect("modelled");
        assert_eq!(v.vg.free_bytes, 84 * MIB);
        let thin = Effect::Made {
            name: lv("volume-t"),
            known: known(VolumeType::Thin, 64),
        };
        let v = v.after(thin).expect("thin takes nothing");
        assert_eq!(v.vg.free_bytes, 84 * MIB);
        let v = v.after(Effect::Removed(lv("_snapshot-a"))).expect("known");
        assert_eq!(v.vg.free_bytes, 92 * MIB);
        let grown = Effect::Resized {
            name: lv("volume-a"),
            size_bytes: 12 * MIB,
        };
        let v = v.after(grown).expect("known");
        assert_eq!(v.vg.free_bytes, 88 * MIB);
        // What the view does not know or model makes it unknown.
        assert_eq!(v.clone().after(Effect::Removed(lv("volume-x"))), None);
        let pool = Effect::Made {
            name: lv("pool"),
            known: known(VolumeType::ThinPool, 8),
        };
        assert_eq!(v.clone().after(pool), None);
        assert_eq!(v.clone().after(Effect::Unknown), None);
        let too_big = Effect::Made {
            name: lv("volume-b"),
            known: known(VolumeType::Plain, 200),
        };
        assert_eq!(v.after(too_big), None, "never below zero");
    }

    #[test]
    fn a_report_that_overlapped_a_change_is_not_kept() {
        let views = Views::default();
        let g = views.report_starts("vg0");
        views.report_done("vg0", g, view());
        assert_eq!(views.get("vg0"), Some(view()));

        // A change during the report: the report may or may not show it.
        views.forget("vg0");
        let g = views.report_starts("vg0");
        views.change_starts("vg0");
        views.change_done("vg0", Effect::Unchanged);
        views.report_done("vg0", g, view());
        assert_eq!(views.get("vg0"), None);

        // A report that started while a change ran, and ended before it did.
        views.change_starts("vg0");
        let g = views.report_starts("vg0");
        views.report_done("vg0", g, view());
        assert_eq!(views.get("vg0"), None);
        views.change_done("vg0", Effect::Unchanged);

        // A failed command forgets what was known.
        let g = views.report_starts("vg0");
        views.report_done("vg0", g, view());
        views.change_starts("vg0");
        views.change_done("vg0", Effect::Unknown);
        assert_eq!(views.get("vg0"), None);
    }
}
