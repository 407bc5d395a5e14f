//! The operations other than creates (see `create.rs`): reports, remove,
//! extend, activate, and the argv helpers both files use. Each validates its
//! inputs before building a command, and is idempotent where Cinder's is:
//! removing an absent LV succeeds, extending to a size already reached does
//! nothing.
use super::names::{LvName, LvRole, LvTag, validate_vg_name};
use super::report::{LV_FIELDS, LvInfo, VG_FIELDS, VgInfo, parse_lv_report, parse_vgs};
use super::view::{Effect, View};
use super::{ErrorKind, Lvm, LvmError};

pub(super) fn s(v: &str) -> String {
    v.to_string()
}

/// `--size` and friends: bytes, with lvm2's `b` unit.
pub(super) fn size_arg(bytes: u64) -> String {
    format!("{bytes}b")
}

pub(super) fn lv_path(vg: &str, lv: &LvName) -> String {
    format!("{vg}/{lv}")
}

pub(super) fn add_tags(argv: &mut Vec<String>, tags: &[LvTag]) {
    for tag in tags {
        argv.push(s("--addtag"));
        argv.push(tag.to_string());
    }
}

pub(super) fn report_args(program: &str, fields: &str, target: &str) -> Vec<String> {
    [
        program,
        "--reportformat",
        "json",
        "--units",
        "b",
        "--nosuffix",
        "-o",
        fields,
        target,
    ]
    .map(s)
    .to_vec()
}

pub(super) fn positive(what: &str, bytes: u64) -> Result<(), LvmError> {
    if bytes == 0 {
        return Err(LvmError::new(
            ErrorKind::InvalidArgument,
            format!("{what} must be more than 0 bytes"),
        ));
    }
    Ok(())
}

pub(super) fn rounded(vg: &VgInfo, bytes: u64) -> Result<u64, LvmError> {
    vg.round_up(bytes).ok_or_else(|| {
        LvmError::new(
            ErrorKind::InvalidArgument,
            format!("size {bytes} bytes is out of range"),
        )
    })
}

pub(super) fn ensure_space(vg: &VgInfo, needed: u64, what: &str) -> Result<(), LvmError> {
    if needed > vg.free_bytes {
        return Err(LvmError::new(
            ErrorKind::InsufficientSpace,
            format!(
                "{what} needs {needed} bytes but volume group {} has {} bytes free",
                vg.name, vg.free_bytes
            ),
        ));
    }
    Ok(())
}

/// lvm2's default snapshot chunk size.
const COW_CHUNK: u64 = 4096;

/// The largest copy-on-write area an origin of `origin_bytes` can use: every
/// chunk copied, plus the exception store (16 bytes per chunk, so one 4 KiB
/// area per 256 chunks) and its header chunk. lvm2 silently caps a larger
/// `--size` at this (rounded up to extents); lvsnap caps it first, so that
/// the free-space check asks only for what lvcreate will take.
pub fn max_cow_bytes(origin_bytes: u64) -> u64 {
    let chunks = origin_bytes.div_ceil(COW_CHUNK);
    let store = chunks.div_ceil(COW_CHUNK / 16) + 1;
    origin_bytes.saturating_add(store.saturating_mul(COW_CHUNK))
}

/// One `lvs` of a VG: its visible LVs and the VG's size, free space and
/// extent size.
#[derive(Debug, Clone, PartialEq)]
pub struct VgReport {
    pub vg: VgInfo,
    pub lvs: Vec<LvInfo>,
}

/// lvremove's answer for an LV that is not there (the VG is): the one
/// "not found" that proves the LV absent. A missing VG proves nothing.
fn lv_absent(e: &LvmError) -> bool {
    e.kind() == ErrorKind::NotFound
        && e.failure().is_some_and(|f| {
            f.stderr
                .to_ascii_lowercase()
                .contains("failed to find logical volume")
        })
}

impl Lvm {
    /// Size, free space and extent size of volume group `vg` (`vgs`). A
    /// missing VG is [`ErrorKind::NotFound`].
    #[tracing::instrument(skip(self), err(Display))]
    pub async fn vg(&self, vg: &str) -> Result<VgInfo, LvmError> {
        validate_vg_name(vg)?;
        let argv = report_args("vgs", VG_FIELDS, vg);
        let out = self.exec("vgs", argv.clone()).await?;
        let vgs = parse_vgs(&out).map_err(|e| self.unparsable("vgs", argv, e))?;
        vgs.into_iter().find(|v| v.name == vg).ok_or_else(|| {
            LvmError::new(
                ErrorKind::NotFound,
                format!("volume group {vg:?} not found"),
            )
        })
    }

    /// Every visible LV of `vg` (hidden sub-LVs left out) and the VG's
    /// figures: one `lvs` (its rows carry them; a VG without LVs needs a
    /// `vgs` as well). It becomes this node's view of the VG (`view.rs`).
    #[tracing::instrument(skip(self), err(Display))]
    pub async fn report(&self, vg: &str) -> Result<VgReport, LvmError> {
        validate_vg_name(vg)?;
        let generation = self.views.report_starts(vg);
        let argv = report_args("lvs", LV_FIELDS, vg);
        let out = self.exec("lvs", argv.clone()).await?;
        let (lvs, info) = parse_lv_report(&out).map_err(|e| self.unparsable("lvs", argv, e))?;
        let info = match info.filter(|i| i.name == vg) {
            Some(info) => info,
            None => self.vg(vg).await?,
        };
        self.views
            .report_done(vg, generation, View::of(info.clone(), &lvs));
        Ok(VgReport { vg: info, lvs })
    }

    /// Every visible LV of `vg` (one [`Lvm::report`]).
    pub async fn lvs(&self, vg: &str) -> Result<Vec<LvInfo>, LvmError> {
        Ok(self.report(vg).await?.lvs)
    }

    /// The figures of `vg` for a capacity report: this node's view when it
    /// is known (no command), else one [`Lvm::report`].
    pub async fn capacity(&self, vg: &str) -> Result<VgInfo, LvmError> {
        validate_vg_name(vg)?;
        match self.views.get(vg) {
            Some(view) => Ok(view.vg),
            None => Ok(self.report(vg).await?.vg),
        }
    }

    /// LV `name` of `vg`, `None` when absent. (lvm2 reads the whole VG's
    /// metadata either way, so this lists the VG: one code path, and a missing
    /// VG stays an error rather than an absent LV.)
    pub async fn lv(&self, vg: &str, name: &LvName) -> Result<Option<LvInfo>, LvmError> {
        Ok(self.lvs(vg).await?.into_iter().find(|lv| &lv.name == name))
    }

    /// The LVs of `vg` that carry `tag`.
    pub async fn lvs_by_tag(&self, vg: &str, tag: &LvTag) -> Result<Vec<LvInfo>, LvmError> {
        Ok(self
            .lvs(vg)
            .await?
            .into_iter()
            .filter(|lv| lv.has_tag(tag))
            .collect())
    }

    /// Runs a command that changes `vg`; on success the view takes `effect`,
    /// on failure it is forgotten (a failed or timed-out command may have
    /// done part of its work).
    pub(super) async fn change(
        &self,
        vg: &str,
        what: &str,
        argv: Vec<String>,
        effect: Effect,
    ) -> Result<String, LvmError> {
        self.views.change_starts(vg);
        let out = self.exec(what, argv).await;
        let effect = if out.is_ok() { effect } else { Effect::Unknown };
        self.views.change_done(vg, effect);
        out
    }

    /// Removes LV `name` (`lvremove -f`). Absent is success (`Ok(false)`), as
    /// in Cinder. An origin of thick snapshots, or a thin pool with thin
    /// LVs, is [`ErrorKind::Busy`]: `lvremove -f` would remove them too.
    /// That check needs a report, except for a snapshot lvsnap cut
    /// (`_snapshot-<id>`), which can have no such dependants: lvm2 takes no
    /// snapshot of a thick snapshot, and a thin snapshot's own thin
    /// snapshots outlive it. Absence is then lvremove's "failed to find".
    #[tracing::instrument(skip(self), fields(%name), err(Display))]
    pub async fn remove(&self, vg: &str, name: &LvName) -> Result<bool, LvmError> {
        validate_vg_name(vg)?;
        let snapshot = matches!(name.role(), Some(LvRole::Snapshot(_)));
        if !snapshot {
            let lvs = self.lvs(vg).await?;
            let Some(lv) = lvs.iter().find(|lv| &lv.name == name) else {
                tracing::warn!(vg, lv = %name, "logical volume to remove is already absent");
                return Ok(false);
            };
            let dependants: Vec<&str> = lvs
                .iter()
                .filter(|o| {
                    (lv.attr.has_thick_snapshots()
                        && o.attr.is_thick_snapshot()
                        && o.origin.as_ref() == Some(name))
                        || (lv.attr.is_thin_pool() && o.pool.as_ref() == Some(name))
                })
                .map(|o| o.name.as_str())
                .collect();
            if !dependants.is_empty() || lv.attr.has_thick_snapshots() {
                return Err(LvmError::new(
                    ErrorKind::Busy,
                    format!("{vg}/{name} is busy: it has dependent volumes {dependants:?}"),
                ));
            }
        }
        let argv = vec![s("lvremove"), s("-f"), lv_path(vg, name)];
        match self
            .change(vg, "lvremove", argv, Effect::Removed(name.clone()))
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if lv_absent(&e) || (!snapshot && e.kind() == ErrorKind::NotFound) => {
                tracing::warn!(vg, lv = %name, "logical volume to remove is already absent");
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Grows LV `name` to at least `new_size_bytes` (rounded up to whole
    /// extents). Never shrinks: a size already reached returns the LV as is.
    #[tracing::instrument(skip(self), fields(%name), err(Display))]
    pub async fn extend(
        &self,
        vg: &str,
        name: &LvName,
        new_size_bytes: u64,
    ) -> Result<LvInfo, LvmError> {
        validate_vg_name(vg)?;
        positive("new size", new_size_bytes)?;
        let report = self.report(vg).await?;
        let lv = report
            .lvs
            .into_iter()
            .find(|lv| &lv.name == name)
            .ok_or_else(|| {
                LvmError::new(
                    ErrorKind::NotFound,
                    format!("logical volume {vg}/{name} not found"),
                )
            })?;
        let size = rounded(&report.vg, new_size_bytes)?;
        if size <= lv.size_bytes {
            return Ok(lv);
        }
        if !lv.attr.is_thin() {
            ensure_space(
                &report.vg,
                size - lv.size_bytes,
                &format!("extending {name}"),
            )?;
        }
        let argv = vec![
            s("lvextend"),
            s("--size"),
            size_arg(size),
            lv_path(vg, name),
        ];
        let effect = Effect::Resized {
            name: name.clone(),
            size_bytes: size,
        };
        self.change(vg, "lvextend", argv, effect).await?;
        self.created(vg, name).await
    }

    /// lvm2's version as `lvm version` prints it, e.g. `2.03.16(2)`.
    #[tracing::instrument(skip(self), err(Display))]
    pub async fn version(&self) -> Result<String, LvmError> {
        let out = self
            .exec("lvm version", vec![s("lvm"), s("version")])
            .await?;
        let version = out.lines().find_map(|l| {
            let rest = l.trim().strip_prefix("LVM version:")?;
            rest.split_whitespace().next().map(str::to_string)
        });
        version.ok_or_else(|| {
            LvmError::new(
                ErrorKind::Other,
                format!("`lvm version` printed no version: {out:?}"),
            )
        })
    }

    /// Activates LV `name` even if it has the activation skip flag.
    #[tracing::instrument(skip(self), fields(%name), err(Display))]
    pub async fn activate(&self, vg: &str, name: &LvName) -> Result<LvInfo, LvmError> {
        validate_vg_name(vg)?;
        let argv = vec![
            s("lvchange"),
            s("--activate"),
            s("y"),
            s("--ignoreactivationskip"),
            lv_path(vg, name),
        ];
        self.change(vg, "lvchange", argv, Effect::Unchanged).await?;
        self.created(vg, name).await
    }
    /// Reads back an LV that a command just made or changed.
    pub(super) async fn created(&self, vg: &str, name: &LvName) -> Result<LvInfo, LvmError> {
        self.lv(vg, name).await?.ok_or_else(|| {
            LvmError::new(
                ErrorKind::Other,
                format!("{vg}/{name} is missing right after the command succeeded"),
            )
        })
    }

    pub(super) fn unparsable(
        &self,
        what: &str,
        argv: Vec<String>,
        e: super::ReportError,
    ) -> LvmError {
        let mut full = self.config.command_prefix.clone();
        full.extend(argv);
        let failure = super::CommandFailure {
            argv: full,
            exit_code: Some(0),
            stderr: String::new(),
        };
        LvmError::with_failure(
            ErrorKind::Other,
            format!("{what} output unreadable: {e}"),
            Some(failure),
        )
    }
}
