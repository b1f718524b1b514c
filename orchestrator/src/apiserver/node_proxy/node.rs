//! `GET nodes/NAME/proxy/PATH`: one GET of `PATH` on the node's kubelet API
//! (`/stats/summary`, `/metrics/resource`, …), answered with the kubelet's
//! status, content type and body, as kube-apiserver's node proxy does for
//! reads. Also how the API server itself reads a node's metrics.

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{header, StatusCode};

use super::location::KubeletEndpoint;
use super::transport::{self, KubeletDialer};
use crate::apiserver::errors::ApiError;

/// The most of a kubelet's answer that is read.
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// A kubelet's whole answer to a GET.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Its status.
    pub status: StatusCode,
    /// Its content type, if it named one.
    pub content_type: Option<http::HeaderValue>,
    /// Its body.
    pub body: Bytes,
}

/// GETs `path_and_query` on the kubelet at `endpoint` and reads the answer.
pub async fn get(
    dialer: &KubeletDialer,
    endpoint: &KubeletEndpoint,
    path_and_query: &str,
) -> Result<Fetched, ApiError> {
    let (response, connection) = transport::get(dialer, endpoint, path_and_query).await?;
    let status = response.status();
    let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
    let body = transport::read_driven(response.into_body(), connection, MAX_BODY_BYTES).await;
    Ok(Fetched {
        status,
        content_type,
        body,
    })
}

/// The client's answer for a fetched kubelet response, passed through.
pub fn respond(fetched: Fetched) -> Result<Response, ApiError> {
    let mut builder = Response::builder().status(fetched.status);
    if let Some(content_type) = fetched.content_type {
        builder = builder.header(header::CONTENT_TYPE, content_type);
    }
    builder
        .body(Body::from(fetched.body))
        .map_err(|e| ApiError::Internal(e.to_string()))
}

/// The kubelet path of a `nodes/NAME/proxy/PATH` request URI path (with
/// `query` kept), or `None` when the URI is not of that shape.
pub fn kubelet_path(uri_path: &str, name: &str, query: Option<&str>) -> Option<String> {
    let marker = format!("/nodes/{name}/proxy/");
    let at = uri_path.find(&marker)?;
    let rest = &uri_path[at + marker.len() - 1..];
    Some(match query {
        Some(q) if !q.is_empty() => format!("{rest}?{q}"),
        _ => rest.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kubelet_path_follows_proxy() {
        let cases = [
            (
                "/api/v1/nodes/n1/proxy/stats/summary",
                None,
                Some("/stats/summary"),
            ),
            (
                "/api/v1/nodes/n1/proxy/metrics/resource",
                Some("a=1"),
                Some("/metrics/resource?a=1"),
            ),
            ("/api/v1/nodes/n1/status", None, None),
        ];
        for (path, query, want) in cases {
            assert_eq!(kubelet_path(path, "n1", query).as_deref(), want, "{path}");
        }
    }
}
