//! The group snapshot record: Cinder's `group_snapshots` row as a
//! CustomResource (`LvsGroupSnapshot`). Its members are ordinary
//! `LvsSnapshot` records carrying `groupSnapshotId`; the group says which
//! they are, how they were cut together, and what it reserved.
use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::lifecycle::Lifecycle;
use super::state::SnapshotState;

/// How the members are cut together (`consistency` in the
/// VolumeGroupSnapshotClass).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum GroupConsistency {
    /// Every member's device is frozen (filesystem flushed and frozen, I/O
    /// held) before the first cut and thawed after the last: one point in
    /// time. Raw block members are refused.
    #[default]
    Freeze,
    /// Members are cut back to back without freezing: each one is
    /// consistent on its own, the group is not one point in time.
    None,
}

impl GroupConsistency {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Freeze => "freeze",
            Self::None => "none",
        }
    }
}

/// One group snapshot. Identity fields never change.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "lvsnap.io",
    version = "v1alpha1",
    kind = "LvsGroupSnapshot",
    plural = "lvsgroupsnapshots",
    shortname = "lvsgsnap",
    status = "LvsGroupSnapshotStatus",
    category = "lvsnap",
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.status"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Project","type":"string","jsonPath":".spec.project"}"#,
    printcolumn = r#"{"name":"Name","type":"string","jsonPath":".spec.displayName","description":"the VolumeGroupSnapshot's name"}"#,
    printcolumn = r#"{"name":"Members","type":"string","jsonPath":".spec.snapshotIds","priority":1}"#,
    printcolumn = r#"{"name":"Consistency","type":"string","jsonPath":".spec.consistency","priority":1}"#,
    printcolumn = r#"{"name":"Frozen ms","type":"integer","jsonPath":".status.frozenMillis","priority":1}"#,
    printcolumn = r#"{"name":"Node","type":"string","jsonPath":".spec.node","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "self.id == oldSelf.id && self.csiName == oldSelf.csiName && self.project == oldSelf.project && self.node == oldSelf.node && self.vg == oldSelf.vg && self.sourceVolumeIds == oldSelf.sourceVolumeIds && self.snapshotIds == oldSelf.snapshotIds",
     "message": "a group snapshot's identity (id, csiName, project, node, vg, sourceVolumeIds, snapshotIds) is immutable"}
]))]
pub struct LvsGroupSnapshotSpec {
    /// The group snapshot id (a UUID), also the object's name.
    pub id: String,
    /// The CSI name the CO asked for (idempotency key).
    pub csi_name: String,
    /// The project (Kubernetes namespace) charged for the members.
    pub project: String,
    /// The VolumeGroupSnapshot's name when known, else the CSI name.
    #[serde(default)]
    pub display_name: String,
    /// The node every member lives on.
    pub node: String,
    pub vg: String,
    /// The member volumes, in the order they are cut.
    pub source_volume_ids: Vec<String>,
    /// The member snapshot ids, one per source volume, same order.
    pub snapshot_ids: Vec<String>,
    #[serde(default)]
    pub consistency: GroupConsistency,
    /// How long the members may stay frozen before the cut is abandoned
    /// (`groupFreezeTimeout`), in milliseconds.
    pub freeze_timeout_millis: i64,
    /// What the one reservation charged for all members (the sum of what
    /// the members charge; each member releases its own part on delete).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub quota_charged: BTreeMap<String, i64>,
    /// The reservation ids of that one reservation (claimed: see
    /// `LvsSnapshotSpec::quota_reservations`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quota_reservations: Vec<String>,
}

/// Where a group snapshot is in its life (Cinder's group snapshot statuses
/// are the snapshot ones).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LvsGroupSnapshotStatus {
    /// Status, progress, created, failure, soft delete.
    #[serde(flatten)]
    pub life: Lifecycle<SnapshotState>,
    #[serde(default)]
    pub ready_to_use: bool,
    /// Set by the controller once every member record is written and the
    /// reservation committed: the node cuts only a dispatched group.
    #[serde(default)]
    pub dispatched: bool,
    /// Every member LV is cut (in one frozen section); what is left is
    /// marking the records. A node finding a `creating` group without it
    /// removes any member LV an interrupted attempt left and cuts again.
    #[serde(default)]
    pub members_cut: bool,
    /// The origin LVs (`vg/lv`) the node is about to freeze or has frozen
    /// and not yet thawed. Written before freezing, cleared after thawing:
    /// a node that restarts thaws whatever is listed here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub frozen: Vec<String>,
    /// The mounted filesystems that were frozen with the last cut.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filesystems: Vec<String>,
    /// How long the members were frozen for the cut, in milliseconds
    /// (None: not frozen, `consistency: none`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frozen_millis: Option<i64>,
}
