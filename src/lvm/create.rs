//! Creating LVs: linear, thin pool, thin, snapshot (thick or thin by the
//! origin). A create that finds its LV already there with every requested
//! tag returns it (the node re-applies records after a crash); one that finds
//! it without them is `AlreadyExists`.
use super::names::{LvName, LvTag, validate_vg_name};
use super::ops::{add_tags, ensure_space, lv_path, positive, rounded, s, size_arg};
use super::report::LvInfo;
use super::{ErrorKind, Lvm, LvmError, VolumeType};

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

/// A snapshot checked and ready to cut (see [`Lvm::plan_snapshot`]).
#[derive(Debug, Clone)]
pub struct SnapshotPlan {
    vg: String,
    name: LvName,
    tags: Vec<LvTag>,
    argv: Vec<String>,
    /// The copy-on-write area a thick snapshot takes from the VG (None: thin).
    pub cow_bytes: Option<u64>,
    /// The origin's size: the snapshot's.
    pub origin_bytes: u64,
    /// The snapshot is already there, with its tags: nothing to cut.
    pub done: Option<LvInfo>,
}

impl Lvm {
    /// A linear LV of at least `size_bytes` (rounded up to whole extents).
    #[tracing::instrument(skip(self, tags), fields(%name), err(Display))]
    pub async fn create_linear(
        &self,
        vg: &str,
        name: &LvName,
        size_bytes: u64,
        tags: &[LvTag],
    ) -> Result<LvInfo, LvmError> {
        validate_vg_name(vg)?;
        positive("volume size", size_bytes)?;
        if let Some(lv) = self.existing(vg, name, tags).await? {
            return Ok(lv);
        }
        let info = self.vg(vg).await?;
        let size = rounded(&info, size_bytes)?;
        ensure_space(&info, size, &format!("logical volume {name}"))?;
        let mut argv = vec![s("lvcreate"), s("--yes"), s("--name"), name.to_string()];
        argv.extend([s("--size"), size_arg(size)]);
        add_tags(&mut argv, tags);
        argv.push(s(vg));
        self.create_with(vg, name, tags, argv).await
    }

    /// A thin pool of `size_bytes` of data. An existing thin pool of that name
    /// is returned as it is.
    #[tracing::instrument(skip(self), fields(%name), err(Display))]
    pub async fn create_thin_pool(
        &self,
        vg: &str,
        name: &LvName,
        size_bytes: u64,
    ) -> Result<LvInfo, LvmError> {
        validate_vg_name(vg)?;
        positive("thin pool size", size_bytes)?;
        if let Some(lv) = self.lv(vg, name).await? {
            if lv.attr.is_thin_pool() {
                return Ok(lv);
            }
            return Err(self.exists_error(vg, name, "is not a thin pool"));
        }
        let info = self.vg(vg).await?;
        let size = rounded(&info, size_bytes)?;
        ensure_space(&info, size, &format!("thin pool {name}"))?;
        let mut argv = vec![s("lvcreate"), s("--yes"), s("--type"), s("thin-pool")];
        argv.extend([
            s("--name"),
            name.to_string(),
            s("--size"),
            size_arg(size),
            s(vg),
        ]);
        match self.exec("lvcreate thin pool", argv).await {
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
    ) -> Result<LvInfo, LvmError> {
        validate_vg_name(vg)?;
        positive("thin volume size", virtual_size_bytes)?;
        let lvs = self.lvs(vg).await?;
        if let Some(lv) = self.check_existing(vg, name, tags, &lvs)? {
            return Ok(lv);
        }
        match lvs.iter().find(|lv| &lv.name == pool) {
            Some(p) if p.attr.is_thin_pool() => {}
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
        let size = rounded(&self.vg(vg).await?, virtual_size_bytes)?;
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
        self.create_with(vg, name, tags, argv).await
    }

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
    ) -> Result<LvInfo, LvmError> {
        let plan = self
            .plan_snapshot(vg, origin, name, cow_size_bytes, tags)
            .await?;
        if let Some(done) = plan.done {
            return Ok(done);
        }
        self.cut_snapshot(&plan).await?;
        self.created(vg, name).await
    }

    /// Everything [`Self::lvcreate_snapshot`] checks before its `lvcreate`
    /// (the origin, an LV of that name, the free space), done ahead: a group
    /// of snapshots is planned before its members are frozen, so that only
    /// the `lvcreate`s run while they are.
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
        let lvs = self.lvs(vg).await?;
        let mut plan = SnapshotPlan {
            vg: vg.to_string(),
            name: name.clone(),
            tags: tags.to_vec(),
            argv: Vec::new(),
            cow_bytes: None,
            origin_bytes: 0,
            done: self.check_existing(vg, name, tags, &lvs)?,
        };
        if let Some(lv) = &plan.done {
            plan.origin_bytes = lv.origin_size_bytes.unwrap_or(lv.size_bytes);
            return Ok(plan);
        }
        let Some(source) = lvs.iter().find(|lv| &lv.name == origin) else {
            return Err(LvmError::new(
                ErrorKind::NotFound,
                format!("snapshot origin {vg}/{origin} not found"),
            ));
        };
        plan.origin_bytes = source.size_bytes;
        let mut argv = vec![
            s("lvcreate"),
            s("--yes"),
            s("--name"),
            name.to_string(),
            s("--snapshot"),
        ];
        match source.attr.volume_type {
            VolumeType::Thin => argv.extend([s("--setactivationskip"), s("n")]),
            VolumeType::Plain | VolumeType::Origin => {
                let info = self.vg(vg).await?;
                let wanted = cow_size_bytes.unwrap_or(source.size_bytes);
                let cap = rounded(&info, max_cow_bytes(source.size_bytes))?;
                let size = rounded(&info, wanted)?.min(cap);
                ensure_space(&info, size, &format!("snapshot {name}"))?;
                argv.extend([s("--size"), size_arg(size)]);
                plan.cow_bytes = Some(size);
            }
            other => {
                return Err(LvmError::new(
                    ErrorKind::InvalidArgument,
                    format!("cannot snapshot {vg}/{origin}: unsupported volume type {other:?}"),
                ));
            }
        }
        add_tags(&mut argv, tags);
        argv.push(lv_path(vg, origin));
        plan.argv = argv;
        Ok(plan)
    }

    /// Runs a planned snapshot's `lvcreate` and nothing else; an LV of that
    /// name already there (an earlier attempt that timed out) must carry
    /// the plan's tags.
    pub async fn cut_snapshot(&self, plan: &SnapshotPlan) -> Result<(), LvmError> {
        if plan.done.is_some() {
            return Ok(());
        }
        match self.exec("lvcreate", plan.argv.clone()).await {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                match self.existing(&plan.vg, &plan.name, &plan.tags).await {
                    Ok(Some(_)) => Ok(()),
                    _ => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Looks `name` up: absent → `None`; present with every one of `tags`
    /// (and at least one) → the LV, the create is already done; otherwise
    /// [`ErrorKind::AlreadyExists`].
    async fn existing(
        &self,
        vg: &str,
        name: &LvName,
        tags: &[LvTag],
    ) -> Result<Option<LvInfo>, LvmError> {
        let lvs = self.lvs(vg).await?;
        self.check_existing(vg, name, tags, &lvs)
    }

    fn check_existing(
        &self,
        vg: &str,
        name: &LvName,
        tags: &[LvTag],
        lvs: &[LvInfo],
    ) -> Result<Option<LvInfo>, LvmError> {
        match lvs.iter().find(|lv| &lv.name == name) {
            None => Ok(None),
            Some(lv) if !tags.is_empty() && tags.iter().all(|t| lv.has_tag(t)) => {
                tracing::info!(vg, lv = %name, "logical volume already exists with its tags; nothing to do");
                Ok(Some(lv.clone()))
            }
            Some(_) => Err(self.exists_error(vg, name, "exists without the requested tags")),
        }
    }

    fn exists_error(&self, vg: &str, name: &LvName, why: &str) -> LvmError {
        LvmError::new(
            ErrorKind::AlreadyExists,
            format!("logical volume {vg}/{name} already exists and {why}"),
        )
    }

    /// Runs an `lvcreate`; when it reports the LV exists (an earlier attempt
    /// that timed out may have made it), the tag rule decides.
    async fn create_with(
        &self,
        vg: &str,
        name: &LvName,
        tags: &[LvTag],
        argv: Vec<String>,
    ) -> Result<LvInfo, LvmError> {
        match self.exec("lvcreate", argv).await {
            Ok(_) => self.created(vg, name).await,
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                match self.existing(vg, name, tags).await {
                    Ok(Some(lv)) => Ok(lv),
                    _ => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }
}
