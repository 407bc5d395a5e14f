//! The Kubernetes store's read caches: a kube-runtime reflector store per
//! watched kind (volumes, snapshots, nodes), fed by the watch that also
//! feeds `subscribe()`, plus this process's own writes that the watch has
//! not delivered yet, so a process always reads what it wrote.
//!
//! A cache answers once its watch's first list is in (before that, reads go
//! to the API server, as they do without a watch); through a watch error or
//! a re-list it keeps answering and may lag, as any watch cache does. A cache of one node's records answers only for that
//! node. A name the cache does not hold is read from the API server: absence
//! from a cache proves nothing. Writes always go to the API server (compare
//! and swap on resourceVersion), and so does the read of a read-modify-write.
//! docs/architecture.md says which reads use the caches and why that is safe.
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use kube::runtime::reflector::{self, ObjectRef, store::Writer};

use crate::records::{LvsNode, LvsSnapshot, LvsVolume};

/// What a cache holds: any lvsnap custom resource (`cr::Cr` builds on it).
pub(super) trait Object:
    kube::Resource<DynamicType = ()>
    + Clone
    + std::fmt::Debug
    + serde::Serialize
    + serde::de::DeserializeOwned
    + Send
    + Sync
    + 'static
{
}

impl<T> Object for T where
    T: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::Serialize
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static
{
}

/// An own write the watch has not shown is trusted over the cache for this
/// long at most: a watch that skipped it in a relist (the history was
/// compacted and the object changed again) must not hide later changes.
const OWN_WRITE_TTL: Duration = Duration::from_secs(30);

/// A write of this process: the object it left (`None`: deleted), and for
/// a delete the version the cache held then.
struct Written<K> {
    obj: Option<Arc<K>>,
    deleted_from: Option<String>,
    at: Instant,
}

/// Whether resourceVersion `a` is `b` or later: compared as integers when
/// both parse (etcd's revision and the fake API's counter do), else only
/// equal versions count (the API calls them opaque; the TTL bounds it).
fn at_least(a: Option<&str>, b: Option<&str>) -> bool {
    let int = |v: Option<&str>| v.and_then(|v| v.parse::<u64>().ok());
    match (int(a), int(b)) {
        (Some(a), Some(b)) => a >= b,
        _ => a.is_some() && a == b,
    }
}

/// Whether resourceVersion `a` is strictly later than `b` (as [`at_least`];
/// unparsable: any other version).
fn later(a: Option<&str>, b: Option<&str>) -> bool {
    let int = |v: Option<&str>| v.and_then(|v| v.parse::<u64>().ok());
    match (int(a), int(b)) {
        (Some(a), Some(b)) => a > b,
        _ => a != b,
    }
}

/// The later of two versions (either may be unknown).
fn newest(a: Option<String>, b: Option<String>) -> Option<String> {
    match (&a, &b) {
        (Some(x), Some(y)) if later(Some(y), Some(x)) => b,
        (None, _) => b,
        _ => a,
    }
}

/// What a cache knows of one name.
pub(super) enum Lookup<K> {
    Found(Arc<K>),
    /// This process deleted it and the watch has not shown it yet.
    Gone,
    /// Not in the cache: only the API server can say.
    Unknown,
}

/// One kind's cache.
pub(super) struct Cache<K: Object> {
    reader: reflector::Store<K>,
    writer: Mutex<Option<Writer<K>>>,
    /// A watch feeds it (its writer was taken).
    watched: AtomicBool,
    /// The first list is in.
    in_step: tokio::sync::watch::Sender<bool>,
    /// The node whose records alone are watched (`None`: all).
    scope: OnceLock<Option<String>>,
    written: Mutex<HashMap<String, Written<K>>>,
}

impl<K: Object> Default for Cache<K> {
    fn default() -> Self {
        let (reader, writer) = reflector::store();
        Self {
            reader,
            writer: Mutex::new(Some(writer)),
            watched: AtomicBool::new(false),
            in_step: tokio::sync::watch::Sender::new(false),
            scope: OnceLock::new(),
            written: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Object> Cache<K> {
    /// The reflector's writer, for the one watch that feeds this cache.
    pub fn take_writer(&self, scope: Option<&str>) -> Option<Writer<K>> {
        let writer = self.writer.lock().ok()?.take()?;
        let _ = self.scope.set(scope.map(str::to_string));
        self.watched.store(true, Ordering::SeqCst);
        Some(writer)
    }

    /// Whether reads by name may use the cache.
    pub fn in_step(&self) -> bool {
        *self.in_step.borrow()
    }

    /// Until the cache is in step (at once when no watch feeds it).
    pub async fn synced(&self) {
        if self.watched.load(Ordering::SeqCst) {
            let mut rx = self.in_step.subscribe();
            let _ = rx.wait_for(|yes| *yes).await;
        }
    }

    /// Whether a listing of `node`'s records (`None`: all) may use it.
    pub fn serves(&self, node: Option<&str>) -> bool {
        self.in_step()
            && match self.scope.get() {
                Some(Some(scope)) => node == Some(scope.as_str()),
                _ => true,
            }
    }

    /// Whether it holds every object of the kind (no node scope).
    pub fn complete(&self) -> bool {
        self.serves(None)
    }

    pub fn set_in_step(&self, yes: bool) {
        self.in_step
            .send_if_modified(|v| std::mem::replace(v, yes) != yes);
    }

    /// Whether the watch has shown `w` or something later (the reflector
    /// holds that version or a later one; for a delete: no longer the
    /// object that was deleted).
    fn superseded(&self, name: &str, w: &Written<K>) -> bool {
        if w.at.elapsed() >= OWN_WRITE_TTL {
            return true;
        }
        let current = self.reader.get(&ObjectRef::new(name));
        match (&w.obj, current) {
            (Some(mine), Some(cur)) => at_least(
                cur.meta().resource_version.as_deref(),
                mine.meta().resource_version.as_deref(),
            ),
            (Some(_), None) => false,
            // Gone from the reflector: seen, unless it never held it (then
            // a late event of the deleted object must not bring it back).
            (None, None) => w.deleted_from.is_none(),
            // A later object of that name: made again since.
            (None, Some(cur)) => later(
                cur.meta().resource_version.as_deref(),
                w.deleted_from.as_deref(),
            ),
        }
    }

    pub fn lookup(&self, name: &str) -> Lookup<K> {
        if let Ok(written) = self.written.lock()
            && let Some(w) = written.get(name)
            && !self.superseded(name, w)
        {
            return match &w.obj {
                Some(obj) => Lookup::Found(obj.clone()),
                None => Lookup::Gone,
            };
        }
        match self.reader.get(&ObjectRef::new(name)) {
            Some(obj) => Lookup::Found(obj),
            None => Lookup::Unknown,
        }
    }

    /// Every object, own writes not yet watched included.
    pub fn all(&self) -> Vec<Arc<K>> {
        let mut state = self.reader.state();
        let Ok(written) = self.written.lock() else {
            return state;
        };
        let fresh: HashMap<&str, &Written<K>> = written
            .iter()
            .filter(|(n, w)| !self.superseded(n, w))
            .map(|(n, w)| (n.as_str(), w))
            .collect();
        if fresh.is_empty() {
            return state;
        }
        state.retain(|o| !fresh.contains_key(o.meta().name.as_deref().unwrap_or_default()));
        state.extend(fresh.values().filter_map(|w| w.obj.clone()));
        state
    }

    /// name → (resourceVersion, node label) of what the cache holds.
    pub fn versions(&self) -> HashMap<String, (String, Option<String>)> {
        self.reader
            .state()
            .iter()
            .map(|o| {
                let m = o.meta();
                let node = m.labels.as_ref().and_then(|l| l.get(super::LABEL_NODE));
                (
                    m.name.clone().unwrap_or_default(),
                    (
                        m.resource_version.clone().unwrap_or_default(),
                        node.cloned(),
                    ),
                )
            })
            .collect()
    }

    /// This process wrote `name` (`obj`: what the API server answered;
    /// `None`: deleted it). Kept until the watch shows that version or a
    /// later one (the watch may show it before this is called: then it is
    /// not kept at all).
    pub fn wrote(&self, name: &str, obj: Option<K>) {
        if !self.watched.load(Ordering::SeqCst) {
            return;
        }
        // For a delete: the last version known here (own write or watched).
        let mine = || {
            let written = self.written.lock().ok()?;
            let obj = written.get(name)?.obj.as_ref()?;
            obj.meta().resource_version.clone()
        };
        let deleted_from = match &obj {
            Some(_) => None,
            None => newest(
                self.reader
                    .get(&ObjectRef::new(name))
                    .and_then(|o| o.meta().resource_version.clone()),
                mine(),
            ),
        };
        let w = Written {
            obj: obj.map(Arc::new),
            deleted_from,
            at: Instant::now(),
        };
        if let Ok(mut written) = self.written.lock() {
            if self.superseded(name, &w) {
                written.remove(name);
            } else {
                written.insert(name.to_string(), w);
            }
        }
    }

    /// The watch delivered an event (already applied to the reflector) for
    /// `name` (`None`: a re-list ended): own writes it shows are no longer
    /// needed. Per event only that name is checked (a bulk of writes must
    /// not cost a scan per event); the end of a re-list checks them all.
    pub fn observed(&self, name: Option<&str>) {
        let Ok(mut written) = self.written.lock() else {
            return;
        };
        match name {
            Some(name) => {
                if written.get(name).is_some_and(|w| self.superseded(name, w)) {
                    written.remove(name);
                }
            }
            None => written.retain(|name, w| !self.superseded(name, w)),
        }
    }
}

/// The caches of the watched kinds.
#[derive(Default)]
pub(super) struct Caches {
    pub volumes: Cache<LvsVolume>,
    pub snapshots: Cache<LvsSnapshot>,
    pub nodes: Cache<LvsNode>,
}
