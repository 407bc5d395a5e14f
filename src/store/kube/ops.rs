//! The Kubernetes store's own operations on any lvsnap CR: the watch that
//! feeds `subscribe()`, create (object, then status), get, compare-and-swap
//! update, list by labels, read-modify-write with back-off, purge.
use kube::Client;
use kube::api::{Api, ListParams, PostParams};
use tokio::sync::broadcast;

use super::super::{Change, Kind, Modify, Record, StoreError, cas};
use super::cr::{Cr, LabelsOf, classify, is_record, to_record};
use super::{KubeStore, LABEL_NODE};
use crate::records::{LvsGroupSnapshot, LvsSnapshot, LvsVolume};

impl KubeStore {
    pub fn new(client: Client) -> Self {
        let (changes, _) = broadcast::channel(1024);
        Self { client, changes }
    }

    /// Feeds `subscribe()` from the API server: a watch of the volume,
    /// snapshot and group snapshot records labelled with `node` (or all of them), so a node
    /// executor (or a waiting controller) hears about changes other
    /// processes made. The tasks run until the store's runtime stops.
    pub fn spawn_watch(&self, node: Option<&str>) -> Vec<tokio::task::JoinHandle<()>> {
        vec![
            self.spawn_watch_kind::<LvsVolume>(node),
            self.spawn_watch_kind::<LvsSnapshot>(node),
            self.spawn_watch_kind::<LvsGroupSnapshot>(node),
        ]
    }

    pub(super) fn spawn_watch_kind<K: Cr>(
        &self,
        node: Option<&str>,
    ) -> tokio::task::JoinHandle<()> {
        use futures::StreamExt;
        use kube::runtime::{WatchStreamExt, watcher};
        let mut config = watcher::Config::default();
        if let Some(node) = node {
            config = config.labels(&format!("{LABEL_NODE}={node}"));
        }
        // Back off on errors: an API server that refuses watches must not
        // turn the re-list/re-watch loop into a busy loop.
        let stream = watcher::watcher(self.api::<K>(), config).default_backoff();
        let changes = self.changes.clone();
        tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(event) = stream.next().await {
                let obj = match event {
                    Ok(
                        watcher::Event::Apply(o)
                        | watcher::Event::InitApply(o)
                        | watcher::Event::Delete(o),
                    ) => o,
                    Ok(_) => continue,
                    Err(e) => {
                        // The watcher re-lists and resumes by itself.
                        tracing::warn!(kind = K::KIND.as_str(), error = %e, "watch interrupted");
                        continue;
                    }
                };
                let labels = obj.meta().labels.clone().unwrap_or_default();
                let _ = changes.send(Change {
                    kind: K::KIND,
                    name: obj.meta().name.clone().unwrap_or_default(),
                    node: labels.get(LABEL_NODE).cloned(),
                });
            }
        })
    }

    /// Every object of `K` (all namespaces): lists and watches.
    pub(super) fn api<K: Cr>(&self) -> Api<K> {
        Api::all(self.client.clone())
    }

    pub(super) fn notify(&self, kind: Kind, name: &str, node: Option<String>) {
        let _ = self.changes.send(Change {
            kind,
            name: name.to_string(),
            node,
        });
    }

    /// Creates the object, then writes its status through the subresource.
    pub(super) async fn create<K: Cr>(
        &self,
        record: &Record<K::Spec, K::Status>,
        labels: Vec<(&str, String)>,
    ) -> Result<Record<K::Spec, K::Status>, StoreError> {
        let (api, name) = K::scoped(&self.client, &record.name);
        let mut obj = K::build(&record.name, record.spec.clone());
        obj.meta_mut().labels = Some(
            labels
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        );
        let created = match api.create(&PostParams::default(), &obj).await {
            Err(kube::Error::Api(s)) if s.code == 409 && s.reason == "AlreadyExists" => {
                // A creator that died between its two writes left an object
                // without status: not a record; replace it (its reservation
                // is unclaimed and the sweep rolls it back).
                match api.get_opt(&name).await {
                    Ok(Some(old)) if !is_record(&old) => {
                        let dp = kube::api::DeleteParams {
                            preconditions: Some(kube::api::Preconditions {
                                resource_version: old.meta().resource_version.clone(),
                                uid: old.meta().uid.clone(),
                            }),
                            ..Default::default()
                        };
                        api.delete(&name, &dp)
                            .await
                            .map_err(|e| classify(K::KIND, &record.name, e))?;
                        api.create(&PostParams::default(), &obj)
                            .await
                            .map_err(|e| classify(K::KIND, &record.name, e))?
                    }
                    _ => {
                        return Err(StoreError::AlreadyExists {
                            kind: K::KIND.as_str(),
                            name: record.name.clone(),
                        });
                    }
                }
            }
            other => other.map_err(|e| classify(K::KIND, &record.name, e))?,
        };
        let mut with_status = created;
        with_status.set_status(record.status.clone());
        let done = api
            .replace_status(&name, &PostParams::default(), &with_status)
            .await
            .map_err(|e| classify(K::KIND, &record.name, e))?;
        Ok(to_record(&done))
    }

    pub(super) async fn get<K: Cr>(
        &self,
        name: &str,
    ) -> Result<Option<Record<K::Spec, K::Status>>, StoreError> {
        let (api, object) = K::scoped(&self.client, name);
        Ok(api
            .get_opt(&object)
            .await
            .map_err(|e| classify(K::KIND, name, e))?
            .as_ref()
            .filter(|o| is_record(*o))
            .map(to_record))
    }

    /// Replaces spec and labels, then status, each guarded by resourceVersion.
    pub(super) async fn update<K: Cr>(
        &self,
        record: &Record<K::Spec, K::Status>,
        labels: Vec<(&str, String)>,
    ) -> Result<Record<K::Spec, K::Status>, StoreError> {
        let (api, name) = K::scoped(&self.client, &record.name);
        let conflict = |e| match classify(K::KIND, &record.name, e) {
            StoreError::Conflict { kind, name, .. } => StoreError::Conflict {
                kind,
                name,
                version: record.version.clone(),
            },
            other => other,
        };
        let mut obj = K::build(&record.name, record.spec.clone());
        obj.meta_mut().labels = Some(
            labels
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        );
        obj.meta_mut().resource_version = Some(record.version.clone());
        let replaced = api
            .replace(&name, &PostParams::default(), &obj)
            .await
            .map_err(conflict)?;
        let mut with_status = replaced;
        with_status.set_status(record.status.clone());
        let done = api
            .replace_status(&name, &PostParams::default(), &with_status)
            .await
            .map_err(conflict)?;
        Ok(to_record(&done))
    }

    pub(super) async fn list<K: Cr>(
        &self,
        selector: &[(&str, &String)],
        keep: impl Fn(&Record<K::Spec, K::Status>) -> bool,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Record<K::Spec, K::Status>>, StoreError> {
        let sel: Vec<String> = selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let lp = ListParams::default().labels(&sel.join(","));
        let list = self
            .api::<K>()
            .list(&lp)
            .await
            .map_err(|e| classify(K::KIND, "list", e))?;
        let mut out: Vec<_> = list
            .items
            .iter()
            .filter(|o| is_record(*o))
            .map(to_record)
            .filter(|r| after.is_none_or(|a| r.name.as_str() > a) && keep(r))
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out.truncate(limit);
        Ok(out)
    }

    /// Read-modify-write of one record: get, apply `f`, compare-and-swap;
    /// retried with back-off while another writer wins.
    pub(super) async fn modify<K: Cr>(
        &self,
        name: &str,
        f: Modify<Record<K::Spec, K::Status>>,
        labels: LabelsOf<K>,
    ) -> Result<Option<Record<K::Spec, K::Status>>, StoreError>
    where
        Record<K::Spec, K::Status>: PartialEq,
    {
        let f = std::sync::Mutex::new(f);
        cas::retry(false, || async {
            let Some(current) = self.get::<K>(name).await? else {
                return Ok(None);
            };
            let mut next = current.clone();
            {
                let mut f = f
                    .lock()
                    .map_err(|_| StoreError::Other("modify closure lock poisoned".into()))?;
                f(&mut next).map_err(StoreError::Aborted)?;
            }
            if next == current {
                return Ok(Some(current));
            }
            next.name = current.name.clone();
            next.version = current.version.clone();
            let labels = labels(&next);
            self.update::<K>(&next, labels).await.map(Some)
        })
        .await
    }

    pub(super) async fn purge<K: Cr>(&self, name: &str) -> Result<(), StoreError> {
        let (api, object) = K::scoped(&self.client, name);
        match api.delete(&object, &Default::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(classify(K::KIND, name, e)),
        }
        self.notify(K::KIND, name, None);
        Ok(())
    }
}
