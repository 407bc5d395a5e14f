//! Kubernetes Events for the executor's notifications: `kubectl describe
//! lvssnapshot <id>` shows `CreateStart`, `CreateEnd`, `DeleteEnd`, … with
//! Cinder's notification name in the message. Cluster-scoped records get
//! their Events in the `default` namespace (kube's Recorder convention).
use async_trait::async_trait;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Api, Client, Resource};

use super::Kind;
use super::events::{EventSink, RecordEvent};
use crate::records::{LvsGroupSnapshot, LvsNode, LvsSnapshot, LvsVolume};

/// Publishes record events through the API server.
pub struct KubeEvents {
    client: Client,
    recorder: Recorder,
}

impl KubeEvents {
    /// `controller` names the reporting component (`lvsnap.io/node`,
    /// `lvsnap.io/controller`), `instance` the reporting instance (the node
    /// id, the controller replica).
    pub fn new(client: Client, controller: &str, instance: &str) -> Self {
        let reporter = Reporter {
            controller: controller.to_string(),
            instance: Some(instance.to_string()),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
        }
    }

    /// The record's reference (with its uid, which `kubectl describe` matches on).
    async fn reference(
        &self,
        kind: Kind,
        id: &str,
    ) -> Result<Option<ObjectReference>, kube::Error> {
        Ok(match kind {
            Kind::Snapshot => Api::<LvsSnapshot>::all(self.client.clone())
                .get_opt(id)
                .await?
                .map(|o| o.object_ref(&())),
            Kind::Volume => Api::<LvsVolume>::all(self.client.clone())
                .get_opt(id)
                .await?
                .map(|o| o.object_ref(&())),
            Kind::Node => Api::<LvsNode>::all(self.client.clone())
                .get_opt(id)
                .await?
                .map(|o| o.object_ref(&())),
            Kind::GroupSnapshot => Api::<LvsGroupSnapshot>::all(self.client.clone())
                .get_opt(id)
                .await?
                .map(|o| o.object_ref(&())),
            Kind::Quota => None,
        })
    }
}

/// An Event's note is at most 1 kB.
fn clip(note: &str) -> String {
    if note.len() <= 1000 {
        return note.to_string();
    }
    let mut end = 1000;
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &note[..end])
}

#[async_trait]
impl EventSink for KubeEvents {
    async fn emit(&self, event: RecordEvent) {
        let reference = match self.reference(event.kind, &event.id).await {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(record = %event.id, error = %e, "cannot read the record for its event");
                return;
            }
        };
        let ev = Event {
            type_: if event.phase.is_error() {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: event.phase.reason().into(),
            note: Some(clip(&format!("{}: {}", event.name(), event.note))),
            action: event.phase.action().into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, &reference).await {
            tracing::warn!(record = %event.id, error = %e, "cannot publish the event");
        }
    }
}
