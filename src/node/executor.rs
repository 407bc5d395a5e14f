//! Reconciles the records assigned to this node: `creating` records get
//! their LV, `deleting` ones lose it and release their quota. The node
//! reconciles, it does not obey: the same record seen twice does the work
//! once (an LV carrying the record's tag = done), and the same object is
//! never worked on twice at once.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;

pub use super::settings::NodeSettings;
use crate::failpoint::{Failpoints, Halted};
use crate::lvm::{LvTag, Lvm};
use crate::quota::QuotaEngine;
use crate::records::{SnapshotState, VolumeState};
use crate::store::{
    EventSink, GroupSnapshotFilter, Kind, LogOnly, Phase, SnapshotFilter, Store, StoreError,
    VolumeFilter,
};

use super::fill_report::{FillMemory, FillState};
use super::host::Host;

/// Why a piece of work stopped: the store failed, or a failpoint halted it.
#[derive(Debug, thiserror::Error)]
pub enum WorkError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Halted(#[from] Halted),
    #[error("quota: {0}")]
    Quota(#[from] crate::quota::QuotaError),
}

/// The node executor: one per node; clone freely.
#[derive(Clone)]
pub struct Executor {
    pub(super) store: Arc<dyn Store>,
    pub(super) quota: QuotaEngine,
    pub(super) lvm: Lvm,
    pub(super) host: Host,
    pub(super) settings: NodeSettings,
    pub(super) failpoints: Failpoints,
    pub(super) lvm_version: Arc<tokio::sync::OnceCell<String>>,
    /// Capacity reports asked for (`capacity.rs` coalesces them).
    pub(super) wanted: Arc<tokio::sync::Notify>,
    /// Records being worked, and whether they changed meanwhile.
    inflight: Arc<Mutex<HashMap<(Kind, String), bool>>>,
    events: Arc<dyn EventSink>,
    /// What the fill watch and the capacity report last read (metrics).
    pub(super) fill: FillState,
    pub(super) fill_memory: Arc<FillMemory>,
    /// Held shared by the work on every volume and snapshot record, and
    /// exclusively by a group cut while its members are frozen: any other
    /// LVM change to one of them (a snapshot, a removal, an extend) would
    /// resume it in the middle of the group.
    pub(super) frozen_gate: Arc<tokio::sync::RwLock<()>>,
}

/// Back-off between failed settle passes: 1 s doubling to 60 s, jittered.
fn retry_delay(round: u32) -> Duration {
    let base = Duration::from_secs(1u64 << round.min(6)).min(Duration::from_secs(60));
    base.mul_f64(0.75 + fastrand::f64() / 2.0)
}

pub(super) fn tag_for(id: &str) -> Result<LvTag, String> {
    uuid::Uuid::parse_str(id)
        .map(LvTag::record)
        .map_err(|e| format!("record id {id:?} is not a uuid: {e}"))
}

impl Executor {
    pub fn new(
        store: Arc<dyn Store>,
        quota: QuotaEngine,
        lvm: Lvm,
        settings: NodeSettings,
    ) -> Self {
        let fill = FillState::default();
        if let Ok(mut f) = fill.write() {
            f.vg_name = settings.vg.clone();
        }
        Self {
            store,
            quota,
            lvm,
            settings,
            host: Host::default(),
            failpoints: Failpoints::default(),
            lvm_version: Arc::default(),
            wanted: Arc::default(),
            inflight: Arc::default(),
            frozen_gate: Arc::default(),
            events: Arc::new(LogOnly),
            fill,
            fill_memory: Arc::default(),
        }
    }

    /// Sends the lifecycle notifications to `events` (Kubernetes Events).
    pub fn with_events(mut self, events: Arc<dyn EventSink>) -> Self {
        self.events = events;
        self
    }

    /// Crash injection (tests).
    pub fn with_failpoints(mut self, failpoints: Failpoints) -> Self {
        self.failpoints = failpoints;
        self
    }

    pub fn settings(&self) -> &NodeSettings {
        &self.settings
    }

    /// Logs a notification and hands it to the event sink.
    pub(crate) async fn notify(&self, kind: Kind, id: &str, phase: Phase, note: String) {
        crate::store::events::notify(self.events.as_ref(), kind, id, phase, note).await;
    }

    /// Runs until the task is dropped (or a failpoint halts it): settle
    /// (retried with back-off until it had a complete view), then follow
    /// changes, with a periodic resync, settle and heartbeat (a capacity
    /// report read afresh); changes of the VG are reported coalesced.
    pub async fn run(self) {
        let mut changes = self.store.subscribe();
        let _reporter = self.spawn_reporter();
        self.report_capacity().await;
        let mut round = 0;
        let mut thawed = false;
        loop {
            // First of all: thaw what a group cut of a previous life of this
            // node left frozen (its records say what).
            if !thawed {
                match self.thaw_leftovers().await {
                    Ok(n) => {
                        thawed = true;
                        if n > 0 {
                            tracing::warn!(
                                groups = n,
                                "thawed what interrupted group cuts left frozen"
                            );
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "cannot read group records to thaw what they froze; retrying")
                    }
                }
            }
            // Settle even while the group records cannot be read: it acts
            // only on its own complete view (and says so when it has none).
            let settled = self.settle().await.is_ok();
            if thawed && settled {
                break;
            }
            if self.failpoints.halted() {
                return;
            }
            tokio::time::sleep(retry_delay(round)).await;
            round += 1;
        }
        self.resync().await;
        let mut tick = tokio::time::interval(self.settings.resync);
        tick.tick().await;
        loop {
            if self.failpoints.halted() {
                return;
            }
            tokio::select! {
                change = changes.recv() => match change {
                    Ok(c) if c.node.as_deref() == Some(self.settings.node_id.as_str())
                        && matches!(c.kind, Kind::Volume | Kind::Snapshot | Kind::GroupSnapshot) => self.spawn(c.kind, c.name),
                    Ok(_) => {}
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "missed record notifications; resyncing");
                        self.resync().await;
                    }
                    Err(RecvError::Closed) => return,
                },
                _ = tick.tick() => {
                    let _ = self.settle().await;
                    self.resync().await;
                    self.report_capacity().await;
                }
            }
        }
    }

    /// Works the record on its own task unless it is already being worked.
    /// A change arriving while the record is being worked is not dropped:
    /// the task works it once more when done (a `deleting` seen mid-create
    /// would otherwise wait for the resync).
    pub(super) fn spawn(&self, kind: Kind, name: String) {
        let key = (kind, name.clone());
        let fresh = match self.inflight.lock() {
            Ok(mut map) => match map.get_mut(&key) {
                Some(again) => {
                    *again = true;
                    false
                }
                None => {
                    map.insert(key.clone(), false);
                    true
                }
            },
            Err(_) => false,
        };
        if !fresh {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = this.work(kind, &name).await {
                    tracing::error!(kind = kind.as_str(), id = %name, error = %e, "reconcile failed; will retry on resync");
                }
                let again = match this.inflight.lock() {
                    Ok(mut map) => match map.get_mut(&key) {
                        Some(again) if *again && !this.failpoints.halted() => {
                            *again = false;
                            true
                        }
                        _ => {
                            map.remove(&key);
                            false
                        }
                    },
                    Err(_) => false,
                };
                if !again {
                    break;
                }
            }
            if !this.failpoints.halted() {
                this.capacity_changed();
            }
        });
    }

    /// Works one record now, on this task (tests drive the executor this way).
    pub async fn work(&self, kind: Kind, id: &str) -> Result<(), WorkError> {
        match kind {
            Kind::Snapshot => {
                let _shared = self.frozen_gate.read().await;
                self.work_snapshot(id).await
            }
            Kind::Volume => {
                let _shared = self.frozen_gate.read().await;
                self.work_volume(id).await
            }
            Kind::GroupSnapshot => self.work_group(id).await,
            _ => Ok(()),
        }
    }

    /// Spawns every record of this node that has work left (`creating`,
    /// `deleting`, `extending`; a group with something frozen).
    pub async fn resync(&self) {
        let node = Some(self.settings.node_id.clone());
        let volumes = VolumeFilter {
            node: node.clone(),
            ..Default::default()
        };
        if let Ok(vols) = self.store.list_volumes(&volumes, None, usize::MAX).await {
            for v in vols.into_iter().filter(|v| {
                matches!(
                    v.status.life.status,
                    VolumeState::Creating | VolumeState::Deleting | VolumeState::Extending
                )
            }) {
                self.spawn(Kind::Volume, v.name);
            }
        }
        let snapshots = SnapshotFilter {
            node,
            ..Default::default()
        };
        if let Ok(snaps) = self
            .store
            .list_snapshots(&snapshots, None, usize::MAX)
            .await
        {
            for s in snaps.into_iter().filter(|s| {
                matches!(
                    s.status.life.status,
                    SnapshotState::Creating | SnapshotState::Deleting
                )
            }) {
                self.spawn(Kind::Snapshot, s.name);
            }
        }
        let groups = GroupSnapshotFilter {
            node: Some(self.settings.node_id.clone()),
            ..Default::default()
        };
        if let Ok(groups) = self
            .store
            .list_group_snapshots(&groups, None, usize::MAX)
            .await
        {
            for g in groups.into_iter().filter(|g| {
                !g.status.frozen.is_empty()
                    || matches!(
                        g.status.life.status,
                        SnapshotState::Creating | SnapshotState::Deleting
                    )
            }) {
                self.spawn(Kind::GroupSnapshot, g.name);
            }
        }
    }
}
