//! The records: Cinder's volumes, snapshots and quotas as CustomResources
//! (group `lvsnap.io`, `v1alpha1`, cluster-scoped). The spec/status structs
//! are the domain's record types; the kube-generated wrappers (`LvsSnapshot`,
//! …) are used only by the Kubernetes store and for CRD generation.
use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::lifecycle::Lifecycle;
use super::state::{SnapshotState, VolumeState};

/// One snapshot: Cinder's `snapshots` row. Identity fields never change.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "lvsnap.io",
    version = "v1alpha1",
    kind = "LvsSnapshot",
    plural = "lvssnapshots",
    shortname = "lvssnap",
    status = "LvsSnapshotStatus",
    category = "lvsnap",
    printcolumn = r#"{"name":"Volume ID","type":"string","jsonPath":".spec.sourceVolumeId"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.status"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Project","type":"string","jsonPath":".spec.project"}"#,
    printcolumn = r#"{"name":"Name","type":"string","jsonPath":".spec.displayName","description":"the VolumeSnapshot's name"}"#,
    printcolumn = r#"{"name":"Size","type":"integer","jsonPath":".status.sizeBytes","description":"bytes (every lvsnap kind prints bytes)"}"#,
    printcolumn = r#"{"name":"Progress","type":"string","jsonPath":".status.progress","priority":1}"#,
    printcolumn = r#"{"name":"Node","type":"string","jsonPath":".spec.node","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "self.id == oldSelf.id && self.csiName == oldSelf.csiName && self.sourceVolumeId == oldSelf.sourceVolumeId && self.project == oldSelf.project && self.node == oldSelf.node && self.vg == oldSelf.vg && self.lvName == oldSelf.lvName && self.volumeSize == oldSelf.volumeSize",
     "message": "a snapshot's identity (id, csiName, sourceVolumeId, project, node, vg, lvName, volumeSize) is immutable"}
]))]
pub struct LvsSnapshotSpec {
    /// The snapshot id (a UUID), also the object's name.
    pub id: String,
    /// The CSI name the CO asked for (idempotency key).
    pub csi_name: String,
    pub source_volume_id: String,
    /// The project (Kubernetes namespace) charged for it.
    pub project: String,
    /// The VolumeSnapshot's name when known (Cinder's user).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub display_description: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// The source volume's type, for per-type quota keys.
    pub volume_type: String,
    /// The source volume's size in GiB, rounded up (what quota is charged).
    pub volume_size: i64,
    /// Copy-on-write area of a thick snapshot, in bytes (None: thin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cow_size_bytes: Option<i64>,
    /// Thick snapshots: when the node grows the COW area (absent: the
    /// defaults, 80 % / 20 %).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoextend: Option<super::Autoextend>,
    pub node: String,
    pub vg: String,
    /// The source volume's device class (absent: a record made before
    /// classes, in its node's default class).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_class: Option<String>,
    /// The LV: `_snapshot-<id>`.
    pub lv_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_snapshot_id: Option<String>,
    /// The quota deltas charged at creation, released exactly on delete.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub quota_charged: BTreeMap<String, i64>,
    /// The quota reservations this record claims. A reservation still open
    /// when it expires (the controller died between record and commit) is
    /// committed by the sweep if a live record claims it, rolled back if not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quota_reservations: Vec<String>,
}

/// Where a snapshot is in its life.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LvsSnapshotStatus {
    /// Status, progress, created, failure, soft delete.
    #[serde(flatten)]
    pub life: Lifecycle<SnapshotState>,
    #[serde(default)]
    pub ready_to_use: bool,
    /// The snapshot's size in bytes (the origin's size), 0 = unknown.
    #[serde(default)]
    pub size_bytes: i64,
}

/// One volume: Cinder's `volumes` row.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "lvsnap.io",
    version = "v1alpha1",
    kind = "LvsVolume",
    plural = "lvsvolumes",
    shortname = "lvsvol",
    status = "LvsVolumeStatus",
    category = "lvsnap",
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.status"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Project","type":"string","jsonPath":".spec.project"}"#,
    printcolumn = r#"{"name":"Name","type":"string","jsonPath":".spec.displayName","description":"the PersistentVolumeClaim's name"}"#,
    printcolumn = r#"{"name":"Size","type":"integer","jsonPath":".spec.sizeBytes","description":"bytes (every lvsnap kind prints bytes)"}"#,
    printcolumn = r#"{"name":"Node","type":"string","jsonPath":".spec.node"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "self.id == oldSelf.id && self.csiName == oldSelf.csiName && self.project == oldSelf.project && self.lvName == oldSelf.lvName",
     "message": "a volume's identity (id, csiName, project, lvName) is immutable; node and vg change only when a failed create is placed again"},
    {"rule": "self.sizeBytes >= oldSelf.sizeBytes", "message": "a volume never shrinks"}
]))]
pub struct LvsVolumeSpec {
    pub id: String,
    pub csi_name: String,
    pub project: String,
    /// The PersistentVolumeClaim's name when known, else the CSI name
    /// (the `Name` column of every kind is the CO object's name).
    #[serde(default)]
    pub display_name: String,
    pub volume_type: String,
    pub node: String,
    pub vg: String,
    /// The node's device class it was created in (`vg` is that class's VG
    /// on that node; absent: a record made before classes, the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_class: Option<String>,
    /// The LV: `volume-<id>`.
    pub lv_name: String,
    pub size_bytes: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thin_pool: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fs_type: Option<String>,
    /// Created from this snapshot id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_snapshot_id: Option<String>,
    /// Cloned from this volume id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_volume_id: Option<String>,
    /// The quota deltas charged at creation, released exactly on delete.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub quota_charged: BTreeMap<String, i64>,
    /// The quota reservations this record claims. A reservation still open
    /// when it expires (the controller died between record and commit) is
    /// committed by the sweep if a live record claims it, rolled back if not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quota_reservations: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LvsVolumeStatus {
    /// Status, progress, created, failure, soft delete.
    #[serde(flatten)]
    pub life: Lifecycle<VolumeState>,
    /// While `extending`: the size the node grows the LV to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extend_to: Option<i64>,
}

/// A project's quota: one object per project, so that a reservation is one
/// compare-and-swap on its resourceVersion (Cinder's `SELECT … FOR UPDATE`).
/// Namespaced, like a ResourceQuota: the object `quota` in the project's
/// namespace, readable by whoever may read that namespace (the chart
/// aggregates read access into the `view` role).
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "lvsnap.io",
    version = "v1alpha1",
    kind = "LvsQuota",
    plural = "lvsquotas",
    shortname = "lvsq",
    namespaced,
    status = "LvsQuotaStatus",
    category = "lvsnap",
    printcolumn = r#"{"name":"Snapshots","type":"integer","jsonPath":".status.usage.snapshots.inUse"}"#,
    printcolumn = r#"{"name":"Gigabytes","type":"integer","jsonPath":".status.usage.gigabytes.inUse"}"#,
    printcolumn = r#"{"name":"Volumes","type":"integer","jsonPath":".status.usage.volumes.inUse"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct LvsQuotaSpec {
    /// Limits: `snapshots`, `gigabytes`, `volumes` and `<resource>_<type>`;
    /// negative = unlimited; absent = the configured default.
    #[serde(default)]
    pub hard: BTreeMap<String, i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    pub in_use: i64,
    pub reserved: i64,
    /// Reservations left before `in_use` is recounted (Cinder's `until_refresh`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_refresh: Option<i64>,
    /// RFC 3339 time `in_use` was last recounted (for `max_age`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refreshed_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReservationRecord {
    pub id: String,
    pub resource: String,
    pub delta: i64,
    /// RFC 3339.
    pub expires_at: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LvsQuotaStatus {
    #[serde(default)]
    pub usage: BTreeMap<String, Usage>,
    #[serde(default)]
    pub reservations: Vec<ReservationRecord>,
    /// Releases applied whose record is not yet marked deleted (`snapshot/<id>`,
    /// `volume/<id>`, …): a release retried after a crash is not applied
    /// twice. An entry goes once its record is deleted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub released: Vec<String>,
}

/// One node: its volume group's capacity, reported by the node plugin.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "lvsnap.io",
    version = "v1alpha1",
    kind = "LvsNode",
    plural = "lvsnodes",
    status = "LvsNodeStatus",
    category = "lvsnap",
    printcolumn = r#"{"name":"VG","type":"string","jsonPath":".spec.vg"}"#,
    printcolumn = r#"{"name":"Classes","type":"string","jsonPath":".status.classes[*].name","description":"the device classes it serves"}"#,
    printcolumn = r#"{"name":"Size","type":"integer","jsonPath":".status.sizeBytes","description":"bytes"}"#,
    printcolumn = r#"{"name":"Free","type":"integer","jsonPath":".status.freeBytes","description":"bytes"}"#,
    printcolumn = r#"{"name":"Heartbeat","type":"date","jsonPath":".status.lastHeartbeat"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct LvsNodeSpec {
    pub vg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thin_pool: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LvsNodeStatus {
    pub size_bytes: i64,
    pub free_bytes: i64,
    pub extent_size_bytes: i64,
    #[serde(default)]
    pub lvm_version: String,
    /// RFC 3339.
    #[serde(default)]
    pub last_heartbeat: String,
    /// Each device class the node serves, with its capacity (absent: a node
    /// from before classes, one class named after `spec.vg`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<NodeClass>,
}

/// One device class of a node, as it reported it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeClass {
    pub name: String,
    /// This node's VG for the class (nodes may name it differently).
    pub vg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thin_pool: Option<String>,
    #[serde(default)]
    pub default: bool,
    /// The VG's size and free space.
    pub size_bytes: i64,
    pub free_bytes: i64,
    /// What a new volume of the class may take (thin: pool size × ratio
    /// less the virtual size allocated, at most the pool's free data less
    /// the reserve × ratio; thick: free less the reserve, per mirror copy).
    pub available_bytes: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overprovision_ratio: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<NodePool>,
}

/// A thin class's pool use.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodePool {
    pub size_bytes: i64,
    pub data_used_bytes: i64,
    pub metadata_percent: f64,
    pub virtual_bytes: i64,
}
