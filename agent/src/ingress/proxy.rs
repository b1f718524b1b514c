//! The data path of the ingress proxy: hyper serves the clients (HTTP/1.1,
//! and h2 over TLS by ALPN), the routing table picks an endpoint, and the
//! client connection's own keep-alive connections to the endpoints
//! ([`Upstreams`]) carry the request, streaming bodies both ways. What is
//! per connection (the forwarded headers' values) is made once per
//! connection, not per request.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue, CONNECTION, HOST, UPGRADE};
use http::{Request, Response, StatusCode, Uri, Version};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::read;
use super::routes::{Route, Table};
use super::upstream::{Drivers, Upstreams};

/// What the proxy answers with: the upstream's streamed body or its own.
pub type ProxyBody = Either<Incoming, Full<Bytes>>;

/// How long a client has to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Headers that belong to one hop and are never forwarded (RFC 9110 §7.6.1).
static HOP_BY_HOP: [HeaderName; 9] = [
    CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    http::header::PROXY_AUTHENTICATE,
    http::header::PROXY_AUTHORIZATION,
    http::header::TE,
    http::header::TRAILER,
    http::header::TRANSFER_ENCODING,
    UPGRADE,
];

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// The proxy: the current routing table and the tasks it runs.
#[derive(Default)]
pub struct Proxy {
    /// Replaced whenever Ingresses, Services or EndpointSlices change.
    pub table: RwLock<Arc<Table>>,
    /// The drivers of upstream connections; aborted with the proxy.
    drivers: Drivers,
    /// Upgraded connections (WebSocket) being relayed; aborted with the proxy.
    tunnels: Mutex<JoinSet<()>>,
}

/// The `X-Forwarded-*` values of one client connection: the client's
/// address, the scheme and the port it used (ingress-nginx's, when it does
/// not trust incoming ones).
#[derive(Debug, Clone)]
pub struct Forwarded {
    ip: HeaderValue,
    proto: HeaderValue,
    port: HeaderValue,
}

impl Forwarded {
    /// The values for a client at `peer` on `port` over `scheme`.
    pub fn new(peer: SocketAddr, scheme: &'static str, port: u16) -> Self {
        let ip = peer.ip().to_canonical().to_string();
        Self {
            ip: HeaderValue::from_str(&ip).unwrap_or(HeaderValue::from_static("")),
            proto: HeaderValue::from_static(scheme),
            port: HeaderValue::from(port),
        }
    }

    /// Sets `Host` (the client's) and the `X-Forwarded-*` headers.
    fn apply(&self, headers: &mut HeaderMap, host: Option<HeaderValue>) {
        if let Some(host) = host.filter(|h| !h.is_empty()) {
            headers.insert(&X_FORWARDED_HOST, host.clone());
            headers.insert(HOST, host);
        }
        headers.insert(&X_FORWARDED_FOR, self.ip.clone());
        headers.insert(&X_REAL_IP, self.ip.clone());
        headers.insert(&X_FORWARDED_PROTO, self.proto.clone());
        headers.insert(&X_FORWARDED_PORT, self.port.clone());
    }
}

/// One client connection as the proxy sees it.
pub struct Client {
    proxy: Arc<Proxy>,
    forwarded: Forwarded,
    upstreams: Upstreams,
}

impl Client {
    /// The client at `peer` that connected to `port` over `scheme`.
    pub fn new(proxy: Arc<Proxy>, peer: SocketAddr, scheme: &'static str, port: u16) -> Self {
        Self {
            proxy,
            forwarded: Forwarded::new(peer, scheme, port),
            upstreams: Upstreams::default(),
        }
    }
}

impl Proxy {
    /// A proxy with an empty table (everything is 404 until the first sync).
    pub fn new() -> Self {
        Self::default()
    }

    /// Forwards `request` of `client` to the endpoint its route picks; 404
    /// without a route, 503 without a ready endpoint, 502 when the endpoint
    /// fails.
    pub async fn handle(
        &self,
        mut request: Request<Incoming>,
        client: &Client,
    ) -> Response<ProxyBody> {
        let host = request
            .headers()
            .get(HOST)
            .filter(|h| h.to_str().is_ok())
            .cloned()
            .or_else(|| {
                let authority = request.uri().authority()?;
                HeaderValue::from_str(authority.as_str()).ok()
            });
        let host_name = host.as_ref().and_then(|h| h.to_str().ok()).unwrap_or("");
        let route = read(&self.table).route(host_name, request.uri().path());
        let backend = match route {
            Route::Backend(backend) => backend,
            Route::NotFound => return plain(StatusCode::NOT_FOUND),
        };
        let Some(endpoint) = backend.pick() else {
            tracing::debug!(backend = %backend.name, "no ready endpoint");
            return plain(StatusCode::SERVICE_UNAVAILABLE);
        };
        // Upstream requests are in origin form: the path and query only.
        if request.uri().authority().is_some() || request.uri().scheme().is_some() {
            let path = request.uri().path_and_query().cloned();
            let Ok(uri) = Uri::from_parts({
                let mut parts = http::uri::Parts::default();
                parts.path_and_query =
                    Some(path.unwrap_or_else(|| http::uri::PathAndQuery::from_static("/")));
                parts
            }) else {
                return plain(StatusCode::BAD_REQUEST);
            };
            *request.uri_mut() = uri;
        }
        // An HTTP/2 client may have several requests in flight; an HTTP/1
        // one sends the next only after this response.
        let serial = request.version() != Version::HTTP_2;
        // An HTTP/1.1 Upgrade (WebSocket) is passed through as one.
        let upgrade = (request.version() == Version::HTTP_11)
            .then(|| request.headers().get(UPGRADE).cloned())
            .flatten();
        let downstream = upgrade.is_some().then(|| hyper::upgrade::on(&mut request));
        *request.version_mut() = Version::HTTP_11;
        let headers = request.headers_mut();
        strip_hop_by_hop(headers);
        let host = host.or_else(|| HeaderValue::from_str(&endpoint.to_string()).ok());
        client.forwarded.apply(headers, host);
        if let Some(protocol) = upgrade {
            headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
            headers.insert(UPGRADE, protocol);
        }
        match client
            .upstreams
            .send(&self.drivers, endpoint, request, serial)
            .await
        {
            Ok(mut response) => {
                if let (StatusCode::SWITCHING_PROTOCOLS, Some(downstream)) =
                    (response.status(), downstream)
                {
                    let upstream = hyper::upgrade::on(&mut response);
                    self.tunnel(downstream, upstream);
                    return response.map(Either::Left);
                }
                let mut response = response.map(Either::Left);
                strip_hop_by_hop(response.headers_mut());
                response
            }
            Err(error) => {
                tracing::debug!(backend = %backend.name, %endpoint, %error, "upstream request failed");
                plain(StatusCode::BAD_GATEWAY)
            }
        }
    }
}

impl Proxy {
    /// Relays bytes both ways between an upgraded client connection and
    /// the upgraded upstream one, once both upgrades complete.
    fn tunnel(&self, downstream: hyper::upgrade::OnUpgrade, upstream: hyper::upgrade::OnUpgrade) {
        let mut tunnels = self
            .tunnels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while tunnels.try_join_next().is_some() {}
        tunnels.spawn(async move {
            let (Ok(downstream), Ok(upstream)) = tokio::join!(downstream, upstream) else {
                return;
            };
            let (mut a, mut b) = (TokioIo::new(downstream), TokioIo::new(upstream));
            let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
        });
    }
}

/// Removes hop-by-hop headers and those `Connection` lists.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    if headers.contains_key(CONNECTION) {
        let listed: Vec<HeaderName> = headers
            .get_all(CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
            .collect();
        for name in listed {
            headers.remove(name);
        }
    }
    for name in HOP_BY_HOP.iter() {
        headers.remove(name);
    }
}

/// A short plain-text answer of the proxy itself.
fn plain(status: StatusCode) -> Response<ProxyBody> {
    let text = format!(
        "{} {}\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    let mut response = Response::new(Either::Right(Full::new(Bytes::from(text))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Serves `listener` until `cancel` fires: plain HTTP when `tls` is `None`,
/// else TLS with the acceptor's SNI certificates.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    proxy: Arc<Proxy>,
    cancel: CancellationToken,
) {
    let port = listener.local_addr().map_or(0, |a| a.port());
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(address = ?listener.local_addr().ok(), scheme, "ingress proxy listening");
    let mut connections = JoinSet::new();
    loop {
        let (tcp, peer) = tokio::select! {
            _ = cancel.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "ingress accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let _ = tcp.set_nodelay(true);
        let proxy = Arc::clone(&proxy);
        let tls = tls.clone();
        let cancel = cancel.clone();
        connections.spawn(async move {
            match tls {
                None => connection(TokioIo::new(tcp), peer, scheme, port, proxy, cancel).await,
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            connection(TokioIo::new(stream), peer, scheme, port, proxy, cancel)
                                .await
                        }
                        Ok(Err(error)) => {
                            tracing::debug!(%peer, %error, "ingress TLS handshake failed")
                        }
                        Err(_) => tracing::debug!(%peer, "ingress TLS handshake timed out"),
                    }
                }
            }
        });
    }
    connections.shutdown().await;
}

/// Serves one client connection (HTTP/1.1 or h2) until it ends or `cancel` fires.
async fn connection<I>(
    io: I,
    peer: SocketAddr,
    scheme: &'static str,
    port: u16,
    proxy: Arc<Proxy>,
    cancel: CancellationToken,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let client = Arc::new(Client::new(proxy, peer, scheme, port));
    let service = hyper::service::service_fn(move |request| {
        let client = Arc::clone(&client);
        async move {
            let response = client.proxy.handle(request, &client).await;
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let served = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(served);
    tokio::select! {
        result = served.as_mut() => if let Err(error) = result {
            tracing::debug!(%peer, %error, "ingress connection ended with an error");
        },
        _ = cancel.cancelled() => {
            served.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(1), served).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_go_and_forwarded_headers_come() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "connection",
            HeaderValue::from_static("keep-alive, x-private"),
        );
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert("x-private", HeaderValue::from_static("1"));
        headers.insert("x-forwarded-for", HeaderValue::from_static("6.6.6.6"));
        headers.insert("accept", HeaderValue::from_static("*/*"));
        strip_hop_by_hop(&mut headers);
        Forwarded::new("[::ffff:127.0.0.2]:5000".parse().unwrap(), "https", 8443).apply(
            &mut headers,
            Some(HeaderValue::from_static("a.example.com:8443")),
        );
        let get = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(get("connection"), None);
        assert_eq!(get("keep-alive"), None);
        assert_eq!(get("x-private"), None);
        assert_eq!(get("accept").as_deref(), Some("*/*"));
        assert_eq!(get("host").as_deref(), Some("a.example.com:8443"));
        assert_eq!(
            get("x-forwarded-host").as_deref(),
            Some("a.example.com:8443")
        );
        assert_eq!(get("x-forwarded-for").as_deref(), Some("127.0.0.2"));
        assert_eq!(get("x-forwarded-proto").as_deref(), Some("https"));
        assert_eq!(get("x-forwarded-port").as_deref(), Some("8443"));
    }

    #[tokio::test]
    async fn upgrades_are_relayed_both_ways() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        // An upstream that switches protocols, then echoes.
        let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream_port = upstream.local_addr().unwrap().port();
        let echo = tokio::spawn(async move {
            let (mut tcp, _) = upstream.accept().await.unwrap();
            let mut head = Vec::new();
            while !head.ends_with(b"\r\n\r\n") {
                let mut byte = [0u8; 1];
                tcp.read_exact(&mut byte).await.unwrap();
                head.push(byte[0]);
            }
            let head = String::from_utf8(head).unwrap().to_ascii_lowercase();
            assert!(head.contains("upgrade: echo"), "{head}");
            assert!(head.contains("connection: upgrade"), "{head}");
            tcp.write_all(
                b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n",
            )
            .await
            .unwrap();
            let mut buf = [0u8; 4];
            tcp.read_exact(&mut buf).await.unwrap();
            tcp.write_all(&buf).await.unwrap();
        });
        let ingress: k8s_openapi::api::networking::v1::Ingress =
            serde_json::from_value(serde_json::json!({
            "metadata": {"name": "i", "namespace": "ns"},
            "spec": {"rules": [{"http": {"paths": [{"path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": "s", "port": {"number": 80}}}}]}}]}}))
            .unwrap();
        let service: k8s_openapi::api::core::v1::Service =
            serde_json::from_value(serde_json::json!({
            "metadata": {"name": "s", "namespace": "ns"}, "spec": {"ports": [{"port": 80}]}}))
            .unwrap();
        let slice: k8s_openapi::api::discovery::v1::EndpointSlice = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "s-1", "namespace": "ns", "labels": {"kubernetes.io/service-name": "s"}},
            "addressType": "IPv4", "ports": [{"port": upstream_port}],
            "endpoints": [{"addresses": ["127.0.0.1"]}]}))
        .unwrap();
        let proxy = Arc::new(Proxy::new());
        *proxy.table.write().unwrap() = Arc::new(Table::build(&[ingress], &[service], &[slice]));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let cancel = CancellationToken::new();
        let serving = tokio::spawn(serve(listener, None, Arc::clone(&proxy), cancel.clone()));
        let mut client = tokio::net::TcpStream::connect(address).await.unwrap();
        client
            .write_all(
                b"GET /chat HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n",
            )
            .await
            .unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            client.read_exact(&mut byte).await.unwrap();
            head.push(byte[0]);
        }
        assert!(
            head.starts_with(b"HTTP/1.1 101"),
            "{}",
            String::from_utf8_lossy(&head)
        );
        client.write_all(b"ping").await.unwrap();
        let mut reply = [0u8; 4];
        client.read_exact(&mut reply).await.unwrap();
        assert_eq!(&reply, b"ping");
        echo.await.unwrap();
        cancel.cancel();
        serving.await.unwrap();
    }
}
