//! Thick snapshots' copy-on-write autoextend, as LVM's dmeventd does on a
//! host (`snapshot_autoextend_threshold` / `_percent`): when the COW area's
//! use crosses `threshold` percent, the node grows it by `percent` percent
//! of its size, up to what the origin can use. Set per VolumeSnapshotClass
//! (`autoextendThreshold`, `autoextendPercent`) and recorded on the snapshot.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Defaults: extend at 80 % by 20 % (dmeventd's usual 70/20 is for hosts
/// where it checks every 10 s; lvsnap checks at `--fill-interval`).
pub const DEFAULT_THRESHOLD: u8 = 80;
pub const DEFAULT_PERCENT: u16 = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Autoextend {
    /// COW use (percent, 1–99) at which the area is extended; 0 = never.
    pub threshold: u8,
    /// By how much (percent of the area's current size, 1–100).
    pub percent: u16,
}

impl Default for Autoextend {
    fn default() -> Self {
        Self {
            threshold: DEFAULT_THRESHOLD,
            percent: DEFAULT_PERCENT,
        }
    }
}

impl Autoextend {
    pub fn enabled(&self) -> bool {
        self.threshold > 0 && self.percent > 0
    }

    /// The COW size to grow to from `current` bytes, capped at `cap`;
    /// `None` when `used_percent` is under the threshold, autoextend is off,
    /// or the area is already at the cap.
    pub fn target(&self, used_percent: f64, current: u64, cap: u64) -> Option<u64> {
        if !self.enabled() || used_percent < f64::from(self.threshold) || current >= cap {
            return None;
        }
        let grow = (current / 100)
            .saturating_mul(u64::from(self.percent))
            .max(1);
        Some(current.saturating_add(grow).min(cap))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_by_percent_up_to_the_cap() {
        let a = Autoextend::default();
        assert_eq!(a.target(79.9, 1000, 10_000), None);
        assert_eq!(a.target(80.0, 1000, 10_000), Some(1200));
        assert_eq!(a.target(95.0, 9000, 10_000), Some(10_000));
        assert_eq!(a.target(99.0, 10_000, 10_000), None);
        let off = Autoextend {
            threshold: 0,
            percent: 20,
        };
        assert_eq!(off.target(100.0, 1000, 10_000), None);
    }
}
