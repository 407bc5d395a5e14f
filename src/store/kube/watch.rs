//! The Kubernetes store's watches: one kube-runtime watcher per kind, each
//! event applied to the kind's reflector cache (`cache.rs`) before it is
//! announced on `subscribe()`, so whoever hears of a change reads it from
//! the cache. The watcher re-lists on its own after a 410 Gone (compacted
//! history) or any interruption; the cache keeps serving meanwhile (the
//! reflector swaps in the re-list whole at its end), and what the re-list
//! changed is then announced (a record changed or deleted during the gap is
//! not missed).
use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, watcher::watcher};
use tokio::sync::broadcast;

use super::super::Change;
use super::cache::Caches;
use super::cr::Cr;
use super::{KubeStore, LABEL_NODE};
use crate::records::{LvsGroupSnapshot, LvsNode, LvsSnapshot, LvsVolume};

/// name → (resourceVersion, node label).
type Versions = HashMap<String, (String, Option<String>)>;

fn summary<K: Cr>(obj: &K) -> (String, String, Option<String>) {
    let m = obj.meta();
    let node = m.labels.as_ref().and_then(|l| l.get(LABEL_NODE)).cloned();
    (
        m.name.clone().unwrap_or_default(),
        m.resource_version.clone().unwrap_or_default(),
        node,
    )
}

fn announce<K: Cr>(changes: &broadcast::Sender<Change>, name: String, node: Option<String>) {
    let _ = changes.send(Change {
        kind: K::KIND,
        name,
        node,
    });
}

impl KubeStore {
    /// Feeds the read caches and `subscribe()` from the API server: a
    /// watch of the volume, snapshot and group snapshot records labelled with `node` (or
    /// all of them, and the LvsNodes: the controller), so a node executor
    /// (or a waiting controller) hears about changes other processes made
    /// and reads them from memory. The tasks run until the runtime stops.
    pub fn spawn_watch(&self, node: Option<&str>) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = vec![
            self.spawn_watch_kind::<LvsVolume>(node),
            self.spawn_watch_kind::<LvsSnapshot>(node),
            // Not cached (rare, read where they are decided): watched to be
            // announced, so the node hears of a group to cut.
            self.spawn_watch_kind::<LvsGroupSnapshot>(node),
        ];
        if node.is_none() {
            tasks.push(self.spawn_watch_kind::<LvsNode>(None));
        }
        tasks
    }

    /// Until every cache a watch feeds has its first list in: from then
    /// on reads come from memory. For tests and the bench; serving needs no wait (reads go
    /// to the API server until then).
    pub async fn synced(&self) {
        if let Some(c) = self.caches.as_deref() {
            c.volumes.synced().await;
            c.snapshots.synced().await;
            c.nodes.synced().await;
        }
    }

    fn spawn_watch_kind<K: Cr>(&self, node: Option<&str>) -> tokio::task::JoinHandle<()> {
        let mut config = watcher::Config::default();
        if let Some(node) = node {
            config = config.labels(&format!("{LABEL_NODE}={node}"));
        }
        // Back off on errors: an API server that refuses watches must not
        // turn the re-list/re-watch loop into a busy loop.
        let stream = watcher(self.api::<K>(), config).default_backoff();
        let changes = self.changes.clone();
        let caches: Option<Arc<Caches>> = self.caches.clone();
        // Taken now: from here on the cache counts as watched (`synced`).
        let mut writer = self.cache::<K>().and_then(|c| c.take_writer(node));
        tokio::spawn(async move {
            let cache = caches.as_deref().and_then(K::cache);
            let mut stream = std::pin::pin!(stream);
            // Before a (re-)list: what the cache held; during it: what it lists.
            let mut before = Versions::new();
            let mut listed = Vec::new();
            while let Some(event) = stream.next().await {
                let event = match event {
                    Ok(event) => event,
                    Err(e) => {
                        // The watcher re-watches (or re-lists after 410 Gone)
                        // by itself, and emits nothing when a re-watch
                        // succeeds: the cache keeps serving meanwhile (it may
                        // lag, which no read it serves depends on).
                        tracing::warn!(kind = K::KIND.as_str(), error = %e, "watch interrupted; the cache may lag until it is back");
                        continue;
                    }
                };
                match &event {
                    Event::Init => {
                        before = cache.map(|c| c.versions()).unwrap_or_default();
                        listed.clear();
                    }
                    Event::InitApply(obj) => listed.push(summary(obj)),
                    _ => {}
                }
                if let Some(w) = writer.as_mut() {
                    w.apply_watcher_event(&event);
                }
                if let Some(c) = cache {
                    match &event {
                        Event::Apply(obj) | Event::Delete(obj) => {
                            c.observed(obj.meta().name.as_deref());
                        }
                        Event::InitDone => c.observed(None),
                        Event::Init | Event::InitApply(_) => {}
                    }
                }
                match event {
                    Event::Apply(obj) | Event::Delete(obj) => {
                        let (name, _, node) = summary(&obj);
                        announce::<K>(&changes, name, node);
                    }
                    Event::InitDone => {
                        if let Some(c) = cache {
                            c.set_in_step(true);
                        }
                        // What changed since the cache last knew it.
                        for (name, version, node) in listed.drain(..) {
                            let old = before.remove(&name);
                            if old.is_none_or(|(v, _)| v != version) {
                                announce::<K>(&changes, name, node);
                            }
                        }
                        for (name, (_, node)) in before.drain() {
                            announce::<K>(&changes, name, node);
                        }
                    }
                    Event::Init | Event::InitApply(_) => {}
                }
            }
        })
    }
}
