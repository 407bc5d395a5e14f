//! An in-memory Kubernetes API server for lvsnap's own resources, served to
//! kube's `Client` as a tower service (no sockets). No kube-apiserver can be
//! installed on the build machines, so the Kubernetes store is tested (and
//! benchmarked) against this. It keeps the semantics lvsnap relies on:
//! resourceVersion increments and 409 on stale writes, 404, 422 for invalid
//! objects, 409 AlreadyExists, equality label selectors, status subresource
//! separation, and watch streams of ADDED/MODIFIED/DELETED events.
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{StreamExt, stream};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use serde_json::{Value, json};
use tokio::sync::broadcast;

mod events;
mod over_http;

pub use over_http::{HttpApiServer, kubeconfig};

const PREFIX: &str = "/apis/lvsnap.io/v1alpha1/";

/// A watch event as stored: (resourceVersion, plural, type, object).
type Event = (u64, String, &'static str, Value);

#[derive(Default)]
pub(super) struct State {
    pub(super) rv: u64,
    pub(super) objects: BTreeMap<(String, String), Value>,
    history: Vec<Event>,
    writes: u64,
}

/// The fake API server; clone it freely (shared state).
#[derive(Clone)]
pub struct FakeApiServer {
    pub(super) state: Arc<Mutex<State>>,
    events: broadcast::Sender<Event>,
}

impl Default for FakeApiServer {
    fn default() -> Self {
        Self::new()
    }
}

pub(super) type Body = BoxBody<Bytes, Infallible>;

pub(super) fn status(code: StatusCode, reason: &str, message: String) -> Response<Body> {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code.as_u16(),
    });
    respond(code, &body)
}

pub(super) fn respond(code: StatusCode, body: &Value) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())).boxed());
    *r.status_mut() = code;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

/// RFC 1123 subdomain: what Kubernetes accepts as an object name.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric()
}

/// Equality-based selectors: `k=v`, `k==v`, `k!=v`, `k`, `!k`, comma-joined.
fn matches_selector(obj: &Value, selector: &str) -> bool {
    let labels = &obj["metadata"]["labels"];
    selector.split(',').filter(|s| !s.is_empty()).all(|term| {
        if let Some((k, v)) = term.split_once("!=") {
            labels[k].as_str() != Some(v)
        } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
            labels[k].as_str() == Some(v)
        } else if let Some(k) = term.strip_prefix('!') {
            labels.get(k).is_none()
        } else {
            labels.get(term).is_some()
        }
    })
}

fn query(uri: &http::Uri) -> BTreeMap<String, String> {
    uri.query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), percent_decode(v)))
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

impl FakeApiServer {
    pub fn new() -> Self {
        let (events, _) = broadcast::channel(4096);
        Self {
            state: Arc::default(),
            events,
        }
    }

    /// A kube client talking to this server.
    pub fn client(&self) -> kube::Client {
        kube::Client::new(self.clone(), "default")
    }

    /// How many successful writes the server has taken.
    pub fn writes(&self) -> u64 {
        self.state.lock().map(|s| s.writes).unwrap_or(0)
    }

    /// Inspects a stored object (for tests).
    pub fn object(&self, plural: &str, name: &str) -> Option<Value> {
        let s = self.state.lock().ok()?;
        s.objects
            .get(&(plural.to_string(), name.to_string()))
            .cloned()
    }

    /// Stores a raw object as is (for tests of malformed records).
    pub fn insert_raw(&self, plural: &str, name: &str, mut obj: Value) {
        if let Ok(mut s) = self.state.lock() {
            s.rv += 1;
            obj["metadata"]["resourceVersion"] = json!(s.rv.to_string());
            s.objects
                .insert((plural.to_string(), name.to_string()), obj);
        }
    }

    fn record(&self, s: &mut State, plural: &str, kind: &'static str, obj: &Value) {
        s.writes += 1;
        let ev: Event = (s.rv, plural.to_string(), kind, obj.clone());
        s.history.push(ev.clone());
        let _ = self.events.send(ev);
    }

    async fn handle(self, req: Request<kube::client::Body>) -> Response<Body> {
        let (parts, body) = req.into_parts();
        let body = match body.collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => return status(StatusCode::BAD_REQUEST, "BadRequest", e.to_string()),
        };
        let path = parts.uri.path().to_string();
        if path == "/version" {
            return respond(
                StatusCode::OK,
                &json!({
                    "major": "1", "minor": "34", "gitVersion": "v1.34.0-lvsnap-fake",
                    "gitCommit": "", "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
                    "goVersion": "none", "compiler": "none", "platform": "linux/amd64",
                }),
            );
        }
        if let Some(rest) = path.strip_prefix(events::PREFIX) {
            return self.event(&parts.method, rest, &body);
        }
        let Some(rest) = path.strip_prefix(PREFIX) else {
            return status(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("no route for {path}"),
            );
        };
        let segs: Vec<&str> = rest.split('/').collect();
        let q = query(&parts.uri);
        match (parts.method, segs.as_slice()) {
            (Method::GET, [plural]) if q.get("watch").is_some_and(|w| w == "true" || w == "1") => {
                self.watch(plural, &q)
            }
            (Method::GET, [plural]) => self.list(plural, &q),
            (Method::POST, [plural]) => self.create(plural, &body),
            (Method::GET, [plural, name]) => self.get(plural, name),
            (Method::PUT, [plural, name]) => self.replace(plural, name, &body, false),
            (Method::PUT, [plural, name, "status"]) => self.replace(plural, name, &body, true),
            (Method::DELETE, [plural, name]) => self.delete(plural, name),
            (m, _) => status(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                format!("{m} {path}"),
            ),
        }
    }

    fn list(&self, plural: &str, q: &BTreeMap<String, String>) -> Response<Body> {
        let Ok(s) = self.state.lock() else {
            return status(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "poisoned".into(),
            );
        };
        let selector = q.get("labelSelector").map(String::as_str).unwrap_or("");
        let items: Vec<Value> = s
            .objects
            .iter()
            .filter(|((p, _), o)| p == plural && matches_selector(o, selector))
            .map(|(_, o)| o.clone())
            .collect();
        respond(
            StatusCode::OK,
            &json!({"apiVersion": "lvsnap.io/v1alpha1", "kind": "List",
                    "metadata": {"resourceVersion": s.rv.to_string()}, "items": items}),
        )
    }

    fn watch(&self, plural: &str, q: &BTreeMap<String, String>) -> Response<Body> {
        let selector = q.get("labelSelector").cloned().unwrap_or_default();
        let since: u64 = q
            .get("resourceVersion")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let live = self.events.subscribe();
        let backlog: Vec<Event> = match self.state.lock() {
            Ok(s) => s.history.iter().filter(|e| e.0 > since).cloned().collect(),
            Err(_) => Vec::new(),
        };
        let last = backlog.last().map(|e| e.0).unwrap_or(since);
        let plural = plural.to_string();
        let keep = {
            let (plural, selector) = (plural.clone(), selector.clone());
            move |e: &Event| e.1 == plural && matches_selector(&e.3, &selector)
        };
        let line = |e: Event| -> Result<http_body::Frame<Bytes>, Infallible> {
            let v = json!({"type": e.2, "object": e.3});
            Ok(http_body::Frame::data(Bytes::from(format!("{v}\n"))))
        };
        let keep2 = keep.clone();
        let replay = stream::iter(backlog.into_iter().filter(move |e| keep(e)).map(line));
        let follow = stream::unfold(live, move |mut rx| {
            let keep = keep2.clone();
            async move {
                loop {
                    match rx.recv().await {
                        Ok(e) if e.0 > last && keep(&e) => return Some((line(e), rx)),
                        Ok(_) => continue,
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            }
        });
        let mut r = Response::new(BodyExt::boxed(StreamBody::new(replay.chain(follow))));
        r.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        r
    }

    fn get(&self, plural: &str, name: &str) -> Response<Body> {
        match self.object(plural, name) {
            Some(o) => respond(StatusCode::OK, &o),
            None => status(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("{plural} \"{name}\" not found"),
            ),
        }
    }

    fn create(&self, plural: &str, body: &Bytes) -> Response<Body> {
        let mut obj: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => return status(StatusCode::BAD_REQUEST, "BadRequest", e.to_string()),
        };
        let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
        if !valid_name(&name) {
            return status(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Invalid",
                format!("metadata.name {name:?} is invalid"),
            );
        }
        if !obj["spec"].is_object() {
            return status(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Invalid",
                "spec: Required value".into(),
            );
        }
        let Ok(mut s) = self.state.lock() else {
            return status(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "poisoned".into(),
            );
        };
        let key = (plural.to_string(), name.clone());
        if s.objects.contains_key(&key) {
            return status(
                StatusCode::CONFLICT,
                "AlreadyExists",
                format!("{plural} \"{name}\" already exists"),
            );
        }
        s.rv += 1;
        // The status subresource is enabled: create ignores status.
        if let Some(m) = obj.as_object_mut() {
            m.remove("status");
        }
        obj["metadata"]["resourceVersion"] = json!(s.rv.to_string());
        obj["metadata"]["uid"] = json!(uuid::Uuid::new_v4().to_string());
        obj["metadata"]["creationTimestamp"] =
            json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        s.objects.insert(key, obj.clone());
        self.record(&mut s, plural, "ADDED", &obj);
        respond(StatusCode::CREATED, &obj)
    }

    fn replace(&self, plural: &str, name: &str, body: &Bytes, status_only: bool) -> Response<Body> {
        let new: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => return status(StatusCode::BAD_REQUEST, "BadRequest", e.to_string()),
        };
        let Ok(mut s) = self.state.lock() else {
            return status(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "poisoned".into(),
            );
        };
        let key = (plural.to_string(), name.to_string());
        let Some(current) = s.objects.get(&key).cloned() else {
            return status(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("{plural} \"{name}\" not found"),
            );
        };
        let sent_rv = new["metadata"]["resourceVersion"].as_str().unwrap_or("");
        let have_rv = current["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or("");
        if !sent_rv.is_empty() && sent_rv != have_rv {
            return status(
                StatusCode::CONFLICT,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {plural} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
                ),
            );
        }
        if !status_only && !new["spec"].is_object() {
            return status(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Invalid",
                "spec: Required value".into(),
            );
        }
        let mut stored = current.clone();
        if status_only {
            stored["status"] = new["status"].clone();
        } else {
            stored["spec"] = new["spec"].clone();
            stored["metadata"]["labels"] = new["metadata"]["labels"].clone();
            stored["metadata"]["annotations"] = new["metadata"]["annotations"].clone();
        }
        if stored == current {
            return respond(StatusCode::OK, &current); // no-op: no new version
        }
        s.rv += 1;
        stored["metadata"]["resourceVersion"] = json!(s.rv.to_string());
        s.objects.insert(key, stored.clone());
        self.record(&mut s, plural, "MODIFIED", &stored);
        respond(StatusCode::OK, &stored)
    }

    fn delete(&self, plural: &str, name: &str) -> Response<Body> {
        let Ok(mut s) = self.state.lock() else {
            return status(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "poisoned".into(),
            );
        };
        let Some(obj) = s.objects.remove(&(plural.to_string(), name.to_string())) else {
            return status(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("{plural} \"{name}\" not found"),
            );
        };
        s.rv += 1;
        self.record(&mut s, plural, "DELETED", &obj);
        respond(StatusCode::OK, &obj)
    }
}

impl tower::Service<Request<kube::client::Body>> for FakeApiServer {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<kube::client::Body>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.handle(req).await) })
    }
}
