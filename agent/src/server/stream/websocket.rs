//! exec, attach and port-forward for WebSocket clients (kubectl 1.30+),
//! which CRI streaming servers refuse: the agent answers the WebSocket
//! handshake itself and speaks SPDY/3.1 to the runtime, as kubelet and
//! kube-apiserver do. Upgrades it cannot translate are left to the byte relay.

mod remote_command;
mod tunnel;

use bytes::Bytes;
use http::header::{CONNECTION, UPGRADE};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

use super::super::handle::{full, Body, Refusal};
use super::super::{Splice, Streams};
use super::{upgrade, Answer};
use crate::runtime::StreamRequest;

pub(super) use remote_command::ChannelProtocol;

const SEC_WEBSOCKET_KEY: &str = "sec-websocket-key";
const SEC_WEBSOCKET_VERSION: &str = "sec-websocket-version";
const SEC_WEBSOCKET_PROTOCOL: &str = "sec-websocket-protocol";
const SEC_WEBSOCKET_ACCEPT: &str = "sec-websocket-accept";
const X_STREAM_PROTOCOL_VERSION: &str = "x-stream-protocol-version";

/// The WebSocket subprotocol of port-forward tunnelled over WebSocket: SPDY
/// frames carried in binary messages (kubectl 1.31+).
const PORT_FORWARD_TUNNEL: &str = "SPDY/3.1+portforward.k8s.io";
/// The SPDY protocol CRI streaming servers speak for exec and attach.
const REMOTE_COMMAND_V4: &str = "v4.channel.k8s.io";
/// The SPDY protocol CRI streaming servers speak for port-forward.
const PORT_FORWARD: &str = "portforward.k8s.io";
/// RFC 6455's GUID, hashed with the client's key into `Sec-WebSocket-Accept`.
const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// A WebSocket upgrade the agent answers itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Handshake {
    /// The `Sec-WebSocket-Accept` value for the client's key.
    accept: String,
    /// What the session carries.
    translation: Translation,
}

/// How a WebSocket session maps onto the runtime's SPDY connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Translation {
    /// exec or attach: channel-prefixed messages ↔ SPDY streams.
    RemoteCommand {
        protocol: ChannelProtocol,
        /// The streams the runtime was asked for (no stderr with a terminal).
        streams: Streams,
    },
    /// port-forward: the client already speaks SPDY inside the messages.
    PortForwardTunnel,
}

impl Translation {
    /// The subprotocol answered to the client.
    fn websocket_protocol(self) -> &'static str {
        match self {
            Self::RemoteCommand { protocol, .. } => protocol.name(),
            Self::PortForwardTunnel => PORT_FORWARD_TUNNEL,
        }
    }

    /// The SPDY protocol asked of the runtime.
    fn runtime_protocol(self) -> &'static str {
        match self {
            Self::RemoteCommand { .. } => REMOTE_COMMAND_V4,
            Self::PortForwardTunnel => PORT_FORWARD,
        }
    }
}

/// The handshake to answer when `headers` ask for a WebSocket session this
/// side can translate for `request`; `None` leaves the upgrade to the relay.
pub(super) fn handshake(headers: &HeaderMap, request: &StreamRequest) -> Option<Handshake> {
    let tokens = |name| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
    };
    if !tokens(UPGRADE.as_str()).any(|t| t.eq_ignore_ascii_case("websocket"))
        || headers.get(SEC_WEBSOCKET_VERSION)?.as_bytes() != b"13"
    {
        return None;
    }
    let key = headers.get(SEC_WEBSOCKET_KEY)?.to_str().ok()?.trim();
    let offered: Vec<&str> = tokens(SEC_WEBSOCKET_PROTOCOL).collect();
    let translation = match *request {
        StreamRequest::Exec {
            tty,
            stdin,
            stdout,
            stderr,
            ..
        }
        | StreamRequest::Attach {
            tty,
            stdin,
            stdout,
            stderr,
            ..
        } => Translation::RemoteCommand {
            protocol: [ChannelProtocol::V5, ChannelProtocol::V4]
                .into_iter()
                .find(|protocol| offered.contains(&protocol.name()))?,
            streams: Streams {
                stdin,
                stdout,
                // As the runtime was asked: a terminal merges stderr into stdout.
                stderr: stderr && !tty,
                tty,
            },
        },
        StreamRequest::PortForward { .. } => {
            if !offered.contains(&PORT_FORWARD_TUNNEL) {
                return None;
            }
            Translation::PortForwardTunnel
        }
    };
    Some(Handshake {
        accept: accept_key(key),
        translation,
    })
}

/// RFC 6455's `Sec-WebSocket-Accept` for `key`.
fn accept_key(key: &str) -> String {
    use base64::Engine as _;
    let digest = ring::digest::digest(
        &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        format!("{key}{WEBSOCKET_GUID}").as_bytes(),
    );
    base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
}

/// Opens a SPDY connection to the streaming server at `url` and, once it
/// switched protocols, answers `request`'s WebSocket handshake; the session
/// itself is left in `splice`. A refusal by the runtime is relayed as is.
pub(super) async fn serve(
    mut request: Request<Incoming>,
    handshake: Handshake,
    url: &str,
    splice: &Splice,
) -> Result<Response<Body>, Refusal> {
    let translation = handshake.translation;
    let runtime_protocol = translation.runtime_protocol();
    let mut headers = HeaderMap::new();
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(UPGRADE, HeaderValue::from_static("SPDY/3.1"));
    headers.insert(
        X_STREAM_PROTOCOL_VERSION,
        HeaderValue::from_static(runtime_protocol),
    );
    let (switched, runtime_upgrade) = match upgrade(url, Method::POST, headers).await? {
        Answer::Refused(refused) => return Ok(refused),
        Answer::Switched { headers, upgraded } => (headers, upgraded),
    };
    let negotiated = switched
        .get(X_STREAM_PROTOCOL_VERSION)
        .and_then(|value| value.to_str().ok());
    if negotiated != Some(runtime_protocol) {
        return Err(Refusal::internal(format!(
            "the runtime's streaming server chose protocol {negotiated:?}, not {runtime_protocol}"
        )));
    }

    let client_upgrade = hyper::upgrade::on(&mut request);
    let mut response = Response::new(full(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let answer = response.headers_mut();
    answer.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    answer.insert(UPGRADE, HeaderValue::from_static("websocket"));
    answer.insert(
        SEC_WEBSOCKET_ACCEPT,
        HeaderValue::try_from(handshake.accept).map_err(|e| Refusal::internal(e.to_string()))?,
    );
    answer.insert(
        SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(translation.websocket_protocol()),
    );

    let session = async move {
        let (client, runtime) = match (client_upgrade.await, runtime_upgrade.await) {
            (Ok(client), Ok(runtime)) => (client, runtime),
            (client, runtime) => {
                tracing::debug!(client = ?client.err(), runtime = ?runtime.err(), "a WebSocket stream upgrade failed");
                return;
            }
        };
        let client =
            WebSocketStream::from_raw_socket(TokioIo::new(client), Role::Server, None).await;
        let runtime = TokioIo::new(runtime);
        tracing::debug!(?translation, "WebSocket stream translated to SPDY");
        match translation {
            Translation::RemoteCommand { protocol, streams } => {
                remote_command::run(client, runtime, protocol, streams).await
            }
            Translation::PortForwardTunnel => tunnel::run(client, runtime).await,
        }
        tracing::debug!(?translation, "WebSocket stream closed");
    };
    *crate::lock(splice) = Some(Box::pin(session));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec(tty: bool) -> StreamRequest {
        StreamRequest::Exec {
            uid: "uid".into(),
            container: "app".into(),
            command: vec!["sh".into()],
            tty,
            stdin: true,
            stdout: true,
            stderr: true,
        }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        headers
    }

    /// Header pairs of a test request.
    type Headers = Vec<(&'static str, &'static str)>;

    const WEBSOCKET: [(&str, &str); 3] = [
        ("upgrade", "websocket"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];

    #[test]
    fn the_accept_key_is_rfc_6455s() {
        // The example of RFC 6455, section 1.3.
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn which_upgrades_are_translated() {
        let port_forward = StreamRequest::PortForward {
            uid: "uid".into(),
            ports: vec![80],
        };
        let all_streams = Streams {
            stdin: true,
            stdout: true,
            stderr: true,
            tty: false,
        };
        /// A case: its name, the protocol headers, the request, what is translated.
        type Case = (&'static str, Headers, StreamRequest, Option<Translation>);
        let cases: Vec<Case> = vec![
            (
                "kubectl 1.30+ exec",
                vec![("sec-websocket-protocol", "v5.channel.k8s.io")],
                exec(false),
                Some(Translation::RemoteCommand {
                    protocol: ChannelProtocol::V5,
                    streams: all_streams,
                }),
            ),
            (
                "v5 preferred over v4, across header values",
                vec![
                    (
                        "sec-websocket-protocol",
                        "v4.channel.k8s.io, base64.channel.k8s.io",
                    ),
                    ("sec-websocket-protocol", "v5.channel.k8s.io"),
                ],
                exec(false),
                Some(Translation::RemoteCommand {
                    protocol: ChannelProtocol::V5,
                    streams: all_streams,
                }),
            ),
            (
                "v4 alone, with a terminal: no stderr stream",
                vec![("sec-websocket-protocol", "v4.channel.k8s.io")],
                exec(true),
                Some(Translation::RemoteCommand {
                    protocol: ChannelProtocol::V4,
                    streams: Streams {
                        stderr: false,
                        tty: true,
                        ..all_streams
                    },
                }),
            ),
            (
                "older channel protocols are left to the relay",
                vec![(
                    "sec-websocket-protocol",
                    "channel.k8s.io, v3.channel.k8s.io",
                )],
                exec(false),
                None,
            ),
            (
                "port-forward tunnelling",
                vec![("sec-websocket-protocol", "SPDY/3.1+portforward.k8s.io")],
                port_forward.clone(),
                Some(Translation::PortForwardTunnel),
            ),
            (
                "port-forward over channel protocols is left to the relay",
                vec![("sec-websocket-protocol", "v5.channel.k8s.io")],
                port_forward,
                None,
            ),
        ];
        for (name, extra, request, want) in cases {
            let mut pairs: Vec<(&'static str, &'static str)> = WEBSOCKET.to_vec();
            pairs.extend(extra);
            let got = handshake(&headers(&pairs), &request);
            assert_eq!(got.as_ref().map(|h| h.translation), want, "{name}");
            if let Some(got) = got {
                assert_eq!(got.accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "{name}");
            }
        }
    }

    #[test]
    fn spdy_and_malformed_websocket_upgrades_are_left_to_the_relay() {
        let protocol = ("sec-websocket-protocol", "v5.channel.k8s.io");
        let cases: [(&str, Vec<(&'static str, &'static str)>); 4] = [
            (
                "SPDY",
                vec![
                    ("upgrade", "SPDY/3.1"),
                    ("x-stream-protocol-version", "v4.channel.k8s.io"),
                ],
            ),
            (
                "no key",
                vec![
                    ("upgrade", "websocket"),
                    ("sec-websocket-version", "13"),
                    protocol,
                ],
            ),
            (
                "another WebSocket version",
                vec![
                    ("upgrade", "websocket"),
                    ("sec-websocket-version", "8"),
                    ("sec-websocket-key", "a2V5"),
                    protocol,
                ],
            ),
            ("no upgrade at all", vec![protocol]),
        ];
        for (name, pairs) in cases {
            assert_eq!(handshake(&headers(&pairs), &exec(false)), None, "{name}");
        }
    }
}
