//! `GET pods/NAME/log`: one GET to the kubelet's `/containerLogs/...`, whose
//! body is passed on frame by frame (never collected: `follow` streams last as
//! long as the client stays). A kubelet error becomes a `Status` with its code.

use axum::body::Body;
use axum::response::Response;
use http::{header, StatusCode};

use super::location::KubeletEndpoint;
use super::transport::{self, KubeletDialer, StreamedBody};
use crate::apiserver::errors::ApiError;

/// How much of a kubelet's error body becomes the message (upstream's `maxReadLength`).
const MAX_ERROR_BYTES: usize = 50_000;

/// No log at all: upstream's answer for a pod no node runs yet (its
/// `LocationStreamer` has no location and answers 204 No Content).
pub fn empty() -> Response {
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Body::empty())
        .expect("static response")
}

/// Streams the kubelet's answer to `GET path_and_query`.
pub async fn stream(
    dialer: &KubeletDialer,
    endpoint: &KubeletEndpoint,
    path_and_query: &str,
) -> Result<Response, ApiError> {
    let (response, connection) = transport::get(dialer, endpoint, path_and_query).await?;
    let status = response.status();
    if !(200..=206).contains(&status.as_u16()) {
        let text = transport::read_driven(response.into_body(), connection, MAX_ERROR_BYTES).await;
        return Err(ApiError::Backend {
            code: status,
            reason: transport::reason_for(status),
            message: String::from_utf8_lossy(&text).trim_end().to_owned(),
        });
    }
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain")
        .header(header::CACHE_CONTROL, "no-cache, private")
        .body(Body::new(StreamedBody::new(
            connection,
            response.into_body(),
        )))
        .map_err(|e| ApiError::Internal(e.to_string()))
}
