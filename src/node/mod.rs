//! The node side: the executor that reconciles the records assigned to this
//! node with its volume group (the part of Cinder's volume manager and LVM
//! driver that runs on the host).
mod capacity;
mod content;
mod copy;
pub mod data;
mod data_stats;
mod executor;
mod fill;
mod fill_report;
mod freeze;
mod group;
mod group_settle;
pub mod host;
mod record;
mod settings;
mod settle;
mod snapshots;
mod volumes;

pub use capacity::VgCapacity;
pub use data::{Access, DataPath, Stats};
pub use executor::{Executor, NodeSettings, WorkError};
pub use fill_report::{FillReport, FillState, PoolFill, SnapshotFill};
pub use host::{Host, NodeError};
pub use settle::{SettleError, Settled};

use crate::lvm::{ErrorKind, LvmError};
use crate::records::FailureCode;

/// A failure to record on a record: its code and message.
pub(crate) type Failure = (FailureCode, String);

/// The one conversion from LVM's error kinds to recorded failure codes.
pub(crate) fn failure_of(e: &LvmError) -> FailureCode {
    match e.kind() {
        ErrorKind::NotFound => FailureCode::NotFound,
        ErrorKind::AlreadyExists => FailureCode::AlreadyExists,
        ErrorKind::InsufficientSpace => FailureCode::ResourceExhausted,
        ErrorKind::Busy => FailureCode::FailedPrecondition,
        ErrorKind::InvalidArgument => FailureCode::InvalidArgument,
        ErrorKind::Other => FailureCode::Internal,
    }
}

/// An LVM failure as a recorded one.
pub(crate) fn lvm_failure(e: LvmError) -> Failure {
    (failure_of(&e), e.to_string())
}

/// An invalid name or size as a recorded failure.
pub(crate) fn invalid(e: impl std::fmt::Display) -> Failure {
    (FailureCode::InvalidArgument, e.to_string())
}

#[cfg(test)]
mod tests {
    use crate::lvm::LvName;

    /// records names LVs as the LVM layer does (records may not import lvm).
    #[test]
    fn record_lv_names_are_the_lvm_layers() {
        let id = uuid::Uuid::new_v4();
        assert_eq!(
            crate::records::snapshot_lv_name(&id),
            LvName::snapshot(id).as_str()
        );
        assert_eq!(
            crate::records::volume_lv_name(&id),
            LvName::volume(id).as_str()
        );
    }
}
