//! A stand-in for the node agent's kubelet API: HTTPS that demands a client
//! certificate from the cluster CA, records what it is asked, serves container
//! logs (one held-open `follow` stream the test feeds) and echoes upgraded streams.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::StreamExt;
use http::{header, HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// What the fake kubelet was asked.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    pub path_and_query: String,
    pub headers: HeaderMap,
}

/// A stand-in for the node agent's kubelet API.
#[derive(Clone, Default)]
pub struct FakeKubelet {
    pub requests: Arc<Mutex<Vec<Recorded>>>,
    /// The open `follow` stream of pod `slow`, fed by the test.
    pub slow: Arc<Mutex<Option<mpsc::Sender<Bytes>>>>,
}

type FakeBody = BoxBody<Bytes, Infallible>;

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<FakeBody> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Full::new(body.into()).boxed())
        .unwrap()
}

impl FakeKubelet {
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    async fn handle(self, mut req: Request<Incoming>) -> Result<Response<FakeBody>, Infallible> {
        self.requests.lock().unwrap().push(Recorded {
            method: req.method().clone(),
            path_and_query: req.uri().to_string(),
            headers: req.headers().clone(),
        });
        let path = req.uri().path().to_owned();
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        Ok(match segments.as_slice() {
            ["containerLogs", _, "slow", _] => {
                let (tx, rx) = mpsc::channel::<Bytes>(4);
                tx.send(Bytes::from_static(b"first\n")).await.unwrap();
                *self.slow.lock().unwrap() = Some(tx);
                let stream = tokio_stream::wrappers::ReceiverStream::new(rx)
                    .map(|chunk| Ok::<_, Infallible>(Frame::data(chunk)));
                Response::builder()
                    .header(header::CONTENT_TYPE, "text/plain")
                    .body(BodyExt::boxed(StreamBody::new(stream)))
                    .unwrap()
            }
            ["containerLogs", _, "broken", _] => text(
                StatusCode::BAD_REQUEST,
                "container \"app\" in pod \"broken\" is waiting to start: ContainerCreating\n",
            ),
            ["containerLogs", _, pod, container] => text(
                StatusCode::OK,
                format!("line 1 of {pod}/{container}\nline 2 of {pod}/{container}\nline 3 of {pod}/{container}\n"),
            ),
            ["exec" | "attach" | "portForward", ..] => {
                let websocket = req
                    .headers()
                    .get(header::UPGRADE)
                    .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
                if websocket {
                    let mut refused = text(
                        StatusCode::BAD_REQUEST,
                        "websocket refused by the fake kubelet",
                    );
                    refused
                        .headers_mut()
                        .insert("x-fake-kubelet", "refused".parse().unwrap());
                    return Ok(refused);
                }
                let upgrade = hyper::upgrade::on(&mut req);
                tokio::spawn(async move {
                    let io = TokioIo::new(upgrade.await.expect("kubelet side upgraded"));
                    let (mut reader, mut writer) = tokio::io::split(io);
                    let _ = tokio::io::copy(&mut reader, &mut writer).await;
                    let _ = writer.shutdown().await;
                });
                Response::builder()
                    .status(StatusCode::SWITCHING_PROTOCOLS)
                    .header(header::CONNECTION, "Upgrade")
                    .header(header::UPGRADE, "SPDY/3.1")
                    .header("X-Stream-Protocol-Version", "v4.channel.k8s.io")
                    .body(Full::new(Bytes::new()).boxed())
                    .unwrap()
            }
            _ => text(StatusCode::NOT_FOUND, "404 page not found"),
        })
    }

    /// Serves HTTPS on a loopback port, requiring a client certificate signed by `ca_pem`.
    pub async fn start(&self, ca_pem: &str, cancel: CancellationToken) -> SocketAddr {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::clone(&provider),
        )
        .build()
        .unwrap();
        let serving = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        let key =
            rustls::pki_types::PrivateKeyDer::Pkcs8(serving.signing_key.serialize_der().into());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![serving.cert.der().clone()], key)
            .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let kubelet = self.clone();
        tokio::spawn(async move {
            loop {
                let (tcp, _) = tokio::select! {
                    _ = cancel.cancelled() => return,
                    accepted = listener.accept() => accepted.unwrap(),
                };
                let (acceptor, kubelet) = (acceptor.clone(), kubelet.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service =
                        hyper::service::service_fn(move |req| kubelet.clone().handle(req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .with_upgrades()
                        .await;
                });
            }
        });
        addr
    }
}
