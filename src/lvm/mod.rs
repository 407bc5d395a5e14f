//! The LVM layer: the only code in lvsnap that runs LVM commands.
//!
//! This first part holds what needs no command: LVM's name and tag rules with
//! Cinder's naming on top, the typed errors and their classification from
//! stderr, and the parsing of `vgs`/`lvs` JSON reports.
mod attr;
mod error;
mod names;
mod report;
#[cfg(test)]
mod tests;

pub use attr::{AttrError, LvAttr, LvState, VolumeType};
pub use error::{CommandFailure, ErrorKind, LvmError, classify};
pub use names::{
    LvName, LvRole, LvTag, MAX_NAME_LEN, MAX_TAG_LEN, NameError, RESERVED_LV_PREFIXES,
    RESERVED_LV_SUBSTRINGS, TAG_PREFIX, device_mapper_path, validate_vg_name,
};
pub use report::{
    LV_FIELDS, LvInfo, ReportError, VG_FIELDS, VgInfo, parse_lvs, parse_vgs, round_up,
};
