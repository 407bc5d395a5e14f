//! Device classes (TopoLVM's term): what a node offers under one name — a
//! VG, optionally a thin pool in it with an overprovisioning ratio, a reserve
//! kept free, and a small allowlist of `lvcreate` options for its thick LVs
//! (stripes, stripe size, raid1 mirrors). Parsed and checked before any
//! command runs; the options become argv words, never a shell string.
//!
//! A class's capacity ([`ClassCapacity`]) is what a new volume of that
//! class may take: thick, the VG's free space less the reserve, divided by
//! the copies a mirror keeps (and for raid1 at most what the PVs hold with
//! each copy on its own PV, `pvs.rs`); thin, the pool's size × the ratio less the
//! virtual size already allocated in it, and at most the pool's real free
//! data (less the reserve) × the ratio, so a pool that fills up with data
//! takes no more volumes however little is allocated.
use super::attr::VolumeType;
use super::names::{LvName, validate_vg_name};
use super::view::View;
use super::{ErrorKind, Lvm, LvmError};

/// A device class that cannot be served (startup refuses it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ClassError(pub String);

fn bad(msg: impl Into<String>) -> ClassError {
    ClassError(msg.into())
}

const GIB: u64 = 1 << 30;

/// A thin class's ratio when none is given: Cinder's default
/// `max_over_subscription_ratio` (so thin snapshots of an existing
/// `--thin-pool` install keep fitting as they did before classes).
pub const DEFAULT_OVERPROVISION_RATIO: f64 = 20.0;

/// `lvcreate` options of a class's thick LVs (the allowlist).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LvOptions {
    /// `--stripes N` (2–128).
    pub stripes: Option<u32>,
    /// `--stripesize`, bytes (a power of two, 4 KiB–512 MiB).
    pub stripe_size_bytes: Option<u64>,
    /// `--type raid1 --mirrors N` (1–4): N + 1 copies.
    pub raid1_mirrors: Option<u32>,
}

impl LvOptions {
    /// How many copies of each extent the LV keeps.
    pub fn copies(&self) -> u64 {
        1 + u64::from(self.raid1_mirrors.unwrap_or(0))
    }

    /// The type `lvs` will report (a RAID LV is not modelled by the view).
    pub(super) fn volume_type(&self) -> VolumeType {
        match self.raid1_mirrors {
            Some(_) => VolumeType::Raid,
            None => VolumeType::Plain,
        }
    }

    /// The argv words, after `--size`.
    pub fn argv(&self) -> Vec<String> {
        let mut argv = Vec::new();
        if let Some(m) = self.raid1_mirrors {
            argv.extend(["--type".into(), "raid1".into(), "--mirrors".into()]);
            argv.push(m.to_string());
        }
        if let Some(n) = self.stripes {
            argv.extend(["--stripes".into(), n.to_string()]);
        }
        if let Some(b) = self.stripe_size_bytes {
            argv.extend(["--stripesize".into(), format!("{}k", b / 1024)]);
        }
        argv
    }
}

/// One device class of a node.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceClass {
    /// Its name: the StorageClass's `deviceClass` and the volume type of
    /// per-type quota keys (`gigabytes_<name>`).
    pub name: String,
    pub vg: String,
    pub thin_pool: Option<LvName>,
    /// Thin: virtual size allowed per byte of pool (1–100; default
    /// [`DEFAULT_OVERPROVISION_RATIO`]).
    pub overprovision_ratio: f64,
    /// Kept free: never placed on.
    pub spare_bytes: u64,
    pub options: LvOptions,
    pub default: bool,
}

/// The keys `--device-class` takes.
pub const CLASS_KEYS: &str =
    "name, vg, thinPool, overprovisionRatio, spareGb, stripes, stripeSize, type, mirrors, default";

impl DeviceClass {
    /// The class the old `--vg`/`--thin-pool` flags describe: named after
    /// the VG (so volume types, and quota keys, stay what they were).
    pub fn implicit(vg: &str, thin_pool: Option<LvName>) -> Self {
        Self {
            name: vg.to_string(),
            vg: vg.to_string(),
            thin_pool,
            overprovision_ratio: DEFAULT_OVERPROVISION_RATIO,
            spare_bytes: 0,
            options: LvOptions::default(),
            default: true,
        }
    }

    /// Parses `name=fast,vg=vg-nvme,thinPool=pool0,overprovisionRatio=4,…`.
    pub fn parse(spec: &str) -> Result<Self, ClassError> {
        let (mut name, mut vg, mut pool, mut ratio) = (None, None, None, None);
        let (mut spare, mut default, mut ty, mut mirrors) = (0, false, None, None);
        let mut options = LvOptions::default();
        for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| bad(format!("{pair:?} is not key=value (keys: {CLASS_KEYS})")))?;
            let (k, v) = (k.trim(), v.trim());
            let number = |lo: u64, hi: u64| {
                v.parse::<u64>()
                    .ok()
                    .filter(|n| (lo..=hi).contains(n))
                    .ok_or_else(|| bad(format!("{k}={v:?} must be a whole number {lo}–{hi}")))
            };
            match k {
                "name" => name = Some(class_name(v)?),
                "vg" => {
                    validate_vg_name(v).map_err(|e| bad(format!("vg={v:?}: {e}")))?;
                    vg = Some(v.to_string());
                }
                "thinPool" => {
                    let p = LvName::new(v).map_err(|e| bad(format!("thinPool={v:?}: {e}")))?;
                    pool = Some(p);
                }
                "overprovisionRatio" => {
                    let r = v.parse::<f64>().ok().filter(|r| (1.0..=100.0).contains(r));
                    ratio = Some(r.ok_or_else(|| {
                        bad(format!("overprovisionRatio={v:?} must be a number 1–100"))
                    })?);
                }
                "spareGb" => spare = number(0, 1 << 20)? * GIB,
                "stripes" => options.stripes = Some(number(2, 128)? as u32),
                "stripeSize" => options.stripe_size_bytes = Some(stripe_size(v)?),
                "type" => ty = Some(v.to_string()),
                "mirrors" => mirrors = Some(number(1, 4)? as u32),
                "default" => {
                    default = match v {
                        "true" => true,
                        "false" => false,
                        _ => return Err(bad(format!("default={v:?} must be true or false"))),
                    }
                }
                _ => return Err(bad(format!("unknown key {k:?} (keys: {CLASS_KEYS})"))),
            }
        }
        let name = name.ok_or_else(|| bad(format!("{spec:?} has no name=")))?;
        let vg = vg.ok_or_else(|| bad(format!("class {name:?} has no vg=")))?;
        match (ty.as_deref(), mirrors) {
            (None | Some("linear"), None) => {}
            (Some("striped"), None) if options.stripes.is_some() => {}
            (Some("raid1"), m) => options.raid1_mirrors = Some(m.unwrap_or(1)),
            (Some("linear" | "striped") | None, Some(_)) => {
                return Err(bad(format!("class {name:?}: mirrors= needs type=raid1")));
            }
            (Some(other), _) => {
                return Err(bad(format!(
                    "class {name:?}: type={other:?} is not allowed (linear, striped with stripes=, raid1)"
                )));
            }
        }
        if options.raid1_mirrors.is_some() && options.stripes.is_some() {
            return Err(bad(format!(
                "class {name:?}: raid1 and stripes together are not allowed"
            )));
        }
        if options.stripe_size_bytes.is_some() && options.stripes.is_none() {
            return Err(bad(format!("class {name:?}: stripeSize= needs stripes=")));
        }
        if pool.is_some() && options != LvOptions::default() {
            return Err(bad(format!(
                "class {name:?}: lvcreate options apply to thick classes (a thin pool's layout is the pool's)"
            )));
        }
        if pool.is_none() && ratio.is_some() {
            return Err(bad(format!(
                "class {name:?}: overprovisionRatio needs a thinPool"
            )));
        }
        Ok(Self {
            name,
            vg,
            thin_pool: pool,
            overprovision_ratio: ratio.unwrap_or(DEFAULT_OVERPROVISION_RATIO),
            spare_bytes: spare,
            options,
            default,
        })
    }
}

/// Checks a node's classes together: at least one, names unique, exactly
/// one default (a single class is the default).
pub fn check_classes(mut classes: Vec<DeviceClass>) -> Result<Vec<DeviceClass>, ClassError> {
    if classes.is_empty() {
        return Err(bad("no device class (give --vg or --device-class)"));
    }
    for (i, c) in classes.iter().enumerate() {
        if classes[..i].iter().any(|o| o.name == c.name) {
            return Err(bad(format!("device class {:?} is given twice", c.name)));
        }
    }
    if classes.len() == 1 {
        classes[0].default = true;
    }
    match classes.iter().filter(|c| c.default).count() {
        1 => Ok(classes),
        0 => Err(bad("several device classes and none is default=true")),
        _ => Err(bad("more than one device class is default=true")),
    }
}

/// A class name: part of quota keys, so `a-z A-Z 0-9 - _ .`, ≤ 63.
fn class_name(v: &str) -> Result<String, ClassError> {
    let ok = !v.is_empty()
        && v.len() <= 63
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        return Err(bad(format!("name={v:?}: use 1–63 of a-z A-Z 0-9 - _ .")));
    }
    Ok(v.to_string())
}

fn stripe_size(v: &str) -> Result<u64, ClassError> {
    let lower = v.to_ascii_lowercase();
    let (num, unit) = match lower.trim_end_matches(['i', 'b']).strip_suffix('k') {
        Some(n) => (n.to_string(), 1 << 10),
        None => match lower.trim_end_matches(['i', 'b']).strip_suffix('m') {
            Some(n) => (n.to_string(), 1 << 20),
            None => (lower.clone(), 1),
        },
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .filter(|b| b.is_power_of_two() && (4 << 10..=512 << 20).contains(b))
        .ok_or_else(|| {
            bad(format!(
                "stripeSize={v:?} must be a power of two from 4Ki to 512Mi"
            ))
        })
}

/// What a class offers now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassCapacity {
    pub name: String,
    pub vg: String,
    pub vg_size_bytes: u64,
    pub vg_free_bytes: u64,
    pub extent_size_bytes: u64,
    /// Thin: the pool's data size, the data it holds, its metadata use in
    /// hundredths of a percent, the virtual size allocated in it.
    pub pool: Option<PoolCapacity>,
    /// What a new volume of this class may take.
    pub available_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolCapacity {
    pub size_bytes: u64,
    pub data_used_bytes: u64,
    pub metadata_basis_points: u32,
    pub virtual_bytes: u64,
}

fn capacity(class: &DeviceClass, view: &View) -> Result<ClassCapacity, LvmError> {
    let mut out = ClassCapacity {
        name: class.name.clone(),
        vg: class.vg.clone(),
        vg_size_bytes: view.vg.size_bytes,
        vg_free_bytes: view.vg.free_bytes,
        extent_size_bytes: view.vg.extent_size_bytes,
        pool: None,
        available_bytes: view.vg.free_bytes.saturating_sub(class.spare_bytes)
            / class.options.copies(),
    };
    let Some(pool) = &class.thin_pool else {
        return Ok(out);
    };
    let size = match view.lvs.get(pool) {
        Some(k) if k.volume_type == VolumeType::ThinPool => k.size_bytes,
        _ => {
            return Err(LvmError::new(
                ErrorKind::NotFound,
                format!(
                    "thin pool {}/{pool} of device class {:?} not found",
                    class.vg, class.name
                ),
            ));
        }
    };
    let fill = view.pools.get(pool).copied().unwrap_or_default();
    let virtual_bytes = view.thin_virtual_bytes(pool);
    let scaled = |b: u64| (b as f64 * class.overprovision_ratio) as u64;
    let headroom = scaled(size).saturating_sub(virtual_bytes);
    let real = size
        .saturating_sub(fill.data_used_bytes)
        .saturating_sub(class.spare_bytes);
    out.available_bytes = headroom.min(scaled(real));
    out.pool = Some(PoolCapacity {
        size_bytes: size,
        data_used_bytes: fill.data_used_bytes,
        metadata_basis_points: fill.metadata_basis_points,
        virtual_bytes,
    });
    Ok(out)
}

impl Lvm {
    /// `class`'s capacity: on this node's view of its VG when `fresh` is
    /// false and the view is known (no command), else on one `lvs`.
    pub async fn class_capacity(
        &self,
        class: &DeviceClass,
        fresh: bool,
    ) -> Result<ClassCapacity, LvmError> {
        validate_vg_name(&class.vg)?;
        let view = match self.views.get(&class.vg).filter(|_| !fresh) {
            Some(view) => view,
            None => {
                let report = self.report(&class.vg).await?;
                View::of(report.vg, &report.lvs)
            }
        };
        let mut out = capacity(class, &view)?;
        if class.options.raid1_mirrors.is_some() {
            // One more `vgs` (raid classes only): each copy on its own PV.
            let free = self.pv_free(&class.vg).await?;
            let room = super::pvs::raid_room(free, class.options.copies(), out.extent_size_bytes);
            out.available_bytes = out.available_bytes.min(room);
        }
        Ok(out)
    }
}
