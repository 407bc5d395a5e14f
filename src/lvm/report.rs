//! `vgs`/`lvs` reports: the fields lvsnap asks for and the parsing of their
//! `--reportformat json --units b --nosuffix` output into typed values.
use serde::Deserialize;

use super::attr::{AttrError, LvAttr};
use super::names::{LvName, LvTag};

/// Fields of `vgs -o`.
pub const VG_FIELDS: &str = "vg_name,vg_size,vg_free,vg_extent_size";
/// Fields of `lvs -o`. Every row also carries its VG's size, free space and
/// extent size, so one `lvs` tells both what a create needs to know of the
/// LVs (the origin, an LV already there) and of the VG (room, rounding).
pub const LV_FIELDS: &str = "vg_name,lv_name,lv_attr,lv_size,origin,origin_size,pool_lv,lv_tags,\
                             data_percent,snap_percent,metadata_percent,lv_time,\
                             vg_size,vg_free,vg_extent_size";

/// A volume group, sizes in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VgInfo {
    pub name: String,
    pub size_bytes: u64,
    pub free_bytes: u64,
    pub extent_size_bytes: u64,
}

impl VgInfo {
    /// `bytes` rounded up to a whole number of extents; `None` on overflow.
    pub fn round_up(&self, bytes: u64) -> Option<u64> {
        round_up(bytes, self.extent_size_bytes)
    }
}

/// `bytes` rounded up to a multiple of `unit` (a zero unit leaves it as is).
pub fn round_up(bytes: u64, unit: u64) -> Option<u64> {
    if unit == 0 {
        return Some(bytes);
    }
    bytes.div_ceil(unit).checked_mul(unit)
}

/// A logical volume as `lvs` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct LvInfo {
    pub name: LvName,
    pub vg: String,
    /// For a thick snapshot: the size of its copy-on-write area.
    pub size_bytes: u64,
    pub attr: LvAttr,
    /// The origin of a snapshot (thick or thin).
    pub origin: Option<LvName>,
    /// For a thick snapshot its origin's size, for a thick origin its own
    /// (lvm2 reports none for thin LVs).
    pub origin_size_bytes: Option<u64>,
    /// The thin pool of a thin LV.
    pub pool: Option<LvName>,
    /// Tags as lvm2 stores them (sorted by lvm2).
    pub tags: Vec<String>,
    /// Used part of a thin pool / thin LV / thick snapshot, in percent.
    pub data_percent: Option<f64>,
    /// Used part of a thick snapshot's COW area, in percent.
    pub snap_percent: Option<f64>,
    /// Used part of a thin pool's metadata, in percent.
    pub metadata_percent: Option<f64>,
    /// When the LV was created (`lv_time`); `None` if lvm2 gave none.
    pub created: Option<chrono::DateTime<chrono::Utc>>,
}

impl LvInfo {
    pub fn has_tag(&self, tag: &LvTag) -> bool {
        self.tags.iter().any(|t| t == tag.as_str())
    }

    /// A thick snapshot, or a thin LV with an origin.
    pub fn is_snapshot(&self) -> bool {
        self.attr.is_thick_snapshot() || (self.attr.is_thin() && self.origin.is_some())
    }

    /// The record ids of this LV's `lvsnap.io/id=` tags.
    pub fn record_ids(&self) -> Vec<uuid::Uuid> {
        self.tags
            .iter()
            .filter_map(|t| LvTag::new(t).ok()?.record_id())
            .collect()
    }
}

/// A report that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("report is not the expected JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("field {field} has unexpected value {value:?}")]
    Field { field: &'static str, value: String },
    #[error(transparent)]
    Attr(#[from] AttrError),
}

#[derive(Deserialize)]
struct Report<T> {
    report: Vec<T>,
}

#[derive(Deserialize)]
struct VgSection {
    #[serde(default)]
    vg: Vec<VgRow>,
}

#[derive(Deserialize)]
struct LvSection {
    #[serde(default)]
    lv: Vec<LvRow>,
}

#[derive(Deserialize)]
struct VgRow {
    vg_name: String,
    vg_size: String,
    vg_free: String,
    vg_extent_size: String,
}

#[derive(Deserialize)]
struct LvRow {
    vg_name: String,
    lv_name: String,
    lv_attr: String,
    lv_size: String,
    #[serde(default)]
    origin: String,
    #[serde(default)]
    origin_size: String,
    #[serde(default)]
    pool_lv: String,
    #[serde(default)]
    lv_tags: String,
    #[serde(default)]
    data_percent: String,
    #[serde(default)]
    snap_percent: String,
    #[serde(default)]
    metadata_percent: String,
    #[serde(default)]
    lv_time: String,
    #[serde(default)]
    vg_size: String,
    #[serde(default)]
    vg_free: String,
    #[serde(default)]
    vg_extent_size: String,
}

impl LvRow {
    /// The VG figures of this row, when the report asked for them.
    fn vg(&self) -> Result<Option<VgInfo>, ReportError> {
        if self.vg_size.trim().is_empty() {
            return Ok(None);
        }
        Ok(Some(VgInfo {
            name: self.vg_name.clone(),
            size_bytes: bytes("vg_size", &self.vg_size)?,
            free_bytes: bytes("vg_free", &self.vg_free)?,
            extent_size_bytes: bytes("vg_extent_size", &self.vg_extent_size)?,
        }))
    }
}

fn bytes(field: &'static str, value: &str) -> Result<u64, ReportError> {
    // `--nosuffix` drops the unit; tolerate a trailing "B" all the same.
    let digits = value.trim().trim_end_matches(['B', 'b']);
    digits.parse().map_err(|_| ReportError::Field {
        field,
        value: value.to_string(),
    })
}

fn opt_bytes(field: &'static str, value: &str) -> Result<Option<u64>, ReportError> {
    if value.trim().is_empty() {
        return Ok(None);
    }
    bytes(field, value).map(Some)
}

fn percent(field: &'static str, value: &str) -> Result<Option<f64>, ReportError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    value.parse().map(Some).map_err(|_| ReportError::Field {
        field,
        value: value.to_string(),
    })
}

/// `lv_time` as lvm2 prints it by default (`2026-12-01 21:12:30 +0000`).
fn lv_time(value: &str) -> Result<Option<chrono::DateTime<chrono::Utc>>, ReportError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    chrono::DateTime::parse_from_str(value, "%Y-%m-%d %H:%M:%S %z")
        .map(|t| Some(t.with_timezone(&chrono::Utc)))
        .map_err(|_| ReportError::Field {
            field: "lv_time",
            value: value.to_string(),
        })
}

fn opt_lv_name(field: &'static str, value: &str) -> Result<Option<LvName>, ReportError> {
    if value.is_empty() {
        return Ok(None);
    }
    LvName::new(value)
        .map(Some)
        .map_err(|_| ReportError::Field {
            field,
            value: value.to_string(),
        })
}

/// Parses `vgs --reportformat json` output.
pub fn parse_vgs(json: &str) -> Result<Vec<VgInfo>, ReportError> {
    let report: Report<VgSection> = serde_json::from_str(json)?;
    let rows = report.report.into_iter().flat_map(|s| s.vg);
    rows.map(|r| {
        Ok(VgInfo {
            size_bytes: bytes("vg_size", &r.vg_size)?,
            free_bytes: bytes("vg_free", &r.vg_free)?,
            extent_size_bytes: bytes("vg_extent_size", &r.vg_extent_size)?,
            name: r.vg_name,
        })
    })
    .collect()
}

/// Parses `lvs --reportformat json` output with [`LV_FIELDS`]. Rows whose
/// name lvsnap could never have created (hidden LVs, names with reserved
/// parts) are skipped rather than failing the whole report.
pub fn parse_lvs(json: &str) -> Result<Vec<LvInfo>, ReportError> {
    parse_lv_report(json).map(|(lvs, _)| lvs)
}

/// [`parse_lvs`], and the VG figures its rows carry (`None`: no row had
/// them, e.g. a VG without LVs). A report of one VG only.
pub fn parse_lv_report(json: &str) -> Result<(Vec<LvInfo>, Option<VgInfo>), ReportError> {
    let report: Report<LvSection> = serde_json::from_str(json)?;
    let rows = report.report.into_iter().flat_map(|s| s.lv);
    let mut out = Vec::new();
    let mut vg = None;
    for r in rows {
        if vg.is_none() {
            vg = r.vg()?;
        }
        let Ok(name) = LvName::new(&r.lv_name) else {
            tracing::debug!(lv = %r.lv_name, "skipping an LV whose name lvsnap cannot use");
            continue;
        };
        out.push(LvInfo {
            name,
            size_bytes: bytes("lv_size", &r.lv_size)?,
            attr: LvAttr::parse(&r.lv_attr)?,
            origin: opt_lv_name("origin", &r.origin)?,
            origin_size_bytes: opt_bytes("origin_size", &r.origin_size)?,
            pool: opt_lv_name("pool_lv", &r.pool_lv)?,
            tags: r
                .lv_tags
                .split(',')
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect(),
            data_percent: percent("data_percent", &r.data_percent)?,
            snap_percent: percent("snap_percent", &r.snap_percent)?,
            metadata_percent: percent("metadata_percent", &r.metadata_percent)?,
            created: lv_time(&r.lv_time)?,
            vg: r.vg_name,
        });
    }
    Ok((out, vg))
}
