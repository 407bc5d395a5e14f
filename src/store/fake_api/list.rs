//! Lists: selectors, namespaces, `limit` and `continue` pages in a stable
//! order (namespace, then name).
use std::collections::BTreeMap;
use std::ops::Bound;

use http::{Response, StatusCode};
use serde_json::{Value, json};

use super::reply::{Body, Failure, respond};
use super::resources::ResourceInfo;
use super::select::Selector;
use super::{FakeApiServer, Key};

const EXPIRED_CONTINUE: &str = "The provided continue parameter is too old to display a consistent \
     list result. You can start a new list without the continue parameter.";

/// Where a page ends: the list's resourceVersion and the last key served.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Continue {
    rv: u64,
    resource: String,
    namespace: String,
    name: String,
}

impl Continue {
    fn encode(&self) -> String {
        hex::encode(serde_json::to_vec(self).unwrap_or_default())
    }

    /// A token of this resource, or None (garbled or another resource's).
    fn decode(token: &str, info: &ResourceInfo) -> Option<Self> {
        let bytes = hex::decode(token).ok()?;
        let c: Continue = serde_json::from_slice(&bytes).ok()?;
        (c.resource == info.group_resource()).then_some(c)
    }
}

/// A numeric query parameter (absent: None; not a number: 400).
pub(super) fn number(q: &BTreeMap<String, String>, key: &str) -> Result<Option<u64>, Failure> {
    match q.get(key).map(String::as_str) {
        None | Some("") => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| Failure::bad_request(format!("{key}: Invalid value: {v:?}"))),
    }
}

/// The selector of a list or watch request.
pub(super) fn selector(q: &BTreeMap<String, String>) -> Result<Selector, Failure> {
    Selector::parse(
        q.get("labelSelector").map(String::as_str).unwrap_or(""),
        q.get("fieldSelector").map(String::as_str).unwrap_or(""),
    )
}

impl FakeApiServer {
    pub(super) fn list(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        q: &BTreeMap<String, String>,
    ) -> Result<Response<Body>, Failure> {
        let selector = selector(q)?;
        number(q, "resourceVersion")?; // any version: the current state is not older
        let limit = number(q, "limit")?.filter(|l| *l > 0);
        let s = self.lock()?;
        let token = match q.get("continue").filter(|t| !t.is_empty()) {
            None => None,
            Some(t) => match Continue::decode(t, info) {
                Some(c) if c.rv >= s.compacted => Some(c),
                _ => return Err(Failure::expired(EXPIRED_CONTINUE)),
            },
        };
        // A continued list keeps its first page's version, so a watch from
        // it misses nothing the later pages could not show.
        let list_rv = token.as_ref().map_or(s.rv, |c| c.rv);
        let start = Key::new(info, ns, "");
        let lower = match &token {
            Some(c) => Bound::Excluded(Key {
                namespace: c.namespace.clone(),
                name: c.name.clone(),
                ..start.clone()
            }),
            None => Bound::Included(start),
        };
        let mut items: Vec<&Value> = Vec::new();
        let mut more = false;
        for (k, o) in s.objects.range((lower, Bound::Unbounded)) {
            if k.group != info.group || k.plural != info.plural {
                break;
            }
            if ns.is_some_and(|n| k.namespace != n) {
                break;
            }
            if !selector.matches(o) {
                continue;
            }
            if limit.is_some_and(|l| items.len() as u64 >= l) {
                more = true;
                break;
            }
            items.push(o);
        }
        let mut metadata = json!({"resourceVersion": list_rv.to_string()});
        if more && let Some(last) = items.last() {
            let c = Continue {
                rv: list_rv,
                resource: info.group_resource(),
                namespace: last["metadata"]["namespace"].as_str().unwrap_or("").into(),
                name: last["metadata"]["name"].as_str().unwrap_or("").into(),
            };
            metadata["continue"] = json!(c.encode());
        }
        Ok(respond(
            StatusCode::OK,
            &json!({"apiVersion": info.api_version(), "kind": format!("{}List", info.kind),
                    "metadata": metadata, "items": items}),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip_and_refuse_other_resources() {
        let all = super::super::resources::defaults();
        let nodes = &all[0];
        let leases = all.iter().find(|r| r.plural == "leases").expect("leases");
        let c = Continue {
            rv: 7,
            resource: nodes.group_resource(),
            namespace: String::new(),
            name: "n1".into(),
        };
        let token = c.encode();
        assert_eq!(Continue::decode(&token, nodes), Some(c));
        assert_eq!(Continue::decode(&token, leases), None);
        assert_eq!(Continue::decode("zz", nodes), None);
        assert_eq!(Continue::decode(&hex::encode("{}"), nodes), None);
    }
}
