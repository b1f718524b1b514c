//! Content negotiation: which encoding a client sent and which it accepts
//! (JSON, YAML, or a server-side Table), decided once per request.

use axum::response::{IntoResponse, Response};
use http::{header, HeaderMap, StatusCode};
use serde_json::Value;

use berth_api::protobuf::{self, ProtobufError};

use super::errors::ApiError;

/// The largest request body accepted (kube-apiserver's default is 3 MiB).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// How the client wants objects rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rendering {
    /// Plain JSON objects.
    Json,
    /// YAML objects.
    Yaml,
    /// `meta.k8s.io/v1` Table (kubectl get).
    Table,
    /// Kubernetes protobuf (`application/vnd.kubernetes.protobuf`), for built-in kinds;
    /// kinds without a protobuf definition fall back to JSON.
    Protobuf,
    /// Only the objects' metadata, as `meta.k8s.io/v1` PartialObjectMetadata(List)
    /// (metadata informers, garbage collectors, the Python dynamic client), in
    /// protobuf or JSON; custom resources get it too.
    PartialMetadata {
        /// Protobuf rather than JSON.
        protobuf: bool,
    },
}

impl Rendering {
    /// Whether the body goes out in Kubernetes protobuf.
    pub fn is_protobuf(self) -> bool {
        matches!(
            self,
            Rendering::Protobuf | Rendering::PartialMetadata { protobuf: true }
        )
    }
}

/// Whether media-type parameters ask for `meta.k8s.io/v1` PartialObjectMetadata or its list.
fn asks_partial_metadata(params: &[&str]) -> bool {
    let group = params.contains(&"g=meta.k8s.io");
    let version = params.contains(&"v=v1");
    let partial = params.iter().any(|p| {
        matches!(
            *p,
            "as=PartialObjectMetadata" | "as=PartialObjectMetadataList"
        )
    });
    group && version && partial
}

/// An object's metadata alone, as upstream answers metadata-only requests.
pub fn partial_object(obj: &Value) -> Value {
    serde_json::json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| serde_json::json!({})),
    })
}

/// `value` as a metadata-only answer: a list becomes PartialObjectMetadataList,
/// an object PartialObjectMetadata; a Status stays as it is.
pub fn partial(value: &Value) -> Value {
    let kind = value.get("kind").and_then(Value::as_str).unwrap_or("");
    if kind == "Status" {
        return value.clone();
    }
    match value.get("items").and_then(Value::as_array) {
        Some(items) if kind.ends_with("List") => serde_json::json!({
            "kind": "PartialObjectMetadataList",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": value.get("metadata").cloned().unwrap_or_else(|| serde_json::json!({})),
            "items": items.iter().map(partial_object).collect::<Vec<_>>(),
        }),
        _ => partial_object(value),
    }
}

/// Reads the `Accept` header, preferring the first acceptable media type.
pub fn rendering(headers: &HeaderMap) -> Rendering {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    for media in accept.split(',') {
        let mut params = media.split(';').map(str::trim);
        let mime = params.next().unwrap_or("");
        let params: Vec<&str> = params.collect();
        match mime {
            "application/json" | "*/*" | "application/*" => {
                if params.contains(&"as=Table") {
                    return Rendering::Table;
                }
                if asks_partial_metadata(&params) {
                    return Rendering::PartialMetadata { protobuf: false };
                }
                if params.iter().any(|p| p.starts_with("as=")) {
                    continue;
                }
                return Rendering::Json;
            }
            "application/vnd.kubernetes.protobuf" => {
                if asks_partial_metadata(&params) {
                    return Rendering::PartialMetadata { protobuf: true };
                }
                if params.iter().any(|p| p.starts_with("as=")) {
                    continue;
                }
                return Rendering::Protobuf;
            }
            "application/yaml" => {
                if params.iter().any(|p| p.starts_with("as=")) {
                    continue;
                }
                return Rendering::Yaml;
            }
            _ => continue,
        }
    }
    Rendering::Json
}

/// Decodes a request body by its `Content-Type` into JSON.
pub fn decode_body(headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::TooLarge(MAX_BODY_BYTES));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let mime = content_type.split(';').next().unwrap_or("").trim();
    match mime {
        "application/json"
        | "application/merge-patch+json"
        | "application/strategic-merge-patch+json"
        | "application/json-patch+json"
        | "" => serde_json::from_slice(body).map_err(|e| {
            ApiError::BadRequest(format!("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml: {e}"))
        }),
        protobuf::CONTENT_TYPE => protobuf::decode_object(body).map_err(|e| match e {
            ProtobufError::UnknownKind { .. } => ApiError::UnsupportedMediaType(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml".into(),
            ),
            other => ApiError::BadRequest(format!("the protobuf body could not be decoded: {other}")),
        }),
        "application/yaml" | "application/apply-patch+yaml" => {
            serde_yaml::from_slice::<Value>(body).map_err(|e| {
                ApiError::BadRequest(format!("error converting YAML to JSON: {e}"))
            })
        }
        other => Err(ApiError::UnsupportedMediaType(format!(
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (got {other})"
        ))),
    }
}

/// Writes a JSON value with the status code, as JSON, YAML or protobuf per the request.
pub fn respond(status: StatusCode, rendering: Rendering, value: &Value) -> Response {
    match rendering {
        Rendering::PartialMetadata { protobuf } => {
            let inner = if protobuf {
                Rendering::Protobuf
            } else {
                Rendering::Json
            };
            respond(status, inner, &partial(value))
        }
        Rendering::Protobuf => match protobuf::encode_object(value) {
            Ok(bytes) => (
                status,
                [(header::CONTENT_TYPE, protobuf::CONTENT_TYPE)],
                bytes,
            )
                .into_response(),
            Err(ProtobufError::UnknownKind { .. }) => json_response(status, value),
            Err(e) => ApiError::Internal(format!("encoding protobuf: {e}")).into_response(),
        },
        Rendering::Yaml => match serde_yaml::to_string(value) {
            Ok(text) => {
                (status, [(header::CONTENT_TYPE, "application/yaml")], text).into_response()
            }
            Err(e) => ApiError::Internal(e.to_string()).into_response(),
        },
        _ => json_response(status, value),
    }
}

/// Writes a JSON body.
pub fn json_response(status: StatusCode, value: &Value) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => (status, [(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => ApiError::Internal(e.to_string()).into_response(),
    }
}

#[cfg(test)]
mod partial_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lists_become_partial_metadata_lists_and_objects_partial_metadata() {
        let list = json!({"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "7"},
            "items": [{"metadata": {"name": "a", "labels": {"x": "y"}}, "spec": {"containers": []}}]});
        assert_eq!(
            partial(&list),
            json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
                "metadata": {"resourceVersion": "7"},
                "items": [{"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                    "metadata": {"name": "a", "labels": {"x": "y"}}}]})
        );
        let pod = &list["items"][0];
        assert_eq!(partial(pod)["kind"], "PartialObjectMetadata");
        assert!(partial(pod).get("spec").is_none());
        let status = json!({"kind": "Status", "code": 404});
        assert_eq!(partial(&status), status);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> Rendering {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, value.parse().unwrap());
        rendering(&headers)
    }

    #[test]
    fn kubectl_accept_headers_pick_the_right_rendering() {
        assert_eq!(
            accept("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"),
            Rendering::Table
        );
        assert_eq!(accept("application/json, */*"), Rendering::Json);
        assert_eq!(accept("application/yaml"), Rendering::Yaml);
        assert_eq!(
            accept("application/vnd.kubernetes.protobuf,application/json"),
            Rendering::Protobuf
        );
        assert_eq!(
            accept(
                "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io,application/json"
            ),
            Rendering::Json
        );
        assert_eq!(accept(""), Rendering::Json);
        assert_eq!(
            accept(
                "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
            ),
            Rendering::PartialMetadata { protobuf: false }
        );
        assert_eq!(
            accept("application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"),
            Rendering::PartialMetadata { protobuf: true }
        );
    }
}
