//! Create, update (of the object or of `/status`) and patch.
use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::reply::Failure;
use super::resources::ResourceInfo;
use super::{FakeApiServer, Key, State, now, validate};

/// Metadata only the server writes: kept from the stored object on updates.
const SERVER_METADATA: [&str; 6] = [
    "uid",
    "creationTimestamp",
    "generation",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "namespace",
];

/// A request body: a JSON object, or a 400.
pub(super) fn parse_body(body: &Bytes) -> Result<Value, Failure> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| Failure::bad_request(format!("the request body is not valid JSON: {e}")))?;
    if !v.is_object() {
        return Err(Failure::bad_request(
            "the request body is not a JSON object",
        ));
    }
    Ok(v)
}

/// The checks every written body goes through against its URL: apiVersion
/// and kind (set if absent), namespace (set on namespaced kinds, dropped
/// on cluster-scoped ones), name (when the URL has one).
fn place(
    info: &ResourceInfo,
    ns: Option<&str>,
    name: Option<&str>,
    obj: &mut Value,
) -> Result<(), Failure> {
    let api_version = info.api_version();
    if let Some(sent) = obj["apiVersion"].as_str().filter(|v| *v != api_version) {
        return Err(Failure::bad_request(format!(
            "the API version in the data ({sent}) does not match the expected API version ({api_version})"
        )));
    }
    if let Some(sent) = obj["kind"].as_str().filter(|k| *k != info.kind) {
        return Err(Failure::bad_request(format!(
            "the kind in the data ({sent}) does not match the expected kind ({})",
            info.kind
        )));
    }
    obj["apiVersion"] = json!(api_version);
    obj["kind"] = json!(info.kind);
    match &obj["metadata"] {
        Value::Object(_) => {}
        Value::Null => obj["metadata"] = json!({}),
        other => {
            return Err(Failure::bad_request(format!(
                "metadata: expected an object, got {other}"
            )));
        }
    }
    let meta = &mut obj["metadata"];
    match ns {
        Some(ns) => {
            if meta["namespace"]
                .as_str()
                .is_some_and(|n| !n.is_empty() && n != ns)
            {
                return Err(Failure::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            meta["namespace"] = json!(ns);
        }
        None => {
            if let Some(m) = meta.as_object_mut() {
                m.remove("namespace");
            }
        }
    }
    if let Some(name) = name {
        let sent = meta["name"].as_str().unwrap_or("");
        if sent != name {
            return Err(Failure::bad_request(format!(
                "the name of the object ({sent}) does not match the name on the URL ({name})"
            )));
        }
    }
    Ok(())
}

/// The object without what does not count for `metadata.generation`.
fn generation_part(info: &ResourceInfo, obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("metadata");
        if info.status_subresource {
            m.remove("status");
        }
    }
    v
}

/// Removes `key` from an object (nothing if not an object).
fn remove(v: &mut Value, key: &str) {
    if let Some(m) = v.as_object_mut() {
        m.remove(key);
    }
}

/// RFC 7386 JSON merge patch.
pub(super) fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

impl FakeApiServer {
    /// POST: validates, then stores with server metadata (uid,
    /// creationTimestamp, generation 1, resourceVersion); `generateName`
    /// names an unnamed object; status is dropped with a status subresource.
    pub(super) fn create(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        mut obj: Value,
    ) -> Result<Value, Failure> {
        place(info, ns, None, &mut obj)?;
        let meta = &mut obj["metadata"];
        if meta["name"].as_str().unwrap_or("").is_empty()
            && let Some(prefix) = meta["generateName"].as_str()
        {
            let suffix: String = uuid::Uuid::new_v4().simple().to_string()[..5].to_string();
            meta["name"] = json!(format!("{prefix}{suffix}"));
        }
        if let Some(m) = meta.as_object_mut() {
            for server_only in [
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "resourceVersion",
            ] {
                m.remove(server_only);
            }
        }
        if info.status_subresource
            && let Some(m) = obj.as_object_mut()
        {
            m.remove("status");
        }
        validate::object(info, &obj)?;
        let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
        let mut s = self.lock()?;
        let key = Key::new(info, ns, &name);
        if s.objects.contains_key(&key) {
            return Err(Failure::already_exists(info, &name));
        }
        let rv = s.bump();
        let meta = &mut obj["metadata"];
        meta["resourceVersion"] = json!(rv.to_string());
        meta["uid"] = json!(uuid::Uuid::new_v4().to_string());
        meta["creationTimestamp"] = json!(now());
        meta["generation"] = json!(1);
        s.objects.insert(key, obj.clone());
        s.record(info, "ADDED", &obj, None);
        Ok(obj)
    }

    /// PUT of the object (`status_only` false) or of `/status`.
    pub(super) fn update(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        body: Value,
        status_only: bool,
    ) -> Result<Value, Failure> {
        let mut s = self.lock()?;
        update_locked(&mut s, info, ns, name, body, status_only)
    }

    /// PATCH of the object or of `/status` (see the module docs for the
    /// patch types); the result is written as an update would be.
    pub(super) fn patch(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        content_type: &str,
        body: &Bytes,
        status_only: bool,
    ) -> Result<Value, Failure> {
        let media = content_type.split(';').next().unwrap_or("").trim();
        match media {
            "application/merge-patch+json" => {}
            "application/strategic-merge-patch+json" if !info.custom => {}
            "application/strategic-merge-patch+json" => {
                return Err(Failure::unsupported_media(
                    "the body of the request was in an unknown format - accepted media types \
                     include: application/json-patch+json, application/merge-patch+json, \
                     application/apply-patch+yaml (strategic merge patch is not supported for \
                     custom resources)",
                ));
            }
            "application/apply-patch+yaml" | "application/json-patch+json" => {
                return Err(Failure::unsupported_media(format!(
                    "{media} is not supported by the fake API server: use a merge patch"
                )));
            }
            other => {
                return Err(Failure::unsupported_media(format!(
                    "the body of the request was in an unknown format ({other:?}) - accepted \
                     media types include: application/merge-patch+json, \
                     application/strategic-merge-patch+json"
                )));
            }
        }
        let patch = parse_body(body)?;
        let mut s = self.lock()?;
        let current = s
            .objects
            .get(&Key::new(info, ns, name))
            .cloned()
            .ok_or_else(|| Failure::not_found(info, name))?;
        let have = current["metadata"]["resourceVersion"].clone();
        if let Some(wanted) = patch["metadata"]["resourceVersion"].as_str()
            && have.as_str() != Some(wanted)
        {
            return Err(Failure::conflict(info, name));
        }
        let mut merged = current;
        merge(&mut merged, &patch);
        if !merged["metadata"].is_object() {
            return Err(Failure::bad_request(
                "metadata: a patch may not replace the object's metadata",
            ));
        }
        merged["metadata"]["resourceVersion"] = have;
        update_locked(&mut s, info, ns, name, merged, status_only)
    }
}

/// An update under the state lock: the compare-and-swap, the status
/// subresource's separation, finalizers, generation, and removal of an
/// object whose deletion waited for its last finalizer.
fn update_locked(
    s: &mut State,
    info: &ResourceInfo,
    ns: Option<&str>,
    name: &str,
    mut body: Value,
    status_only: bool,
) -> Result<Value, Failure> {
    place(info, ns, Some(name), &mut body)?;
    let key = Key::new(info, ns, name);
    let current = s
        .objects
        .get(&key)
        .cloned()
        .ok_or_else(|| Failure::not_found(info, name))?;
    let have = current["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("");
    let sent = body["metadata"]["resourceVersion"].as_str().unwrap_or("");
    if !sent.is_empty() && sent != have {
        return Err(Failure::conflict(info, name));
    }
    let mut new = if status_only {
        let mut new = current.clone();
        match body.get("status") {
            Some(st) if !st.is_null() => new["status"] = st.clone(),
            _ => remove(&mut new, "status"),
        }
        new
    } else {
        let mut new = body;
        if info.status_subresource
            && let Some(m) = new.as_object_mut()
        {
            match current.get("status") {
                Some(st) => m.insert("status".into(), st.clone()),
                None => m.remove("status"),
            };
        }
        for field in SERVER_METADATA {
            match current["metadata"].get(field) {
                Some(v) => new["metadata"][field] = v.clone(),
                None => remove(&mut new["metadata"], field),
            }
        }
        new
    };
    new["metadata"]["resourceVersion"] = json!(have);
    if new == current {
        return Ok(current); // no change: no new version, no event
    }
    if !status_only {
        validate::object(info, &new)?;
    }
    validate::finalizers(info, &current, &new)?;
    if !status_only && generation_part(info, &new) != generation_part(info, &current) {
        let generation = current["metadata"]["generation"].as_i64().unwrap_or(0);
        new["metadata"]["generation"] = json!(generation + 1);
    }
    let rv = s.bump();
    new["metadata"]["resourceVersion"] = json!(rv.to_string());
    let unfinalized = new["metadata"]["finalizers"]
        .as_array()
        .is_none_or(|f| f.is_empty());
    if !new["metadata"]["deletionTimestamp"].is_null() && unfinalized {
        s.objects.remove(&key);
        s.record(info, "DELETED", &new, None);
    } else {
        s.objects.insert(key, new.clone());
        s.record(info, "MODIFIED", &new, Some(&current));
    }
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let mut doc = json!({"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]});
        merge(
            &mut doc,
            &json!({"a": "z", "c": {"f": null}, "l": [3], "n": {"x": 1}}),
        );
        assert_eq!(
            doc,
            json!({"a": "z", "c": {"d": "e"}, "l": [3], "n": {"x": 1}})
        );
        let mut scalar = json!("s");
        merge(&mut scalar, &json!({"k": null, "v": 1}));
        assert_eq!(scalar, json!({"v": 1}));
    }
}
