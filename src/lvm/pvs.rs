//! The free space of each PV of a VG (`vgs -o vg_name,pv_name,pv_free`:
//! one row per PV), for what a raid1 class can really take: lvm2 puts each
//! copy on its own PV, so a VG's free space halved is not enough when it
//! sits on one PV.
use serde::Deserialize;

use super::names::validate_vg_name;
use super::ops::report_args;
use super::{Lvm, LvmError};

#[derive(Deserialize)]
struct Report {
    report: Vec<Section>,
}

#[derive(Deserialize)]
struct Section {
    #[serde(default)]
    vg: Vec<Row>,
}

#[derive(Deserialize)]
struct Row {
    vg_name: String,
    #[serde(default)]
    pv_free: String,
}

/// The largest LV of `copies` images (each on its own PV, with one extent
/// of metadata) that PVs with `free` bytes surely hold: the `copies`-th
/// largest PV's free space less an extent (an under-estimate: lvm2 may
/// also split an image over several PVs).
pub(super) fn raid_room(mut free: Vec<u64>, copies: u64, extent: u64) -> u64 {
    free.sort_unstable_by(|a, b| b.cmp(a));
    let k = usize::try_from(copies).unwrap_or(usize::MAX);
    match k.checked_sub(1).and_then(|i| free.get(i)) {
        Some(f) => f.saturating_sub(extent),
        None => 0,
    }
}

impl Lvm {
    /// Free bytes of each PV of `vg`.
    pub async fn pv_free(&self, vg: &str) -> Result<Vec<u64>, LvmError> {
        validate_vg_name(vg)?;
        let argv = report_args("vgs", "vg_name,pv_name,pv_free", vg);
        let out = self.exec("vgs", argv.clone()).await?;
        let parsed: Result<Report, _> = serde_json::from_str(&out);
        let report = parsed.map_err(|e| self.unparsable("vgs", argv.clone(), e.into()))?;
        let mut free = Vec::new();
        for row in report.report.into_iter().flat_map(|s| s.vg) {
            if row.vg_name != vg {
                continue;
            }
            let digits = row.pv_free.trim().trim_end_matches(['B', 'b']);
            let bytes = digits.parse::<u64>().map_err(|_| {
                let e = super::ReportError::Field {
                    field: "pv_free",
                    value: row.pv_free.clone(),
                };
                self.unparsable("vgs", argv.clone(), e)
            })?;
            free.push(bytes);
        }
        Ok(free)
    }
}

#[cfg(test)]
mod tests {
    use super::raid_room;

    #[test]
    fn each_copy_needs_its_own_pv() {
        const MIB: u64 = 1 << 20;
        assert_eq!(raid_room(vec![100 * MIB, 20 * MIB], 2, 4 * MIB), 16 * MIB);
        assert_eq!(raid_room(vec![20 * MIB, 100 * MIB], 2, 4 * MIB), 16 * MIB);
        assert_eq!(
            raid_room(vec![200 * MIB], 2, 4 * MIB),
            0,
            "one PV: no raid1"
        );
        assert_eq!(raid_room(vec![], 1, 4 * MIB), 0);
    }
}
