//! Snapshots: thick (a copy-on-write area of the VG, by default the
//! origin's size as Cinder) or thin (in the origin's pool), by the origin.
//! One is cut with [`Lvm::lvcreate_snapshot`], or planned ahead on a fresh
//! report and cut later with only its `lvcreate` ([`Lvm::plan_snapshot`],
//! [`Lvm::cut_snapshot`]: a group's members, planned before the freeze).
use super::attr::VolumeType;
use super::create::{Made, Step};
use super::names::{LvName, LvTag, validate_vg_name};
use super::ops::{add_tags, ensure_space, lv_path, max_cow_bytes, positive, rounded, s, size_arg};
use super::view::{Known, View};
use super::{ErrorKind, Lvm, LvmError};

/// A snapshot checked and ready to cut (see [`Lvm::plan_snapshot`]).
#[derive(Debug, Clone)]
pub struct SnapshotPlan {
    vg: String,
    name: LvName,
    tags: Vec<LvTag>,
    /// What to run and what it makes; `None`: already there with its tags.
    run: Option<(Vec<String>, Known)>,
    /// The copy-on-write area a thick snapshot takes from the VG (None: thin
    /// or already there).
    pub cow_bytes: Option<u64>,
    /// The origin's size: the snapshot's.
    pub origin_bytes: u64,
}

impl Lvm {
    /// Snapshot `name` of LV `origin`. A thin origin gets a thin snapshot (no
    /// size; created without the activation skip flag, so it is active); any
    /// other origin a thick one whose copy-on-write area is `cow_size_bytes`,
    /// by default the origin's size (as Cinder), rounded up to whole extents,
    /// capped at what the origin can use ([`max_cow_bytes`]) and checked
    /// against the VG's free space before `lvcreate` runs. A
    /// missing origin is [`ErrorKind::NotFound`] and is not retried.
    #[tracing::instrument(skip(self, tags), fields(%origin, %name), err(Display))]
    pub async fn lvcreate_snapshot(
        &self,
        vg: &str,
        origin: &LvName,
        name: &LvName,
        cow_size_bytes: Option<u64>,
        tags: &[LvTag],
    ) -> Result<Made, LvmError> {
        if let Some(size) = cow_size_bytes {
            positive("snapshot size", size)?;
        }
        self.create(vg, name, tags, |view| {
            snapshot_step(view, vg, origin, name, cow_size_bytes, tags)
        })
        .await
    }

    /// Everything [`Self::lvcreate_snapshot`] checks before its `lvcreate`
    /// (the origin, an LV of that name, the free space), decided ahead on a
    /// fresh report: a group of snapshots is planned before its members are
    /// frozen, so that only the `lvcreate`s run while they are.
    pub async fn plan_snapshot(
        &self,
        vg: &str,
        origin: &LvName,
        name: &LvName,
        cow_size_bytes: Option<u64>,
        tags: &[LvTag],
    ) -> Result<SnapshotPlan, LvmError> {
        validate_vg_name(vg)?;
        if let Some(size) = cow_size_bytes {
            positive("snapshot size", size)?;
        }
        let report = self.report(vg).await?;
        let view = View::of(report.vg.clone(), &report.lvs);
        let mut plan = SnapshotPlan {
            vg: vg.to_string(),
            name: name.clone(),
            tags: tags.to_vec(),
            run: None,
            cow_bytes: None,
            origin_bytes: 0,
        };
        match snapshot_step(&view, vg, origin, name, cow_size_bytes, tags)? {
            Step::Exists => {
                let made = self.check_existing(vg, name, tags, &report)?;
                plan.origin_bytes = made.origin_size_bytes.unwrap_or(made.size_bytes);
            }
            Step::Run {
                argv,
                known,
                origin_size_bytes,
            } => {
                if known.volume_type == VolumeType::Snapshot {
                    plan.cow_bytes = Some(known.size_bytes);
                }
                plan.origin_bytes = origin_size_bytes.unwrap_or(known.size_bytes);
                plan.run = Some((argv, known));
            }
        }
        Ok(plan)
    }

    /// Runs a planned snapshot's `lvcreate` and nothing else (this node's
    /// view of the VG learns what it made); an LV of that name already
    /// there (an earlier attempt that timed out) must carry the plan's tags.
    pub async fn cut_snapshot(&self, plan: &SnapshotPlan) -> Result<(), LvmError> {
        let Some((argv, known)) = plan.run.clone() else {
            return Ok(());
        };
        self.run_create(&plan.vg, &plan.name, &plan.tags, argv, known)
            .await
            .map(|_| ())
    }
}

/// The step a snapshot `name` of `origin` takes on `view`.
fn snapshot_step(
    view: &View,
    vg: &str,
    origin: &LvName,
    name: &LvName,
    cow_size_bytes: Option<u64>,
    tags: &[LvTag],
) -> Result<Step, LvmError> {
    if view.lvs.contains_key(name) {
        return Ok(Step::Exists);
    }
    let Some(source) = view.lvs.get(origin) else {
        return Err(LvmError::new(
            ErrorKind::NotFound,
            format!("snapshot origin {vg}/{origin} not found"),
        ));
    };
    let mut argv = vec![
        s("lvcreate"),
        s("--yes"),
        s("--name"),
        name.to_string(),
        s("--snapshot"),
    ];
    let known = match source.volume_type {
        VolumeType::Thin => {
            argv.extend([s("--setactivationskip"), s("n")]);
            Known {
                pool: source.pool.clone(),
                ..Known::new(VolumeType::Thin, source.size_bytes)
            }
        }
        VolumeType::Plain | VolumeType::Origin | VolumeType::Raid => {
            let wanted = cow_size_bytes.unwrap_or(source.size_bytes);
            let cap = rounded(&view.vg, max_cow_bytes(source.size_bytes))?;
            let size = rounded(&view.vg, wanted)?.min(cap);
            ensure_space(&view.vg, size, &format!("snapshot {name}"))?;
            argv.extend([s("--size"), size_arg(size)]);
            Known::new(VolumeType::Snapshot, size)
        }
        other => {
            return Err(LvmError::new(
                ErrorKind::InvalidArgument,
                format!("cannot snapshot {vg}/{origin}: unsupported volume type {other:?}"),
            ));
        }
    };
    add_tags(&mut argv, tags);
    argv.push(lv_path(vg, origin));
    Ok(Step::Run {
        argv,
        known,
        origin_size_bytes: Some(source.size_bytes),
    })
}
