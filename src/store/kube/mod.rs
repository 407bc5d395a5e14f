//! The Kubernetes backend: records are cluster-scoped CustomResources;
//! writes are compare-and-swaps on resourceVersion (409 → `Conflict`),
//! status goes through the status subresource, labels let a node list its
//! own records and the controller find a record by CSI name. Reads come
//! from caches fed by the store's watches (`cache.rs`, `watch.rs`) once
//! `spawn_watch` runs them; quota and node writes are serialized per object
//! in the process (`quota.rs`).
use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use kube::Client;
use sha2::{Digest, Sha256};
use tokio::sync::broadcast;

mod cache;
mod cr;
mod ops;
mod quota;
mod watch;

pub use cr::QUOTA_OBJECT;

use super::{
    Change, GroupSnapshotFilter, GroupSnapshotRecord, Kind, Modify, NodeRecord, QuotaRecord,
    QuotaUpdate, SnapshotFilter, SnapshotRecord, Store, StoreError, VolumeFilter, VolumeRecord,
};
use crate::records::{LvsGroupSnapshot, LvsNode, LvsQuota, LvsSnapshot, LvsVolume};

pub const LABEL_NODE: &str = "lvsnap.io/node";
pub const LABEL_PROJECT: &str = "lvsnap.io/project";
pub const LABEL_CSI_NAME: &str = "lvsnap.io/csi-name-hash";
pub const LABEL_SOURCE: &str = "lvsnap.io/source-volume";

/// The Kubernetes backend.
#[derive(Clone)]
pub struct KubeStore {
    client: Client,
    changes: broadcast::Sender<Change>,
    /// Read caches, fed by `spawn_watch` (`None`: every read goes to the
    /// API server, see `Store::direct`).
    caches: Option<Arc<cache::Caches>>,
    /// Quota and node writes, serialized per object (`quota.rs`).
    writes: Arc<quota::Writes>,
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

fn group_labels(r: &GroupSnapshotRecord) -> Vec<(&'static str, String)> {
    vec![
        (LABEL_NODE, r.spec.node.clone()),
        (LABEL_PROJECT, r.spec.project.clone()),
        (LABEL_CSI_NAME, csi_name_label(&r.spec.csi_name)),
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
        let out = self.create::<LvsVolume>(r, volume_labels(r)).await?;
        self.notify(Kind::Volume, &r.name, Some(r.spec.node.clone()));
        Ok(out)
    }
    async fn get_volume(&self, id: &str) -> Result<Option<VolumeRecord>, StoreError> {
        self.get::<LvsVolume>(id).await
    }
    async fn find_volume(&self, csi_name: &str) -> Result<Option<VolumeRecord>, StoreError> {
        self.find::<LvsVolume>(csi_name, |r| {
            r.spec.csi_name == csi_name && !r.status.life.deleted
        })
        .await
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
        self.list::<LvsVolume>(
            &sel,
            |r| f.include_deleted || !r.status.life.deleted,
            after,
            limit,
        )
        .await
    }
    async fn update_volume(&self, r: &VolumeRecord) -> Result<VolumeRecord, StoreError> {
        let out = self.update::<LvsVolume>(r, volume_labels(r), true).await?;
        self.notify(Kind::Volume, &r.name, Some(r.spec.node.clone()));
        Ok(out)
    }
    async fn modify_volume(
        &self,
        id: &str,
        f: Modify<VolumeRecord>,
    ) -> Result<Option<VolumeRecord>, StoreError> {
        let out = self.modify::<LvsVolume>(id, f, volume_labels).await?;
        if let Some(r) = &out {
            self.notify(Kind::Volume, id, Some(r.spec.node.clone()));
        }
        Ok(out)
    }
    async fn purge_volume(&self, id: &str) -> Result<(), StoreError> {
        self.purge::<LvsVolume>(id).await
    }

    async fn insert_snapshot(&self, r: &SnapshotRecord) -> Result<SnapshotRecord, StoreError> {
        let out = self.create::<LvsSnapshot>(r, snapshot_labels(r)).await?;
        self.notify(Kind::Snapshot, &r.name, Some(r.spec.node.clone()));
        Ok(out)
    }
    async fn get_snapshot(&self, id: &str) -> Result<Option<SnapshotRecord>, StoreError> {
        self.get::<LvsSnapshot>(id).await
    }
    async fn find_snapshot(&self, csi_name: &str) -> Result<Option<SnapshotRecord>, StoreError> {
        self.find::<LvsSnapshot>(csi_name, |r| {
            r.spec.csi_name == csi_name && !r.status.life.deleted
        })
        .await
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
        self.list::<LvsSnapshot>(
            &sel,
            |r| f.include_deleted || !r.status.life.deleted,
            after,
            limit,
        )
        .await
    }
    async fn update_snapshot(&self, r: &SnapshotRecord) -> Result<SnapshotRecord, StoreError> {
        let out = self
            .update::<LvsSnapshot>(r, snapshot_labels(r), true)
            .await?;
        self.notify(Kind::Snapshot, &r.name, Some(r.spec.node.clone()));
        Ok(out)
    }
    async fn modify_snapshot(
        &self,
        id: &str,
        f: Modify<SnapshotRecord>,
    ) -> Result<Option<SnapshotRecord>, StoreError> {
        let out = self.modify::<LvsSnapshot>(id, f, snapshot_labels).await?;
        if let Some(r) = &out {
            self.notify(Kind::Snapshot, id, Some(r.spec.node.clone()));
        }
        Ok(out)
    }
    async fn purge_snapshot(&self, id: &str) -> Result<(), StoreError> {
        self.purge::<LvsSnapshot>(id).await
    }

    async fn insert_group_snapshot(
        &self,
        r: &GroupSnapshotRecord,
    ) -> Result<GroupSnapshotRecord, StoreError> {
        let out = self.create::<LvsGroupSnapshot>(r, group_labels(r)).await?;
        self.notify(Kind::GroupSnapshot, &r.name, Some(r.spec.node.clone()));
        Ok(out)
    }
    async fn get_group_snapshot(
        &self,
        id: &str,
    ) -> Result<Option<GroupSnapshotRecord>, StoreError> {
        self.get::<LvsGroupSnapshot>(id).await
    }
    async fn find_group_snapshot(
        &self,
        csi_name: &str,
    ) -> Result<Option<GroupSnapshotRecord>, StoreError> {
        self.find::<LvsGroupSnapshot>(csi_name, |r| {
            r.spec.csi_name == csi_name && !r.status.life.deleted
        })
        .await
    }
    async fn list_group_snapshots(
        &self,
        f: &GroupSnapshotFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<GroupSnapshotRecord>, StoreError> {
        let sel = label_filter(&[
            (LABEL_NODE, f.node.as_ref()),
            (LABEL_PROJECT, f.project.as_ref()),
        ]);
        self.list::<LvsGroupSnapshot>(
            &sel,
            |r| f.include_deleted || !r.status.life.deleted,
            after,
            limit,
        )
        .await
    }
    async fn modify_group_snapshot(
        &self,
        id: &str,
        f: Modify<GroupSnapshotRecord>,
    ) -> Result<Option<GroupSnapshotRecord>, StoreError> {
        let out = self.modify::<LvsGroupSnapshot>(id, f, group_labels).await?;
        if let Some(r) = &out {
            self.notify(Kind::GroupSnapshot, id, Some(r.spec.node.clone()));
        }
        Ok(out)
    }
    async fn purge_group_snapshot(&self, id: &str) -> Result<(), StoreError> {
        self.purge::<LvsGroupSnapshot>(id).await
    }

    /// Quota is read from the API server (no cache): its reads decide
    /// reservations, and every create writes it (`quota.rs`).
    async fn get_quota(&self, project: &str) -> Result<Option<QuotaRecord>, StoreError> {
        self.get_direct::<LvsQuota>(project).await
    }

    async fn update_quota(
        &self,
        project: &str,
        update: QuotaUpdate,
    ) -> Result<QuotaRecord, StoreError> {
        self.update_quota_cas(project, update).await
    }

    async fn list_quotas(&self) -> Result<Vec<QuotaRecord>, StoreError> {
        self.list_direct::<LvsQuota>(&[], |_| true, None, usize::MAX)
            .await
    }

    async fn put_node(&self, r: &NodeRecord) -> Result<NodeRecord, StoreError> {
        self.put_node_cas(r).await
    }

    async fn list_nodes(&self) -> Result<Vec<NodeRecord>, StoreError> {
        self.list::<LvsNode>(&[], |_| true, None, usize::MAX).await
    }

    fn direct(&self) -> Option<Arc<dyn Store>> {
        Some(Arc::new(self.uncached()))
    }

    fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }
}
