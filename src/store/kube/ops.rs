//! The Kubernetes store's own operations on any lvsnap CR: create (object,
//! then status), get, compare-and-swap update, list by labels, find by CSI
//! name, read-modify-write with back-off, purge. Reads use the kind's cache
//! when it is in step (`cache.rs`), else the API server; writes go to the
//! API server and are remembered in the cache until the watch shows them.
use std::sync::Arc;

use kube::Client;
use kube::api::{Api, ListParams, PostParams};
use tokio::sync::broadcast;

use super::super::{Change, Kind, Modify, Record, StoreError, cas};
use super::cache::{Cache, Lookup};
use super::cr::{Cr, LabelsOf, classify, is_record, to_record};
use super::{KubeStore, LABEL_CSI_NAME, LABEL_NODE, csi_name_label};

impl KubeStore {
    pub fn new(client: Client) -> Self {
        let (changes, _) = broadcast::channel(1024);
        Self {
            client,
            changes,
            caches: Some(Arc::default()),
            writes: Arc::default(),
        }
    }

    /// The same store, every read from the API server (`Store::direct`).
    pub(super) fn uncached(&self) -> Self {
        Self {
            caches: None,
            ..self.clone()
        }
    }

    /// `K`'s read cache, when this store has one.
    pub(super) fn cache<K: Cr>(&self) -> Option<&Cache<K>> {
        self.caches.as_deref().and_then(K::cache)
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
        Ok(self.wrote(done))
    }

    /// Remembers a write in the cache (until the watch shows it).
    fn wrote<K: Cr>(&self, obj: K) -> Record<K::Spec, K::Status> {
        let record = to_record(&obj);
        if let Some(cache) = self.cache::<K>() {
            cache.wrote(&record.name, Some(obj));
        }
        record
    }

    /// Record `name`: from the cache when it is in step and holds it, else
    /// from the API server (a name missing from a cache may just be new).
    pub(super) async fn get<K: Cr>(
        &self,
        name: &str,
    ) -> Result<Option<Record<K::Spec, K::Status>>, StoreError> {
        if let Some(cache) = self.cache::<K>().filter(|c| c.in_step()) {
            match cache.lookup(name) {
                // An object without its status yet is being created: only
                // the API server can say whether it is a record by now.
                Lookup::Found(obj) if is_record(&*obj) => return Ok(Some(to_record(&*obj))),
                Lookup::Found(_) => {}
                Lookup::Gone => return Ok(None),
                Lookup::Unknown => {}
            }
        }
        self.get_direct::<K>(name).await
    }

    /// Record `name` from the API server.
    pub(super) async fn get_direct<K: Cr>(
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

    /// Replaces spec and labels (unless `spec_too` is false: they did not
    /// change), then status, each guarded by resourceVersion.
    pub(super) async fn update<K: Cr>(
        &self,
        record: &Record<K::Spec, K::Status>,
        labels: Vec<(&str, String)>,
        spec_too: bool,
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
        let mut with_status = if spec_too {
            api.replace(&name, &PostParams::default(), &obj)
                .await
                .map_err(conflict)?
        } else {
            obj
        };
        with_status.set_status(record.status.clone());
        let done = api
            .replace_status(&name, &PostParams::default(), &with_status)
            .await
            .map_err(conflict)?;
        Ok(self.wrote(done))
    }

    /// Records with every label of `selector` that `keep` keeps, ordered
    /// by name, after `after`, at most `limit`: from the cache when it is in
    /// step and holds `node`'s records (`node`: the selector's node, if any),
    /// else from the API server.
    pub(super) async fn list<K: Cr>(
        &self,
        selector: &[(&str, &String)],
        keep: impl Fn(&Record<K::Spec, K::Status>) -> bool,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Record<K::Spec, K::Status>>, StoreError> {
        let node = selector
            .iter()
            .find(|(k, _)| *k == LABEL_NODE)
            .map(|(_, v)| v.as_str());
        let Some(cache) = self.cache::<K>().filter(|c| c.serves(node)) else {
            return self.list_direct::<K>(selector, keep, after, limit).await;
        };
        let all = cache.all();
        let mut matching: Vec<&K> = all
            .iter()
            .map(|o| &**o)
            .filter(|o| {
                let name = o.meta().name.as_deref().unwrap_or_default();
                let labels = o.meta().labels.as_ref();
                after.is_none_or(|a| name > a)
                    && is_record(*o)
                    && selector
                        .iter()
                        .all(|(k, v)| labels.and_then(|l| l.get(*k)) == Some(*v))
            })
            .collect();
        matching.sort_unstable_by(|a, b| a.meta().name.cmp(&b.meta().name));
        Ok(matching
            .into_iter()
            .map(to_record)
            .filter(|r| keep(r))
            .take(limit)
            .collect())
    }

    /// [`KubeStore::list`] from the API server.
    pub(super) async fn list_direct<K: Cr>(
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

    /// The record with CSI name `csi_name` that `live` accepts (the label
    /// holds a hash of the name; `is` compares the full name).
    pub(super) async fn find<K: Cr>(
        &self,
        csi_name: &str,
        is: impl Fn(&Record<K::Spec, K::Status>) -> bool,
    ) -> Result<Option<Record<K::Spec, K::Status>>, StoreError> {
        let h = csi_name_label(csi_name);
        // A node's cache holds its records only: a find asks for any node's.
        if self.cache::<K>().is_some_and(|c| c.complete()) {
            return Ok(self
                .list::<K>(&[(LABEL_CSI_NAME, &h)], is, None, 1)
                .await?
                .pop());
        }
        Ok(self
            .list_direct::<K>(&[(LABEL_CSI_NAME, &h)], is, None, 1)
            .await?
            .pop())
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
            // The read of a read-modify-write is the API server's.
            let Some(current) = self.get_direct::<K>(name).await? else {
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
            let spec_too = next.spec != current.spec;
            self.update::<K>(&next, labels, spec_too).await.map(Some)
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
        if let Some(cache) = self.cache::<K>() {
            cache.wrote(name, None);
        }
        self.notify(K::KIND, name, None);
        Ok(())
    }
}
