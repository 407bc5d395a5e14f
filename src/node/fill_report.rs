//! What the node last read of its volume group's fill (the fill watch and
//! the capacity report write it; the metrics read it, never LVM).
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use crate::lvm::VgInfo;

/// A thin pool's fill.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolFill {
    pub vg: String,
    pub name: String,
    pub data_percent: Option<f64>,
    pub metadata_percent: Option<f64>,
}

/// A thick snapshot's fill (LVs tagged with a record id only).
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotFill {
    pub id: String,
    pub lv: String,
    pub cow_used_percent: Option<f64>,
    pub cow_size_bytes: u64,
    pub invalid: bool,
}

/// What the node last read, for the metrics.
#[derive(Debug, Clone, Default)]
pub struct FillReport {
    pub vg_name: String,
    /// From the last capacity report (`vgs`).
    pub vg: Option<VgInfo>,
    /// When the last `lvs` succeeded.
    pub refreshed: Option<Instant>,
    pub thin_pools: Vec<PoolFill>,
    /// From the last capacity report: each device class and what a new
    /// volume of it may take.
    pub classes: Vec<(String, u64)>,
    pub snapshots: Vec<SnapshotFill>,
    /// LVs tagged by lvsnap that no record claims, at the last settle.
    pub orphans: Option<usize>,
    /// Autoextend outcomes since start: `extended`, `no_space`, `failed`.
    pub autoextend: BTreeMap<&'static str, u64>,
}

/// The report, shared by the node and the metrics.
pub type FillState = Arc<RwLock<FillReport>>;

/// The fill watch's own memory: snapshots already warned about (one Event
/// per snapshot until an extension succeeds).
#[derive(Debug, Default)]
pub(super) struct FillMemory {
    pub(super) warned: Mutex<HashSet<String>>,
}
