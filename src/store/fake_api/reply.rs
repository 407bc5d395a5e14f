//! Responses: JSON bodies and the `Status` objects the real API server
//! answers failures with (same codes, reasons and message shapes, so code
//! that matches on them behaves as it would against Kubernetes).
use std::convert::Infallible;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use serde_json::{Value, json};

use super::resources::ResourceInfo;

pub(super) type Body = BoxBody<Bytes, Infallible>;

/// A failed request, as the `Status` object the server answers with.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// The HTTP status code (404, 409, …).
    pub code: u16,
    /// The machine-readable reason (`NotFound`, `Conflict`, `AlreadyExists`, …).
    pub reason: String,
    /// The human-readable message, shaped like the real server's.
    pub message: String,
    details: Option<Value>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.code, self.reason, self.message)
    }
}

impl std::error::Error for Failure {}

impl Failure {
    pub(super) fn new(code: StatusCode, reason: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.as_u16(),
            reason: reason.to_string(),
            message: message.into(),
            details: None,
        }
    }

    fn about(mut self, info: &ResourceInfo, name: &str) -> Self {
        let mut d = json!({"group": info.group, "kind": info.plural});
        if !name.is_empty() {
            d["name"] = json!(name);
        }
        self.details = Some(d);
        self
    }

    /// The `Status` body.
    pub fn to_status(&self) -> Value {
        let mut v = json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": self.message, "reason": self.reason, "code": self.code,
        });
        if let Some(d) = &self.details {
            v["details"] = d.clone();
        }
        v
    }

    pub(super) fn into_response(self) -> Response<Body> {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        respond(code, &self.to_status())
    }

    pub(super) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    /// A path that names no registered resource (the real server's 404).
    pub(super) fn no_route() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    pub(super) fn not_found(info: &ResourceInfo, name: &str) -> Self {
        let gr = info.group_resource();
        Self::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("{gr} \"{name}\" not found"),
        )
        .about(info, name)
    }

    pub(super) fn already_exists(info: &ResourceInfo, name: &str) -> Self {
        let gr = info.group_resource();
        Self::new(
            StatusCode::CONFLICT,
            "AlreadyExists",
            format!("{gr} \"{name}\" already exists"),
        )
        .about(info, name)
    }

    /// A stale resourceVersion on a write.
    pub(super) fn conflict(info: &ResourceInfo, name: &str) -> Self {
        let gr = info.group_resource();
        Self::new(
            StatusCode::CONFLICT,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {gr} \"{name}\": the object has been modified; \
                 please apply your changes to the latest version and try again"
            ),
        )
        .about(info, name)
    }

    /// A failed delete precondition (`what` is `UID` or `ResourceVersion`).
    pub(super) fn precondition(
        info: &ResourceInfo,
        name: &str,
        what: &str,
        wanted: &str,
        have: &str,
    ) -> Self {
        let gr = info.group_resource();
        Self::new(
            StatusCode::CONFLICT,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {gr} \"{name}\": Precondition failed: \
                 {what} in precondition: {wanted}, {what} in object meta: {have}"
            ),
        )
        .about(info, name)
    }

    /// A validation failure: `field` and what is wrong with it.
    pub(super) fn invalid(info: &ResourceInfo, name: &str, field: &str, detail: &str) -> Self {
        let kind = match info.group.as_str() {
            "" => info.kind.clone(),
            g => format!("{}.{g}", info.kind),
        };
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            format!("{kind} \"{name}\" is invalid: {field}: {detail}"),
        )
        .about(info, name)
    }

    /// A resourceVersion or continue token older than the retained history.
    pub(super) fn expired(message: impl Into<String>) -> Self {
        Self::new(StatusCode::GONE, "Expired", message)
    }

    /// Query options that do not go together (the server's 422 on them).
    pub(super) fn invalid_options(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", message)
    }

    pub(super) fn unsupported_media(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            message,
        )
    }

    pub(super) fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", message)
    }

    pub(super) fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "the server is currently unable to handle the request",
        )
    }

    pub(super) fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", message)
    }

    /// The authorizer's refusal, worded as the real one words it
    /// (`resource` is `plural` or `plural/subresource`).
    pub(super) fn forbidden(
        group: &str,
        resource: &str,
        verb: &str,
        namespace: Option<&str>,
        name: Option<&str>,
        user: &str,
    ) -> Self {
        let plural = resource.split('/').next().unwrap_or(resource);
        let gr = match group {
            "" => plural.to_string(),
            g => format!("{plural}.{g}"),
        };
        let what = match name {
            Some(n) => format!("{gr} \"{n}\""),
            None => gr,
        };
        let scope = match namespace {
            Some(ns) => format!("in the namespace \"{ns}\""),
            None => "at the cluster scope".to_string(),
        };
        let mut f = Self::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!(
                "{what} is forbidden: User \"{user}\" cannot {verb} resource \"{resource}\" \
                 in API group \"{group}\" {scope}"
            ),
        );
        let mut d = json!({"group": group, "kind": plural});
        if let Some(n) = name {
            d["name"] = json!(n);
        }
        f.details = Some(d);
        f
    }
}

pub(super) fn respond(code: StatusCode, body: &Value) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())).boxed());
    *r.status_mut() = code;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}
