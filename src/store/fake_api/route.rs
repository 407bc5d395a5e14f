//! Request paths and verbs, parsed as the real server's RequestInfo does:
//! `/api/v1/...` (core group) and `/apis/{group}/{version}/...`, then
//! `[namespaces/{ns}/]{plural}[/{name}[/{subresource}]]`.
use std::collections::BTreeMap;

use http::Method;

/// A resource request's target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Route {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

impl Route {
    /// The resource as authorization names it: `plural` or `plural/status`.
    pub fn resource(&self) -> String {
        match &self.subresource {
            Some(sub) => format!("{}/{sub}", self.plural),
            None => self.plural.clone(),
        }
    }
}

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Target {
    /// `GET /version`.
    Version,
    Resource(Route),
    /// Anything else: 404.
    Unknown,
}

/// Subresources of a Namespace, which the real parser does not mistake
/// for a resource inside the namespace.
const NAMESPACE_SUBRESOURCES: [&str; 2] = ["status", "finalize"];

pub(super) fn parse(path: &str) -> Target {
    if path == "/version" || path == "/version/" {
        return Target::Version;
    }
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (group, version, mut rest) = match segs.as_slice() {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Target::Unknown,
    };
    let mut namespace = None;
    if let ["namespaces", ns, tail @ ..] = rest
        && !tail.is_empty()
        && !NAMESPACE_SUBRESOURCES.contains(&tail[0])
    {
        namespace = Some(ns.to_string());
        rest = tail;
    }
    let (plural, name, subresource) = match rest {
        [plural] => (*plural, None, None),
        [plural, name] => (*plural, Some(*name), None),
        [plural, name, sub] => (*plural, Some(*name), Some(*sub)),
        _ => return Target::Unknown,
    };
    let parts = [Some(version), Some(plural), name, subresource];
    if parts.iter().flatten().any(|p| p.is_empty())
        || (segs[0] == "apis" && group.is_empty())
        || namespace.as_deref() == Some("")
    {
        return Target::Unknown;
    }
    Target::Resource(Route {
        group: group.to_string(),
        version: version.to_string(),
        plural: plural.to_string(),
        namespace,
        name: name.map(str::to_string),
        subresource: subresource.map(str::to_string),
    })
}

/// Whether the query asks for a watch (`watch=true` or `watch=1`).
pub(super) fn is_watch(q: &BTreeMap<String, String>) -> bool {
    q.get("watch").is_some_and(|w| w == "true" || w == "1")
}

/// The authorization verb, as the real server derives it from the method,
/// the path and the `watch` parameter.
pub(super) fn verb(method: &Method, route: &Route, q: &BTreeMap<String, String>) -> &'static str {
    let named = route.name.is_some();
    match *method {
        Method::GET | Method::HEAD if is_watch(q) => "watch",
        Method::GET | Method::HEAD if named => "get",
        Method::GET | Method::HEAD => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if named => "delete",
        Method::DELETE => "deletecollection",
        _ => "unknown",
    }
}

/// The query parameters, percent-decoded (`+` is a space).
pub(super) fn query(uri: &http::Uri) -> BTreeMap<String, String> {
    uri.query()
        .unwrap_or("")
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| kv.split_once('=').unwrap_or((kv, "")))
        .map(|(k, v)| (percent_decode(k), percent_decode(v)))
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(path: &str) -> Route {
        match parse(path) {
            Target::Resource(r) => r,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn paths_parse_as_the_real_server_parses_them() {
        let r = route("/api/v1/nodes/n1/status");
        assert_eq!(
            (r.group.as_str(), r.plural.as_str(), r.name.as_deref()),
            ("", "nodes", Some("n1"))
        );
        assert_eq!(r.resource(), "nodes/status");
        let r = route("/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/l");
        assert_eq!(r.namespace.as_deref(), Some("kube-system"));
        assert_eq!(
            (r.plural.as_str(), r.name.as_deref()),
            ("leases", Some("l"))
        );
        // A Namespace itself and its status are cluster-scoped.
        let r = route("/api/v1/namespaces/ns1/status");
        assert_eq!(r.namespace, None);
        assert_eq!(
            (r.plural.as_str(), r.name.as_deref()),
            ("namespaces", Some("ns1"))
        );
        let r = route("/apis/snapshot.storage.k8s.io/v1/volumesnapshots");
        assert_eq!((r.namespace, r.name), (None, None));
        assert_eq!(parse("/version"), Target::Version);
        for bad in [
            "/",
            "/apis",
            "/apis/g/v",
            "/api/v1/nodes/a/b/c",
            "/apis/g/v/x//",
            "/healthz",
        ] {
            assert_eq!(parse(bad), Target::Unknown, "{bad}");
        }
    }

    #[test]
    fn queries_are_decoded() {
        let uri: http::Uri = "/x?labelSelector=a+in+%28b%2Cc%29&watch=1&flag"
            .parse()
            .expect("uri");
        let q = query(&uri);
        assert_eq!(q["labelSelector"], "a in (b,c)");
        assert!(is_watch(&q));
        assert_eq!(q["flag"], "");
        let uri: http::Uri = "/x?v=%2".parse().expect("uri");
        assert_eq!(query(&uri)["v"], "%2", "a truncated escape is kept as is");
    }
}
