//! The `Ready` condition of volume and snapshot records, so that `kubectl
//! wait --for=condition=Ready lvssnapshot/<id>` works (kubectl reads
//! `.status.conditions[]` with `type` and `status`). It is derived from the
//! lifecycle whenever a record is written (see `Lifecycle`'s `Serialize`):
//! no code path that changes a status can forget it. `lastTransitionTime`
//! moves only when `status` flips between `True` and `False`.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::lifecycle::{LifeState, Lifecycle, now_rfc3339};

pub const READY: &str = "Ready";

/// A Kubernetes-style condition (metav1.Condition's fields).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Ready`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True` or `False`.
    pub status: String,
    /// The record's status in PascalCase (`Available`, `Creating`, `Error`, …).
    pub reason: String,
    #[serde(default)]
    pub message: String,
    /// RFC 3339: when `status` last changed.
    pub last_transition_time: String,
}

/// `error_deleting` → `ErrorDeleting`, `in-use` → `InUse`.
fn pascal(status: &str) -> String {
    status
        .split(['_', '-'])
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

impl<S: LifeState> Lifecycle<S> {
    /// The `Ready` condition for the current status, keeping the stored
    /// one's transition time when its truth did not change.
    pub fn ready_condition(&self) -> Condition {
        let ready = !self.deleted && self.status.is_ready();
        let status = if ready { "True" } else { "False" }.to_string();
        let message = match (&self.error_message, ready) {
            (Some(m), _) if self.error_code.is_some() => m.clone(),
            (_, true) => self.status.as_str().to_string(),
            (_, false) if self.status == S::CREATING => {
                format!("creating: {}", self.progress)
            }
            (_, false) => self.status.as_str().to_string(),
        };
        let since = self
            .conditions
            .iter()
            .find(|c| c.type_ == READY && c.status == status)
            .map(|c| c.last_transition_time.clone())
            .unwrap_or_else(now_rfc3339);
        Condition {
            type_: READY.into(),
            status,
            reason: pascal(self.status.as_str()),
            message,
            last_transition_time: since,
        }
    }

    /// The conditions to write: `Ready` derived now, others kept.
    pub fn current_conditions(&self) -> Vec<Condition> {
        let mut out = vec![self.ready_condition()];
        out.extend(self.conditions.iter().filter(|c| c.type_ != READY).cloned());
        out
    }
}

#[cfg(test)]
mod tests {
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
        assert_eq!(pascal("error_deleting"), "ErrorDeleting");
        assert_eq!(pascal("in-use"), "InUse");
    }
}
