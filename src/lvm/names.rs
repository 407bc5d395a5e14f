//! LVM names and tags, checked against lvm2's own rules before any command is
//! built, and Cinder's naming scheme on top of them.
//!
//! lvm2 (2.03, `lib/misc/lvm-string.c`) accepts a VG or LV name when it is
//! non-empty, at most 127 bytes, made of `a-z A-Z 0-9 + _ . -`, does not start
//! with `-` and is not `.` or `..`. LV names must also not start with the
//! reserved prefixes `snapshot` or `pvmove`, nor contain any of the component
//! suffixes lvm2 gives to hidden sub-LVs ([`RESERVED_LV_SUBSTRINGS`]).
//!
//! Cinder names a volume's LV `volume-<id>` and a snapshot's `snapshot-<id>`;
//! the latter is reserved, so any name starting with `snapshot` gets a `_`
//! prepended ([`LvName::escape`]) and loses it again on the way back
//! ([`LvName::unescape`]).
use std::fmt;

use uuid::Uuid;

/// lvm2's `NAME_LEN` (128) counts the terminating NUL.
pub const MAX_NAME_LEN: usize = 127;
/// Upper bound lvsnap puts on a tag (lvm2 itself sets none).
pub const MAX_TAG_LEN: usize = 1024;
/// LV names may not start with these.
pub const RESERVED_LV_PREFIXES: [&str; 2] = ["pvmove", "snapshot"];
/// LV names may not contain these anywhere (lvm2 2.03.16's list: component
/// suffixes of cache, writecache, integrity, mirror, raid, thin and VDO LVs,
/// plus `_pmspare` and `_vorigin`).
pub const RESERVED_LV_SUBSTRINGS: [&str; 17] = [
    "_cdata", "_cmeta", "_corig", "_cpool", "_cvol", "_wcorig", "_imeta", "_iorig", "_mimage",
    "_mlog", "_rimage", "_rmeta", "_tdata", "_tmeta", "_vdata", "_pmspare", "_vorigin",
];
/// Prefix of every tag lvsnap puts on an LV.
pub const TAG_PREFIX: &str = "lvsnap.io/";
const RECORD_TAG_PREFIX: &str = "lvsnap.io/id=";
const VOLUME_PREFIX: &str = "volume-";
const SNAPSHOT_PREFIX: &str = "snapshot-";

/// Why a name or tag was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?}: {reason}")]
pub struct NameError {
    /// "volume group name", "logical volume name" or "tag".
    pub what: &'static str,
    pub value: String,
    pub reason: &'static str,
}

fn name_error(what: &'static str, value: &str, reason: &'static str) -> NameError {
    NameError {
        what,
        value: value.to_string(),
        reason,
    }
}

fn check_name_common(what: &'static str, name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(name_error(what, name, "must not be empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(name_error(what, name, "must be at most 127 characters"));
    }
    if name.starts_with('-') {
        return Err(name_error(what, name, "must not start with '-'"));
    }
    if name == "." || name == ".." {
        return Err(name_error(what, name, "must not be '.' or '..'"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'_' | b'.' | b'-'))
    {
        return Err(name_error(
            what,
            name,
            "may only contain a-z A-Z 0-9 + _ . -",
        ));
    }
    Ok(())
}

/// Checks a volume group name against lvm2's rules.
pub fn validate_vg_name(name: &str) -> Result<(), NameError> {
    check_name_common("volume group name", name)
}

/// A logical volume name that lvm2 accepts (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LvName(String);

/// What an lvsnap LV name says about its LV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LvRole {
    /// `volume-<id>`
    Volume(Uuid),
    /// `_snapshot-<id>`
    Snapshot(Uuid),
}

impl LvName {
    /// Validates `name` as it is: a name starting with `snapshot` is refused
    /// (use [`LvName::escape`] for Cinder's escaping).
    pub fn new(name: &str) -> Result<Self, NameError> {
        const WHAT: &str = "logical volume name";
        check_name_common(WHAT, name)?;
        if RESERVED_LV_PREFIXES.iter().any(|p| name.starts_with(p)) {
            return Err(name_error(
                WHAT,
                name,
                "must not start with 'snapshot' or 'pvmove'",
            ));
        }
        if RESERVED_LV_SUBSTRINGS.iter().any(|s| name.contains(s)) {
            return Err(name_error(
                WHAT,
                name,
                "must not contain an lvm2 component suffix such as _tdata or _mlog",
            ));
        }
        Ok(Self(name.to_string()))
    }

    /// Cinder's escape: a name starting with `snapshot` gets `_` prepended;
    /// the result is then validated.
    pub fn escape(name: &str) -> Result<Self, NameError> {
        if name.starts_with("snapshot") {
            Self::new(&format!("_{name}"))
        } else {
            Self::new(name)
        }
    }

    /// The name before [`LvName::escape`]: `_snapshot…` becomes `snapshot…`.
    pub fn unescape(&self) -> &str {
        match self.0.strip_prefix('_') {
            Some(rest) if rest.starts_with("snapshot") => rest,
            _ => &self.0,
        }
    }

    /// The LV of volume `id`: `volume-<id>`.
    pub fn volume(id: Uuid) -> Self {
        Self(format!("{VOLUME_PREFIX}{}", id.hyphenated()))
    }

    /// The LV of snapshot `id`: `snapshot-<id>` escaped, so `_snapshot-<id>`.
    pub fn snapshot(id: Uuid) -> Self {
        Self(format!("_{SNAPSHOT_PREFIX}{}", id.hyphenated()))
    }

    /// Whether this is one of lvsnap's names, and for which record.
    pub fn role(&self) -> Option<LvRole> {
        if let Some(id) = self.0.strip_prefix(VOLUME_PREFIX) {
            return parse_canonical_uuid(id).map(LvRole::Volume);
        }
        let id = self.0.strip_prefix('_')?.strip_prefix(SNAPSHOT_PREFIX)?;
        parse_canonical_uuid(id).map(LvRole::Snapshot)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Only the lower-case hyphenated form lvsnap itself writes.
fn parse_canonical_uuid(s: &str) -> Option<Uuid> {
    let id = Uuid::try_parse(s).ok()?;
    (id.hyphenated().to_string() == s).then_some(id)
}

impl fmt::Display for LvName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for LvName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for LvName {
    type Error = NameError;
    fn try_from(value: &str) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

/// An LV tag lvm2 accepts: `a-z A-Z 0-9 _ + . - / = ! : & #`, not empty, at
/// most [`MAX_TAG_LEN`] bytes, and (lvsnap's own rule, so that a tag can never
/// be read as an option) not starting with `-`.
///
/// lvsnap's scheme: `lvsnap.io/id=<uuid>` ([`LvTag::record`]) ties an LV to
/// the record (volume or snapshot) whose id it carries, so that after a crash
/// every LV can be traced back to its record, and every `lvsnap.io/` tag
/// marks an LV as lvsnap's.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LvTag(String);

impl LvTag {
    pub fn new(tag: &str) -> Result<Self, NameError> {
        const WHAT: &str = "tag";
        if tag.is_empty() {
            return Err(name_error(WHAT, tag, "must not be empty"));
        }
        if tag.len() > MAX_TAG_LEN {
            return Err(name_error(WHAT, tag, "must be at most 1024 characters"));
        }
        if tag.starts_with('-') {
            return Err(name_error(WHAT, tag, "must not start with '-'"));
        }
        let allowed = |b: u8| b.is_ascii_alphanumeric() || b"_+.-/=!:&#".contains(&b);
        if !tag.bytes().all(allowed) {
            return Err(name_error(
                WHAT,
                tag,
                "may only contain a-z A-Z 0-9 _ + . - / = ! : & #",
            ));
        }
        Ok(Self(tag.to_string()))
    }

    /// The tag tying an LV to record `id`: `lvsnap.io/id=<id>`.
    pub fn record(id: Uuid) -> Self {
        Self(format!("{RECORD_TAG_PREFIX}{}", id.hyphenated()))
    }

    /// The record id of a [`LvTag::record`] tag.
    pub fn record_id(&self) -> Option<Uuid> {
        self.0
            .strip_prefix(RECORD_TAG_PREFIX)
            .and_then(parse_canonical_uuid)
    }

    /// Whether lvsnap put this tag on (it starts with `lvsnap.io/`).
    pub fn is_lvsnap(&self) -> bool {
        self.0.starts_with(TAG_PREFIX)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LvTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `/dev/mapper/<vg>-<lv>`, with every `-` inside either name doubled, as
/// device-mapper names LVM's devices.
pub fn device_mapper_path(vg: &str, lv: &LvName) -> String {
    format!(
        "/dev/mapper/{}-{}",
        vg.replace('-', "--"),
        lv.as_str().replace('-', "--")
    )
}
