//! Fault injection and request accounting for tests.
//!
//! - `forbid(verb, group, plural)`: matching requests answer 403 Forbidden
//!   with the real authorizer's message (`<plural>.<group> is forbidden:
//!   User "…" cannot list resource "<plural>" in API group "<group>" at the
//!   cluster scope`). Verbs are the authorizer's: get, list, watch, create,
//!   update, patch, delete, deletecollection; a write of `/status` is
//!   `update` (or `patch`) of `<plural>/status`, forbidden by either
//!   `forbid("update", g, "<plural>")` or `forbid("update", g,
//!   "<plural>/status")`. `"*"` matches any verb or plural.
//! - `set_unavailable(true)`: every request, `/version` included, answers
//!   503 ServiceUnavailable, and open watches end (an API server going
//!   away); `false` serves again.
//! - `drop_watches()`: ends every open watch stream (a restarted server);
//!   clients re-watch from their last resourceVersion.
//! - `compact()`: drops the change history: watches and continue tokens
//!   from older versions get 410 Expired.
//! - `requests()`: how many requests arrived, by (verb, group, resource),
//!   including refused ones; fixtures are not counted.
//!
//! For "unreachable" (connection refused), stop the HTTP front:
//! `HttpApiServer::stop()`.
use std::collections::BTreeMap;

use super::FakeApiServer;
use super::reply::Failure;
use super::route::Route;

/// The user refusals name: the service account lvsnap runs as.
pub const USER: &str = "system:serviceaccount:lvsnap:lvsnap";

/// What a request was, for the counter: `resource` is the plural,
/// `plural/status` for the status subresource, or the path of a
/// non-resource request (`/version`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestKey {
    pub verb: String,
    pub group: String,
    pub resource: String,
}

#[derive(Debug, Default)]
pub(super) struct Faults {
    forbidden: Vec<(String, String, String)>,
    unavailable: bool,
    requests: BTreeMap<RequestKey, u64>,
    /// Every User-Agent seen, with its request count.
    user_agents: BTreeMap<String, u64>,
}

fn matches(pattern: &str, value: &str) -> bool {
    pattern == "*" || pattern == value
}

impl FakeApiServer {
    /// Refuses `verb` on `plural` of `group` ("" for core) with 403.
    pub fn forbid(&self, verb: &str, group: &str, plural: &str) {
        if let Ok(mut s) = self.state.lock() {
            s.faults
                .forbidden
                .push((verb.to_string(), group.to_string(), plural.to_string()));
        }
    }

    /// Lifts every `forbid`.
    pub fn allow_all(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.faults.forbidden.clear();
        }
    }

    /// Answers every request with 503 (and ends open watches) while true.
    pub fn set_unavailable(&self, unavailable: bool) {
        if let Ok(mut s) = self.state.lock() {
            s.faults.unavailable = unavailable;
        }
        if unavailable {
            self.drop_watches();
        }
    }

    /// Ends every open watch stream.
    pub fn drop_watches(&self) {
        self.kill.send_modify(|n| *n += 1);
    }

    /// Forgets the change history up to the current resourceVersion.
    pub fn compact(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.compacted = s.rv;
            s.history.clear();
        }
    }

    /// The current resourceVersion (the last write's).
    pub fn resource_version(&self) -> u64 {
        self.state.lock().map(|s| s.rv).unwrap_or(0)
    }

    /// Requests so far, by (verb, group, resource).
    pub fn requests(&self) -> BTreeMap<RequestKey, u64> {
        self.state
            .lock()
            .map(|s| s.faults.requests.clone())
            .unwrap_or_default()
    }

    /// Requests so far of `verb` on `resource` (`plural` or
    /// `plural/status`) of `group`; `"*"` matches any verb or resource.
    pub fn request_count(&self, verb: &str, group: &str, resource: &str) -> u64 {
        self.requests()
            .iter()
            .filter(|(k, _)| {
                matches(verb, &k.verb) && k.group == group && matches(resource, &k.resource)
            })
            .map(|(_, n)| n)
            .sum()
    }

    /// Every request so far.
    pub fn total_requests(&self) -> u64 {
        self.requests().values().sum()
    }

    /// Zeroes the request counter.
    pub fn reset_requests(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.faults.requests.clear();
        }
    }

    /// The User-Agent headers requests carried, with how many of each
    /// (`""`: none).
    pub fn user_agents(&self) -> BTreeMap<String, u64> {
        self.state
            .lock()
            .map(|s| s.faults.user_agents.clone())
            .unwrap_or_default()
    }

    pub(super) fn count_agent(&self, agent: &str) {
        if let Ok(mut s) = self.state.lock() {
            *s.faults.user_agents.entry(agent.to_string()).or_default() += 1;
        }
    }

    pub(super) fn count(&self, verb: &str, group: &str, resource: &str) {
        if let Ok(mut s) = self.state.lock() {
            let key = RequestKey {
                verb: verb.to_string(),
                group: group.to_string(),
                resource: resource.to_string(),
            };
            *s.faults.requests.entry(key).or_default() += 1;
        }
    }

    pub(super) fn check_available(&self) -> Result<(), Failure> {
        if self.lock()?.faults.unavailable {
            return Err(Failure::unavailable());
        }
        Ok(())
    }

    pub(super) fn check_allowed(&self, verb: &str, route: &Route) -> Result<(), Failure> {
        let resource = route.resource();
        let refused = self.lock()?.faults.forbidden.iter().any(|(v, g, p)| {
            matches(v, verb)
                && g == &route.group
                && (matches(p, &resource) || (p == &route.plural && route.subresource.is_some()))
        });
        if refused {
            return Err(Failure::forbidden(
                &route.group,
                &resource,
                verb,
                route.namespace.as_deref(),
                route.name.as_deref(),
                USER,
            ));
        }
        Ok(())
    }
}
