//! events.k8s.io/v1 Events in the fake API server.
use bytes::Bytes;
use http::{Method, Response, StatusCode};
use serde_json::Value;

use super::{Body, FakeApiServer, respond, status};

pub(super) const PREFIX: &str = "/apis/events.k8s.io/v1/namespaces/";

impl FakeApiServer {
    /// events.k8s.io/v1 Events: POST (validated like the API server's
    /// required fields) and PATCH (a repeated event becoming a series).
    pub(super) fn event(&self, method: &Method, rest: &str, body: &Bytes) -> Response<Body> {
        let obj: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => return status(StatusCode::BAD_REQUEST, "BadRequest", e.to_string()),
        };
        let segs: Vec<&str> = rest.split('/').collect();
        let Ok(mut s) = self.state.lock() else {
            return status(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "poisoned".into(),
            );
        };
        match (method, segs.as_slice()) {
            (&Method::POST, [ns, "events"]) => {
                let required = [
                    "eventTime",
                    "reportingController",
                    "reportingInstance",
                    "action",
                    "reason",
                    "regarding",
                ];
                if let Some(missing) = required.iter().find(|k| obj[**k].is_null()) {
                    return status(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "Invalid",
                        format!("{missing}: Required value"),
                    );
                }
                if !matches!(obj["type"].as_str(), Some("Normal" | "Warning")) {
                    return status(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "Invalid",
                        "type: Unsupported value".into(),
                    );
                }
                if obj["note"].as_str().is_some_and(|n| n.len() > 1024) {
                    return status(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "Invalid",
                        "note: Too long: may not be more than 1024 bytes".into(),
                    );
                }
                let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
                s.rv += 1;
                s.objects
                    .insert(("events".into(), format!("{ns}/{name}")), obj.clone());
                respond(StatusCode::CREATED, &obj)
            }
            (&Method::PATCH, [ns, "events", name]) => {
                let key = ("events".to_string(), format!("{ns}/{name}"));
                match s.objects.get_mut(&key) {
                    Some(stored) => {
                        if let (Some(m), Some(p)) = (stored.as_object_mut(), obj.as_object()) {
                            for (k, v) in p {
                                m.insert(k.clone(), v.clone());
                            }
                        }
                        respond(StatusCode::OK, stored)
                    }
                    None => status(
                        StatusCode::NOT_FOUND,
                        "NotFound",
                        format!("events \"{name}\" not found"),
                    ),
                }
            }
            _ => status(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                format!("{method} events {rest}"),
            ),
        }
    }

    /// Every Event posted so far.
    pub fn events(&self) -> Vec<Value> {
        self.state
            .lock()
            .map(|s| {
                s.objects
                    .iter()
                    .filter(|((p, _), _)| p == "events")
                    .map(|(_, v)| v.clone())
                    .collect()
            })
            .unwrap_or_default()
    }
}
