//! What a node serves: its id, its device classes (each a VG, an optional
//! thin pool, options), orphan reaping and the resync periods.
use std::time::Duration;

use crate::lvm::{DeviceClass, LvName};

/// What the executor manages.
#[derive(Debug, Clone)]
pub struct NodeSettings {
    pub node_id: String,
    /// The default class's VG and thin pool (the old `--vg`/`--thin-pool`).
    pub vg: String,
    pub thin_pool: Option<String>,
    /// The device classes (empty: one, implicit, from `vg`/`thin_pool`).
    pub classes: Vec<DeviceClass>,
    /// Remove LVs tagged by lvsnap that no record claims.
    pub reap_orphans: bool,
    /// Never reap an orphan younger than this (from `lv_time`).
    pub orphan_grace: Duration,
    /// Full resync period (a safety net behind change notifications).
    pub resync: Duration,
    /// How often the fill watch reads the LVs' fill (one `lvs`): metrics,
    /// thick snapshot autoextend, invalidated snapshots.
    pub fill_interval: Duration,
}

impl NodeSettings {
    /// Settings for node `node_id` on `vg`, thick, no reaping, 60 s resync.
    pub fn new(node_id: impl Into<String>, vg: impl Into<String>) -> Self {
        Self {
            node_id: node_id.into(),
            vg: vg.into(),
            thin_pool: None,
            classes: Vec::new(),
            reap_orphans: false,
            orphan_grace: Duration::from_secs(600),
            resync: Duration::from_secs(60),
            fill_interval: Duration::from_secs(10),
        }
    }
}

impl NodeSettings {
    /// Settings serving `classes` (checked: one is the default, whose VG
    /// and pool become `vg`/`thin_pool`).
    pub fn with_classes(node_id: impl Into<String>, classes: Vec<DeviceClass>) -> Self {
        let default = classes.iter().find(|c| c.default).or(classes.first());
        let mut out = Self::new(node_id, default.map(|c| c.vg.clone()).unwrap_or_default());
        out.thin_pool = default.and_then(|c| c.thin_pool.as_ref().map(|p| p.to_string()));
        out.classes = classes;
        out
    }

    /// The classes served.
    pub fn classes(&self) -> Vec<DeviceClass> {
        if !self.classes.is_empty() {
            return self.classes.clone();
        }
        let pool = self.thin_pool.as_deref().and_then(|p| LvName::new(p).ok());
        vec![DeviceClass::implicit(&self.vg, pool)]
    }

    /// The class `name` (None: the default).
    pub fn class(&self, name: Option<&str>) -> Option<DeviceClass> {
        let classes = self.classes();
        match name {
            Some(n) => classes.into_iter().find(|c| c.name == n),
            None => classes.into_iter().find(|c| c.default),
        }
    }

    /// Every VG of the classes, the default's first.
    pub fn vgs(&self) -> Vec<String> {
        let mut vgs = vec![self.vg.clone()];
        for c in self.classes() {
            if !vgs.contains(&c.vg) {
                vgs.push(c.vg);
            }
        }
        vgs
    }
}
