//! The executor's group snapshots: cut every member at one point in time.
//! The members' origins are frozen (recorded on the group first, so a node
//! that dies frozen thaws on its next start), every member is cut, then all
//! are thawed: on success, on a failed member, on `groupFreezeTimeout`, and
//! (through a guard) when the task is dropped. Only then are the member
//! records marked cut. Any failure rolls every member back: LVs removed,
//! each member's quota released, member records deleted, the group `error`.
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::executor::{Executor, WorkError, tag_for};
use super::freeze::{OriginUse, ThawGuard};
use super::{Failure, invalid, lvm_failure};
use crate::failpoint::{Halted, points};
use crate::lvm::{LvName, SnapshotPlan};
use crate::records::{FailureCode, GroupConsistency, SnapshotState};
use crate::store::{GroupSnapshotRecord, Kind, Phase, SnapshotRecord, modify};

/// One member, checked and ready to cut.
pub(super) struct Member {
    pub record: SnapshotRecord,
    pub origin: LvName,
    pub usage: OriginUse,
    pub plan: SnapshotPlan,
}

/// What a cut did: the origin sizes per member, or why it failed; how long
/// the members were frozen; which mounted filesystems were.
struct Cut {
    result: Result<Vec<Option<i64>>, Failure>,
    frozen_for: Option<Duration>,
    filesystems: Vec<String>,
}

impl Executor {
    #[tracing::instrument(skip(self), fields(node = %self.settings.node_id))]
    pub(super) async fn work_group(&self, id: &str) -> Result<(), WorkError> {
        let Some(g) = self.store.get_group_snapshot(id).await? else {
            return Ok(());
        };
        if g.spec.node != self.settings.node_id || g.status.life.deleted {
            return Ok(());
        }
        if !g.status.frozen.is_empty() {
            self.thaw_group(&g).await?;
        }
        match g.status.life.status {
            SnapshotState::Creating if g.status.dispatched => self.cut_group(g).await,
            SnapshotState::Deleting => {
                let _shared = self.frozen_gate.read().await;
                self.settle_group_delete(&g).await
            }
            _ => Ok(()),
        }
    }

    /// The cut: the LVM work before and after it shares the VG with other
    /// records' work; the frozen section has it to itself.
    async fn cut_group(&self, g: GroupSnapshotRecord) -> Result<(), WorkError> {
        let shared = self.frozen_gate.read().await;
        let records = match self.member_records(&g).await? {
            Ok(r) => r,
            Err(f) => return self.fail_group(&g, f).await,
        };
        if g.status.members_cut {
            return self.complete_group(&g, &records, &[]).await;
        }
        // An attempt that was interrupted left some members cut at another
        // point in time: they go, and all are cut again together.
        for m in &records {
            self.remove_partial(&m.name, &m.spec.vg, &m.spec.lv_name)
                .await;
        }
        let members = match self.plan(&g, records.clone()).await? {
            Ok(m) => m,
            Err(f) => return self.fail_group(&g, f).await,
        };
        self.notify(
            Kind::GroupSnapshot,
            &g.name,
            Phase::CreateStart,
            format!(
                "{} members, consistency {}",
                members.len(),
                g.spec.consistency.as_str()
            ),
        )
        .await;
        match g.spec.consistency {
            GroupConsistency::Freeze => {
                drop(shared);
                let cut = self.frozen_cut(&g, &members).await?;
                let _shared = self.frozen_gate.read().await;
                self.after_cut(&g, &records, cut).await
            }
            GroupConsistency::None => {
                let cut = Cut {
                    result: self.cut_all(&members).await?,
                    frozen_for: None,
                    filesystems: Vec::new(),
                };
                self.after_cut(&g, &records, cut).await
            }
        }
    }

    /// Records what a cut did: the members and the group cut, or every
    /// member rolled back.
    async fn after_cut(
        &self,
        g: &GroupSnapshotRecord,
        records: &[SnapshotRecord],
        cut: Cut,
    ) -> Result<(), WorkError> {
        let sizes = match cut.result {
            Ok(sizes) => sizes,
            Err(f) => return self.fail_group(g, f).await,
        };
        let frozen_ms = cut
            .frozen_for
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let filesystems = cut.filesystems;
        let updated = self
            .store
            .modify_group_snapshot(
                &g.name,
                modify(move |r: &mut GroupSnapshotRecord| {
                    r.status.members_cut = true;
                    r.status.frozen_millis = frozen_ms;
                    r.status.filesystems = filesystems.clone();
                    Ok(())
                }),
            )
            .await?;
        match updated {
            Some(g) => self.complete_group(&g, records, &sizes).await,
            None => Ok(()),
        }
    }

    /// The group's member records, each `creating` (or already cut) on this
    /// node; anything else is a failure of the group.
    async fn member_records(
        &self,
        g: &GroupSnapshotRecord,
    ) -> Result<Result<Vec<SnapshotRecord>, Failure>, WorkError> {
        let mut out = Vec::with_capacity(g.spec.snapshot_ids.len());
        for id in &g.spec.snapshot_ids {
            let m = self.store.get_snapshot(id).await?;
            match m {
                Some(m)
                    if !m.status.life.deleted
                        && m.spec.group_snapshot_id.as_deref() == Some(g.name.as_str())
                        && m.spec.node == self.settings.node_id =>
                {
                    out.push(m)
                }
                _ => {
                    return Ok(Err((
                        FailureCode::Internal,
                        format!("member snapshot {id} of group {} is missing", g.name),
                    )));
                }
            }
        }
        Ok(Ok(out))
    }

    /// Each member's origin LV and what it is used for; a raw block device
    /// in use is refused when the group is frozen.
    async fn plan(
        &self,
        g: &GroupSnapshotRecord,
        records: Vec<SnapshotRecord>,
    ) -> Result<Result<Vec<Member>, Failure>, WorkError> {
        let not_found = || (FailureCode::NotFound, "volume device not found".to_string());
        let mut out = Vec::with_capacity(records.len());
        for record in records {
            let Some(volume) = self.store.get_volume(&record.spec.source_volume_id).await? else {
                return Ok(Err(not_found()));
            };
            let origin = match LvName::new(&volume.spec.lv_name) {
                Ok(o) => o,
                Err(e) => return Ok(Err(invalid(e))),
            };
            let lv = match self.lvm.lv(&record.spec.vg, &origin).await {
                Ok(Some(lv)) => lv,
                Ok(None) => return Ok(Err(not_found())),
                Err(e) => return Ok(Err(lvm_failure(e))),
            };
            let usage = OriginUse::of(&record.spec.vg, &lv);
            if g.spec.consistency == GroupConsistency::Freeze && usage == OriginUse::RawBlock {
                return Ok(Err((
                    FailureCode::FailedPrecondition,
                    format!(
                        "volume {} is in use as a raw block device: it cannot be frozen, so the group cannot be one point in time; use a VolumeGroupSnapshotClass with consistency: none to cut its members back to back",
                        volume.name
                    ),
                )));
            }
            let planned = async {
                let name = LvName::new(&record.spec.lv_name).map_err(invalid)?;
                let tag = tag_for(&record.name).map_err(invalid)?;
                let cow = record
                    .spec
                    .cow_size_bytes
                    .and_then(|b| u64::try_from(b).ok());
                let vg = &record.spec.vg;
                self.lvm
                    .plan_snapshot(vg, &origin, &name, cow, &[tag])
                    .await
                    .map_err(lvm_failure)
            };
            let plan = match planned.await {
                Ok(p) => p,
                Err(f) => return Ok(Err(f)),
            };
            out.push(Member {
                record,
                origin,
                usage,
                plan,
            });
        }
        // Each member fits on its own; together they must too, in each VG
        // (members of several device classes are in several VGs).
        let mut needed: BTreeMap<&str, u64> = BTreeMap::new();
        for m in &out {
            if let Some(cow) = m.plan.cow_bytes {
                *needed.entry(m.record.spec.vg.as_str()).or_default() += cow;
            }
        }
        for (name, needed) in needed {
            match self.lvm.vg(name).await {
                Ok(vg) if needed > vg.free_bytes => {
                    return Ok(Err((
                        FailureCode::ResourceExhausted,
                        format!(
                            "the members need {needed} bytes of copy-on-write space together but volume group {name} has {} bytes free",
                            vg.free_bytes
                        ),
                    )));
                }
                Ok(_) => {}
                Err(e) => return Ok(Err(lvm_failure(e))),
            }
        }
        Ok(Ok(out))
    }

    /// Freeze every active origin (recorded first), cut every member within
    /// `groupFreezeTimeout`, thaw every origin whatever happened.
    async fn frozen_cut(&self, g: &GroupSnapshotRecord, members: &[Member]) -> Result<Cut, Halted> {
        let targets: Vec<&Member> = members
            .iter()
            .filter(|m| m.usage != OriginUse::Inactive)
            .collect();
        let names: Vec<String> = targets
            .iter()
            .map(|m| format!("{}/{}", m.record.spec.vg, m.origin))
            .collect();
        let filesystems: Vec<String> = targets
            .iter()
            .filter_map(|m| match &m.usage {
                OriginUse::Filesystem(p) => Some(p.display().to_string()),
                _ => None,
            })
            .collect();
        let cut = |result, frozen_for| Cut {
            result,
            frozen_for,
            filesystems: filesystems.clone(),
        };
        // Nothing else changes this VG's LVs while the members are frozen.
        let _exclusive = self.frozen_gate.write().await;
        if let Err(e) = self.set_frozen(&g.name, names.clone()).await {
            let why = format!("cannot record the freeze before freezing: {e}");
            return Ok(cut(Err((FailureCode::Unavailable, why)), None));
        }
        let mut guard = ThawGuard::new(self.lvm.clone());
        let started = Instant::now();
        let mut frozen = Vec::new();
        let mut failure = None;
        for m in &targets {
            let vg = m.record.spec.vg.as_str();
            match self.lvm.suspend(vg, &m.origin).await {
                Ok(()) => {
                    guard.hold(vg, m.origin.clone());
                    frozen.push((vg, m.origin.clone()));
                }
                Err(e) => {
                    let (code, msg) = lvm_failure(e);
                    let volume = &m.record.spec.source_volume_id;
                    failure = Some((code, format!("cannot freeze volume {volume}: {msg}")));
                    break;
                }
            }
        }
        let result = match failure {
            Some(f) => Err(f),
            None => {
                if let Err(h) = self.failpoints.hit(points::GROUP_AFTER_FREEZE) {
                    guard.disarm();
                    return Err(h);
                }
                let limit =
                    Duration::from_millis(u64::try_from(g.spec.freeze_timeout_millis).unwrap_or(0));
                match tokio::time::timeout(limit, self.cut_all(members)).await {
                    Ok(Ok(sizes)) => sizes,
                    Ok(Err(halted)) => {
                        guard.disarm();
                        return Err(halted);
                    }
                    Err(_) => Err((
                        FailureCode::Aborted,
                        format!(
                            "the members stayed frozen longer than groupFreezeTimeout ({limit:?}): the cut was abandoned and they were thawed; retry"
                        ),
                    )),
                }
            }
        };
        let mut still_frozen = Vec::new();
        for (vg, lv) in &frozen {
            if let Err(e) = self.lvm.resume(vg, lv).await {
                tracing::error!(vg = %vg, lv = %lv, error = %e, "cannot thaw a group member; retried on the next resync and start");
                still_frozen.push(format!("{vg}/{lv}"));
            }
        }
        guard.disarm();
        let frozen_for = started.elapsed();
        if let Err(e) = self.set_frozen(&g.name, still_frozen.clone()).await {
            // The record still lists origins that are thawed: thawing them
            // again on the next start or resync is harmless.
            tracing::warn!(group = %g.name, error = %e, "cannot record the thaw");
        }
        tracing::info!(group = %g.name, frozen_ms = frozen_for.as_millis() as u64, members = members.len(), "group members frozen, cut and thawed");
        Ok(cut(result, Some(frozen_for)))
    }

    /// Cuts every member, back to back (only their `lvcreate`s: everything
    /// else was checked before the freeze); stops at the first failure.
    async fn cut_all(
        &self,
        members: &[Member],
    ) -> Result<Result<Vec<Option<i64>>, Failure>, Halted> {
        let mut sizes = Vec::with_capacity(members.len());
        for (i, m) in members.iter().enumerate() {
            match self.lvm.cut_snapshot(&m.plan).await {
                Ok(()) => sizes.push(i64::try_from(m.plan.origin_bytes).ok()),
                Err(e) => {
                    let (code, msg) = lvm_failure(e);
                    let volume = &m.record.spec.source_volume_id;
                    return Ok(Err((code, format!("member of volume {volume}: {msg}"))));
                }
            }
            if i == 0 {
                self.failpoints.hit(points::GROUP_AFTER_FIRST_CUT)?;
            }
        }
        Ok(Ok(sizes))
    }
}
