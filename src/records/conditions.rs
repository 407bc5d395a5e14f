//! The `Ready` condition of volume and snapshot records, so that `kubectl
//! wait --for=condition=Ready lvssnapshot/<id>` works (kubectl reads
//! `.status.conditions[]` with `type` and `status`). It is derived from the
//! lifecycle whenever a record is written (see `Lifecycle`'s `Serialize`,
//! which calls [`ready`]):
//! no code path that changes a status can forget it. `lastTransitionTime`
//! moves only when `status` flips between `True` and `False`.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::time::now_rfc3339;

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
pub(super) fn pascal(status: &str) -> String {
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

/// The `Ready` condition: `ready` and the record's `status` now, keeping the
/// transition time of the stored one (in `existing`) when its truth did not
/// change.
pub fn ready(existing: &[Condition], ready: bool, status: &str, message: String) -> Condition {
    let truth = if ready { "True" } else { "False" }.to_string();
    let since = existing
        .iter()
        .find(|c| c.type_ == READY && c.status == truth)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(now_rfc3339);
    Condition {
        type_: READY.into(),
        status: truth,
        reason: pascal(status),
        message,
        last_transition_time: since,
    }
}

/// The conditions to write: `ready` first, the others of `existing` kept.
pub fn with_ready(ready: Condition, existing: &[Condition]) -> Vec<Condition> {
    let mut out = vec![ready];
    out.extend(existing.iter().filter(|c| c.type_ != READY).cloned());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pascal_case_of_statuses() {
        assert_eq!(pascal("error_deleting"), "ErrorDeleting");
        assert_eq!(pascal("in-use"), "InUse");
    }
}
