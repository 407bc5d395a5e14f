//! The lifecycle block volumes and snapshots share: status, progress, the
//! recorded failure, the soft delete. Flattened into each status, so the
//! stored fields keep the names records always had (`status`, `progress`,
//! `errorCode`, `errorMessage`, `deleted`, `deletedAt`; `createdAt`, which
//! snapshots stored as `creationTime`, is still read under that name).
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::conditions::{self, Condition};
use super::failure::{FailureCode, Operation};
use super::state::{IllegalTransition, SnapshotState, VolumeState};
use super::time::{now_rfc3339, parse_time};
use chrono::{DateTime, Utc};

/// A status machine the lifecycle block runs (Cinder's volume and snapshot
/// statuses).
pub trait LifeState: Copy + Eq + std::fmt::Debug + 'static {
    const CREATING: Self;
    const AVAILABLE: Self;
    const ERROR: Self;
    const DELETING: Self;
    const ERROR_DELETING: Self;
    const DELETED: Self;
    /// Every status, in a stable order (metrics list them all).
    const ALL: &'static [Self];
    fn as_str(self) -> &'static str;
    /// Usable: the `Ready` condition is `True`.
    fn is_ready(self) -> bool;
    fn transition(self, to: Self) -> Result<Self, IllegalTransition>;
}

impl LifeState for SnapshotState {
    const CREATING: Self = SnapshotState::Creating;
    const AVAILABLE: Self = SnapshotState::Available;
    const ERROR: Self = SnapshotState::Error;
    const DELETING: Self = SnapshotState::Deleting;
    const ERROR_DELETING: Self = SnapshotState::ErrorDeleting;
    const DELETED: Self = SnapshotState::Deleted;
    const ALL: &'static [Self] = &[
        SnapshotState::Creating,
        SnapshotState::Available,
        SnapshotState::Deleting,
        SnapshotState::Deleted,
        SnapshotState::Error,
        SnapshotState::ErrorDeleting,
    ];
    fn as_str(self) -> &'static str {
        SnapshotState::as_str(self)
    }
    fn is_ready(self) -> bool {
        self == SnapshotState::Available
    }
    fn transition(self, to: Self) -> Result<Self, IllegalTransition> {
        SnapshotState::transition(self, to)
    }
}

impl LifeState for VolumeState {
    const CREATING: Self = VolumeState::Creating;
    const AVAILABLE: Self = VolumeState::Available;
    const ERROR: Self = VolumeState::Error;
    const DELETING: Self = VolumeState::Deleting;
    const ERROR_DELETING: Self = VolumeState::ErrorDeleting;
    const DELETED: Self = VolumeState::Deleted;
    const ALL: &'static [Self] = &[
        VolumeState::Creating,
        VolumeState::Available,
        VolumeState::InUse,
        VolumeState::Extending,
        VolumeState::Deleting,
        VolumeState::Deleted,
        VolumeState::Error,
        VolumeState::ErrorDeleting,
    ];
    fn as_str(self) -> &'static str {
        VolumeState::as_str(self)
    }
    /// An extending volume stays usable (it grows online).
    fn is_ready(self) -> bool {
        matches!(
            self,
            VolumeState::Available | VolumeState::InUse | VolumeState::Extending
        )
    }
    fn transition(self, to: Self) -> Result<Self, IllegalTransition> {
        VolumeState::transition(self, to)
    }
}

/// Status, progress, failure and soft delete of one record. Written with
/// its `Ready` condition derived from the status (the `Serialize` below).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Lifecycle<S> {
    pub status: S,
    /// "0%" … "100%".
    #[serde(default)]
    pub progress: String,
    /// RFC 3339; set when the record is written.
    #[serde(default, alias = "creationTime")]
    pub created_at: String,
    /// Why the last operation failed (status `error`, `error_deleting`, or
    /// back to `available` after a busy delete or a failed extend).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<FailureCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// The operation that failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_op: Option<Operation>,
    /// RFC 3339: when it failed (a failed create nobody asks for again is
    /// released `--failed-create-grace` after this).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_at: Option<String>,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<String>,
    /// `Ready` (kubectl wait --for=condition=Ready), as last written.
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

/// The stored form: every field as it is, `conditions` derived afresh.
impl<S: LifeState + Serialize> Serialize for Lifecycle<S> {
    fn serialize<Z: serde::Serializer>(&self, z: Z) -> Result<Z::Ok, Z::Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Wire<'a, S> {
            status: &'a S,
            progress: &'a str,
            created_at: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            error_code: &'a Option<FailureCode>,
            #[serde(skip_serializing_if = "Option::is_none")]
            error_message: &'a Option<String>,
            #[serde(skip_serializing_if = "Option::is_none")]
            error_op: &'a Option<Operation>,
            #[serde(skip_serializing_if = "Option::is_none")]
            error_at: &'a Option<String>,
            deleted: bool,
            #[serde(skip_serializing_if = "Option::is_none")]
            deleted_at: &'a Option<String>,
            conditions: Vec<Condition>,
        }
        Wire {
            status: &self.status,
            progress: &self.progress,
            created_at: &self.created_at,
            error_code: &self.error_code,
            error_message: &self.error_message,
            error_op: &self.error_op,
            error_at: &self.error_at,
            deleted: self.deleted,
            deleted_at: &self.deleted_at,
            conditions: self.current_conditions(),
        }
        .serialize(z)
    }
}

impl<S: LifeState> Lifecycle<S> {
    /// A record being created: `creating`, `0%`, created now.
    pub fn creating() -> Self {
        Self {
            status: S::CREATING,
            progress: "0%".into(),
            created_at: now_rfc3339(),
            error_code: None,
            error_message: None,
            error_op: None,
            error_at: None,
            deleted: false,
            deleted_at: None,
            conditions: Vec::new(),
        }
    }

    /// Moves to `to` if Cinder's machine allows it.
    pub fn transition(&mut self, to: S) -> Result<(), IllegalTransition> {
        self.status = self.status.transition(to)?;
        Ok(())
    }

    /// Records a failure of `op` (the status is the caller's to set).
    pub fn fail(&mut self, op: Operation, code: FailureCode, message: impl Into<String>) {
        self.error_code = Some(code);
        self.error_message = Some(message.into());
        self.error_op = Some(op);
        self.error_at = Some(now_rfc3339());
    }

    /// A create that failed: status `error` with the failure.
    pub fn fail_create(&mut self, code: FailureCode, message: impl Into<String>) {
        self.status = S::ERROR;
        self.fail(Operation::Create, code, message);
    }

    pub fn clear_error(&mut self) {
        self.error_code = None;
        self.error_message = None;
        self.error_op = None;
        self.error_at = None;
    }

    /// Soft delete (Cinder's `deleted=1`, `deleted_at`): status `deleted`.
    pub fn mark_deleted(&mut self) {
        self.status = S::DELETED;
        self.deleted = true;
        self.deleted_at = Some(now_rfc3339());
    }

    /// A create that failed (so never answered as a success), before `cutoff`.
    pub fn failed_create_before(&self, cutoff: DateTime<Utc>) -> bool {
        !self.deleted
            && self.status == S::ERROR
            && self.error_op == Some(Operation::Create)
            && parse_time(self.error_at.as_deref()).is_some_and(|t| t < cutoff)
    }

    /// A failed create, whenever it failed.
    pub fn is_failed_create(&self) -> bool {
        !self.deleted && self.status == S::ERROR && self.error_op == Some(Operation::Create)
    }
}

impl<S: LifeState> Lifecycle<S> {
    /// The `Ready` condition for the current status (see `conditions`).
    pub fn ready_condition(&self) -> Condition {
        let ready = !self.deleted && self.status.is_ready();
        let message = match (&self.error_message, ready) {
            (Some(m), _) if self.error_code.is_some() => m.clone(),
            (_, true) => self.status.as_str().to_string(),
            (_, false) if self.status == S::CREATING => {
                format!("creating: {}", self.progress)
            }
            (_, false) => self.status.as_str().to_string(),
        };
        conditions::ready(&self.conditions, ready, self.status.as_str(), message)
    }

    /// The conditions to write: `Ready` derived now, others kept.
    pub fn current_conditions(&self) -> Vec<Condition> {
        conditions::with_ready(self.ready_condition(), &self.conditions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_old_field_names_and_writes_the_same_ones() {
        let old = r#"{"status":"error","progress":"0%","creationTime":"2026-01-01T00:00:00Z",
                      "errorCode":"RESOURCE_EXHAUSTED","errorMessage":"no room","deleted":false}"#;
        let l: Lifecycle<SnapshotState> = serde_json::from_str(old).unwrap();
        assert_eq!(l.created_at, "2026-01-01T00:00:00Z");
        assert_eq!(l.error_code, Some(FailureCode::ResourceExhausted));
        assert_eq!(l.error_op, None);
        let json = serde_json::to_value(&l).unwrap();
        assert_eq!(json["errorCode"], "RESOURCE_EXHAUSTED");
        assert_eq!(json["createdAt"], "2026-01-01T00:00:00Z");
    }

    #[test]
    fn failed_creates_are_told_apart_from_other_failures() {
        let mut l = Lifecycle::<VolumeState>::creating();
        assert!(!l.is_failed_create());
        l.fail_create(FailureCode::ResourceExhausted, "no room");
        assert!(l.is_failed_create());
        let later = Utc::now() + chrono::Duration::seconds(5);
        assert!(l.failed_create_before(later));
        assert!(!l.failed_create_before(Utc::now() - chrono::Duration::seconds(60)));
        l.clear_error();
        assert!(!l.is_failed_create());
        // A vanished LV is an error of the node's check, not of a create.
        l.status = VolumeState::Error;
        l.fail(Operation::Check, FailureCode::NotFound, "LV vanished");
        assert!(!l.is_failed_create());
        l.mark_deleted();
        assert_eq!(l.status, VolumeState::Deleted);
        assert!(l.deleted && l.deleted_at.is_some());
    }
}

#[cfg(test)]
mod condition_tests {
    use super::*;
    use crate::records::{FailureCode, SnapshotState, VolumeState};

    fn ready(v: &serde_json::Value) -> (String, String, String) {
        let c = &v["conditions"][0];
        assert_eq!(c["type"], "Ready");
        (
            c["status"].as_str().unwrap().into(),
            c["reason"].as_str().unwrap().into(),
            c["lastTransitionTime"].as_str().unwrap().into(),
        )
    }

    #[test]
    fn ready_follows_the_status_and_keeps_its_transition_time() {
        let mut l = Lifecycle::<SnapshotState>::creating();
        let v = serde_json::to_value(&l).unwrap();
        let (status, reason, t0) = ready(&v);
        assert_eq!((status.as_str(), reason.as_str()), ("False", "Creating"));
        assert_eq!(v["conditions"][0]["message"], "creating: 0%");
        // Read back, still creating: the same transition time.
        l = serde_json::from_value(v).unwrap();
        l.progress = "50%".into();
        let v = serde_json::to_value(&l).unwrap();
        assert_eq!(ready(&v).2, t0);
        l = serde_json::from_value(v).unwrap();
        l.status = SnapshotState::Available;
        let v = serde_json::to_value(&l).unwrap();
        let (status, reason, t1) = ready(&v);
        assert_eq!((status.as_str(), reason.as_str()), ("True", "Available"));
        assert!(t1 >= t0);
        l = serde_json::from_value(v).unwrap();
        l.status = SnapshotState::Error;
        l.fail(
            crate::records::Operation::Check,
            FailureCode::Internal,
            "overflowed",
        );
        let v = serde_json::to_value(&l).unwrap();
        assert_eq!(ready(&v).0, "False");
        assert_eq!(v["conditions"][0]["message"], "overflowed");
        // Every field survives a round trip.
        let back: Lifecycle<SnapshotState> = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(serde_json::to_value(&back).unwrap(), v);
    }

    #[test]
    fn volumes_in_use_and_extending_are_ready() {
        for (s, want) in [
            (VolumeState::InUse, "True"),
            (VolumeState::Extending, "True"),
            (VolumeState::ErrorDeleting, "False"),
        ] {
            let mut l = Lifecycle::<VolumeState>::creating();
            l.status = s;
            assert_eq!(l.ready_condition().status, want, "{s:?}");
        }
    }
}
