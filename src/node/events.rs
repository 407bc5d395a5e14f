//! Cinder's notifications (`snapshot.create.start`, `…create.end`,
//! `…delete.start`, `…delete.end`, and errors) as events on the record. The
//! executor emits them through an [`EventSink`]: in Kubernetes they become
//! Events on the LvmSnapshot/LvmVolume (`kubectl describe`), in all-in-one
//! they are log lines.
use async_trait::async_trait;

use crate::store::Kind;

/// The phase of a lifecycle notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    CreateStart,
    CreateEnd,
    CreateError,
    DeleteStart,
    DeleteEnd,
    DeleteError,
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
        }
    }

    /// The Event's action (what was attempted).
    pub fn action(self) -> &'static str {
        match self {
            Phase::CreateStart | Phase::CreateEnd | Phase::CreateError => "Create",
            _ => "Delete",
        }
    }

    pub fn is_error(self) -> bool {
        matches!(self, Phase::CreateError | Phase::DeleteError)
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
