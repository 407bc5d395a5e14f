//! The validation the real server applies to every object (names, labels,
//! finalizers, a required `spec`) and to events.k8s.io Events; failures
//! are 422 Invalid with the field path, as from the real server.
use serde_json::Value;

use super::reply::Failure;
use super::resources::ResourceInfo;

/// RFC 1123 subdomain: what Kubernetes accepts as most object names.
pub(super) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

/// A label value: at most 63 of `[A-Za-z0-9._-]`, alphanumeric at both
/// ends; empty is allowed.
pub(super) fn valid_label_value(v: &str) -> bool {
    v.is_empty()
        || (v.len() <= 63
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && v.as_bytes()[0].is_ascii_alphanumeric()
            && v.as_bytes()[v.len() - 1].is_ascii_alphanumeric())
}

/// A label (or annotation, or finalizer) key: `[prefix/]name`, the prefix a
/// DNS subdomain, the name a non-empty label value.
pub(super) fn valid_label_key(k: &str) -> bool {
    let (prefix, name) = match k.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    prefix.is_none_or(valid_name) && !name.is_empty() && valid_label_value(name)
}

/// The checks of a create or an update of the whole object.
pub(super) fn object(info: &ResourceInfo, obj: &Value) -> Result<(), Failure> {
    let meta = &obj["metadata"];
    let name = meta["name"].as_str().unwrap_or("");
    let invalid = |field: &str, detail: String| Failure::invalid(info, name, field, &detail);
    if !valid_name(name) {
        return Err(invalid(
            "metadata.name",
            format!(
                "Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of lower \
                 case alphanumeric characters, '-' or '.', and must start and end with an \
                 alphanumeric character"
            ),
        ));
    }
    if let Some(labels) = meta.get("labels").filter(|l| !l.is_null()) {
        let Some(labels) = labels.as_object() else {
            return Err(invalid(
                "metadata.labels",
                "Invalid value: not a map".into(),
            ));
        };
        for (k, v) in labels {
            if !valid_label_key(k) {
                return Err(invalid(
                    "metadata.labels",
                    format!(
                        "Invalid value: {k:?}: name part must consist of alphanumeric characters, '-', '_' or '.'"
                    ),
                ));
            }
            if !v.as_str().is_some_and(valid_label_value) {
                return Err(invalid(
                    &format!("metadata.labels[{k}]"),
                    format!(
                        "Invalid value: {v}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.'"
                    ),
                ));
            }
        }
    }
    for field in ["annotations", "finalizers"] {
        let ok = match &meta[field] {
            Value::Null => true,
            Value::Object(m) => field == "annotations" && m.values().all(Value::is_string),
            Value::Array(a) => {
                field == "finalizers" && a.iter().all(|f| f.as_str().is_some_and(valid_label_key))
            }
            _ => false,
        };
        if !ok {
            return Err(invalid(
                &format!("metadata.{field}"),
                "Invalid value".into(),
            ));
        }
    }
    if info.spec_required && !obj["spec"].is_object() {
        return Err(invalid("spec", "Required value".into()));
    }
    if info.group == "events.k8s.io" {
        event(info, obj)?;
    }
    Ok(())
}

/// events.k8s.io/v1 Event: the fields the real server requires.
fn event(info: &ResourceInfo, obj: &Value) -> Result<(), Failure> {
    let name = obj["metadata"]["name"].as_str().unwrap_or("");
    let required = [
        "eventTime",
        "reportingController",
        "reportingInstance",
        "action",
        "reason",
        "regarding",
    ];
    if let Some(missing) = required.iter().find(|k| obj[**k].is_null()) {
        return Err(Failure::invalid(info, name, missing, "Required value"));
    }
    if !matches!(obj["type"].as_str(), Some("Normal" | "Warning")) {
        return Err(Failure::invalid(info, name, "type", "Unsupported value"));
    }
    if obj["note"].as_str().is_some_and(|n| n.len() > 1024) {
        return Err(Failure::invalid(
            info,
            name,
            "note",
            "Too long: may not be more than 1024 bytes",
        ));
    }
    Ok(())
}

/// No finalizer may be added to an object being deleted.
pub(super) fn finalizers(info: &ResourceInfo, old: &Value, new: &Value) -> Result<(), Failure> {
    if old["metadata"]["deletionTimestamp"].is_null() {
        return Ok(());
    }
    let list = |o: &Value| -> Vec<String> {
        o["metadata"]["finalizers"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|f| f.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let before = list(old);
    match list(new).into_iter().find(|f| !before.contains(f)) {
        Some(added) => Err(Failure::invalid(
            info,
            old["metadata"]["name"].as_str().unwrap_or(""),
            "metadata.finalizers",
            &format!(
                "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers [{added:?}]"
            ),
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_labels() {
        for ok in ["a", "v-1", "a.b-c.d", "0abc"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "A", "-a", "a-", "a..b", "a_b", ".a", &"x".repeat(254)] {
            assert!(!valid_name(bad), "{bad}");
        }
        for ok in ["", "a", "A_b.c-D", &"x".repeat(63)] {
            assert!(valid_label_value(ok), "{ok}");
        }
        for bad in ["-a", "a b", "a/b", &"x".repeat(64)] {
            assert!(!valid_label_value(bad), "{bad}");
        }
        for ok in ["k", "lvsnap.io/node", "kubernetes.io/hostname"] {
            assert!(valid_label_key(ok), "{ok}");
        }
        for bad in ["", "/k", "a/", "Bad.Prefix/k", "a/b/c"] {
            assert!(!valid_label_key(bad), "{bad}");
        }
    }
}
