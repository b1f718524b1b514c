//! `GET /stats/summary` and `GET /metrics/resource`: the node's resource
//! usage, measured on each request (as kubelet serves its cached stats),
//! rendered by [`crate::stats`]. Reads only.

use http::{header, Response, StatusCode};

use super::handle::{full, Body, Refusal};
use super::request::NodeRequest;
use crate::stats::{resource_metrics, summary, Collector};

/// Answers one of the node's own stats paths.
pub(super) async fn serve(
    collector: &Collector,
    request: &NodeRequest,
) -> Result<Response<Body>, Refusal> {
    let (body, content_type) = match request {
        NodeRequest::StatsSummary => {
            let snapshot = collector.collect().await?;
            let json = serde_json::to_vec(&summary::render(&snapshot))
                .map_err(|e| Refusal::internal(e.to_string()))?;
            (json, "application/json")
        }
        NodeRequest::MetricsResource => {
            let text = match collector.collect().await {
                Ok(snapshot) => resource_metrics::render(&snapshot, false),
                Err(e) => {
                    tracing::warn!(error = %e, "measuring resource usage failed");
                    resource_metrics::render(&collector.empty(), true)
                }
            };
            (text.into_bytes(), resource_metrics::CONTENT_TYPE)
        }
        _ => return Err(Refusal::internal("not a stats request")),
    };
    let mut response = Response::new(full(body));
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    Ok(response)
}
