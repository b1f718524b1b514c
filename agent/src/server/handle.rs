//! Dispatches parsed kubelet API requests to their handlers and turns every
//! refusal into a plain-text response in one place. Finds pods in the
//! runtime by namespace and name; never changes them.

use std::sync::Arc;

use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use jiff::Timestamp;

use super::request::{NodeRequest, PodRef, RequestError};
use super::{container_logs, metrics, stats, stream, Splice};
use crate::metrics::KubeletMetrics;
use crate::runtime::{ContainerState, PodState, Runtime, RuntimeError, SandboxPhase};
use crate::stats::Collector;

/// Every response body the kubelet API sends.
pub(super) type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// A body of fixed bytes.
pub(super) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// Why a request gets an error status instead of what it asked for.
#[derive(Debug)]
pub(super) struct Refusal {
    pub status: StatusCode,
    pub message: String,
}

impl Refusal {
    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: message.into(),
        }
    }

    fn into_response(self) -> Response<Body> {
        let mut response = Response::new(full(format!("{}\n", self.message)));
        *response.status_mut() = self.status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response
    }
}

impl From<RequestError> for Refusal {
    fn from(error: RequestError) -> Self {
        let status = match &error {
            RequestError::NotFound(_) => StatusCode::NOT_FOUND,
            RequestError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            RequestError::BadRequest(_) => StatusCode::BAD_REQUEST,
        };
        Self {
            status,
            message: error.to_string(),
        }
    }
}

impl From<RuntimeError> for Refusal {
    fn from(error: RuntimeError) -> Self {
        Self::internal(error.to_string())
    }
}

/// What every request handler shares: the runtime, the collector of
/// resource usage (which remembers the previous CPU samples) and the
/// node's metrics.
pub(super) struct Handler {
    runtime: Arc<dyn Runtime>,
    stats: Collector,
    metrics: KubeletMetrics,
}

impl Handler {
    pub fn new(node_name: String, runtime: Arc<dyn Runtime>, metrics: KubeletMetrics) -> Self {
        Self {
            stats: Collector::new(node_name, Arc::clone(&runtime)),
            runtime,
            metrics,
        }
    }

    /// Answers one request; an upgraded one leaves its splice in `splice`.
    pub async fn handle(&self, request: Request<Incoming>, splice: &Splice) -> Response<Body> {
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let response = match self.route(request, splice).await {
            Ok(response) => response,
            Err(refusal) => {
                tracing::debug!(%method, %path, status = refusal.status.as_u16(), message = %refusal.message, "kubelet API refused a request");
                refusal.into_response()
            }
        };
        tracing::debug!(%method, %path, status = response.status().as_u16(), "kubelet API request");
        response
    }

    async fn route(
        &self,
        request: Request<Incoming>,
        splice: &Splice,
    ) -> Result<Response<Body>, Refusal> {
        let uri = request.uri();
        let parsed =
            NodeRequest::parse(request.method(), uri.path(), uri.query(), Timestamp::now())?;
        let Some(pod_ref) = parsed.pod() else {
            let accept = request
                .headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok());
            return match parsed {
                NodeRequest::Metrics => {
                    Ok(metrics::kubelet(self.runtime.as_ref(), &self.metrics, accept).await)
                }
                NodeRequest::MetricsCadvisor => {
                    metrics::cadvisor(self.runtime.as_ref(), &self.stats, accept).await
                }
                parsed => stats::serve(&self.stats, &parsed).await,
            };
        };
        let pod = find_pod(self.runtime.as_ref(), pod_ref).await?;
        match parsed {
            NodeRequest::ContainerLogs {
                container,
                previous,
                options,
                ..
            } => {
                let state = container_of(&pod, &container)?;
                container_logs::serve(&self.runtime, &pod, state, previous, options).await
            }
            parsed => {
                let stream_request = stream::stream_request(&pod, parsed)?;
                let url = self.runtime.streaming_url(&stream_request).await?;
                stream::serve(request, &stream_request, &url, splice).await
            }
        }
    }
}

/// The runtime's pod `pod` names: the running one when several share the
/// name (a pod re-created under the same name), else any.
pub(super) async fn find_pod(runtime: &dyn Runtime, pod: &PodRef) -> Result<PodState, Refusal> {
    let mut candidates: Vec<PodState> = runtime
        .list_pods()
        .await?
        .into_iter()
        .filter(|p| p.namespace == pod.namespace && p.name == pod.name)
        .filter(|p| pod.uid.as_ref().is_none_or(|uid| &p.uid == uid))
        .collect();
    let running = candidates
        .iter()
        .position(|p| p.phase == SandboxPhase::Running);
    match running {
        Some(at) => Ok(candidates.swap_remove(at)),
        None => candidates.pop().ok_or_else(|| {
            Refusal::not_found(format!(
                "pod {:?} not found in namespace {:?} on this node",
                pod.name, pod.namespace
            ))
        }),
    }
}

/// The state of `pod`'s container `name` (regular containers first, as logs
/// look them up).
pub(super) fn container_of<'a>(
    pod: &'a PodState,
    name: &str,
) -> Result<&'a ContainerState, Refusal> {
    pod.containers
        .iter()
        .chain(&pod.init_containers)
        .find(|c| c.name == name)
        .ok_or_else(|| {
            Refusal::not_found(format!(
                "container {name:?} not found in pod {:?}",
                pod.name
            ))
        })
}
