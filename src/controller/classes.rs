//! Device classes as the controller sees them: what each node reported in
//! its LvsNode (`status.classes`; a node from before classes serves one,
//! named after its VG), which class a request asks for (`deviceClass`, or
//! the old `vg`/`thinPool`, or the node's default), and how much a new
//! volume of that class may take there — the one figure placement,
//! GetCapacity and the thin snapshot check all use.
use super::params::{LvType, VolumeParams};
use super::{Controller, ControllerError};
use crate::records::NodeClass;
use crate::store::NodeRecord;

/// The classes `n` serves.
pub fn node_classes(n: &NodeRecord) -> Vec<NodeClass> {
    if !n.status.classes.is_empty() {
        return n.status.classes.clone();
    }
    vec![NodeClass {
        name: n.spec.vg.clone(),
        vg: n.spec.vg.clone(),
        thin_pool: n.spec.thin_pool.clone(),
        default: true,
        size_bytes: n.status.size_bytes,
        free_bytes: n.status.free_bytes,
        available_bytes: n.status.free_bytes,
        overprovision_ratio: None,
        pool: None,
    }]
}

/// Where on a node a volume goes: its class, the thin pool (None: thick)
/// and the bytes it may take there.
#[derive(Debug, Clone)]
pub(super) struct Slot {
    pub class: NodeClass,
    pub thin_pool: Option<String>,
    pub available: i64,
}

/// The bytes a volume in `pool` (None: thick) of class `c` may take.
fn available(c: &NodeClass, pool: Option<&String>) -> i64 {
    match (pool, &c.thin_pool) {
        // The class's own kind: its figure (thin: overprovisioning).
        (None, None) => c.available_bytes,
        (Some(p), Some(own)) if p == own => c.available_bytes,
        // Thick LVs in a thin class's VG, or another pool: the VG's free
        // space (what lvm2 decides on).
        _ => c.free_bytes,
    }
}

/// The slot `p` asks for on node `n`, or None when `n` cannot serve it.
pub(super) fn slot(p: &VolumeParams, n: &NodeRecord) -> Option<Slot> {
    let classes = node_classes(n);
    let class = match (&p.device_class, &p.vg) {
        (Some(name), _) => classes.iter().find(|c| &c.name == name),
        (None, Some(vg)) => classes
            .iter()
            .filter(|c| &c.vg == vg)
            .max_by_key(|c| c.default),
        (None, None) => classes.iter().find(|c| c.default),
    }?;
    let thin_pool = match p.lv_type {
        Some(LvType::Thick) => None,
        Some(LvType::Thin) => Some(p.thin_pool.clone().or_else(|| class.thin_pool.clone())?),
        None => p.thin_pool.clone().or_else(|| class.thin_pool.clone()),
    };
    Some(Slot {
        available: available(class, thin_pool.as_ref()),
        class: class.clone(),
        thin_pool,
    })
}

/// INVALID_ARGUMENT when `p` names a class no node serves.
pub(super) fn check_known(p: &VolumeParams, nodes: &[NodeRecord]) -> Result<(), ControllerError> {
    let Some(name) = &p.device_class else {
        return Ok(());
    };
    let mut served: Vec<String> = nodes
        .iter()
        .flat_map(node_classes)
        .map(|c| c.name)
        .collect();
    if served.contains(name) || nodes.is_empty() {
        return Ok(());
    }
    served.sort();
    served.dedup();
    Err(ControllerError::Invalid(format!(
        "deviceClass {name:?} is not served by any node (served: {})",
        served.join(", ")
    )))
}

impl Controller {
    /// Whether node `node` has room for `size` more bytes in class `class`
    /// (None: its default) and pool `pool`: a restore or clone placed on its
    /// source's node, a thin snapshot in its origin's pool. Decided on the
    /// cache, a "no" again on a direct read.
    pub(super) async fn class_room(
        &self,
        node: &str,
        class: Option<&str>,
        vg: &str,
        pool: Option<&String>,
        size: i64,
    ) -> Result<(), ControllerError> {
        let room = |nodes: &[NodeRecord]| {
            nodes.iter().find(|n| n.name == node).map(|n| {
                node_classes(n)
                    .into_iter()
                    .find(|c| match class {
                        Some(name) => c.name == name,
                        None => c.vg == vg && c.default,
                    })
                    .or_else(|| node_classes(n).into_iter().find(|c| c.vg == vg))
                    .map_or(0, |c| available(&c, pool))
            })
        };
        let mut have = room(&self.store.list_nodes().await?);
        if have.is_none_or(|b| b < size) && self.store.direct().is_some() {
            have = room(&crate::store::direct(&self.store).list_nodes().await?);
        }
        match have {
            // A node that never reported: the node decides (lvm2 refuses).
            None => Ok(()),
            Some(b) if b >= size => Ok(()),
            Some(b) => Err(ControllerError::Exhausted(format!(
                "device class {:?} on node {node} has {b} bytes available; {size} are needed",
                class.unwrap_or(vg)
            ))),
        }
    }
}
