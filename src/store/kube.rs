//! The Kubernetes backend: records are cluster-scoped CustomResources;
//! writes are compare-and-swaps on resourceVersion (409 → `Conflict`),
//! status goes through the status subresource, labels let a node list its
//! own records and the controller find a record by CSI name.
use std::fmt::Debug;

use async_trait::async_trait;
use kube::api::{Api, ListParams, PostParams};
use kube::{Client, Resource};
use serde::{Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};
use tokio::sync::broadcast;

use super::{
    Change, Kind, Modify, NodeRecord, QuotaRecord, QuotaUpdate, Record, SnapshotFilter,
    SnapshotRecord, Store, StoreError, VolumeFilter, VolumeRecord, cas,
};
use crate::records::{LvmNode, LvmQuota, LvmQuotaSpec, LvmSnapshot, LvmVolume};

pub const LABEL_NODE: &str = "lvsnap.io/node";
pub const LABEL_PROJECT: &str = "lvsnap.io/project";
pub const LABEL_CSI_NAME: &str = "lvsnap.io/csi-name-hash";
pub const LABEL_SOURCE: &str = "lvsnap.io/source-volume";

/// The Kubernetes backend.
#[derive(Clone)]
pub struct KubeStore {
    client: Client,
    changes: broadcast::Sender<Change>,
}

impl Debug for KubeStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KubeStore")
    }
}

/// A label value for a CSI name (names may hold any character): its SHA-256.
pub fn csi_name_label(name: &str) -> String {
    hex::encode(Sha256::digest(name.as_bytes()))[..63].to_string()
}

fn classify(kind: Kind, name: &str, e: kube::Error) -> StoreError {
    let (kind, name) = (kind.as_str(), name.to_string());
    match e {
        kube::Error::Api(s) if s.code == 404 => StoreError::NotFound { kind, name },
        kube::Error::Api(s) if s.code == 409 && s.reason == "AlreadyExists" => {
            StoreError::AlreadyExists { kind, name }
        }
        kube::Error::Api(s) if s.code == 409 => StoreError::Conflict {
            kind,
            name,
            version: String::new(),
        },
        kube::Error::Api(s) if s.code == 422 || s.code == 400 => StoreError::Invalid {
            kind,
            name,
            message: s.message,
        },
        kube::Error::SerdeError(e) => StoreError::Corrupt {
            kind,
            name,
            message: e.to_string(),
        },
        other => StoreError::Unavailable(other.to_string()),
    }
}

/// The pieces every lvsnap CR shares.
trait Cr:
    Resource<DynamicType = (), Scope = kube::core::ClusterResourceScope>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    type Spec: Clone + Serialize + DeserializeOwned + Send + Sync;
    type Status: Clone + Default + Serialize + DeserializeOwned + Send + Sync;
    const KIND: Kind;
    /// Volumes and snapshots are created in two writes (object, then status
    /// subresource); between them the object is not a record yet: readers
    /// skip it, so a node never acts on a half-created record.
    const STATUS_REQUIRED: bool;
    fn build(name: &str, spec: Self::Spec) -> Self;
    fn parts(&self) -> (&Self::Spec, Option<&Self::Status>);
    fn set_status(&mut self, status: Self::Status);
}

macro_rules! cr {
    ($t:ty, $spec:ty, $status:ty, $kind:expr, $required:expr) => {
        impl Cr for $t {
            type Spec = $spec;
            type Status = $status;
            const KIND: Kind = $kind;
            const STATUS_REQUIRED: bool = $required;
            fn build(name: &str, spec: $spec) -> Self {
                <$t>::new(name, spec)
            }
            fn parts(&self) -> (&$spec, Option<&$status>) {
                (&self.spec, self.status.as_ref())
            }
            fn set_status(&mut self, status: $status) {
                self.status = Some(status);
            }
        }
    };
}

cr!(
    LvmVolume,
    crate::records::LvmVolumeSpec,
    crate::records::LvmVolumeStatus,
    Kind::Volume,
    true
);
cr!(
    LvmSnapshot,
    crate::records::LvmSnapshotSpec,
    crate::records::LvmSnapshotStatus,
    Kind::Snapshot,
    true
);
cr!(
    LvmQuota,
    LvmQuotaSpec,
    crate::records::LvmQuotaStatus,
    Kind::Quota,
    false
);
cr!(
    LvmNode,
    crate::records::LvmNodeSpec,
    crate::records::LvmNodeStatus,
    Kind::Node,
    false
);

/// The labels a record of `K` is stored with.
type LabelsOf<K> = fn(&Record<<K as Cr>::Spec, <K as Cr>::Status>) -> Vec<(&'static str, String)>;

/// Whether readers see `obj` as a record (see `Cr::STATUS_REQUIRED`).
fn is_record<K: Cr>(obj: &K) -> bool {
    !K::STATUS_REQUIRED || obj.parts().1.is_some()
}

fn to_record<K: Cr>(obj: &K) -> Record<K::Spec, K::Status> {
    let (spec, status) = obj.parts();
    Record {
        name: obj.meta().name.clone().unwrap_or_default(),
        version: obj.meta().resource_version.clone().unwrap_or_default(),
        spec: spec.clone(),
        status: status.cloned().unwrap_or_default(),
    }
}

impl KubeStore {
    pub fn new(client: Client) -> Self {
        let (changes, _) = broadcast::channel(1024);
        Self { client, changes }
    }

    /// Feeds `subscribe()` from the API server: a watch of the volume and
    /// snapshot records labelled with `node` (or all of them), so a node
    /// executor (or a waiting controller) hears about changes other
    /// processes made. The tasks run until the store's runtime stops.
    pub fn spawn_watch(&self, node: Option<&str>) -> Vec<tokio::task::JoinHandle<()>> {
        vec![
            self.spawn_watch_kind::<LvmVolume>(node),
            self.spawn_watch_kind::<LvmSnapshot>(node),
        ]
    }

    fn spawn_watch_kind<K: Cr>(&self, node: Option<&str>) -> tokio::task::JoinHandle<()> {
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

    fn api<K: Cr>(&self) -> Api<K> {
        Api::all(self.client.clone())
    }

    fn notify(&self, kind: Kind, name: &str, node: Option<String>) {
        let _ = self.changes.send(Change {
            kind,
            name: name.to_string(),
            node,
        });
    }

    /// Creates the object, then writes its status through the subresource.
    async fn create<K: Cr>(
        &self,
        record: &Record<K::Spec, K::Status>,
        labels: Vec<(&str, String)>,
    ) -> Result<Record<K::Spec, K::Status>, StoreError> {
        let api = self.api::<K>();
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
                match api.get_opt(&record.name).await {
                    Ok(Some(old)) if !is_record(&old) => {
                        let dp = kube::api::DeleteParams {
                            preconditions: Some(kube::api::Preconditions {
                                resource_version: old.meta().resource_version.clone(),
                                uid: old.meta().uid.clone(),
                            }),
                            ..Default::default()
                        };
                        api.delete(&record.name, &dp)
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
            .replace_status(&record.name, &PostParams::default(), &with_status)
            .await
            .map_err(|e| classify(K::KIND, &record.name, e))?;
        Ok(to_record(&done))
    }

    async fn get<K: Cr>(
        &self,
        name: &str,
    ) -> Result<Option<Record<K::Spec, K::Status>>, StoreError> {
        Ok(self
            .api::<K>()
            .get_opt(name)
            .await
            .map_err(|e| classify(K::KIND, name, e))?
            .as_ref()
            .filter(|o| is_record(*o))
            .map(to_record))
    }

    /// Replaces spec and labels, then status, each guarded by resourceVersion.
    async fn update<K: Cr>(
        &self,
        record: &Record<K::Spec, K::Status>,
        labels: Vec<(&str, String)>,
    ) -> Result<Record<K::Spec, K::Status>, StoreError> {
        let api = self.api::<K>();
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
            .replace(&record.name, &PostParams::default(), &obj)
            .await
            .map_err(conflict)?;
        let mut with_status = replaced;
        with_status.set_status(record.status.clone());
        let done = api
            .replace_status(&record.name, &PostParams::default(), &with_status)
            .await
            .map_err(conflict)?;
        Ok(to_record(&done))
    }

    async fn list<K: Cr>(
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
    async fn modify<K: Cr>(
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

    async fn purge<K: Cr>(&self, name: &str) -> Result<(), StoreError> {
        match self.api::<K>().delete(name, &Default::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(classify(K::KIND, name, e)),
        }
        self.notify(K::KIND, name, None);
        Ok(())
    }
}

fn volume_labels(r: &VolumeRecord) -> Vec<(&'static str, String)> {
    let mut l = vec![
        (LABEL_NODE, r.spec.node.clone()),
        (LABEL_PROJECT, r.spec.project.clone()),
        (LABEL_CSI_NAME, csi_name_label(&r.spec.csi_name)),
    ];
    if let Some(s) = &r.spec.source_volume_id {
        l.push((LABEL_SOURCE, s.clone()));
    }
    l
}

fn snapshot_labels(r: &SnapshotRecord) -> Vec<(&'static str, String)> {
    vec![
        (LABEL_NODE, r.spec.node.clone()),
        (LABEL_PROJECT, r.spec.project.clone()),
        (LABEL_CSI_NAME, csi_name_label(&r.spec.csi_name)),
        (LABEL_SOURCE, r.spec.source_volume_id.clone()),
    ]
}

fn label_filter<'a>(parts: &[(&'a str, Option<&'a String>)]) -> Vec<(&'a str, &'a String)> {
    parts
        .iter()
        .filter_map(|(k, v)| v.map(|v| (*k, v)))
        .collect()
}

#[async_trait]
impl Store for KubeStore {
    async fn insert_volume(&self, r: &VolumeRecord) -> Result<VolumeRecord, StoreError> {
        let out = self.create::<LvmVolume>(r, volume_labels(r)).await?;
        self.notify(Kind::Volume, &r.name, Some(r.spec.node.clone()));
        Ok(out)
    }
    async fn get_volume(&self, id: &str) -> Result<Option<VolumeRecord>, StoreError> {
        self.get::<LvmVolume>(id).await
    }
    async fn find_volume(&self, csi_name: &str) -> Result<Option<VolumeRecord>, StoreError> {
        let h = csi_name_label(csi_name);
        Ok(self
            .list::<LvmVolume>(
                &[(LABEL_CSI_NAME, &h)],
                |r| r.spec.csi_name == csi_name && !r.status.life.deleted,
                None,
                1,
            )
            .await?
            .pop())
    }
    async fn list_volumes(
        &self,
        f: &VolumeFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<VolumeRecord>, StoreError> {
        let sel = label_filter(&[
            (LABEL_NODE, f.node.as_ref()),
            (LABEL_PROJECT, f.project.as_ref()),
        ]);
        self.list::<LvmVolume>(
            &sel,
            |r| f.include_deleted || !r.status.life.deleted,
            after,
            limit,
        )
        .await
    }
    async fn update_volume(&self, r: &VolumeRecord) -> Result<VolumeRecord, StoreError> {
        let out = self.update::<LvmVolume>(r, volume_labels(r)).await?;
        self.notify(Kind::Volume, &r.name, Some(r.spec.node.clone()));
        Ok(out)
    }
    async fn modify_volume(
        &self,
        id: &str,
        f: Modify<VolumeRecord>,
    ) -> Result<Option<VolumeRecord>, StoreError> {
        let out = self.modify::<LvmVolume>(id, f, volume_labels).await?;
        if let Some(r) = &out {
            self.notify(Kind::Volume, id, Some(r.spec.node.clone()));
        }
        Ok(out)
    }
    async fn purge_volume(&self, id: &str) -> Result<(), StoreError> {
        self.purge::<LvmVolume>(id).await
    }

    async fn insert_snapshot(&self, r: &SnapshotRecord) -> Result<SnapshotRecord, StoreError> {
        let out = self.create::<LvmSnapshot>(r, snapshot_labels(r)).await?;
        self.notify(Kind::Snapshot, &r.name, Some(r.spec.node.clone()));
        Ok(out)
    }
    async fn get_snapshot(&self, id: &str) -> Result<Option<SnapshotRecord>, StoreError> {
        self.get::<LvmSnapshot>(id).await
    }
    async fn find_snapshot(&self, csi_name: &str) -> Result<Option<SnapshotRecord>, StoreError> {
        let h = csi_name_label(csi_name);
        Ok(self
            .list::<LvmSnapshot>(
                &[(LABEL_CSI_NAME, &h)],
                |r| r.spec.csi_name == csi_name && !r.status.life.deleted,
                None,
                1,
            )
            .await?
            .pop())
    }
    async fn list_snapshots(
        &self,
        f: &SnapshotFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<SnapshotRecord>, StoreError> {
        let sel = label_filter(&[
            (LABEL_SOURCE, f.source_volume_id.as_ref()),
            (LABEL_NODE, f.node.as_ref()),
            (LABEL_PROJECT, f.project.as_ref()),
        ]);
        self.list::<LvmSnapshot>(
            &sel,
            |r| f.include_deleted || !r.status.life.deleted,
            after,
            limit,
        )
        .await
    }
    async fn update_snapshot(&self, r: &SnapshotRecord) -> Result<SnapshotRecord, StoreError> {
        let out = self.update::<LvmSnapshot>(r, snapshot_labels(r)).await?;
        self.notify(Kind::Snapshot, &r.name, Some(r.spec.node.clone()));
        Ok(out)
    }
    async fn modify_snapshot(
        &self,
        id: &str,
        f: Modify<SnapshotRecord>,
    ) -> Result<Option<SnapshotRecord>, StoreError> {
        let out = self.modify::<LvmSnapshot>(id, f, snapshot_labels).await?;
        if let Some(r) = &out {
            self.notify(Kind::Snapshot, id, Some(r.spec.node.clone()));
        }
        Ok(out)
    }
    async fn purge_snapshot(&self, id: &str) -> Result<(), StoreError> {
        self.purge::<LvmSnapshot>(id).await
    }

    async fn get_quota(&self, project: &str) -> Result<Option<QuotaRecord>, StoreError> {
        self.get::<LvmQuota>(project).await
    }

    async fn update_quota(
        &self,
        project: &str,
        update: QuotaUpdate,
    ) -> Result<QuotaRecord, StoreError> {
        let api = self.api::<LvmQuota>();
        let update = std::sync::Mutex::new(update);
        let out = cas::retry(true, || async {
            let current = self.get::<LvmQuota>(project).await?;
            let next = {
                let mut f = update
                    .lock()
                    .map_err(|_| StoreError::Other("quota closure lock poisoned".into()))?;
                f(current.as_ref()).map_err(StoreError::Aborted)?
            };
            let (spec, status) = next;
            match &current {
                None => {
                    self.create::<LvmQuota>(&Record::new(project, spec, status), vec![])
                        .await
                }
                Some(cur) if cur.spec != spec => {
                    let next = Record {
                        spec,
                        status,
                        ..cur.clone()
                    };
                    self.update::<LvmQuota>(&next, vec![]).await
                }
                Some(cur) => {
                    // Status only: one compare-and-swap on the status subresource.
                    let mut obj = LvmQuota::new(project, cur.spec.clone());
                    obj.metadata.resource_version = Some(cur.version.clone());
                    obj.status = Some(status);
                    api.replace_status(project, &PostParams::default(), &obj)
                        .await
                        .map(|o| to_record(&o))
                        .map_err(|e| classify(Kind::Quota, project, e))
                }
            }
        })
        .await?;
        self.notify(Kind::Quota, project, None);
        Ok(out)
    }

    async fn list_quotas(&self) -> Result<Vec<QuotaRecord>, StoreError> {
        self.list::<LvmQuota>(&[], |_| true, None, usize::MAX).await
    }

    async fn put_node(&self, r: &NodeRecord) -> Result<NodeRecord, StoreError> {
        let labels = || vec![(LABEL_NODE, r.name.clone())];
        let out = cas::retry(true, || async {
            match self.get::<LvmNode>(&r.name).await? {
                None => self.create::<LvmNode>(r, labels()).await,
                Some(cur) => {
                    let next = Record {
                        version: cur.version,
                        ..r.clone()
                    };
                    self.update::<LvmNode>(&next, labels()).await
                }
            }
        })
        .await?;
        self.notify(Kind::Node, &r.name, Some(r.name.clone()));
        Ok(out)
    }

    async fn list_nodes(&self) -> Result<Vec<NodeRecord>, StoreError> {
        self.list::<LvmNode>(&[], |_| true, None, usize::MAX).await
    }

    fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }
}
