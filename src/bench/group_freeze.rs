//! Part of section 2: group snapshots of two volumes on the real VG. How
//! long the members stay frozen (the group record's `frozenMillis`: from
//! the first freeze to the last thaw, both cuts in between), the
//! CreateVolumeGroupSnapshot latency, and, for comparison, the time between
//! the two cuts of two single CreateSnapshot calls one after the other
//! (what a loop of single snapshots leaves between its members).
use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;

use super::Latency;
use super::harness::{Target, snapshot_request};
use crate::controller::group_params::GROUP_SNAPSHOT_NAMESPACE;
use crate::proto::v1 as csi;

/// What the group measurements found.
#[derive(Debug, Clone, Serialize)]
pub struct GroupFreeze {
    /// How long both members were frozen, per group (the record's figure).
    pub frozen: Latency,
    /// CreateVolumeGroupSnapshot, end to end.
    pub create: Latency,
    /// Two single CreateSnapshot calls back to back: the time from the
    /// first answer to the second (each member cut at its own time).
    pub single_gap: Latency,
}

pub async fn run(
    target: &mut Target,
    project: &str,
    bytes: i64,
    n: usize,
) -> anyhow::Result<GroupFreeze> {
    let a = target
        .create_volume("bench-group-a", bytes, project)
        .await?;
    let b = target
        .create_volume("bench-group-b", bytes, project)
        .await?;
    let store = target
        .store
        .clone()
        .context("the group figures need the store")?;
    let (mut frozen, mut create, mut gap) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n {
        let t = Instant::now();
        let g = target
            .clients
            .group
            .create_volume_group_snapshot(csi::CreateVolumeGroupSnapshotRequest {
                name: format!("bench-group-{i}"),
                source_volume_ids: vec![a.clone(), b.clone()],
                parameters: HashMap::from([
                    (GROUP_SNAPSHOT_NAMESPACE.to_string(), project.to_string()),
                    ("groupFreezeTimeout".to_string(), "60s".to_string()),
                ]),
                ..Default::default()
            })
            .await
            .context("CreateVolumeGroupSnapshot")?
            .into_inner()
            .group_snapshot
            .context("no group snapshot in the answer")?;
        create.push(t.elapsed());
        anyhow::ensure!(g.ready_to_use, "group {i} not cut within the wait");
        let record = store
            .get_group_snapshot(&g.group_snapshot_id)
            .await?
            .context("the group's record")?;
        let ms = record.status.frozen_millis.context("no freeze recorded")?;
        frozen.push(Duration::from_millis(u64::try_from(ms).unwrap_or(0)));
        target
            .clients
            .group
            .delete_volume_group_snapshot(csi::DeleteVolumeGroupSnapshotRequest {
                group_snapshot_id: g.group_snapshot_id,
                ..Default::default()
            })
            .await
            .context("DeleteVolumeGroupSnapshot")?;

        let mut ids = Vec::new();
        let mut answered = Vec::new();
        for v in [&a, &b] {
            let s = target
                .clients
                .controller
                .create_snapshot(snapshot_request(
                    &format!("bench-single-{i}-{v}"),
                    v,
                    project,
                ))
                .await
                .context("CreateSnapshot")?
                .into_inner()
                .snapshot
                .context("no snapshot in the answer")?;
            answered.push(Instant::now());
            ids.push(s.snapshot_id);
        }
        gap.push(answered[1] - answered[0]);
        for id in ids {
            target
                .clients
                .controller
                .delete_snapshot(csi::DeleteSnapshotRequest {
                    snapshot_id: id,
                    ..Default::default()
                })
                .await
                .context("DeleteSnapshot")?;
        }
    }
    target.delete_volume(&a).await?;
    target.delete_volume(&b).await?;
    Ok(GroupFreeze {
        frozen: Latency::of(&frozen),
        create: Latency::of(&create),
        single_gap: Latency::of(&gap),
    })
}
