//! `GET /metrics` and `GET /metrics/cadvisor`: the node's Prometheus
//! metrics, measured on each scrape, in the format the scraper asks for.
//! Reads only.

use http::{header, Response};

use super::handle::{full, Body, Refusal};
use crate::metrics::{cadvisor, KubeletMetrics};
use crate::runtime::Runtime;
use crate::stats::Collector;

/// The kubelet's own metrics, with the running pod and container gauges
/// read from the runtime now.
pub(super) async fn kubelet(
    runtime: &dyn Runtime,
    metrics: &KubeletMetrics,
    accept: Option<&str>,
) -> Response<Body> {
    match runtime.list_pods().await {
        Ok(pods) => metrics.observe_pods(&pods),
        // The last counts stay; the runtime error is counted.
        Err(e) => tracing::warn!(error = %e, "listing pods for /metrics failed"),
    }
    respond(accept, metrics.registry().encode())
}

/// cAdvisor's container metrics from one measurement of the cgroups.
pub(super) async fn cadvisor(
    runtime: &dyn Runtime,
    collector: &Collector,
    accept: Option<&str>,
) -> Result<Response<Body>, Refusal> {
    let snapshot = collector.collect().await?;
    let pods = runtime.list_pods().await?;
    Ok(respond(
        accept,
        cadvisor::render(cadvisor::rows(&snapshot, &pods)),
    ))
}

fn respond(accept: Option<&str>, openmetrics: String) -> Response<Body> {
    let (content_type, body) =
        berth_observability::metrics::negotiate(accept.unwrap_or_default(), openmetrics);
    let mut response = Response::new(full(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response
}
