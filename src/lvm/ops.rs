//! The operations other than creates (see `create.rs`): reports, remove,
//! extend, activate, and the argv helpers both files use. Each validates its
//! inputs before building a command, and is idempotent where Cinder's is:
//! removing an absent LV succeeds, extending to a size already reached does
//! nothing.
use super::names::{LvName, LvTag, validate_vg_name};
use super::report::{LV_FIELDS, LvInfo, VG_FIELDS, VgInfo, parse_lvs, parse_vgs};
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

fn report_args(program: &str, fields: &str, target: &str) -> Vec<String> {
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

impl Lvm {
    /// Size, free space and extent size of volume group `vg`. A missing VG is
    /// [`ErrorKind::NotFound`].
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

    /// Every visible LV of `vg` (hidden sub-LVs left out).
    #[tracing::instrument(skip(self), err(Display))]
    pub async fn lvs(&self, vg: &str) -> Result<Vec<LvInfo>, LvmError> {
        validate_vg_name(vg)?;
        let argv = report_args("lvs", LV_FIELDS, vg);
        let out = self.exec("lvs", argv.clone()).await?;
        parse_lvs(&out).map_err(|e| self.unparsable("lvs", argv, e))
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

    /// Removes LV `name` (`lvremove -f`). Absent is success (`Ok(false)`), as
    /// in Cinder. An origin of thick snapshots, or a thin pool with thin
    /// LVs, is [`ErrorKind::Busy`]: `lvremove -f` would remove them too.
    #[tracing::instrument(skip(self), fields(%name), err(Display))]
    pub async fn remove(&self, vg: &str, name: &LvName) -> Result<bool, LvmError> {
        validate_vg_name(vg)?;
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
        let argv = vec![s("lvremove"), s("-f"), lv_path(vg, name)];
        match self.exec("lvremove", argv).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
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
        let lv = self.lv(vg, name).await?.ok_or_else(|| {
            LvmError::new(
                ErrorKind::NotFound,
                format!("logical volume {vg}/{name} not found"),
            )
        })?;
        let info = self.vg(vg).await?;
        let size = rounded(&info, new_size_bytes)?;
        if size <= lv.size_bytes {
            return Ok(lv);
        }
        if !lv.attr.is_thin() {
            ensure_space(&info, size - lv.size_bytes, &format!("extending {name}"))?;
        }
        let argv = vec![
            s("lvextend"),
            s("--size"),
            size_arg(size),
            lv_path(vg, name),
        ];
        self.exec("lvextend", argv).await?;
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
        self.exec("lvchange", argv).await?;
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

    fn unparsable(&self, what: &str, argv: Vec<String>, e: super::ReportError) -> LvmError {
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
