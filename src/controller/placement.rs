//! Where a new volume goes, and GetCapacity: the nodes' reported capacity
//! per device class (LvsNode, `classes.rs`), for the class the StorageClass
//! asks (deviceClass, or vg/thinPool, thick/thin), filtered by the request's
//! accessibility requirements; a node whose heartbeat is stale gets nothing
//! new.
use chrono::Utc;

use super::classes::{Slot, check_known, slot};
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

/// A chosen node: its record and where on it the volume goes.
#[derive(Debug, Clone)]
pub(super) struct Placed {
    pub node: NodeRecord,
    pub slot: Slot,
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
        check_known(p, &nodes)?;
        let now = Utc::now();
        let eligible: Vec<Placed> = nodes
            .iter()
            .filter(|n| self.is_fresh(n, now))
            .filter_map(|n| {
                let slot = slot(p, n)?;
                (slot.available >= size).then(|| Placed {
                    node: n.clone(),
                    slot,
                })
            })
            .collect();
        let ordered = placement.ordered();
        let chosen = if ordered.is_empty() {
            eligible.iter().max_by_key(|c| c.slot.available).cloned()
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
            } else if p.lv_type == Some(LvType::Thin) && !nodes.iter().any(|n| slot(p, n).is_some())
            {
                ControllerError::Invalid("lvType=thin, but no node has a thin pool".into())
            } else {
                let class = p
                    .device_class
                    .as_deref()
                    .map(|c| format!(" in device class {c:?}"));
                ControllerError::Exhausted(format!(
                    "no eligible node has {size} bytes available{}",
                    class.unwrap_or_default()
                ))
            }
        })
    }

    /// Whether `node` can take a volume of `p` and `size` now (fresh, room
    /// in the class asked).
    pub(super) async fn node_has_room(
        &self,
        node: &str,
        p: &VolumeParams,
        size: i64,
    ) -> Result<bool, ControllerError> {
        let has = |nodes: Vec<NodeRecord>| {
            let now = Utc::now();
            nodes.iter().any(|n| {
                n.name == node
                    && self.is_fresh(n, now)
                    && slot(p, n).is_some_and(|s| s.available >= size)
            })
        };
        // A "no" from the cache is decided again on a direct read.
        Ok(has(self.store.list_nodes().await?)
            || (self.store.direct().is_some()
                && has(crate::store::direct(&self.store).list_nodes().await?)))
    }

    /// GetCapacity: what a new volume of the class `p` asks for may take on
    /// the named node, or on all fresh nodes (total, largest), from the
    /// store's cache (no API call on the Kubernetes store: the CO polls it,
    /// and a figure a watch event old is as good as any). A class no node
    /// serves has none.
    pub async fn capacity(
        &self,
        node: Option<&str>,
        parameters: &std::collections::HashMap<String, String>,
    ) -> Result<(i64, i64), ControllerError> {
        let p = &VolumeParams::parse(parameters)?;
        let nodes = self.store.list_nodes().await?;
        let now = Utc::now();
        let matching: Vec<i64> = nodes
            .iter()
            .filter(|n| node.is_none_or(|want| n.name == want) && self.is_fresh(n, now))
            .filter_map(|n| slot(p, n).map(|s| s.available.max(0)))
            .collect();
        let free = matching.iter().sum();
        let largest = matching.iter().copied().max().unwrap_or(0);
        Ok((free, largest))
    }
}
