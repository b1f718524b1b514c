//! exec, attach and port-forward: the client's upgrade request is replayed
//! against the runtime's streaming server (CRI's URL, plain HTTP on
//! localhost) and, once both sides switch protocols, the two connections are
//! spliced byte for byte. The frames (SPDY or WebSocket) are never read here;
//! WebSocket clients the runtime cannot serve go to `websocket` instead.

use bytes::Bytes;
use futures::future::BoxFuture;
use http::{header, HeaderMap, HeaderName, Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Incoming;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;

use super::handle::{container_of, full, Body, Refusal};
use super::request::NodeRequest;
use super::Splice;
use crate::runtime::{ContainerStatus, PodState, SandboxPhase, StreamRequest};

use berth_api::streaming::UPGRADE_HEADERS as FORWARDED;

mod spdy;
mod websocket;

/// The most of a refusal's body relayed from the streaming server.
const MAX_REFUSAL_BODY: usize = 1024 * 1024;

/// The runtime's form of a stream request for `pod`, refused when its
/// container (or the pod) is not there to stream from.
pub(super) fn stream_request(
    pod: &PodState,
    request: NodeRequest,
) -> Result<StreamRequest, Refusal> {
    let running = |container: &str| -> Result<(), Refusal> {
        match container_of(pod, container)?.status {
            ContainerStatus::Running { .. } => Ok(()),
            _ => Err(Refusal::bad_request(format!(
                "container {container:?} in pod {:?} is not running",
                pod.name
            ))),
        }
    };
    let uid = pod.uid.clone();
    match request {
        NodeRequest::Exec {
            container,
            command,
            streams,
            ..
        } => {
            running(&container)?;
            Ok(StreamRequest::Exec {
                uid,
                container,
                command,
                tty: streams.tty,
                stdin: streams.stdin,
                stdout: streams.stdout,
                stderr: streams.stderr,
            })
        }
        NodeRequest::Attach {
            container, streams, ..
        } => {
            running(&container)?;
            Ok(StreamRequest::Attach {
                uid,
                container,
                tty: streams.tty,
                stdin: streams.stdin,
                stdout: streams.stdout,
                stderr: streams.stderr,
            })
        }
        NodeRequest::PortForward { ports, .. } => {
            if pod.phase != SandboxPhase::Running {
                return Err(Refusal::bad_request(format!(
                    "pod {:?} is not running",
                    pod.name
                )));
            }
            Ok(StreamRequest::PortForward { uid, ports })
        }
        NodeRequest::ContainerLogs { .. }
        | NodeRequest::StatsSummary
        | NodeRequest::MetricsResource
        | NodeRequest::Metrics
        | NodeRequest::MetricsCadvisor => Err(Refusal::internal(
            "only exec, attach and port-forward requests are streams",
        )),
    }
}

/// How the streaming server answered an upgrade request.
pub(super) enum Answer {
    /// Anything but `101 Switching Protocols`, ready to relay as it is.
    Refused(Response<Body>),
    /// `101 Switching Protocols`: its headers, and its connection once upgraded.
    Switched {
        headers: HeaderMap,
        upgraded: BoxFuture<'static, hyper::Result<Upgraded>>,
    },
}

/// Serves the stream `request` asks for (`stream_request`, whose URL on the
/// runtime's streaming server is `url`): WebSocket sessions the runtime
/// cannot serve are translated, everything else is relayed.
pub(super) async fn serve(
    request: Request<Incoming>,
    stream_request: &StreamRequest,
    url: &str,
    splice: &Splice,
) -> Result<Response<Body>, Refusal> {
    match websocket::handshake(request.headers(), stream_request) {
        Some(handshake) => websocket::serve(request, handshake, url, splice).await,
        None => relay(request, url, splice).await,
    }
}

/// Replays `request` against the streaming server at `url` and answers with
/// its response; on `101 Switching Protocols` leaves the splice of both
/// upgraded connections in `splice`, for the connection to run.
async fn relay(
    mut request: Request<Incoming>,
    url: &str,
    splice: &Splice,
) -> Result<Response<Body>, Refusal> {
    let mut headers = HeaderMap::new();
    for name in FORWARDED.map(HeaderName::from_static) {
        for value in request.headers().get_all(&name) {
            headers.append(&name, value.clone());
        }
    }
    let (switched, runtime_upgrade) = match upgrade(url, request.method().clone(), headers).await? {
        Answer::Refused(refused) => return Ok(refused),
        Answer::Switched { headers, upgraded } => (headers, upgraded),
    };
    let client_upgrade = hyper::upgrade::on(&mut request);
    let mut relayed = Response::new(full(Bytes::new()));
    *relayed.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    *relayed.headers_mut() = switched;
    let spliced = async move {
        let runtime_io = runtime_upgrade.await;
        let (client_io, runtime_io) = match (client_upgrade.await, runtime_io) {
            (Ok(client), Ok(runtime)) => (client, runtime),
            (client, runtime) => {
                tracing::debug!(client = ?client.err(), runtime = ?runtime.err(), "a stream upgrade failed");
                return;
            }
        };
        let (mut client_io, mut runtime_io) = (TokioIo::new(client_io), TokioIo::new(runtime_io));
        match tokio::io::copy_bidirectional(&mut client_io, &mut runtime_io).await {
            Ok((up, down)) => tracing::debug!(up, down, "stream closed"),
            Err(e) => tracing::debug!(error = %e, "stream ended with an error"),
        }
    };
    *crate::lock(splice) = Some(Box::pin(spliced));
    Ok(relayed)
}

/// Sends an upgrade request with `method` and `headers` to the streaming
/// server at `url` (a plain `http://` URL, as CRI runtimes hand out).
pub(super) async fn upgrade(
    url: &str,
    method: Method,
    headers: HeaderMap,
) -> Result<Answer, Refusal> {
    let target: Uri = url.parse().map_err(|e| {
        Refusal::internal(format!(
            "the runtime's streaming URL {url:?} does not parse: {e}"
        ))
    })?;
    let authority = match (target.scheme_str(), target.authority()) {
        (Some("http"), Some(authority)) => authority.clone(),
        _ => {
            return Err(Refusal::internal(format!(
                "the runtime's streaming URL {url:?} is not an http:// URL; only plain HTTP streaming servers are supported"
            )))
        }
    };
    let address = match authority.port_u16() {
        Some(_) => authority.as_str().to_owned(),
        None => format!("{}:80", authority.host()),
    };
    let unreachable = |e: &dyn std::fmt::Display| {
        Refusal::internal(format!("the runtime's streaming server at {address}: {e}"))
    };
    let tcp = tokio::net::TcpStream::connect(&address)
        .await
        .map_err(|e| unreachable(&e))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(tcp))
            .await
            .map_err(|e| unreachable(&e))?;
    let mut connection = Some(Box::pin(connection.with_upgrades()));

    let mut forwarded = Request::builder()
        .method(method)
        .uri(target.path_and_query().map_or("/", |p| p.as_str()))
        .header(header::HOST, authority.as_str());
    if let Some(all) = forwarded.headers_mut() {
        all.extend(headers);
    }
    let forwarded = forwarded
        .body(Empty::new())
        .map_err(|e| Refusal::internal(e.to_string()))?;

    // The connection must be driven for the response to arrive; it may also
    // finish first (an upgrade, a close) with the response already queued.
    let send = sender.send_request(forwarded);
    tokio::pin!(send);
    let driving = connection.as_mut().expect("connection not yet finished");
    let mut response = tokio::select! {
        biased;
        response = &mut send => response,
        ended = driving => {
            connection = None;
            ended.map_err(|e| unreachable(&e))?;
            send.await
        }
    }
    .map_err(|e| unreachable(&e))?;

    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        let (parts, body) = response.into_parts();
        let collect = Limited::new(body, MAX_REFUSAL_BODY).collect();
        tokio::pin!(collect);
        let collected = match connection {
            Some(mut driving) => tokio::select! {
                biased;
                collected = &mut collect => collected,
                _ = &mut driving => collect.await,
            },
            None => collect.await,
        };
        let body = collected.map_err(|e| unreachable(&*e))?.to_bytes();
        let mut relayed = Response::from_parts(parts, full(body));
        relayed.headers_mut().remove(header::CONTENT_LENGTH);
        relayed.headers_mut().remove(header::TRANSFER_ENCODING);
        return Ok(Answer::Refused(relayed));
    }

    let runtime_upgrade = hyper::upgrade::on(&mut response);
    let upgraded = async move {
        match connection {
            Some(driving) => tokio::join!(runtime_upgrade, driving).0,
            None => runtime_upgrade.await,
        }
    };
    Ok(Answer::Switched {
        headers: response.headers().clone(),
        upgraded: Box::pin(upgraded),
    })
}
