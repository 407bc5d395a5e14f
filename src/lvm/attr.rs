//! `lv_attr`, the ten characters `lvs` prints, decoded into typed fields
//! (lvs(8), "The lv_attr bits are").

/// Character 1: the volume type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VolumeType {
    /// `-`: a plain linear (or striped) LV.
    Plain,
    /// `o`: the origin of thick snapshots.
    Origin,
    /// `O`: an origin with a merging snapshot.
    MergingOrigin,
    /// `s`: a thick (copy-on-write) snapshot.
    Snapshot,
    /// `S`: a merging thick snapshot.
    MergingSnapshot,
    /// `V`: a thin volume (thin snapshots too: they have an origin).
    Thin,
    /// `t`: a thin pool.
    ThinPool,
    /// `T`: a thin pool's data sub-LV.
    ThinPoolData,
    /// `e`: RAID or pool metadata, or the pool metadata spare.
    Metadata,
    /// `C`: a cache LV.
    Cache,
    /// `m`/`M`: a mirror.
    Mirror,
    /// `r`/`R`: a RAID LV.
    Raid,
    /// `p`: pvmove.
    Pvmove,
    /// `v`: virtual.
    Virtual,
    /// `i`/`I`: a mirror or RAID image.
    Image,
    /// `l`: a mirror log.
    MirrorLog,
    /// `c`: under conversion.
    Conversion,
    /// `d`/`D`: VDO pool or its data.
    Vdo,
    /// Anything this version of lvsnap does not know.
    Unknown(char),
}

/// Character 5: the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LvState {
    /// `-`
    Inactive,
    /// `a`
    Active,
    /// `h`
    Historical,
    /// `s`
    Suspended,
    /// `I`: an invalid (overflowed or failed) thick snapshot.
    InvalidSnapshot,
    /// `S`: an invalid suspended snapshot.
    InvalidSuspendedSnapshot,
    /// `m`/`M`: a snapshot merge failed.
    MergeFailed,
    /// `d`: mapped device present without tables.
    NoTable,
    /// `i`: mapped device present with an inactive table.
    InactiveTable,
    /// `c`/`C`: thin pool check needed.
    CheckNeeded,
    /// `X` or anything unknown.
    Unknown(char),
}

/// The decoded `lv_attr`; `raw` keeps the ten characters as printed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LvAttr {
    pub raw: String,
    pub volume_type: VolumeType,
    /// Character 2 is `w`.
    pub writable: bool,
    pub state: LvState,
    /// Character 6 is `o`.
    pub open: bool,
    /// Character 7: target type (`s`napshot, `t`hin, `C`ache, …; `-` none).
    pub target: char,
    /// Character 8 is `z`: new blocks are zeroed.
    pub zero: bool,
    /// Character 9: health (`-` fine; `p`artial, `D`ata space out, …).
    pub health: char,
    /// Character 10 is `k`: the activation skip flag is set.
    pub activation_skip: bool,
}

/// `lv_attr` was not ten ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unexpected lv_attr {0:?} (want 10 characters)")]
pub struct AttrError(pub String);

impl LvAttr {
    pub fn parse(raw: &str) -> Result<Self, AttrError> {
        let c: Vec<char> = raw.chars().collect();
        if c.len() != 10 || !raw.is_ascii() {
            return Err(AttrError(raw.to_string()));
        }
        let volume_type = match c[0] {
            '-' => VolumeType::Plain,
            'o' => VolumeType::Origin,
            'O' => VolumeType::MergingOrigin,
            's' => VolumeType::Snapshot,
            'S' => VolumeType::MergingSnapshot,
            'V' => VolumeType::Thin,
            't' => VolumeType::ThinPool,
            'T' => VolumeType::ThinPoolData,
            'e' => VolumeType::Metadata,
            'C' => VolumeType::Cache,
            'm' | 'M' => VolumeType::Mirror,
            'r' | 'R' => VolumeType::Raid,
            'p' => VolumeType::Pvmove,
            'v' => VolumeType::Virtual,
            'i' | 'I' => VolumeType::Image,
            'l' => VolumeType::MirrorLog,
            'c' => VolumeType::Conversion,
            'd' | 'D' => VolumeType::Vdo,
            other => VolumeType::Unknown(other),
        };
        let state = match c[4] {
            '-' => LvState::Inactive,
            'a' => LvState::Active,
            'h' => LvState::Historical,
            's' => LvState::Suspended,
            'I' => LvState::InvalidSnapshot,
            'S' => LvState::InvalidSuspendedSnapshot,
            'm' | 'M' => LvState::MergeFailed,
            'd' => LvState::NoTable,
            'i' => LvState::InactiveTable,
            'c' | 'C' => LvState::CheckNeeded,
            other => LvState::Unknown(other),
        };
        Ok(Self {
            raw: raw.to_string(),
            volume_type,
            writable: c[1] == 'w',
            state,
            open: c[5] == 'o',
            target: c[6],
            zero: c[7] == 'z',
            health: c[8],
            activation_skip: c[9] == 'k',
        })
    }

    /// Mapped and usable (an invalid snapshot still has a device, but its
    /// data is gone: not active here).
    pub fn is_active(&self) -> bool {
        self.state == LvState::Active
    }

    /// A thick snapshot that overflowed or failed: its data is lost.
    pub fn is_snapshot_invalid(&self) -> bool {
        matches!(
            self.state,
            LvState::InvalidSnapshot | LvState::InvalidSuspendedSnapshot
        )
    }

    /// A thick snapshot (merging or not).
    pub fn is_thick_snapshot(&self) -> bool {
        matches!(
            self.volume_type,
            VolumeType::Snapshot | VolumeType::MergingSnapshot
        )
    }

    /// The origin of thick snapshots: `lvremove -f` would take them along.
    pub fn has_thick_snapshots(&self) -> bool {
        matches!(
            self.volume_type,
            VolumeType::Origin | VolumeType::MergingOrigin
        )
    }

    pub fn is_thin(&self) -> bool {
        self.volume_type == VolumeType::Thin
    }

    pub fn is_thin_pool(&self) -> bool {
        self.volume_type == VolumeType::ThinPool
    }
}
