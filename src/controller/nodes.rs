//! Whether a record's node can still do its work: live, stale (no heartbeat
//! for `--node-stale-after`: no new volumes, deletes answer UNAVAILABLE), or
//! gone (the CO's Node object was deleted: the proof that lets a delete
//! finish without the node). A CO that cannot be asked is never "gone".
use chrono::Utc;

use super::Controller;
use crate::records::parse_time;
use crate::store::{NodeRecord, Presence};

/// A node's state as the controller sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeHealth {
    Live,
    /// Its last heartbeat (RFC 3339, or empty when it never reported).
    Stale {
        last_heartbeat: String,
    },
    /// The CO answered that the node object does not exist.
    Gone,
}

impl Controller {
    /// Whether `n` reported within `--node-stale-after` of `now`.
    pub(crate) fn is_fresh(&self, n: &NodeRecord, now: chrono::DateTime<Utc>) -> bool {
        let Ok(stale_after) = chrono::Duration::from_std(self.config.node_stale_after) else {
            return true;
        };
        parse_time(Some(&n.status.last_heartbeat)).is_some_and(|t| now - t <= stale_after)
    }

    /// The health of node `name`: the CO first (only a definite "no such
    /// node" counts), then its LvsNode heartbeat.
    pub async fn node_health(&self, name: &str) -> NodeHealth {
        match self.cluster.node(name).await {
            Ok(Presence::Gone) => return NodeHealth::Gone,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(node = name, error = %e, "cannot ask the CO about the node; judging by its heartbeat")
            }
        }
        let record = match self.store.list_nodes().await {
            Ok(nodes) => nodes.into_iter().find(|n| n.name == name),
            Err(e) => {
                tracing::warn!(node = name, error = %e, "cannot read node records");
                return NodeHealth::Live;
            }
        };
        match record {
            Some(n) if self.is_fresh(&n, Utc::now()) => NodeHealth::Live,
            Some(n) => NodeHealth::Stale {
                last_heartbeat: n.status.last_heartbeat,
            },
            None => NodeHealth::Stale {
                last_heartbeat: String::new(),
            },
        }
    }
}

impl Controller {
    /// The error for new work aimed at `node` when it cannot do it: gone
    /// (FAILED_PRECONDITION) or stale (UNAVAILABLE); `None` when it is live.
    pub(super) async fn unhealthy(&self, node: &str, what: &str) -> Option<super::ControllerError> {
        match self.node_health(node).await {
            NodeHealth::Live => None,
            NodeHealth::Gone => Some(super::ControllerError::FailedPrecondition(format!(
                "node {node} is gone (its Node object was deleted)"
            ))),
            NodeHealth::Stale { last_heartbeat } => Some(super::ControllerError::Unavailable(
                stale_message(node, &last_heartbeat, what),
            )),
        }
    }
}

/// The UNAVAILABLE message for work aimed at a stale node.
pub(super) fn stale_message(node: &str, last_heartbeat: &str, what: &str) -> String {
    let since = if last_heartbeat.is_empty() {
        "never reported".to_string()
    } else {
        format!("last reported at {last_heartbeat}")
    };
    format!("node {node} is unavailable ({since}); {what} when it is back")
}
