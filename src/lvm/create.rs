//! Creating LVs: linear, thin pool, thin (snapshots: `snapshot.rs`, on the
//! same steps). A create that finds its LV already there with every requested
//! tag returns it (the node re-applies records after a crash); one that finds
//! it without them is `AlreadyExists`.
//!
//! A create decides on this node's view of the VG (`view.rs`) when the view
//! lets it proceed, else on one fresh `lvs` (whose rows carry the VG's free
//! space and extent size: no `vgs`), then runs `lvcreate` and does not read
//! the LV back: lvcreate's success is the answer. So a snapshot or volume
//! on a known VG costs one LVM command, on an unknown one two.
use super::attr::VolumeType;
use super::class::LvOptions;
use super::names::{LvName, LvTag, validate_vg_name};
use super::ops::{VgReport, add_tags, ensure_space, positive, rounded, s, size_arg};
use super::view::{Effect, Known, View};
use super::{ErrorKind, Lvm, LvmError};

/// An LV a create made, as lvcreate was asked for it (not read back), or
/// found already made with every requested tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Made {
    pub name: LvName,
    /// What it takes: a linear LV's size, a thick snapshot's COW area, a
    /// thin LV's virtual size (rounded up to extents).
    pub size_bytes: u64,
    /// A snapshot's origin size.
    pub origin_size_bytes: Option<u64>,
    /// It was there already (a re-applied record): nothing was run.
    pub existed: bool,
}

/// What a create will do, decided on a view of the VG.
pub(super) enum Step {
    /// Run `argv`; the LV will be `known`.
    Run {
        argv: Vec<String>,
        known: Known,
        origin_size_bytes: Option<u64>,
    },
    /// An LV of that name is there: its tags decide (on a fresh report).
    Exists,
}

impl Lvm {
    /// Decides on the view when it lets the create proceed, else on a fresh
    /// report (then `plan`'s answer is final); runs the step.
    pub(super) async fn create(
        &self,
        vg: &str,
        name: &LvName,
        tags: &[LvTag],
        plan: impl Fn(&View) -> Result<Step, LvmError>,
    ) -> Result<Made, LvmError> {
        validate_vg_name(vg)?;
        let step = match self.views.get(vg).map(|v| plan(&v)) {
            Some(Ok(step @ Step::Run { .. })) => step,
            _ => {
                let report = self.report(vg).await?;
                match plan(&View::of(report.vg.clone(), &report.lvs))? {
                    Step::Exists => return self.check_existing(vg, name, tags, &report),
                    step => step,
                }
            }
        };
        let Step::Run {
            argv,
            known,
            origin_size_bytes,
        } = step
        else {
            return Err(self.exists_error(vg, name, "exists"));
        };
        let made = Made {
            name: name.clone(),
            size_bytes: known.size_bytes,
            origin_size_bytes,
            existed: false,
        };
        match self.run_create(vg, name, tags, argv, known).await? {
            Some(existing) => Ok(existing),
            None => Ok(made),
        }
    }

    /// Runs a decided `lvcreate` (the view learns its effect); `Some`: an
    /// earlier attempt that timed out had made it after all, with its tags.
    pub(super) async fn run_create(
        &self,
        vg: &str,
        name: &LvName,
        tags: &[LvTag],
        argv: Vec<String>,
        known: Known,
    ) -> Result<Option<Made>, LvmError> {
        let effect = Effect::Made {
            name: name.clone(),
            known,
        };
        match self.change(vg, "lvcreate", argv, effect).await {
            Ok(_) => Ok(None),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => match self.report(vg).await {
                Ok(report) => match self.check_existing(vg, name, tags, &report) {
                    Ok(made) => Ok(Some(made)),
                    Err(_) => Err(e),
                },
                Err(_) => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    /// A linear LV of at least `size_bytes` (rounded up to whole extents).
    #[tracing::instrument(skip(self, tags), fields(%name), err(Display))]
    pub async fn create_linear(
        &self,
        vg: &str,
        name: &LvName,
        size_bytes: u64,
        tags: &[LvTag],
    ) -> Result<Made, LvmError> {
        let plain = LvOptions::default();
        self.create_linear_with(vg, name, size_bytes, tags, &plain)
            .await
    }

    /// A thick LV with a device class's `lvcreate` options (stripes, raid1):
    /// the free-space check asks for every copy a mirror keeps.
    pub async fn create_linear_with(
        &self,
        vg: &str,
        name: &LvName,
        size_bytes: u64,
        tags: &[LvTag],
        options: &LvOptions,
    ) -> Result<Made, LvmError> {
        positive("volume size", size_bytes)?;
        self.create(vg, name, tags, |view| {
            if view.lvs.contains_key(name) {
                return Ok(Step::Exists);
            }
            let size = rounded(&view.vg, size_bytes)?;
            let taken = size.saturating_mul(options.copies());
            ensure_space(&view.vg, taken, &format!("logical volume {name}"))?;
            let mut argv = vec![s("lvcreate"), s("--yes"), s("--name"), name.to_string()];
            argv.extend([s("--size"), size_arg(size)]);
            argv.extend(options.argv());
            add_tags(&mut argv, tags);
            argv.push(s(vg));
            Ok(Step::Run {
                argv,
                known: Known::new(options.volume_type(), size),
                origin_size_bytes: None,
            })
        })
        .await
    }

    /// A thin pool of `size_bytes` of data. An existing thin pool of that name
    /// is returned as it is. (Rare: decided on a fresh report, and read back.)
    #[tracing::instrument(skip(self), fields(%name), err(Display))]
    pub async fn create_thin_pool(
        &self,
        vg: &str,
        name: &LvName,
        size_bytes: u64,
    ) -> Result<super::LvInfo, LvmError> {
        validate_vg_name(vg)?;
        positive("thin pool size", size_bytes)?;
        let report = self.report(vg).await?;
        if let Some(lv) = report.lvs.iter().find(|lv| &lv.name == name) {
            if lv.attr.is_thin_pool() {
                return Ok(lv.clone());
            }
            return Err(self.exists_error(vg, name, "is not a thin pool"));
        }
        let size = rounded(&report.vg, size_bytes)?;
        ensure_space(&report.vg, size, &format!("thin pool {name}"))?;
        let mut argv = vec![s("lvcreate"), s("--yes"), s("--type"), s("thin-pool")];
        argv.extend([
            s("--name"),
            name.to_string(),
            s("--size"),
            size_arg(size),
            s(vg),
        ]);
        // Pool metadata and its spare are not modelled: the view is forgotten.
        match self
            .change(vg, "lvcreate thin pool", argv, Effect::Unknown)
            .await
        {
            Ok(_) => self.created(vg, name).await,
            // An earlier attempt that timed out may have made it after all.
            Err(e) if e.kind() == ErrorKind::AlreadyExists => match self.lv(vg, name).await {
                Ok(Some(lv)) if lv.attr.is_thin_pool() => Ok(lv),
                _ => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    /// A thin LV of `virtual_size_bytes` in thin pool `pool`. Thin pools may
    /// be overprovisioned, so the VG's free space is not checked.
    #[tracing::instrument(skip(self, tags), fields(%pool, %name), err(Display))]
    pub async fn create_thin(
        &self,
        vg: &str,
        pool: &LvName,
        name: &LvName,
        virtual_size_bytes: u64,
        tags: &[LvTag],
    ) -> Result<Made, LvmError> {
        positive("thin volume size", virtual_size_bytes)?;
        self.create(vg, name, tags, |view| {
            if view.lvs.contains_key(name) {
                return Ok(Step::Exists);
            }
            match view.lvs.get(pool).map(|p| p.volume_type) {
                Some(VolumeType::ThinPool) => {}
                Some(_) => {
                    return Err(LvmError::new(
                        ErrorKind::InvalidArgument,
                        format!("{vg}/{pool} is not a thin pool"),
                    ));
                }
                None => {
                    return Err(LvmError::new(
                        ErrorKind::NotFound,
                        format!("thin pool {vg}/{pool} not found"),
                    ));
                }
            }
            let size = rounded(&view.vg, virtual_size_bytes)?;
            let mut argv = vec![
                s("lvcreate"),
                s("--yes"),
                s("--type"),
                s("thin"),
                s("--name"),
                name.to_string(),
            ];
            argv.extend([
                s("--virtualsize"),
                size_arg(size),
                s("--thinpool"),
                pool.to_string(),
            ]);
            add_tags(&mut argv, tags);
            argv.push(s(vg));
            Ok(Step::Run {
                argv,
                known: Known {
                    pool: Some(pool.clone()),
                    ..Known::new(VolumeType::Thin, size)
                },
                origin_size_bytes: None,
            })
        })
        .await
    }

    /// LV `name` of a fresh report: present with every one of `tags` (and
    /// at least one) → made already; otherwise [`ErrorKind::AlreadyExists`].
    pub(super) fn check_existing(
        &self,
        vg: &str,
        name: &LvName,
        tags: &[LvTag],
        report: &VgReport,
    ) -> Result<Made, LvmError> {
        match report.lvs.iter().find(|lv| &lv.name == name) {
            Some(lv) if !tags.is_empty() && tags.iter().all(|t| lv.has_tag(t)) => {
                tracing::info!(vg, lv = %name, "logical volume already exists with its tags; nothing to do");
                Ok(Made {
                    name: name.clone(),
                    size_bytes: lv.size_bytes,
                    origin_size_bytes: lv.origin_size_bytes,
                    existed: true,
                })
            }
            Some(_) => Err(self.exists_error(vg, name, "exists without the requested tags")),
            None => Err(self.exists_error(vg, name, "was reported by lvcreate")),
        }
    }

    pub(super) fn exists_error(&self, vg: &str, name: &LvName, why: &str) -> LvmError {
        LvmError::new(
            ErrorKind::AlreadyExists,
            format!("logical volume {vg}/{name} already exists and {why}"),
        )
    }
}
