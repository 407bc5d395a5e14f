//! The Controller service's conversions: domain errors to `tonic::Status`
//! (the one place codes are chosen), records to CSI messages, and the checks
//! of CSI-only inputs (volume capabilities, topology).
use std::collections::HashMap;

use tonic::{Code, Status};

use crate::controller::{ControllerError, GroupSnapshot};
use crate::proto::v1 as csi;
use crate::records::FailureCode;
use crate::store::{SnapshotRecord, StoreError, VolumeRecord};

/// The topology key of a node (volumes live on one node).
pub const TOPOLOGY_KEY: &str = "topology.lvsnap.io/node";

/// The one mapping from domain errors to gRPC codes (DESIGN §6).
pub fn status(e: ControllerError) -> Status {
    let code = match &e {
        ControllerError::Invalid(_) => Code::InvalidArgument,
        ControllerError::NotFound(_) => Code::NotFound,
        ControllerError::AlreadyExists(_) => Code::AlreadyExists,
        ControllerError::Exhausted(_) => Code::ResourceExhausted,
        ControllerError::Aborted(_) => Code::Aborted,
        ControllerError::FailedPrecondition(_) => Code::FailedPrecondition,
        ControllerError::OutOfRange(_) => Code::OutOfRange,
        ControllerError::Unavailable(_) => Code::Unavailable,
        ControllerError::Internal(_) => Code::Internal,
        ControllerError::Recorded { code, .. } => grpc_code(*code),
        ControllerError::Store(StoreError::Unavailable(_)) => Code::Unavailable,
        ControllerError::Store(_) => Code::Internal,
        ControllerError::Halted(_) => Code::Unavailable,
    };
    if matches!(code, Code::Internal | Code::Unavailable) {
        tracing::error!(error = %e, "controller call failed");
    }
    Status::new(code, e.to_string())
}

/// The one conversion from a recorded failure to its gRPC code.
pub fn grpc_code(code: FailureCode) -> Code {
    match code {
        FailureCode::InvalidArgument => Code::InvalidArgument,
        FailureCode::NotFound => Code::NotFound,
        FailureCode::AlreadyExists => Code::AlreadyExists,
        FailureCode::ResourceExhausted => Code::ResourceExhausted,
        FailureCode::FailedPrecondition => Code::FailedPrecondition,
        FailureCode::Aborted => Code::Aborted,
        FailureCode::OutOfRange => Code::OutOfRange,
        FailureCode::Unavailable => Code::Unavailable,
        FailureCode::Internal => Code::Internal,
    }
}

pub(super) fn timestamp(rfc3339: &str) -> Option<prost_types::Timestamp> {
    let t = chrono::DateTime::parse_from_rfc3339(rfc3339).ok()?;
    Some(prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    })
}

pub(super) fn snapshot_msg(r: &SnapshotRecord) -> csi::Snapshot {
    csi::Snapshot {
        size_bytes: r.status.size_bytes,
        snapshot_id: r.name.clone(),
        source_volume_id: r.spec.source_volume_id.clone(),
        creation_time: timestamp(&r.status.life.created_at),
        ready_to_use: r.status.ready_to_use,
        group_snapshot_id: r.spec.group_snapshot_id.clone().unwrap_or_default(),
    }
}

pub(super) fn group_msg(g: &GroupSnapshot) -> csi::VolumeGroupSnapshot {
    csi::VolumeGroupSnapshot {
        group_snapshot_id: g.group.name.clone(),
        snapshots: g.members.iter().map(snapshot_msg).collect(),
        creation_time: timestamp(&g.group.status.life.created_at),
        ready_to_use: g.group.status.ready_to_use,
    }
}

pub(super) fn volume_msg(v: &VolumeRecord) -> csi::Volume {
    let mut context = HashMap::new();
    context.insert("vg".to_string(), v.spec.vg.clone());
    context.insert("lvName".to_string(), v.spec.lv_name.clone());
    if let Some(fs) = &v.spec.fs_type {
        context.insert("fsType".to_string(), fs.clone());
    }
    csi::Volume {
        capacity_bytes: v.spec.size_bytes,
        volume_id: v.name.clone(),
        volume_context: context,
        content_source: match (&v.spec.source_snapshot_id, &v.spec.source_volume_id) {
            (Some(id), _) => Some(csi::VolumeContentSource {
                r#type: Some(csi::volume_content_source::Type::Snapshot(
                    csi::volume_content_source::SnapshotSource {
                        snapshot_id: id.clone(),
                    },
                )),
            }),
            (None, Some(id)) => Some(csi::VolumeContentSource {
                r#type: Some(csi::volume_content_source::Type::Volume(
                    csi::volume_content_source::VolumeSource {
                        volume_id: id.clone(),
                    },
                )),
            }),
            (None, None) => None,
        },
        accessible_topology: vec![csi::Topology {
            segments: [(TOPOLOGY_KEY.to_string(), v.spec.node.clone())].into(),
        }],
    }
}

/// Checks volume capabilities: present, single-node access, mount (ext4,
/// xfs or unset) or block.
pub(super) fn check_capabilities(caps: &[csi::VolumeCapability]) -> Result<(), Status> {
    use csi::volume_capability::AccessType;
    use csi::volume_capability::access_mode::Mode;
    if caps.is_empty() {
        return Err(Status::invalid_argument("volume_capabilities are required"));
    }
    for cap in caps {
        let mode = cap
            .access_mode
            .as_ref()
            .map(|m| m.mode)
            .ok_or_else(|| Status::invalid_argument("access_mode is required"))?;
        let single = [
            Mode::SingleNodeWriter,
            Mode::SingleNodeReaderOnly,
            Mode::SingleNodeSingleWriter,
            Mode::SingleNodeMultiWriter,
        ];
        if !single.iter().any(|m| *m as i32 == mode) {
            return Err(Status::invalid_argument(format!(
                "access mode {mode} is not supported: LVM volumes attach to one node"
            )));
        }
        match &cap.access_type {
            Some(AccessType::Block(_)) => {}
            Some(AccessType::Mount(m))
                if m.fs_type.is_empty() || m.fs_type == "ext4" || m.fs_type == "xfs" => {}
            Some(AccessType::Mount(m)) => {
                return Err(Status::invalid_argument(format!(
                    "fs_type {:?} is not supported (ext4, xfs)",
                    m.fs_type
                )));
            }
            None => {
                return Err(Status::invalid_argument(
                    "access_type (mount or block) is required",
                ));
            }
        }
    }
    Ok(())
}

/// The filesystem the capabilities ask for (the provisioner puts the
/// StorageClass's `csi.storage.k8s.io/fstype` there).
pub(super) fn fs_type_of(caps: &[csi::VolumeCapability]) -> Option<String> {
    caps.iter().find_map(|c| match &c.access_type {
        Some(csi::volume_capability::AccessType::Mount(m)) if !m.fs_type.is_empty() => {
            Some(m.fs_type.clone())
        }
        _ => None,
    })
}

pub(super) fn nodes_of(topologies: &[csi::Topology]) -> Vec<String> {
    topologies
        .iter()
        .filter_map(|t| t.segments.get(TOPOLOGY_KEY).cloned())
        .collect()
}
