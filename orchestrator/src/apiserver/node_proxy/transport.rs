//! The API server → kubelet hop: one TLS connection per request, presenting the
//! `kube-apiserver-kubelet-client` certificate, speaking HTTP/1.1. The kubelet's
//! serving certificate is not verified (kube-apiserver's default without
//! `--kubelet-certificate-authority`); the client's own credentials never travel.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::StatusCode;
use http_body_util::{BodyExt, Empty};
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::location::KubeletEndpoint;
use crate::apiserver::errors::ApiError;
use berth_pki::Pki;

/// How long a TCP connect to a kubelet may take (upstream's kubelet dialer).
const DIAL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the TLS handshake may take (Go's `TLSHandshakeTimeout`).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The stream to a kubelet.
pub type KubeletIo = TokioIo<TlsStream<TcpStream>>;
/// The HTTP/1.1 connection to a kubelet; it must be polled for requests to progress.
pub type KubeletConnection = http1::Connection<KubeletIo, Empty<Bytes>>;

/// Accepts any kubelet serving certificate, but still checks that the kubelet
/// holds its key (handshake signatures).
#[derive(Debug)]
struct AnyKubeletCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyKubeletCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Opens connections to kubelets with the API server's kubelet-client identity.
pub struct KubeletDialer {
    connector: TlsConnector,
}

impl KubeletDialer {
    /// A dialer presenting the kubelet-client certificate of `pki`.
    pub fn new(pki: &Pki) -> Result<Self, String> {
        let certs = rustls_pemfile::certs(&mut pki.kubelet_client_cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("kubelet-client.crt: {e}"))?;
        let key = rustls_pemfile::private_key(&mut pki.kubelet_client_key_pem.as_bytes())
            .map_err(|e| format!("kubelet-client.key: {e}"))?
            .ok_or("no private key in kubelet-client.key")?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyKubeletCertificate(provider)))
            .with_client_auth_cert(certs, key)
            .map_err(|e| format!("kubelet-client certificate: {e}"))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            connector: TlsConnector::from(Arc::new(config)),
        })
    }

    /// A TLS stream to the kubelet; the error reads like Go's dialer
    /// (`dial tcp 10.0.0.5:10250: connect: connection refused`).
    pub async fn dial(&self, endpoint: &KubeletEndpoint) -> Result<KubeletIo, String> {
        let authority = endpoint.authority();
        let addresses: Vec<_> = tokio::net::lookup_host((endpoint.host.as_str(), endpoint.port))
            .await
            .map_err(|e| format!("dial tcp: lookup {}: {e}", endpoint.host))?
            .collect();
        let mut last_error = format!("dial tcp: lookup {}: no such host", endpoint.host);
        let mut tcp = None;
        for address in addresses {
            match tokio::time::timeout(DIAL_TIMEOUT, TcpStream::connect(address)).await {
                Ok(Ok(stream)) => {
                    tcp = Some(stream);
                    break;
                }
                Ok(Err(e)) => last_error = format!("dial tcp {authority}: {}", go_dial_error(&e)),
                Err(_) => last_error = format!("dial tcp {authority}: i/o timeout"),
            }
        }
        let tcp = tcp.ok_or(last_error)?;
        let _ = tcp.set_nodelay(true);
        let name = ServerName::try_from(endpoint.host.clone())
            .map_err(|e| format!("invalid kubelet host {:?}: {e}", endpoint.host))?;
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.connector.connect(name, tcp)).await {
            Ok(Ok(tls)) => Ok(TokioIo::new(tls)),
            Ok(Err(e)) => Err(format!("tls handshake with {authority}: {e}")),
            Err(_) => Err("net/http: TLS handshake timeout".to_owned()),
        }
    }

    /// An HTTP/1.1 client connection to the kubelet.
    pub async fn connect(
        &self,
        endpoint: &KubeletEndpoint,
    ) -> Result<(http1::SendRequest<Empty<Bytes>>, KubeletConnection), String> {
        let io = self.dial(endpoint).await?;
        http1::handshake(io).await.map_err(|e| e.to_string())
    }
}

/// How Go words the common connect failures.
fn go_dial_error(e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::ConnectionRefused => "connect: connection refused".into(),
        ErrorKind::TimedOut => "i/o timeout".into(),
        ErrorKind::HostUnreachable => "connect: no route to host".into(),
        ErrorKind::NetworkUnreachable => "connect: network is unreachable".into(),
        _ => format!("connect: {e}"),
    }
}

/// A failure reaching the kubelet: 500 without a reason, as upstream answers it.
pub fn dial_failure(message: String) -> ApiError {
    ApiError::Backend {
        code: StatusCode::INTERNAL_SERVER_ERROR,
        reason: "",
        message,
    }
}

/// The upstream reason for a kubelet's error code.
pub fn reason_for(code: StatusCode) -> &'static str {
    match code.as_u16() {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "",
    }
}

/// Sends `request` while driving `connection`, which may finish before the
/// response is read (after a 101 it hands its stream over; a kubelet may close
/// after answering). Returns the response and whether the connection is done.
pub async fn exchange<C>(
    sender: &mut http1::SendRequest<Empty<Bytes>>,
    connection: &mut Pin<Box<C>>,
    request: http::Request<Empty<Bytes>>,
) -> Result<(http::Response<Incoming>, bool), String>
where
    C: Future<Output = hyper::Result<()>>,
{
    let response = sender.send_request(request);
    tokio::pin!(response);
    let mut ended = None;
    loop {
        tokio::select! {
            response = &mut response => {
                let response = response.map_err(|e| e.to_string())?;
                return Ok((response, ended.is_some()));
            }
            result = connection.as_mut(), if ended.is_none() => {
                if let Err(e) = &result {
                    tracing::debug!(error = %e, "kubelet connection ended with error");
                }
                ended = Some(result);
            }
        }
    }
}

/// Sends `GET path_and_query` to the kubelet at `endpoint` on a connection of
/// its own and returns the response, with the connection still to be driven
/// while its body is read (`None` when it already ended). Failures read like
/// Go's client (`Get "https://…": …`).
pub async fn get(
    dialer: &KubeletDialer,
    endpoint: &KubeletEndpoint,
    path_and_query: &str,
) -> Result<
    (
        http::Response<Incoming>,
        Option<Pin<Box<KubeletConnection>>>,
    ),
    ApiError,
> {
    let url = endpoint.url(path_and_query);
    let failed = |detail: String| dial_failure(format!("Get {url:?}: {detail}"));
    let (mut sender, connection) = dialer.connect(endpoint).await.map_err(failed)?;
    let mut connection = Box::pin(connection);
    let request = http::Request::get(path_and_query)
        .header(http::header::HOST, endpoint.authority())
        .header(http::header::USER_AGENT, "berth-apiserver")
        .body(Empty::new())
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let (response, finished) = exchange(&mut sender, &mut connection, request)
        .await
        .map_err(failed)?;
    // No second request: the connection ends with this response's body.
    drop(sender);
    Ok((response, (!finished).then_some(connection)))
}

/// Reads at most `limit` bytes of `body` while driving `connection` (when
/// it has not ended) to its end.
pub async fn read_driven(
    body: Incoming,
    connection: Option<Pin<Box<KubeletConnection>>>,
    limit: usize,
) -> Bytes {
    let drive = async {
        if let Some(connection) = connection {
            let _ = connection.await;
        }
    };
    let (bytes, ()) = tokio::join!(read_limited(body, limit), drive);
    bytes
}

/// Reads at most `limit` bytes of a body; the rest is dropped.
pub async fn read_limited(mut body: Incoming, limit: usize) -> Bytes {
    let mut collected = BytesMut::new();
    while let Some(Ok(frame)) = body.frame().await {
        if let Ok(data) = frame.into_data() {
            let room = limit.saturating_sub(collected.len());
            collected.extend_from_slice(&data[..data.len().min(room)]);
            if collected.len() >= limit {
                break;
            }
        }
    }
    collected.freeze()
}

/// A kubelet's response body that also drives its connection, so a stream
/// (`logs -f`) flows frame by frame to the client with no task of its own, and
/// ends (closing the kubelet connection) when the client goes away.
pub struct StreamedBody {
    connection: Option<Pin<Box<KubeletConnection>>>,
    body: Incoming,
}

impl StreamedBody {
    /// `body`, read while `connection` (unless it is already done) is polled.
    pub fn new(connection: Option<Pin<Box<KubeletConnection>>>, body: Incoming) -> Self {
        Self { connection, body }
    }
}

impl HttpBody for StreamedBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        if let Some(connection) = this.connection.as_mut() {
            if let Poll::Ready(result) = connection.as_mut().poll(cx) {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "kubelet connection ended with error");
                }
                this.connection = None;
            }
        }
        Pin::new(&mut this.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
