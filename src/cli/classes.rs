//! The node's device classes from the command line: `--device-class`
//! (repeatable) and the old `--vg`/`--thin-pool` (an implicit class named
//! after the VG, the default unless another says `default=true`), checked
//! together, then against the host's LVM before anything is served.
use super::NodeArgs;
use crate::config::{self, ConfigError};
use crate::lvm::{DeviceClass, LvName, Lvm, check_classes};

const FLAG: &str = "device-class";

/// The classes the flags describe, checked together (names, options, one
/// default); no LVM command runs.
pub(super) fn device_classes(args: &NodeArgs) -> Result<Vec<DeviceClass>, ConfigError> {
    let mut classes = args
        .device_classes
        .iter()
        .map(|spec| DeviceClass::parse(spec).map_err(|e| ConfigError::new(FLAG, e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(path) = &args.device_class_file {
        classes.extend(from_file(path)?);
    }
    if let Some(vg) = &args.vg {
        let vg = config::validate_vg_name(vg)?;
        let pool = args
            .thin_pool
            .as_deref()
            .map(|p| {
                LvName::new(p).map_err(|e| ConfigError::new("thin-pool", format!("{p:?}: {e}")))
            })
            .transpose()?;
        let mut implicit = DeviceClass::implicit(&vg, pool);
        implicit.default = !classes.iter().any(|c| c.default);
        classes.insert(0, implicit);
    } else if args.thin_pool.is_some() {
        return Err(ConfigError::new(
            "thin-pool",
            "needs --vg (with --device-class, give thinPool= in the class)",
        ));
    }
    if classes.is_empty() {
        return Err(ConfigError::new(
            "vg",
            "is required (or set LVSNAP_VG), unless --device-class names the classes",
        ));
    }
    check_classes(classes).map_err(|e| ConfigError::new(FLAG, e.to_string()))
}

/// The classes of a `--device-class-file`: one per line, `#` comments.
fn from_file(path: &std::path::Path) -> Result<Vec<DeviceClass>, ConfigError> {
    const FILE: &str = "device-class-file";
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(FILE, format!("{}: {e}", path.display())))?;
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .map(|(n, l)| {
            DeviceClass::parse(l)
                .map_err(|e| ConfigError::new(FILE, format!("{} line {n}: {e}", path.display())))
        })
        .collect()
}

/// Each class's VG must exist, and its thin pool be a thin pool in it.
pub(super) async fn check_on_host(lvm: &Lvm, classes: &[DeviceClass]) -> Result<(), ConfigError> {
    for c in classes {
        let flag = if c.name == c.vg && c.default {
            "vg"
        } else {
            FLAG
        };
        lvm.vg(&c.vg).await.map_err(|e| {
            ConfigError::new(
                flag,
                format!(
                    "device class {:?}: volume group {:?} is not usable: {e}",
                    c.name, c.vg
                ),
            )
        })?;
        let Some(pool) = &c.thin_pool else {
            continue;
        };
        let found = lvm
            .lv(&c.vg, pool)
            .await
            .map_err(|e| ConfigError::new(flag, format!("device class {:?}: {e}", c.name)))?;
        if !found.is_some_and(|lv| lv.attr.is_thin_pool()) {
            return Err(ConfigError::new(
                flag,
                format!(
                    "device class {:?}: {}/{pool} is not a thin pool",
                    c.name, c.vg
                ),
            ));
        }
    }
    Ok(())
}
