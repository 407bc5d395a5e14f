//! Reconciles the records assigned to this node: `creating` records get
//! their LV, `deleting` ones lose it and release their quota. The node
//! reconciles, it does not obey: the same record seen twice does the work
//! once (an LV carrying the record's tag = done), and the same object is
//! never worked on twice at once.
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;

use super::events::{EventSink, LogOnly, Phase, RecordEvent};
use super::host::Host;
use crate::controller::now_rfc3339;
use crate::lvm::{ErrorKind, LvName, LvTag, Lvm, LvmError};
use crate::quota::QuotaEngine;
use crate::records::{LvmNodeSpec, LvmNodeStatus, SnapshotState, VolumeState};
use crate::store::{Kind, Record, SnapshotFilter, SnapshotRecord, Store, StoreError, VolumeFilter};

/// What the executor manages.
#[derive(Debug, Clone)]
pub struct NodeSettings {
    pub node_id: String,
    pub vg: String,
    pub thin_pool: Option<String>,
    /// Remove LVs tagged by lvsnap that no record claims.
    pub reap_orphans: bool,
    /// Full resync period (a safety net behind change notifications).
    pub resync: Duration,
}

/// The node executor: one per node; clone freely.
#[derive(Clone)]
pub struct Executor {
    pub(super) store: Arc<dyn Store>,
    pub(super) quota: QuotaEngine,
    pub(super) lvm: Lvm,
    pub(super) host: Host,
    pub(super) settings: NodeSettings,
    lvm_version: Arc<tokio::sync::OnceCell<String>>,
    /// Records being worked, and whether they changed meanwhile.
    inflight: Arc<Mutex<HashMap<(Kind, String), bool>>>,
    events: Arc<dyn EventSink>,
}

/// gRPC code names recorded for LVM failures.
pub(super) fn code_of(e: &LvmError) -> &'static str {
    match e.kind() {
        ErrorKind::NotFound => "NOT_FOUND",
        ErrorKind::AlreadyExists => "ALREADY_EXISTS",
        ErrorKind::InsufficientSpace => "RESOURCE_EXHAUSTED",
        ErrorKind::Busy => "FAILED_PRECONDITION",
        ErrorKind::InvalidArgument => "INVALID_ARGUMENT",
        ErrorKind::Other => "INTERNAL",
    }
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
        Self {
            store,
            quota,
            lvm,
            settings,
            host: Host::default(),
            lvm_version: Arc::default(),
            inflight: Arc::default(),
            events: Arc::new(LogOnly),
        }
    }

    /// Sends the lifecycle notifications to `events` (Kubernetes Events).
    pub fn with_events(mut self, events: Arc<dyn EventSink>) -> Self {
        self.events = events;
        self
    }

    /// Logs a lifecycle notification and hands it to the event sink.
    pub(super) async fn notify(&self, kind: Kind, id: &str, phase: Phase, note: String) {
        let event = RecordEvent {
            kind,
            id: id.to_string(),
            phase,
            note,
        };
        let name = event.name();
        if phase.is_error() {
            tracing::error!(event = %name, record = %id, note = %event.note, "{}", phase.suffix());
        } else {
            tracing::info!(event = %name, record = %id, note = %event.note, "{}", phase.suffix());
        }
        self.events.emit(event).await;
    }

    /// Runs until the task is dropped: settle, then follow changes, with a
    /// periodic resync and capacity report.
    pub async fn run(self) {
        let mut changes = self.store.subscribe();
        self.settle().await;
        let mut tick = tokio::time::interval(self.settings.resync);
        tick.tick().await;
        loop {
            tokio::select! {
                change = changes.recv() => match change {
                    Ok(c) if c.node.as_deref() == Some(self.settings.node_id.as_str())
                        && matches!(c.kind, Kind::Volume | Kind::Snapshot) => self.spawn(c.kind, c.name),
                    Ok(_) => {}
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "missed record notifications; resyncing");
                        self.resync().await;
                    }
                    Err(RecvError::Closed) => return,
                },
                _ = tick.tick() => {
                    self.resync().await;
                    self.report_capacity().await;
                }
            }
        }
    }

    /// Works one record in the background unless it is already being worked.
    /// Works the record on its own task. A change arriving while the record
    /// is being worked is not dropped: the task works it once more when done
    /// (a `deleting` seen mid-create would otherwise wait for the resync).
    fn spawn(&self, kind: Kind, name: String) {
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
                let result = match kind {
                    Kind::Snapshot => this.work_snapshot(&name).await,
                    Kind::Volume => this.work_volume(&name).await,
                    _ => Ok(()),
                };
                if let Err(e) = result {
                    tracing::error!(kind = kind.as_str(), id = %name, error = %e, "reconcile failed; will retry on resync");
                }
                let again = match this.inflight.lock() {
                    Ok(mut map) => match map.get_mut(&key) {
                        Some(again) if *again => {
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
            this.report_capacity().await;
        });
    }

    async fn resync(&self) {
        let node = Some(self.settings.node_id.clone());
        if let Ok(vols) = self
            .store
            .list_volumes(
                &VolumeFilter {
                    node: node.clone(),
                    ..Default::default()
                },
                None,
                usize::MAX,
            )
            .await
        {
            for v in vols.into_iter().filter(|v| {
                matches!(
                    v.status.status,
                    VolumeState::Creating | VolumeState::Deleting
                )
            }) {
                self.spawn(Kind::Volume, v.name);
            }
        }
        if let Ok(snaps) = self
            .store
            .list_snapshots(
                &SnapshotFilter {
                    node,
                    ..Default::default()
                },
                None,
                usize::MAX,
            )
            .await
        {
            for s in snaps.into_iter().filter(|s| {
                matches!(
                    s.status.status,
                    SnapshotState::Creating | SnapshotState::Deleting
                )
            }) {
                self.spawn(Kind::Snapshot, s.name);
            }
        }
    }

    /// On start: resume unfinished work, mark records whose LV vanished as
    /// `error`, report (and with `reap_orphans` remove) LVs no record claims.
    pub async fn settle(&self) {
        self.report_capacity().await;
        let node = Some(self.settings.node_id.clone());
        let lvs = match self.lvm.lvs(&self.settings.vg).await {
            Ok(lvs) => lvs,
            Err(e) => {
                tracing::error!(error = %e, "cannot list LVs; settling skipped");
                return;
            }
        };
        let lv_names: HashSet<String> = lvs.iter().map(|l| l.name.as_str().to_string()).collect();
        let mut claimed: HashSet<String> = HashSet::new();
        let vols = self
            .store
            .list_volumes(
                &VolumeFilter {
                    node: node.clone(),
                    ..Default::default()
                },
                None,
                usize::MAX,
            )
            .await
            .unwrap_or_default();
        for v in vols {
            claimed.insert(v.name.clone());
            if v.status.status == VolumeState::Available && !lv_names.contains(&v.spec.lv_name) {
                let msg = format!("LV {} vanished", v.spec.lv_name);
                let _ = self
                    .set_volume(&v.name, |s| {
                        s.status = VolumeState::Error;
                        s.error_code = Some("NOT_FOUND".into());
                        s.error_message = Some(msg.clone());
                    })
                    .await;
            }
        }
        let snaps = self
            .store
            .list_snapshots(
                &SnapshotFilter {
                    node,
                    ..Default::default()
                },
                None,
                usize::MAX,
            )
            .await
            .unwrap_or_default();
        for s in snaps {
            claimed.insert(s.name.clone());
            if s.status.status == SnapshotState::Available && !lv_names.contains(&s.spec.lv_name) {
                let msg = format!("LV {} vanished", s.spec.lv_name);
                let _ = self
                    .set_snapshot(&s.name, |st| {
                        st.status = SnapshotState::Error;
                        st.ready_to_use = false;
                        st.error_code = Some("NOT_FOUND".into());
                        st.error_message = Some(msg.clone());
                    })
                    .await;
            }
        }
        for lv in &lvs {
            for id in lv.record_ids() {
                if !claimed.contains(&id.to_string()) {
                    if self.settings.reap_orphans {
                        tracing::warn!(lv = %lv.name.as_str(), record = %id, "removing orphan LV (--reap-orphans)");
                        if let Err(e) = self.lvm.remove(&self.settings.vg, &lv.name).await {
                            tracing::error!(lv = %lv.name.as_str(), error = %e, "orphan removal failed");
                        }
                    } else {
                        tracing::warn!(lv = %lv.name.as_str(), record = %id, "LV tagged by lvsnap has no record (left alone; --reap-orphans removes it)");
                    }
                }
            }
        }
        self.resync().await;
    }

    /// Writes this node's capacity into its LvmNode record.
    pub async fn report_capacity(&self) {
        let vg = match self.lvm.vg(&self.settings.vg).await {
            Ok(vg) => vg,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the volume group");
                return;
            }
        };
        // lvm2's version does not change under a running node: asked once.
        let version = self
            .lvm_version
            .get_or_try_init(|| self.lvm.version())
            .await
            .cloned()
            .unwrap_or_default();
        let record = Record::new(
            self.settings.node_id.clone(),
            LvmNodeSpec {
                vg: self.settings.vg.clone(),
                thin_pool: self.settings.thin_pool.clone(),
            },
            LvmNodeStatus {
                size_bytes: i64::try_from(vg.size_bytes).unwrap_or(i64::MAX),
                free_bytes: i64::try_from(vg.free_bytes).unwrap_or(i64::MAX),
                extent_size_bytes: i64::try_from(vg.extent_size_bytes).unwrap_or(i64::MAX),
                lvm_version: version,
                last_heartbeat: now_rfc3339(),
            },
        );
        if let Err(e) = self.store.put_node(&record).await {
            tracing::warn!(error = %e, "cannot report capacity");
        }
    }

    #[tracing::instrument(skip(self), fields(node = %self.settings.node_id))]
    async fn work_snapshot(&self, id: &str) -> Result<(), StoreError> {
        let Some(r) = self.store.get_snapshot(id).await? else {
            return Ok(());
        };
        if r.spec.node != self.settings.node_id || r.status.deleted {
            return Ok(());
        }
        match r.status.status {
            SnapshotState::Creating => self.cut_snapshot(r).await,
            SnapshotState::Deleting => self.remove_snapshot(r).await,
            _ => Ok(()),
        }
    }

    async fn cut_snapshot(&self, r: SnapshotRecord) -> Result<(), StoreError> {
        self.notify(
            Kind::Snapshot,
            &r.name,
            Phase::CreateStart,
            format!(
                "lvcreate --snapshot {}/{} of volume {}",
                r.spec.vg, r.spec.lv_name, r.spec.source_volume_id
            ),
        )
        .await;
        let outcome = async {
            let tag = tag_for(&r.name).map_err(|m| ("INVALID_ARGUMENT", m))?;
            let name =
                LvName::new(&r.spec.lv_name).map_err(|e| ("INVALID_ARGUMENT", e.to_string()))?;
            let volume = self
                .store
                .get_volume(&r.spec.source_volume_id)
                .await
                .map_err(|e| ("UNAVAILABLE", e.to_string()))?;
            let origin = volume
                .map(|v| v.spec.lv_name)
                .ok_or(("NOT_FOUND", "volume device not found".to_string()))?;
            let origin = LvName::new(&origin).map_err(|e| ("INVALID_ARGUMENT", e.to_string()))?;
            // create_snapshot looks the origin up itself (one `lvs`, not two).
            let cow = r.spec.cow_size_bytes.and_then(|b| u64::try_from(b).ok());
            self.lvm
                .create_snapshot(&r.spec.vg, &origin, &name, cow, &[tag])
                .await
                .map_err(|e| match e.kind() {
                    ErrorKind::NotFound => ("NOT_FOUND", "volume device not found".to_string()),
                    _ => (code_of(&e), e.to_string()),
                })
        }
        .await;
        match outcome {
            Ok(lv) => {
                self.set_snapshot(&r.name, |s| {
                    s.status = SnapshotState::Available;
                    s.progress = "100%".into();
                    s.ready_to_use = true;
                    s.size_bytes = lv
                        .origin_size_bytes
                        .and_then(|b| i64::try_from(b).ok())
                        .unwrap_or(s.size_bytes);
                    s.error_code = None;
                    s.error_message = None;
                })
                .await?;
                self.notify(
                    Kind::Snapshot,
                    &r.name,
                    Phase::CreateEnd,
                    format!("{}/{} available", r.spec.vg, r.spec.lv_name),
                )
                .await;
            }
            Err((code, message)) => {
                self.notify(
                    Kind::Snapshot,
                    &r.name,
                    Phase::CreateError,
                    format!("{code}: {message}"),
                )
                .await;
                // Cinder: the record goes to error; its quota stays charged until delete.
                self.set_snapshot(&r.name, |s| {
                    s.status = SnapshotState::Error;
                    s.error_code = Some(code.to_string());
                    s.error_message = Some(message.clone());
                })
                .await?;
            }
        }
        Ok(())
    }

    /// Removes a record's LV (absent = done) and, once it is gone, releases
    /// exactly the quota the record charged (Cinder's negative reservation
    /// committed at once), with the delete.start / delete.error
    /// notifications. A failure comes back as (busy, code, message); the
    /// caller records the outcome.
    pub(super) async fn remove_and_release(
        &self,
        kind: Kind,
        id: &str,
        at: (&str, &str),
        project: &str,
        charged: &std::collections::BTreeMap<String, i64>,
    ) -> Result<(), (bool, &'static str, String)> {
        let (vg, lv_name) = at;
        self.notify(
            kind,
            id,
            Phase::DeleteStart,
            format!("lvremove {vg}/{lv_name}"),
        )
        .await;
        let removed = async {
            let name = LvName::new(lv_name)
                .map_err(|e| LvmError::new(ErrorKind::InvalidArgument, e.to_string()))?;
            self.lvm.remove(vg, &name).await
        }
        .await;
        if let Err(e) = removed {
            let (busy, code, msg) = (e.kind() == ErrorKind::Busy, code_of(&e), e.to_string());
            self.notify(kind, id, Phase::DeleteError, format!("{code}: {msg}"))
                .await;
            return Err((busy, code, msg));
        }
        let release = charged.iter().map(|(k, v)| (k.clone(), -v)).collect();
        if let Err(e) = self.quota.charge(project, &release).await {
            tracing::error!(record = %id, error = %e, "quota release failed; a recount will settle it");
        }
        Ok(())
    }

    async fn remove_snapshot(&self, r: SnapshotRecord) -> Result<(), StoreError> {
        let removed = self
            .remove_and_release(
                Kind::Snapshot,
                &r.name,
                (&r.spec.vg, &r.spec.lv_name),
                &r.spec.project,
                &r.spec.quota_charged,
            )
            .await;
        match removed {
            Ok(()) => {
                self.set_snapshot(&r.name, |s| {
                    s.status = SnapshotState::Deleted;
                    s.ready_to_use = false;
                    s.deleted = true;
                    s.deleted_at = Some(now_rfc3339());
                })
                .await?;
                self.notify(
                    Kind::Snapshot,
                    &r.name,
                    Phase::DeleteEnd,
                    "removed; quota released".into(),
                )
                .await;
            }
            Err((busy, code, msg)) => {
                self.set_snapshot(&r.name, |s| {
                    // Cinder: busy goes back to available; anything else is error_deleting.
                    s.status = if busy {
                        SnapshotState::Available
                    } else {
                        SnapshotState::ErrorDeleting
                    };
                    s.error_code = Some(code.to_string());
                    s.error_message = Some(msg.clone());
                })
                .await?;
            }
        }
        Ok(())
    }

    /// Read-modify-write of a snapshot's status, retried on conflicts.
    async fn set_snapshot(
        &self,
        id: &str,
        f: impl Fn(&mut crate::records::LvmSnapshotStatus),
    ) -> Result<(), StoreError> {
        for _ in 0..10 {
            let Some(mut r) = self.store.get_snapshot(id).await? else {
                return Ok(());
            };
            f(&mut r.status);
            match self.store.update_snapshot(&r).await {
                Err(StoreError::Conflict { .. }) => continue,
                other => return other.map(|_| ()),
            }
        }
        Err(StoreError::Conflict {
            kind: "snapshot",
            name: id.to_string(),
            version: String::new(),
        })
    }
}
