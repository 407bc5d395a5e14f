//! An in-memory Kubernetes API server, served to kube's `Client` as a tower
//! service (no sockets) or over HTTP on loopback (`HttpApiServer`). No
//! kube-apiserver can run on the build machines, so the Kubernetes store,
//! and whatever else talks to Kubernetes, is tested (and benchmarked)
//! against this; it follows the real server's semantics:
//!
//! - **Routing** for any registered resource (`resources` has the table):
//!   `/api/v1/...` and `/apis/{group}/{version}/...`, cluster-scoped
//!   `{plural}[/{name}[/status]]` and namespaced
//!   `namespaces/{ns}/{plural}[/{name}[/status]]`, and lists and watches
//!   across namespaces (`{plural}` of a namespaced kind). Objects are keyed
//!   by (group, plural, namespace, name): equal plurals of two groups never
//!   meet. A namespace in a body that differs from the path is a 400.
//! - **Writes**: resourceVersion compare-and-swap (409 Conflict), 404,
//!   409 AlreadyExists, 422 Invalid (names, labels, finalizers, required
//!   `spec`), `generateName`, `metadata.generation`, no new version for a
//!   write that changes nothing, and the status subresource's separation.
//! - **PATCH**: JSON merge patch, and strategic merge patch applied as a
//!   merge patch for built-in kinds (lists are replaced, not merged by
//!   key) but refused with 415 for custom resources, as the real server
//!   refuses it. A `metadata.resourceVersion` in the patch is a
//!   precondition (409). Server-side apply and JSON patch are not
//!   supported by the fake: 415 UnsupportedMediaType.
//! - **Deletion**: finalizers hold an object with `deletionTimestamp` set
//!   (a MODIFIED event) until an update empties them (then DELETED); no
//!   finalizer may be added meanwhile (422); DeleteOptions preconditions
//!   (`uid`, `resourceVersion`) are checked (409). Delete answers the
//!   object. Owner references are not garbage-collected.
//! - **Lists**: equality and set-based label selectors, `metadata.name` and
//!   `metadata.namespace` field selectors, `limit` and `continue` (an
//!   opaque token; a garbled one, or one older than the last `compact()`,
//!   is a 410 Expired), ordered by namespace, then name. A list's
//!   `resourceVersion` parameter is accepted and the current state
//!   answered ("not older than"); `resourceVersionMatch=Exact` is not
//!   honoured.
//! - **Watches**: from a resourceVersion (replaying the retained history),
//!   or from now with synthetic ADDED events (resourceVersion unset or 0);
//!   selectors and namespaces apply (an object leaving the selection is
//!   DELETED, one entering it ADDED); `allowWatchBookmarks` (a BOOKMARK at
//!   the start and before a timeout), `timeoutSeconds` (tokio time, so a
//!   paused clock drives it). `compact()` drops the history: a watch from
//!   an older resourceVersion gets a 200 stream whose only event is an
//!   ERROR with a 410 Expired Status, as from the real server, and kube's
//!   watcher re-lists. `sendInitialEvents=true` (streaming lists) answers
//!   the current objects, then a BOOKMARK annotated
//!   `k8s.io/initial-events-end`.
//! - **Faults** (`faults`): `forbid` (403 Forbidden), `set_unavailable`
//!   (503 for every request, `/version` included, and open watches end),
//!   `drop_watches`, and a request counter (`requests`). Over HTTP,
//!   `HttpApiServer::stop` closes the port (connection refused) and
//!   `restart` opens it again.
//! - **Fixtures** (`fixtures`): objects stored or read directly by tests,
//!   bypassing faults and the request counter.
//!
//! Namespaces are not objects here: any namespace exists. There is no
//! authentication, admission, defaulting, version conversion or field
//! management.
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tokio::sync::broadcast;

mod delete;
mod faults;
mod fixtures;
mod list;
mod over_http;
mod reply;
mod resources;
mod route;
mod select;
mod validate;
mod watch;
mod write;

pub use faults::{RequestKey, USER};
pub use over_http::{HttpApiServer, kubeconfig};
pub use reply::Failure;
pub use resources::ResourceInfo;

use reply::{Body, respond};
use route::{Route, Target};

/// Where an object is stored.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    group: String,
    plural: String,
    /// Empty for cluster-scoped objects.
    namespace: String,
    name: String,
}

impl Key {
    fn new(info: &ResourceInfo, namespace: Option<&str>, name: &str) -> Self {
        Self {
            group: info.group.clone(),
            plural: info.plural.clone(),
            namespace: namespace.unwrap_or("").to_string(),
            name: name.to_string(),
        }
    }
}

/// A change, as stored for watches.
#[derive(Debug, Clone)]
struct Event {
    rv: u64,
    group: String,
    plural: String,
    /// ADDED, MODIFIED or DELETED.
    kind: &'static str,
    object: Value,
    /// The object before a MODIFIED (for selector transitions).
    prev: Option<Value>,
}

struct State {
    rv: u64,
    resources: Vec<ResourceInfo>,
    objects: std::collections::BTreeMap<Key, Value>,
    /// Changes after `compacted`, oldest first.
    history: Vec<Event>,
    compacted: u64,
    writes: u64,
    faults: faults::Faults,
    tx: broadcast::Sender<Event>,
}

impl State {
    /// Takes the next resourceVersion.
    fn bump(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    fn record(
        &mut self,
        info: &ResourceInfo,
        kind: &'static str,
        obj: &Value,
        prev: Option<&Value>,
    ) {
        self.writes += 1;
        let ev = Event {
            rv: self.rv,
            group: info.group.clone(),
            plural: info.plural.clone(),
            kind,
            object: obj.clone(),
            prev: prev.cloned(),
        };
        self.history.push(ev.clone());
        let _ = self.tx.send(ev);
    }
}

/// The fake API server; clone it freely (shared state).
#[derive(Clone)]
pub struct FakeApiServer {
    state: Arc<Mutex<State>>,
    /// Bumped to end every open watch stream.
    kill: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Default for FakeApiServer {
    fn default() -> Self {
        Self::new()
    }
}

/// The current time as the server writes timestamps.
fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl FakeApiServer {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(4096);
        let state = State {
            rv: 0,
            resources: resources::defaults(),
            objects: Default::default(),
            history: Vec::new(),
            compacted: 0,
            writes: 0,
            faults: Default::default(),
            tx,
        };
        Self {
            state: Arc::new(Mutex::new(state)),
            kill: Arc::new(tokio::sync::watch::channel(0).0),
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

    /// Serves `info` from now on (replacing a resource of the same group
    /// and plural).
    pub fn register(&self, info: ResourceInfo) {
        if let Ok(mut s) = self.state.lock() {
            s.resources
                .retain(|r| !(r.group == info.group && r.plural == info.plural));
            s.resources.push(info);
        }
    }

    /// Serves the resource a CRD defines (at its storage version); a CRD
    /// without versions is ignored.
    pub fn register_crd(
        &self,
        crd: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    ) {
        if let Some(info) = ResourceInfo::from_crd(crd) {
            self.register(info);
        }
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>, Failure> {
        self.state
            .lock()
            .map_err(|_| Failure::internal("the fake API server's state is poisoned"))
    }

    async fn handle(self, req: Request<kube::client::Body>) -> Response<Body> {
        let (parts, body) = req.into_parts();
        let body = match body.collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => return Failure::bad_request(e.to_string()).into_response(),
        };
        let q = route::query(&parts.uri);
        self.count_agent(
            parts
                .headers
                .get(http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or(""),
        );
        let content_type = parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let req = Req {
            method: parts.method,
            q,
            body,
            content_type,
        };
        self.serve(route::parse(parts.uri.path()), parts.uri.path(), &req)
            .unwrap_or_else(Failure::into_response)
    }

    fn serve(&self, target: Target, path: &str, req: &Req) -> Result<Response<Body>, Failure> {
        let route = match target {
            Target::Resource(r) => r,
            other => {
                // Non-resource requests: the authorizer's verb is the method.
                self.count(&req.method.as_str().to_lowercase(), "", path);
                self.check_available()?;
                return match other {
                    Target::Version => Ok(respond(StatusCode::OK, &version())),
                    _ => Err(Failure::no_route()),
                };
            }
        };
        let verb = route::verb(&req.method, &route, &req.q);
        self.count(verb, &route.group, &route.resource());
        self.check_available()?;
        self.check_allowed(verb, &route)?;
        let info = self.lookup(&route, &req.method)?;
        let ns = route.namespace.as_deref();
        let status_only = route.subresource.is_some();
        let watch = route::is_watch(&req.q);
        match (&req.method, route.name.as_deref()) {
            (&Method::GET, None) if watch => self.watch(&info, ns, None, &req.q),
            (&Method::GET, None) => self.list(&info, ns, &req.q),
            (&Method::GET, Some(name)) if watch && !status_only => {
                self.watch(&info, ns, Some(name), &req.q)
            }
            (&Method::GET, Some(name)) => self.get(&info, ns, name),
            (&Method::POST, None) => {
                let body = write::parse_body(&req.body)?;
                let created = self.create(&info, ns, body)?;
                Ok(respond(StatusCode::CREATED, &created))
            }
            (&Method::PUT, Some(name)) => {
                let body = write::parse_body(&req.body)?;
                let updated = self.update(&info, ns, name, body, status_only)?;
                Ok(respond(StatusCode::OK, &updated))
            }
            (&Method::PATCH, Some(name)) => {
                let patched =
                    self.patch(&info, ns, name, &req.content_type, &req.body, status_only)?;
                Ok(respond(StatusCode::OK, &patched))
            }
            (&Method::DELETE, Some(name)) if !status_only => {
                let opts = delete::parse_options(&req.body)?;
                Ok(respond(
                    StatusCode::OK,
                    &self.delete(&info, ns, name, &opts)?,
                ))
            }
            (&Method::DELETE, None) => self.delete_collection(&info, ns, &req.q, &req.body),
            (m, _) => Err(Failure::method_not_allowed(format!(
                "{m} is not allowed on {path}"
            ))),
        }
    }

    /// The resource a route names, if registered in the route's scope.
    fn lookup(&self, route: &Route, method: &Method) -> Result<ResourceInfo, Failure> {
        let s = self.lock()?;
        let info = resources::find(&s.resources, &route.group, &route.version, &route.plural)
            .cloned()
            .ok_or_else(Failure::no_route)?;
        let scope_ok = match (&route.namespace, &route.name) {
            (Some(_), _) => info.namespaced,
            (None, Some(_)) => !info.namespaced,
            // A namespaced kind's collection across namespaces: read only.
            (None, None) => !info.namespaced || matches!(*method, Method::GET | Method::HEAD),
        };
        let sub_ok = match route.subresource.as_deref() {
            None => true,
            Some("status") => info.status_subresource,
            Some(_) => false,
        };
        if !scope_ok && route.name.is_none() && route.namespace.is_none() {
            return Err(Failure::method_not_allowed(format!(
                "{} is namespaced: {method} needs a namespace",
                info.group_resource()
            )));
        }
        if !scope_ok || !sub_ok {
            return Err(Failure::no_route());
        }
        Ok(info)
    }

    fn get(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Response<Body>, Failure> {
        let s = self.lock()?;
        s.objects
            .get(&Key::new(info, ns, name))
            .map(|o| respond(StatusCode::OK, o))
            .ok_or_else(|| Failure::not_found(info, name))
    }
}

/// A request, read.
struct Req {
    method: Method,
    q: std::collections::BTreeMap<String, String>,
    body: bytes::Bytes,
    content_type: String,
}

fn version() -> Value {
    json!({
        "major": "1", "minor": "34", "gitVersion": "v1.34.0-lvsnap-fake",
        "gitCommit": "", "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "none", "compiler": "none", "platform": "linux/amd64",
    })
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
