//! Request validation that knows no proto: CSI names, parameter maps, and the
//! typed StorageClass / VolumeSnapshotClass parameters (DESIGN §7).
use std::collections::HashMap;

/// Why a request is malformed (mapped to INVALID_ARGUMENT).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

fn invalid(msg: impl Into<String>) -> Invalid {
    Invalid(msg.into())
}

/// CSI's limit on names and ids, in bytes.
pub const MAX_NAME_BYTES: usize = 128;
/// CSI's limit on a whole parameter or secret map, in bytes.
pub const MAX_MAP_BYTES: usize = 4096;
/// The prefix of parameters added by the Kubernetes sidecars.
pub const K8S_PREFIX: &str = "csi.storage.k8s.io/";

pub const PVC_NAMESPACE: &str = "csi.storage.k8s.io/pvc/namespace";
pub const PVC_NAME: &str = "csi.storage.k8s.io/pvc/name";
pub const SNAPSHOT_NAMESPACE: &str = "csi.storage.k8s.io/volumesnapshot/namespace";
pub const SNAPSHOT_NAME: &str = "csi.storage.k8s.io/volumesnapshot/name";

/// Checks a CSI name or id: present, at most 128 bytes, no banned control characters.
pub fn check_name(field: &str, value: &str) -> Result<(), Invalid> {
    if value.is_empty() {
        return Err(invalid(format!("{field} is required")));
    }
    if value.len() > MAX_NAME_BYTES {
        return Err(invalid(format!(
            "{field} is {} bytes; at most {MAX_NAME_BYTES} are allowed",
            value.len()
        )));
    }
    if let Some(c) = value.chars().find(|c| banned(*c)) {
        return Err(invalid(format!(
            "{field} contains the control character U+{:04X}",
            c as u32
        )));
    }
    Ok(())
}

/// The control characters CSI forbids in names: U+0000–0008, 000B, 000C,
/// 000E–001F, 007F–009F (tab, newline and carriage return are allowed).
fn banned(c: char) -> bool {
    matches!(c as u32, 0x00..=0x08 | 0x0B | 0x0C | 0x0E..=0x1F | 0x7F..=0x9F)
}

/// Checks a map's total size (keys and values) against CSI's 4 KiB limit.
pub fn check_map(field: &str, map: &HashMap<String, String>) -> Result<(), Invalid> {
    let bytes: usize = map.iter().map(|(k, v)| k.len() + v.len()).sum();
    if bytes > MAX_MAP_BYTES {
        return Err(invalid(format!(
            "{field} is {bytes} bytes; at most {MAX_MAP_BYTES} are allowed"
        )));
    }
    Ok(())
}

/// The project (Kubernetes namespace) a request is charged to.
pub fn project(
    params: &HashMap<String, String>,
    key: &str,
    default: &str,
) -> Result<String, Invalid> {
    match params.get(key) {
        None => Ok(default.to_string()),
        Some(ns) if is_dns_label(ns) => Ok(ns.clone()),
        Some(ns) => Err(invalid(format!(
            "{key}={ns:?} is not a valid namespace name"
        ))),
    }
}

/// RFC 1123 label: what Kubernetes accepts as a namespace name.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Thick (linear) or thin LVs, when a StorageClass says which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LvType {
    Thick,
    Thin,
}

/// StorageClass parameters of CreateVolume.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VolumeParams {
    /// Volume type for per-type quota keys (default: the device class).
    pub volume_type: Option<String>,
    /// The device class (default: each node's default class).
    pub device_class: Option<String>,
    /// The old way to choose: a VG (and thin pool) by name.
    pub vg: Option<String>,
    pub thin_pool: Option<String>,
    /// `lvType`: thick even on a node with a thin pool, or thin only.
    pub lv_type: Option<LvType>,
    pub fs_type: Option<String>,
}

impl VolumeParams {
    pub fn parse(params: &HashMap<String, String>) -> Result<Self, Invalid> {
        let mut out = VolumeParams::default();
        for (k, v) in params {
            match k.as_str() {
                "type" => out.volume_type = Some(type_name(k, v)?),
                "deviceClass" => out.device_class = Some(type_name(k, v)?),
                "vg" => out.vg = Some(non_empty(k, v)?),
                "thinPool" => out.thin_pool = Some(non_empty(k, v)?),
                "lvType" => out.lv_type = Some(lv_type(v)?),
                "fsType" | "csi.storage.k8s.io/fstype" => out.fs_type = Some(fs_type(v)?),
                k if k.starts_with(K8S_PREFIX) => {}
                k => {
                    return Err(invalid(format!(
                        "unknown StorageClass parameter {k:?} (known: deviceClass, type, lvType, fsType, and the older vg, thinPool)"
                    )));
                }
            }
        }
        if out.device_class.is_some() && (out.vg.is_some() || out.thin_pool.is_some()) {
            return Err(invalid(
                "deviceClass and vg/thinPool contradict each other: a device class names its VG and pool on each node; use deviceClass alone",
            ));
        }
        if out.lv_type == Some(LvType::Thick) && out.thin_pool.is_some() {
            return Err(invalid(
                "lvType=thick and a thinPool contradict each other; leave thinPool out for thick volumes",
            ));
        }
        Ok(out)
    }
}

/// How large a thick snapshot's copy-on-write area is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SnapshotSize {
    /// The origin's size (Cinder's default: a full-size COW area).
    #[default]
    Full,
    /// A percentage of the origin's size, 1–100.
    Percent(u8),
    /// A fixed number of bytes.
    Bytes(u64),
}

/// VolumeSnapshotClass parameters of CreateSnapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotParams {
    pub size: SnapshotSize,
    /// Cinder's `force=false`: the source must not be in use.
    pub require_detached: bool,
    /// The VolumeSnapshot's name, recorded as the display name.
    pub display_name: Option<String>,
    /// Thick snapshots: `autoextendThreshold` (0–99, 0 = off; default 80)
    /// and `autoextendPercent` (1–100; default 20).
    pub autoextend: crate::records::Autoextend,
}

impl SnapshotParams {
    pub fn parse(params: &HashMap<String, String>) -> Result<Self, Invalid> {
        let mut out = SnapshotParams::default();
        for (k, v) in params {
            match k.as_str() {
                "snapshotSize" => out.size = snapshot_size(v)?,
                "requireDetached" => out.require_detached = strict_bool(k, v)?,
                "autoextendThreshold" => out.autoextend.threshold = bounded(k, v, 0, 99)?,
                "autoextendPercent" => out.autoextend.percent = bounded(k, v, 1, 100)?,
                SNAPSHOT_NAME => out.display_name = Some(display_name(v)),
                k if k.starts_with(K8S_PREFIX) => {}
                k => {
                    return Err(invalid(format!(
                        "unknown VolumeSnapshotClass parameter {k:?} (known: snapshotSize, requireDetached, autoextendThreshold, autoextendPercent)"
                    )));
                }
            }
        }
        Ok(out)
    }
}

/// Cinder trims display names and caps them at 255 characters.
fn display_name(v: &str) -> String {
    v.trim().chars().take(255).collect()
}

fn non_empty(k: &str, v: &str) -> Result<String, Invalid> {
    let v = v.trim();
    if v.is_empty() {
        return Err(invalid(format!("parameter {k} must not be empty")));
    }
    Ok(v.to_string())
}

/// A volume type becomes part of quota keys (`snapshots_<type>`).
fn type_name(k: &str, v: &str) -> Result<String, Invalid> {
    let v = non_empty(k, v)?;
    if v.len() > 63
        || !v
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(invalid(format!(
            "parameter {k}={v:?}: use at most 63 of a-z A-Z 0-9 - _ ."
        )));
    }
    Ok(v)
}

fn fs_type(v: &str) -> Result<String, Invalid> {
    match v {
        "ext4" | "xfs" => Ok(v.to_string()),
        other => Err(invalid(format!(
            "fsType {other:?} is not supported (ext4, xfs)"
        ))),
    }
}

fn lv_type(v: &str) -> Result<LvType, Invalid> {
    match v {
        "thick" => Ok(LvType::Thick),
        "thin" => Ok(LvType::Thin),
        other => Err(invalid(format!(
            "lvType {other:?} is not supported (thick, thin)"
        ))),
    }
}

fn strict_bool(k: &str, v: &str) -> Result<bool, Invalid> {
    match v {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(format!(
            "parameter {k}={v:?} must be \"true\" or \"false\""
        ))),
    }
}

/// An integer parameter within `lo..=hi`.
fn bounded<T: TryFrom<u64>>(k: &str, v: &str, lo: u64, hi: u64) -> Result<T, Invalid> {
    v.trim()
        .parse::<u64>()
        .ok()
        .filter(|n| (lo..=hi).contains(n))
        .and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| {
            invalid(format!(
                "parameter {k}={v:?} must be a whole number from {lo} to {hi}"
            ))
        })
}

fn snapshot_size(v: &str) -> Result<SnapshotSize, Invalid> {
    let bad = || {
        invalid(format!(
            "snapshotSize={v:?}: use a percentage (1%–100%) or a size in bytes or with a K/M/G/T(i) suffix"
        ))
    };
    if let Some(p) = v.strip_suffix('%') {
        let n: u8 = p.trim().parse().map_err(|_| bad())?;
        return match n {
            100 => Ok(SnapshotSize::Full),
            1..=99 => Ok(SnapshotSize::Percent(n)),
            _ => Err(bad()),
        };
    }
    parse_quantity(v).map(SnapshotSize::Bytes).ok_or_else(bad)
}

/// Parses a byte count with an optional binary suffix (K, M, G, T, with or
/// without `i`). Zero and overflow are rejected.
pub fn parse_quantity(v: &str) -> Option<u64> {
    let v = v.trim();
    let v = v.strip_suffix('i').unwrap_or(v);
    let (num, shift) = match v.as_bytes().last()? {
        b'K' | b'k' => (&v[..v.len() - 1], 10),
        b'M' => (&v[..v.len() - 1], 20),
        b'G' => (&v[..v.len() - 1], 30),
        b'T' => (&v[..v.len() - 1], 40),
        _ => (v, 0),
    };
    num.parse::<u64>()
        .ok()?
        .checked_mul(1 << shift)
        .filter(|n| *n > 0)
}

#[cfg(test)]
#[path = "params_tests.rs"]
mod tests;
