//! Where a new volume goes, and GetCapacity: the nodes' reported capacity
//! (LvsNode), filtered by the StorageClass (VG, thick/thin) and by the
//! request's accessibility requirements; a node whose heartbeat is stale
//! gets nothing new.
use chrono::Utc;

use super::params::{LvType, VolumeParams};
use super::{Controller, ControllerError};
use crate::store::NodeRecord;

/// Where a volume may go: nodes from the accessibility requirements, in
/// preference order (empty: anywhere).
#[derive(Debug, Clone, Default)]
pub struct Placement {
    pub preferred: Vec<String>,
    pub requisite: Vec<String>,
}

impl Placement {
    /// The nodes named, preferred first (empty: no requirement).
    fn ordered(&self) -> Vec<&String> {
        self.preferred.iter().chain(self.requisite.iter()).collect()
    }

    /// Whether the requirements allow `node`.
    pub fn allows(&self, node: &str) -> bool {
        let named = self.ordered();
        named.is_empty() || named.iter().any(|n| *n == node)
    }
}

/// A chosen node: its record and the thin pool to use (None: thick).
#[derive(Debug, Clone)]
pub(super) struct Placed {
    pub node: NodeRecord,
    pub thin_pool: Option<String>,
}

/// The thin pool a volume of `p` gets on `n`, or `Err` when `n` cannot
/// serve that kind of volume.
fn pool_for(p: &VolumeParams, n: &NodeRecord) -> Result<Option<String>, ()> {
    match p.lv_type {
        Some(LvType::Thick) => Ok(None),
        Some(LvType::Thin) => p
            .thin_pool
            .clone()
            .or_else(|| n.spec.thin_pool.clone())
            .map(Some)
            .ok_or(()),
        None => Ok(p.thin_pool.clone().or_else(|| n.spec.thin_pool.clone())),
    }
}

impl Controller {
    /// Picks the node: the requirements' nodes in preference order, else
    /// the node with the most free space; it must be fresh, match the
    /// class and have room for `size`.
    ///
    /// The nodes are read from the store's cache (the Kubernetes store's
    /// watch); a refusal is decided again on a direct read, so a node that
    /// registered or freed space moments ago is not refused on a stale view.
    pub(super) async fn place(
        &self,
        placement: &Placement,
        p: &VolumeParams,
        size: i64,
    ) -> Result<Placed, ControllerError> {
        match self.place_in(self.store.as_ref(), placement, p, size).await {
            Err(_) if self.store.direct().is_some() => {
                let direct = crate::store::direct(&self.store);
                self.place_in(direct.as_ref(), placement, p, size).await
            }
            placed => placed,
        }
    }

    async fn place_in(
        &self,
        store: &dyn crate::store::Store,
        placement: &Placement,
        p: &VolumeParams,
        size: i64,
    ) -> Result<Placed, ControllerError> {
        let nodes = store.list_nodes().await?;
        let now = Utc::now();
        let eligible: Vec<Placed> = nodes
            .iter()
            .filter(|n| p.vg.as_ref().is_none_or(|vg| *vg == n.spec.vg))
            .filter(|n| n.status.free_bytes >= size && self.is_fresh(n, now))
            .filter_map(|n| {
                pool_for(p, n).ok().map(|thin_pool| Placed {
                    node: n.clone(),
                    thin_pool,
                })
            })
            .collect();
        let ordered = placement.ordered();
        let chosen = if ordered.is_empty() {
            eligible
                .iter()
                .max_by_key(|c| c.node.status.free_bytes)
                .cloned()
        } else {
            ordered
                .iter()
                .find_map(|name| eligible.iter().find(|c| &&c.node.name == name))
                .cloned()
        };
        chosen.ok_or_else(|| {
            if nodes.is_empty() {
                ControllerError::Unavailable("no node has reported its volume group yet".into())
            } else if !nodes.iter().any(|n| self.is_fresh(n, now)) {
                ControllerError::Unavailable(format!(
                    "no node has reported within {}s (--node-stale-after)",
                    self.config.node_stale_after.as_secs()
                ))
            } else if p.lv_type == Some(LvType::Thin)
                && !nodes.iter().any(|n| pool_for(p, n).is_ok())
            {
                ControllerError::Invalid("lvType=thin, but no node has a thin pool".into())
            } else {
                ControllerError::Exhausted(format!("no eligible node has {size} bytes free"))
            }
        })
    }

    /// Whether `node` can take a volume of `size` now (fresh, room).
    pub(super) async fn node_has_room(
        &self,
        node: &str,
        size: i64,
    ) -> Result<bool, ControllerError> {
        let has = |nodes: Vec<NodeRecord>| {
            let now = Utc::now();
            nodes
                .iter()
                .any(|n| n.name == node && n.status.free_bytes >= size && self.is_fresh(n, now))
        };
        // A "no" from the cache is decided again on a direct read.
        Ok(has(self.store.list_nodes().await?)
            || (self.store.direct().is_some()
                && has(crate::store::direct(&self.store).list_nodes().await?)))
    }

    /// GetCapacity: free bytes on the named node, or on all fresh nodes,
    /// from the store's cache (no API call on the Kubernetes store: the CO
    /// polls it, and a figure a watch event old is as good as any).
    pub async fn capacity(
        &self,
        node: Option<&str>,
        vg: Option<&str>,
    ) -> Result<(i64, i64), ControllerError> {
        let nodes = self.store.list_nodes().await?;
        let now = Utc::now();
        let matching = nodes.iter().filter(|n| {
            node.is_none_or(|want| n.name == want)
                && vg.is_none_or(|want| n.spec.vg == want)
                && self.is_fresh(n, now)
        });
        let free = matching.clone().map(|n| n.status.free_bytes).sum();
        let largest = matching.map(|n| n.status.free_bytes).max().unwrap_or(0);
        Ok((free, largest))
    }
}
