//! Cinder's status machines for snapshots and volumes. An illegal transition
//! is an error, never a silent overwrite.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A snapshot's status (Cinder's `snapshots.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotState {
    #[default]
    Creating,
    Available,
    Deleting,
    Deleted,
    Error,
    ErrorDeleting,
}

/// A volume's status (Cinder's `volumes.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "kebab-case")]
pub enum VolumeState {
    #[default]
    Creating,
    Available,
    InUse,
    Deleting,
    Deleted,
    Error,
    #[serde(rename = "error_deleting")]
    ErrorDeleting,
    /// ControllerExpandVolume: the node grows the LV (Cinder's `extending`).
    Extending,
}

/// A refused status change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("illegal {kind} status transition {from} -> {to}")]
pub struct IllegalTransition {
    pub kind: &'static str,
    pub from: String,
    pub to: String,
}

impl SnapshotState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Creating => "creating",
            Self::Available => "available",
            Self::Deleting => "deleting",
            Self::Deleted => "deleted",
            Self::Error => "error",
            Self::ErrorDeleting => "error_deleting",
        }
    }

    /// Cinder's transitions: `creating → available | error`;
    /// `available | error → deleting` (the only states delete accepts);
    /// `deleting → deleted | error_deleting | available` (busy: back);
    /// `error_deleting → deleting` (a retried delete); `error → creating`
    /// (a re-issued CreateSnapshot re-dispatches a failed cut without new
    /// quota). Staying in the same state is always allowed (progress updates).
    pub fn can_become(self, to: SnapshotState) -> bool {
        use SnapshotState::*;
        self == to
            || matches!(
                (self, to),
                (Creating, Available | Error)
                    | (Available | Error, Deleting)
                    | (Deleting, Deleted | ErrorDeleting | Available)
                    | (ErrorDeleting, Deleting)
                    | (Error, Creating)
            )
    }

    pub fn transition(self, to: SnapshotState) -> Result<SnapshotState, IllegalTransition> {
        if self.can_become(to) {
            Ok(to)
        } else {
            Err(IllegalTransition {
                kind: "snapshot",
                from: self.as_str().into(),
                to: to.as_str().into(),
            })
        }
    }
}

impl VolumeState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Creating => "creating",
            Self::Available => "available",
            Self::InUse => "in-use",
            Self::Deleting => "deleting",
            Self::Deleted => "deleted",
            Self::Error => "error",
            Self::ErrorDeleting => "error_deleting",
            Self::Extending => "extending",
        }
    }

    /// Cinder's volume transitions, with `in-use` for a published volume.
    pub fn can_become(self, to: VolumeState) -> bool {
        use VolumeState::*;
        self == to
            || matches!(
                (self, to),
                (Creating, Available | Error)
                    | (Available, InUse | Deleting)
                    | (InUse, Available)
                    | (Error, Deleting | Creating)
                    | (Deleting, Deleted | ErrorDeleting | Available)
                    | (ErrorDeleting, Deleting)
                    | (Available, Extending)
                    | (Extending, Available)
            )
    }

    pub fn transition(self, to: VolumeState) -> Result<VolumeState, IllegalTransition> {
        if self.can_become(to) {
            Ok(to)
        } else {
            Err(IllegalTransition {
                kind: "volume",
                from: self.as_str().into(),
                to: to.as_str().into(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_transitions_follow_cinder() {
        use SnapshotState::*;
        let all = [Creating, Available, Deleting, Deleted, Error, ErrorDeleting];
        let legal = [
            (Creating, Available),
            (Creating, Error),
            (Available, Deleting),
            (Error, Deleting),
            (Deleting, Deleted),
            (Deleting, ErrorDeleting),
            (Deleting, Available),
            (ErrorDeleting, Deleting),
            (Error, Creating),
        ];
        for from in all {
            for to in all {
                let expected = from == to || legal.contains(&(from, to));
                assert_eq!(from.can_become(to), expected, "{from:?} -> {to:?}");
                assert_eq!(from.transition(to).is_ok(), expected);
            }
        }
        let err = Deleted.transition(Available).unwrap_err();
        assert_eq!(
            err.to_string(),
            "illegal snapshot status transition deleted -> available"
        );
    }

    #[test]
    fn wire_names_are_cinders() {
        assert_eq!(
            serde_json::to_string(&SnapshotState::ErrorDeleting).unwrap(),
            "\"error_deleting\""
        );
        assert_eq!(
            serde_json::to_string(&VolumeState::InUse).unwrap(),
            "\"in-use\""
        );
        assert_eq!(
            serde_json::to_string(&VolumeState::ErrorDeleting).unwrap(),
            "\"error_deleting\""
        );
        for s in [
            VolumeState::Creating,
            VolumeState::InUse,
            VolumeState::ErrorDeleting,
        ] {
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        assert!(
            VolumeState::Deleted
                .transition(VolumeState::Available)
                .is_err()
        );
        assert!(
            VolumeState::Available
                .transition(VolumeState::InUse)
                .is_ok()
        );
    }
}
