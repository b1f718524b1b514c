//! `exec`, `attach` and `portforward`: the client's HTTP/1.1 upgrade request
//! (WebSocket or SPDY/3.1) is replayed to the kubelet with its upgrade headers;
//! the kubelet's answer comes back as is, and after a 101 both upgraded
//! connections are spliced byte for byte. Protocols are never interpreted here.

use std::sync::Mutex;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{header, HeaderName, Request, StatusCode};
use http_body_util::Empty;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::location::KubeletEndpoint;
use super::transport::{self, KubeletDialer};
use crate::apiserver::errors::ApiError;

use berth_api::streaming::UPGRADE_HEADERS as FORWARDED_HEADERS;

/// Headers of a non-101 kubelet answer that describe the kubelet connection, not the answer.
const HOP_BY_HOP: [HeaderName; 4] = [
    header::CONNECTION,
    header::TRANSFER_ENCODING,
    header::CONTENT_LENGTH,
    HeaderName::from_static("keep-alive"),
];

/// How much of a refusal's body is relayed.
const MAX_REFUSAL_BYTES: usize = 1024 * 1024;

/// Whether a request asks for a protocol upgrade (`Connection: Upgrade`), as
/// Go's `httpstream.IsUpgradeRequest` checks.
pub fn is_upgrade_request<B>(request: &Request<B>) -> bool {
    request
        .headers()
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
        && request.extensions().get::<OnUpgrade>().is_some()
}

/// The spliced sessions of one server: owned here, stopped on shutdown.
#[derive(Default)]
pub struct Sessions {
    tasks: Mutex<JoinSet<()>>,
    cancel: CancellationToken,
}

impl Sessions {
    fn spawn(&self, splice: impl std::future::Future<Output = ()> + Send + 'static) {
        let cancel = self.cancel.clone();
        let mut tasks = self.tasks.lock().expect("sessions lock poisoned");
        while tasks.try_join_next().is_some() {}
        tasks.spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = splice => {}
            }
        });
    }

    /// Ends every session and waits for them.
    pub async fn shutdown(&self) {
        self.cancel.cancel();
        let mut tasks = std::mem::take(&mut *self.tasks.lock().expect("sessions lock poisoned"));
        while tasks.join_next().await.is_some() {}
    }
}

/// Replays `request` to the kubelet at `path_and_query` and relays its answer;
/// after a 101 the two connections are spliced in a task of `sessions`.
pub async fn relay(
    dialer: &KubeletDialer,
    sessions: &Sessions,
    endpoint: &KubeletEndpoint,
    path_and_query: &str,
    mut request: Request<Body>,
) -> Result<Response, ApiError> {
    let (mut sender, connection) = dialer
        .connect(endpoint)
        .await
        .map_err(|e| transport::dial_failure(format!("error dialing backend: {e}")))?;
    let mut connection = Box::pin(connection.with_upgrades());
    let mut outgoing = Request::builder()
        .method(request.method().clone())
        .uri(path_and_query)
        .header(header::HOST, endpoint.authority());
    for name in FORWARDED_HEADERS {
        for value in request.headers().get_all(name) {
            outgoing = outgoing.header(name, value.clone());
        }
    }
    let outgoing = outgoing
        .body(Empty::<Bytes>::new())
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let failed = |detail: String| {
        transport::dial_failure(format!("error proxying to the kubelet: {detail}"))
    };
    let (mut response, finished) = transport::exchange(&mut sender, &mut connection, outgoing)
        .await
        .map_err(failed)?;
    drop(sender);
    // Until it finishes, the connection must be polled for the body or the upgrade to arrive.
    let drive = async {
        if !finished {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "kubelet connection ended with error");
            }
        }
    };
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        // A refusal (e.g. of the WebSocket upgrade, which makes kubectl fall back to SPDY).
        let (mut parts, body) = response.into_parts();
        let (bytes, ()) = tokio::join!(transport::read_limited(body, MAX_REFUSAL_BYTES), drive);
        for name in HOP_BY_HOP {
            parts.headers.remove(name);
        }
        parts.extensions = Default::default();
        return Ok(Response::from_parts(parts, Body::from(bytes)));
    }
    let kubelet_upgrade = hyper::upgrade::on(&mut response);
    let ((), kubelet_io) = tokio::join!(drive, kubelet_upgrade);
    let kubelet_io = kubelet_io.map_err(|e| failed(e.to_string()))?;
    let client_upgrade = hyper::upgrade::on(&mut request);
    sessions.spawn(splice(client_upgrade, kubelet_io));
    let mut switching = Response::new(Body::empty());
    *switching.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    *switching.headers_mut() = response.headers().clone();
    for name in [header::CONTENT_LENGTH, header::TRANSFER_ENCODING] {
        switching.headers_mut().remove(name);
    }
    Ok(switching)
}

/// Copies bytes both ways until both sides are done.
async fn splice(client: OnUpgrade, kubelet: Upgraded) {
    let client = match client.await {
        Ok(io) => io,
        Err(e) => {
            tracing::debug!(error = %e, "client upgrade failed");
            return;
        }
    };
    let (mut client, mut kubelet) = (TokioIo::new(client), TokioIo::new(kubelet));
    match tokio::io::copy_bidirectional(&mut client, &mut kubelet).await {
        Ok((up, down)) => tracing::debug!(up, down, "streaming session ended"),
        Err(e) => tracing::debug!(error = %e, "streaming session ended with error"),
    }
}
