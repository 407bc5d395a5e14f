//! The members of a group snapshot, before any record is written: the
//! source volumes checked together (live, one node, none thin when frozen),
//! the member snapshot records, and what they charge together.
use std::collections::{BTreeMap, BTreeSet};

use super::group_params::GroupParams;
use super::snapshot::cow_size;
use super::{Controller, ControllerError, record_id};
use crate::quota::gib_ceil;
use crate::records::{
    GroupConsistency, Lifecycle, LvsSnapshotSpec, LvsSnapshotStatus, snapshot_lv_name,
};
use crate::store::{Record, SnapshotRecord, VolumeRecord};

/// The id of member `volume` of group `group_id`.
pub fn member_id(group_id: &str, volume: &str) -> String {
    record_id("group-member", &format!("{group_id}/{volume}"))
}

impl Controller {
    /// The member volumes, each live, all on one node, none thin when the
    /// group is frozen, thin ones within their class's room.
    pub(super) async fn group_sources(
        &self,
        ids: &[String],
        p: &GroupParams,
    ) -> Result<Vec<VolumeRecord>, ControllerError> {
        let mut volumes = Vec::with_capacity(ids.len());
        for id in ids {
            volumes.push(self.live_source(id, p.members.require_detached).await?);
        }
        let nodes: BTreeSet<&str> = volumes.iter().map(|v| v.spec.node.as_str()).collect();
        if nodes.len() > 1 {
            let placed: Vec<String> = volumes
                .iter()
                .map(|v| format!("{} on {}", v.name, v.spec.node))
                .collect();
            return Err(ControllerError::FailedPrecondition(format!(
                "a group snapshot is cut at one point in time on one node, and these volumes live on different nodes: {}",
                placed.join(", ")
            )));
        }
        if p.consistency == GroupConsistency::Freeze
            && let Some(thin) = volumes.iter().find(|v| v.spec.thin_pool.is_some())
        {
            return Err(ControllerError::FailedPrecondition(format!(
                "volume {} is thin: LVM cannot cut a thin snapshot of an origin held frozen, so a frozen group cannot include it; use a VolumeGroupSnapshotClass with consistency: none (members cut back to back)",
                thin.name
            )));
        }
        if let Some(why) = self
            .unhealthy(&volumes[0].spec.node, "the group snapshot is cut")
            .await
        {
            return Err(why);
        }
        // Thin members allocate their origins' virtual size in their pool:
        // together they must fit their class's room, as one thin snapshot.
        let mut thin: BTreeMap<(Option<&str>, &str, &String), i64> = BTreeMap::new();
        for v in &volumes {
            if let Some(pool) = &v.spec.thin_pool {
                let key = (v.spec.device_class.as_deref(), v.spec.vg.as_str(), pool);
                *thin.entry(key).or_default() += v.spec.size_bytes;
            }
        }
        let node = &volumes[0].spec.node;
        for ((class, vg, pool), size) in thin {
            self.class_room(node, class, vg, Some(pool), size).await?;
        }
        Ok(volumes)
    }

    /// The member records of group `group_id`, `creating`, each charging
    /// its own part of the group's reservation.
    pub(super) fn member_records(
        &self,
        group_id: &str,
        project: &str,
        volumes: &[VolumeRecord],
        p: &GroupParams,
    ) -> Result<Vec<SnapshotRecord>, ControllerError> {
        volumes
            .iter()
            .map(|v| {
                let id = member_id(group_id, &v.name);
                let uuid = uuid::Uuid::parse_str(&id)
                    .map_err(|e| ControllerError::Internal(e.to_string()))?;
                let size = gib_ceil(v.spec.size_bytes);
                let name = format!("{group_id}/{}", v.name);
                let cow = cow_size(v, p.members.size);
                Ok(Record::new(
                    id.clone(),
                    LvsSnapshotSpec {
                        id,
                        csi_name: name.clone(),
                        source_volume_id: v.name.clone(),
                        project: project.to_string(),
                        user: p.display_name.clone(),
                        display_name: name,
                        display_description: String::new(),
                        metadata: Default::default(),
                        volume_type: v.spec.volume_type.clone(),
                        volume_size: size,
                        cow_size_bytes: cow,
                        autoextend: cow.map(|_| p.members.autoextend),
                        node: v.spec.node.clone(),
                        vg: v.spec.vg.clone(),
                        device_class: v.spec.device_class.clone(),
                        lv_name: snapshot_lv_name(&uuid),
                        group_snapshot_id: Some(group_id.to_string()),
                        quota_charged: self.quota.snapshot_deltas(&v.spec.volume_type, size, 1),
                        quota_reservations: Vec::new(),
                    },
                    LvsSnapshotStatus {
                        life: Lifecycle::creating(),
                        size_bytes: v.spec.size_bytes,
                        ..Default::default()
                    },
                ))
            })
            .collect()
    }
}

/// What all members charge together: the group's one reservation.
pub(super) fn sum_charged(members: &[SnapshotRecord]) -> BTreeMap<String, i64> {
    let mut total = BTreeMap::new();
    for m in members {
        for (k, d) in &m.spec.quota_charged {
            *total.entry(k.clone()).or_insert(0) += d;
        }
    }
    total
}
