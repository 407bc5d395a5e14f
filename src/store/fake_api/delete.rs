//! DELETE: preconditions, finalizers (the object waits with a
//! deletionTimestamp), and deleting a collection.
use std::collections::BTreeMap;

use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::{Value, json};

use super::reply::{Body, Failure, respond};
use super::resources::ResourceInfo;
use super::select::Selector;
use super::{FakeApiServer, Key, now};

/// The DeleteOptions that matter here.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct DeleteOptions {
    uid: Option<String>,
    resource_version: Option<String>,
}

/// DeleteOptions from a request body (empty: the defaults).
pub(super) fn parse_options(body: &Bytes) -> Result<DeleteOptions, Failure> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(DeleteOptions::default());
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| Failure::bad_request(format!("the DeleteOptions are not valid JSON: {e}")))?;
    let pre = &v["preconditions"];
    let field = |k: &str| -> Result<Option<String>, Failure> {
        match &pre[k] {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s.clone())),
            other => Err(Failure::bad_request(format!(
                "preconditions.{k}: expected a string, got {other}"
            ))),
        }
    };
    Ok(DeleteOptions {
        uid: field("uid")?,
        resource_version: field("resourceVersion")?,
    })
}

impl FakeApiServer {
    /// Deletes `name`: 404 if missing, 409 if a precondition fails; an
    /// object with finalizers gets `deletionTimestamp` (a MODIFIED event,
    /// once) and stays until an update removes its last finalizer. Answers
    /// the object as it is after the call.
    pub(super) fn delete(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Value, Failure> {
        let mut s = self.lock()?;
        let key = Key::new(info, ns, name);
        let current = s
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| Failure::not_found(info, name))?;
        let meta = &current["metadata"];
        let checks = [
            ("UID", &opts.uid, meta["uid"].as_str()),
            (
                "ResourceVersion",
                &opts.resource_version,
                meta["resourceVersion"].as_str(),
            ),
        ];
        for (what, wanted, have) in checks {
            if let Some(wanted) = wanted
                && Some(wanted.as_str()) != have
            {
                return Err(Failure::precondition(
                    info,
                    name,
                    what,
                    wanted,
                    have.unwrap_or(""),
                ));
            }
        }
        let finalized = meta["finalizers"].as_array().is_some_and(|f| !f.is_empty());
        if finalized && !meta["deletionTimestamp"].is_null() {
            return Ok(current); // already waiting for its finalizers
        }
        let rv = s.bump();
        let mut obj = current.clone();
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        if finalized {
            obj["metadata"]["deletionTimestamp"] = json!(now());
            obj["metadata"]["deletionGracePeriodSeconds"] = json!(0);
            s.objects.insert(key, obj.clone());
            s.record(info, "MODIFIED", &obj, Some(&current));
        } else {
            s.objects.remove(&key);
            s.record(info, "DELETED", &obj, None);
        }
        Ok(obj)
    }

    /// DELETE of a collection (in `ns`, or everywhere), with the list's
    /// selectors: answers the list of what was deleted or is now deleting.
    pub(super) fn delete_collection(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        q: &BTreeMap<String, String>,
        body: &Bytes,
    ) -> Result<Response<Body>, Failure> {
        let opts = parse_options(body)?;
        let selector = Selector::parse(
            q.get("labelSelector").map(String::as_str).unwrap_or(""),
            q.get("fieldSelector").map(String::as_str).unwrap_or(""),
        )?;
        let targets: Vec<(Option<String>, String)> = {
            let s = self.lock()?;
            s.objects
                .iter()
                .filter(|(k, o)| {
                    k.group == info.group
                        && k.plural == info.plural
                        && ns.is_none_or(|n| k.namespace == n)
                        && selector.matches(o)
                })
                .map(|(k, _)| {
                    let ns = (!k.namespace.is_empty()).then(|| k.namespace.clone());
                    (ns, k.name.clone())
                })
                .collect()
        };
        let mut items = Vec::new();
        for (ns, name) in targets {
            match self.delete(info, ns.as_deref(), &name, &opts) {
                Ok(o) => items.push(o),
                Err(f) if f.code == 404 => {} // deleted meanwhile
                Err(f) => return Err(f),
            }
        }
        let rv = self.lock()?.rv;
        Ok(respond(
            StatusCode::OK,
            &json!({"apiVersion": info.api_version(), "kind": format!("{}List", info.kind),
                    "metadata": {"resourceVersion": rv.to_string()}, "items": items}),
        ))
    }
}
