//! Cinder's notifications (`snapshot.create.start`, `…create.end`,
//! `…delete.start`, `…delete.end`, and errors) as events on the record, and
//! the failure paths' own (an orphan LV reaped, a failed create released, a
//! record whose node is gone). The executor and the controller emit them
//! through an [`EventSink`], a port below both: in Kubernetes they become
//! Events on the LvsSnapshot/LvsVolume/LvsNode (`kubectl describe`), in
//! all-in-one they are log lines.
use async_trait::async_trait;

use super::Kind;

/// The phase of a lifecycle notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    CreateStart,
    CreateEnd,
    CreateError,
    DeleteStart,
    DeleteEnd,
    DeleteError,
    /// An LV tagged by lvsnap that no record claims was removed (on the node).
    OrphanReaped,
    /// A failed create nobody asked for again was released (record, quota).
    FailedCreateReleased,
    /// The record's node is gone: the record was deleted and its quota
    /// released without removing the LV.
    LvAbandoned,
    /// A thick snapshot's copy-on-write area was extended (autoextend).
    CowExtended,
    /// Its COW area crossed the threshold and could not be extended.
    CowExtendFailed,
    /// LVM invalidated a thick snapshot (its COW area overflowed).
    SnapshotInvalidated,
    /// Volumes a group cut left frozen (the node died mid-cut, or a thaw
    /// failed) were thawed.
    Thawed,
}

impl Phase {
    /// Cinder's suffix: `create.start`, `delete.end`, …
    pub fn suffix(self) -> &'static str {
        match self {
            Phase::CreateStart => "create.start",
            Phase::CreateEnd => "create.end",
            Phase::CreateError => "create.error",
            Phase::DeleteStart => "delete.start",
            Phase::DeleteEnd => "delete.end",
            Phase::DeleteError => "delete.error",
            Phase::OrphanReaped => "orphan.reaped",
            Phase::FailedCreateReleased => "create.released",
            Phase::LvAbandoned => "delete.abandoned",
            Phase::CowExtended => "autoextend.end",
            Phase::CowExtendFailed => "autoextend.error",
            Phase::SnapshotInvalidated => "invalidated",
            Phase::Thawed => "thaw.recovered",
        }
    }

    /// A Kubernetes Event reason (PascalCase).
    pub fn reason(self) -> &'static str {
        match self {
            Phase::CreateStart => "CreateStart",
            Phase::CreateEnd => "CreateEnd",
            Phase::CreateError => "CreateError",
            Phase::DeleteStart => "DeleteStart",
            Phase::DeleteEnd => "DeleteEnd",
            Phase::DeleteError => "DeleteError",
            Phase::OrphanReaped => "OrphanReaped",
            Phase::FailedCreateReleased => "FailedCreateReleased",
            Phase::LvAbandoned => "LvNotRemoved",
            Phase::CowExtended => "CowExtended",
            Phase::CowExtendFailed => "CowExtendFailed",
            Phase::SnapshotInvalidated => "SnapshotInvalidated",
            Phase::Thawed => "ThawedAfterInterruptedCut",
        }
    }

    /// The Event's action (what was attempted).
    pub fn action(self) -> &'static str {
        match self {
            Phase::CreateStart | Phase::CreateEnd | Phase::CreateError => "Create",
            Phase::OrphanReaped => "Reap",
            Phase::FailedCreateReleased => "Release",
            Phase::CowExtended | Phase::CowExtendFailed => "Extend",
            Phase::SnapshotInvalidated => "Check",
            Phase::Thawed => "Thaw",
            _ => "Delete",
        }
    }

    pub fn is_error(self) -> bool {
        matches!(
            self,
            Phase::CreateError
                | Phase::DeleteError
                | Phase::OrphanReaped
                | Phase::LvAbandoned
                | Phase::CowExtendFailed
                | Phase::SnapshotInvalidated
                | Phase::Thawed
        )
    }
}

/// One notification about one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordEvent {
    pub kind: Kind,
    pub id: String,
    pub phase: Phase,
    /// Human-readable detail (the LV, the error message).
    pub note: String,
}

impl RecordEvent {
    /// `snapshot.create.start` and so on.
    pub fn name(&self) -> String {
        format!("{}.{}", self.kind.as_str(), self.phase.suffix())
    }
}

/// Logs a notification (failures as warnings) and hands it to `sink`.
pub async fn notify(sink: &dyn EventSink, kind: Kind, id: &str, phase: Phase, note: String) {
    let event = RecordEvent {
        kind,
        id: id.to_string(),
        phase,
        note,
    };
    let name = event.name();
    if phase.is_error() {
        tracing::warn!(event = %name, record = %id, note = %event.note, "{}", phase.suffix());
    } else {
        tracing::info!(event = %name, record = %id, note = %event.note, "{}", phase.suffix());
    }
    sink.emit(event).await;
}

/// Where the executor's notifications go. Emitting never fails the work:
/// a sink logs its own errors.
#[async_trait]
pub trait EventSink: Send + Sync {
    async fn emit(&self, event: RecordEvent);
}

/// all-in-one: notifications are log lines (the executor logs every event
/// anyway; this sink adds nothing).
#[derive(Debug, Default, Clone, Copy)]
pub struct LogOnly;

#[async_trait]
impl EventSink for LogOnly {
    async fn emit(&self, _event: RecordEvent) {}
}

/// Collects events in memory (tests).
#[derive(Debug, Default)]
pub struct Collect(pub std::sync::Mutex<Vec<RecordEvent>>);

#[async_trait]
impl EventSink for Collect {
    async fn emit(&self, event: RecordEvent) {
        if let Ok(mut v) = self.0.lock() {
            v.push(event);
        }
    }
}
