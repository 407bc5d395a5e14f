//! The group snapshot record as the store keeps it, and its listing filter.
use super::Record;
use crate::records::{LvsGroupSnapshotSpec, LvsGroupSnapshotStatus};

pub type GroupSnapshotRecord = Record<LvsGroupSnapshotSpec, LvsGroupSnapshotStatus>;

/// Which group snapshots to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupSnapshotFilter {
    pub node: Option<String>,
    pub project: Option<String>,
    pub include_deleted: bool,
}
