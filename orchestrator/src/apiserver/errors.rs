//! Every failure the API can return, and the one place that turns it into a
//! Kubernetes `metav1.Status` so kubectl prints the upstream wording.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::{json, Value};

use crate::store::StoreError;

pub use berth_api::field::FieldCause;

/// What the resource an error is about is called, for messages and `details`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Target {
    /// Group, empty for core.
    pub group: String,
    /// Plural resource name, e.g. `deployments`.
    pub resource: String,
    /// Kind, e.g. `Deployment` (for Invalid messages).
    pub kind: String,
    /// Object name, when known.
    pub name: String,
}

impl Target {
    /// `deployments.apps` or `pods`: how upstream names a resource in messages.
    pub fn qualified_resource(&self) -> String {
        if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }

    /// `Deployment.apps` or `Pod`: how upstream names a kind in Invalid messages.
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }
}

impl ApiError {
    /// Upstream's `NewForbidden`: `pods "web" is forbidden: <why>` (or
    /// `pods is forbidden: <why>` before the object has a name).
    pub fn forbidden(target: &Target, why: impl std::fmt::Display) -> Self {
        if target.name.is_empty() {
            ApiError::Forbidden(format!(
                "{} is forbidden: {why}",
                target.qualified_resource()
            ))
        } else {
            ApiError::Forbidden(format!(
                "{} \"{}\" is forbidden: {why}",
                target.qualified_resource(),
                target.name
            ))
        }
    }
}

/// A server-side apply conflict: upstream's message and one cause per field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyConflict {
    /// What it is about.
    pub target: Target,
    /// `Apply failed with N conflict(s): …`.
    pub message: String,
    /// `(cause message, field path)` per conflicting field.
    pub conflicts: Vec<(String, String)>,
}

/// A failed API request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 404 for a missing object.
    #[error("{} \"{}\" not found", .0.qualified_resource(), .0.name)]
    NotFound(Target),
    /// 404 for a path that names no resource.
    #[error("the server could not find the requested resource")]
    UnknownPath,
    /// 409 on create of an existing object.
    #[error("{} \"{}\" already exists", .0.qualified_resource(), .0.name)]
    AlreadyExists(Target),
    /// 409 when the update was based on a stale resourceVersion.
    #[error("Operation cannot be fulfilled on {} \"{}\": {}", .0.qualified_resource(), .0.name, .1)]
    Conflict(Target, String),
    /// 409 when a server-side apply would take fields other managers own.
    #[error("{}", .0.message)]
    ApplyConflict(Box<ApplyConflict>),
    /// 422 with per-field causes.
    #[error("{} \"{}\" is invalid: {}", .0.qualified_kind(), .0.name, join_causes(.1))]
    Invalid(Target, Vec<FieldCause>),
    /// 400 for a body or query that cannot be understood.
    #[error("{0}")]
    BadRequest(String),
    /// 405 for a verb the resource does not support.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 406 when no acceptable response encoding exists.
    #[error("{0}")]
    NotAcceptable(String),
    /// 413 for bodies over the limit.
    #[error("the request body is too large (limit {0} bytes)")]
    TooLarge(usize),
    /// 415 for request encodings we cannot read.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 403 when the request is understood but refused.
    #[error("{0}")]
    Forbidden(String),
    /// 401 without valid credentials.
    #[error("Unauthorized")]
    Unauthorized,
    /// 410 when a watch or continue token refers to compacted history.
    #[error("{0}")]
    Expired(String),
    /// 500 for everything the client cannot fix.
    #[error("Internal error occurred: {0}")]
    Internal(String),
    /// 503 while the server cannot serve the request yet (e.g. an allocator range is full).
    #[error("{0}")]
    ServiceUnavailable(String),
    /// 429 when the server refuses for now and the client should retry (an
    /// eviction a PodDisruptionBudget blocks), with `(reason, message)` causes.
    #[error("{0}")]
    TooManyRequests(String, Vec<(&'static str, String)>),
    /// 504 when the server gave up retrying (upstream's `NewTimeoutError`),
    /// suggesting a retry after the given seconds.
    #[error("Timeout: {0}")]
    Timeout(String, u32),
    /// An answer from, or a failure on the way to, a node's kubelet API, passed
    /// on with its code; `reason` is empty where upstream reports none (e.g. a
    /// failed dial, which kubectl prints as `Error from server: MESSAGE`).
    #[error("{message}")]
    Backend {
        /// The HTTP code to answer with.
        code: StatusCode,
        /// The upstream reason, or empty.
        reason: &'static str,
        /// What the kubelet said, or why it could not be reached.
        message: String,
    },
}

fn join_causes(causes: &[FieldCause]) -> String {
    let parts: Vec<String> = causes
        .iter()
        .map(|c| {
            if c.field.is_empty() {
                c.message.clone()
            } else {
                format!("{}: {}", c.field, c.message)
            }
        })
        .collect();
    if parts.len() == 1 {
        parts[0].clone()
    } else {
        format!("[{}]", parts.join(", "))
    }
}

impl ApiError {
    /// The HTTP code and upstream `reason` for this error.
    pub fn code_and_reason(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::NotFound(_) | ApiError::UnknownPath => (StatusCode::NOT_FOUND, "NotFound"),
            ApiError::AlreadyExists(_) => (StatusCode::CONFLICT, "AlreadyExists"),
            ApiError::Conflict(..) | ApiError::ApplyConflict(_) => {
                (StatusCode::CONFLICT, "Conflict")
            }
            ApiError::Invalid(..) => (StatusCode::UNPROCESSABLE_ENTITY, "Invalid"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "BadRequest"),
            ApiError::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed"),
            ApiError::NotAcceptable(_) => (StatusCode::NOT_ACCEPTABLE, "NotAcceptable"),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "RequestEntityTooLarge"),
            ApiError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UnsupportedMediaType")
            }
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "Unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "Forbidden"),
            ApiError::Expired(_) => (StatusCode::GONE, "Expired"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "InternalError"),
            ApiError::ServiceUnavailable(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable")
            }
            ApiError::TooManyRequests(..) => (StatusCode::TOO_MANY_REQUESTS, "TooManyRequests"),
            ApiError::Timeout(..) => (StatusCode::GATEWAY_TIMEOUT, "Timeout"),
            ApiError::Backend { code, reason, .. } => (*code, reason),
        }
    }

    /// The `metav1.Status` body kubectl and client libraries parse.
    pub fn to_status(&self) -> Value {
        let (code, reason) = self.code_and_reason();
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": reason,
            "code": code.as_u16(),
        });
        let details = match self {
            ApiError::NotFound(t) | ApiError::AlreadyExists(t) | ApiError::Conflict(t, _) => {
                Some(target_details(t, &[]))
            }
            ApiError::ApplyConflict(conflict) => {
                let causes: Vec<FieldCause> = conflict
                    .conflicts
                    .iter()
                    .map(|(message, field)| FieldCause {
                        reason: "FieldManagerConflict",
                        field: field.clone(),
                        message: message.clone(),
                    })
                    .collect();
                Some(target_details(&conflict.target, &causes))
            }
            ApiError::Invalid(t, causes) => {
                // Upstream names the kind (not the resource) in Invalid details.
                let kind = Target {
                    resource: t.kind.clone(),
                    ..t.clone()
                };
                Some(target_details(&kind, causes))
            }
            ApiError::TooManyRequests(_, causes) => Some(json!({
                "causes": causes
                    .iter()
                    .map(|(reason, message)| json!({"reason": reason, "message": message}))
                    .collect::<Vec<_>>()
            })),
            ApiError::Timeout(_, retry_after) => Some(json!({"retryAfterSeconds": retry_after})),
            _ => None,
        };
        if let Some(details) = details {
            status["details"] = details;
        }
        if reason.is_empty() {
            // Upstream omits an unknown reason.
            if let Some(fields) = status.as_object_mut() {
                fields.remove("reason");
            }
        }
        status
    }
}

fn target_details(target: &Target, causes: &[FieldCause]) -> Value {
    let mut details = json!({ "name": target.name, "kind": target.resource });
    if !target.group.is_empty() {
        details["group"] = json!(target.group);
    }
    if !causes.is_empty() {
        details["causes"] = causes
            .iter()
            .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
            .collect();
    }
    details
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Compacted { requested, .. } => ApiError::Expired(format!(
                "The resourceVersion for the provided watch is too old (requested {requested})."
            )),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, _) = self.code_and_reason();
        if code.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let body = serde_json::to_vec(&self.to_status()).unwrap_or_default();
        (
            code,
            [(http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(name: &str) -> Target {
        Target {
            group: "apps".into(),
            resource: "deployments".into(),
            kind: "Deployment".into(),
            name: name.into(),
        }
    }

    #[test]
    fn messages_match_upstream_wording() {
        let cases = [
            (ApiError::NotFound(deployment("web")), "deployments.apps \"web\" not found"),
            (
                ApiError::AlreadyExists(deployment("web")),
                "deployments.apps \"web\" already exists",
            ),
            (
                ApiError::Conflict(deployment("web"), "the object has been modified; please apply your changes to the latest version and try again".into()),
                "Operation cannot be fulfilled on deployments.apps \"web\": the object has been modified; please apply your changes to the latest version and try again",
            ),
            (
                ApiError::Invalid(
                    deployment("web"),
                    vec![FieldCause::invalid("spec.replicas", &json!(-1), "must be greater than or equal to 0")],
                ),
                "Deployment.apps \"web\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0",
            ),
        ];
        for (error, message) in cases {
            assert_eq!(error.to_string(), message);
            assert_eq!(error.to_status()["message"], message);
        }
    }

    #[test]
    fn kubelet_failures_keep_their_code_and_omit_an_unknown_reason() {
        let dial = ApiError::Backend {
            code: StatusCode::INTERNAL_SERVER_ERROR,
            reason: "",
            message: "error dialing backend: dial tcp 10.0.0.5:10250: connect: connection refused"
                .into(),
        };
        let status = dial.to_status();
        assert_eq!(status["code"], 500);
        assert_eq!(
            status["message"],
            "error dialing backend: dial tcp 10.0.0.5:10250: connect: connection refused"
        );
        assert!(status.get("reason").is_none());
        let refused = ApiError::Backend {
            code: StatusCode::BAD_REQUEST,
            reason: "BadRequest",
            message: "container \"app\" in pod \"web\" is waiting to start: ContainerCreating"
                .into(),
        };
        assert_eq!(refused.to_status()["reason"], "BadRequest");
        assert_eq!(refused.code_and_reason().0, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn invalid_status_lists_each_cause() {
        let error = ApiError::Invalid(
            deployment("web"),
            vec![
                FieldCause::required("spec.selector", ""),
                FieldCause::invalid("metadata.name", &json!("Web"), "bad"),
            ],
        );
        let status = error.to_status();
        assert_eq!(status["code"], 422);
        assert_eq!(status["reason"], "Invalid");
        assert_eq!(status["details"]["causes"].as_array().unwrap().len(), 2);
        assert_eq!(
            status["details"]["causes"][0]["reason"],
            "FieldValueRequired"
        );
        assert_eq!(status["details"]["group"], "apps");
    }
}
