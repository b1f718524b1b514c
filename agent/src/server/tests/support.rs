//! What the kubelet API tests stand on: a CA with client certificates, a
//! fake runtime that records the stream requests it gets, a stand-in for the
//! runtime's streaming server, and an HTTPS client.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::runtime::{
    ContainerState, ContainerStatus, PodSandboxConfig, PodState, Runtime, RuntimeError,
    SandboxPhase, StreamRequest,
};
use crate::server::{Server, ServerConfig};

/// A cluster CA and one client certificate it signed.
pub struct Pki {
    pub ca_pem: String,
    pub client_cert_pem: String,
    pub client_key_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    pub fn new(name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_pem = params.self_signed(&key).unwrap().pem();
        let issuer = Issuer::new(params, key);
        let (client_cert_pem, client_key_pem) = sign(
            &issuer,
            "kube-apiserver-kubelet-client",
            &[],
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        Self {
            ca_pem,
            client_cert_pem,
            client_key_pem,
            issuer,
        }
    }

    /// A serving certificate for `hosts`, signed by this CA.
    pub fn serving(&self, hosts: &[&str]) -> (String, String) {
        sign(
            &self.issuer,
            "node-1",
            hosts,
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }
}

fn sign(
    issuer: &Issuer<'static, KeyPair>,
    name: &str,
    hosts: &[&str],
    usage: ExtendedKeyUsagePurpose,
) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![usage];
    (
        params.signed_by(&key, issuer).unwrap().pem(),
        key.serialize_pem(),
    )
}

/// A runtime with fixed pods, one log file and one streaming URL.
#[derive(Default)]
pub struct FakeRuntime {
    pub pods: Mutex<Vec<PodState>>,
    pub log: Mutex<Option<PathBuf>>,
    pub stream_url: Mutex<String>,
    pub stream_requests: Mutex<Vec<StreamRequest>>,
    /// How many times [`Runtime::pod_state`] was asked (a followed log asks).
    pub state_queries: AtomicUsize,
}

impl FakeRuntime {
    /// Sets the status of every container named `name`.
    pub fn set_status(&self, name: &str, status: ContainerStatus) {
        for pod in crate::lock(&self.pods).iter_mut() {
            for container in pod.containers.iter_mut().filter(|c| c.name == name) {
                container.status = status.clone();
            }
        }
    }
}

#[async_trait]
impl Runtime for FakeRuntime {
    fn version(&self) -> String {
        "fake://1.0".into()
    }

    async fn update_pod_cidr(&self, _: &str) -> Result<(), RuntimeError> {
        Ok(())
    }

    async fn sync_pod(&self, _: &PodSandboxConfig) -> Result<PodState, RuntimeError> {
        Err(RuntimeError::Backend(
            "the fake runtime starts nothing".into(),
        ))
    }

    async fn streaming_url(&self, request: &StreamRequest) -> Result<String, RuntimeError> {
        crate::lock(&self.stream_requests).push(request.clone());
        Ok(crate::lock(&self.stream_url).clone())
    }

    async fn container_log(
        &self,
        _: &str,
        _: &str,
        previous: bool,
    ) -> Result<Option<PathBuf>, RuntimeError> {
        Ok(if previous {
            None
        } else {
            crate::lock(&self.log).clone()
        })
    }

    async fn stop_pod(&self, _: &str, _: Duration) -> Result<(), RuntimeError> {
        Ok(())
    }

    async fn remove_pod(&self, _: &str) -> Result<(), RuntimeError> {
        Ok(())
    }

    async fn pod_state(&self, uid: &str) -> Result<Option<PodState>, RuntimeError> {
        self.state_queries.fetch_add(1, Ordering::SeqCst);
        Ok(crate::lock(&self.pods)
            .iter()
            .find(|p| p.uid == uid)
            .cloned())
    }

    async fn list_pods(&self) -> Result<Vec<PodState>, RuntimeError> {
        Ok(crate::lock(&self.pods).clone())
    }
}

/// A running pod `namespace/name` with running containers `containers`.
pub fn pod(
    uid: &str,
    namespace: &str,
    name: &str,
    phase: SandboxPhase,
    containers: &[&str],
) -> PodState {
    let started_at = jiff::Timestamp::now();
    PodState {
        uid: uid.into(),
        namespace: namespace.into(),
        name: name.into(),
        phase,
        ip: None,
        started_at,
        init_containers: vec![],
        containers: containers
            .iter()
            .map(|c| ContainerState {
                name: (*c).into(),
                image: "busybox".into(),
                image_id: String::new(),
                container_id: format!("containerd://{c}"),
                status: ContainerStatus::Running { started_at },
                restart_count: 0,
                last_termination: None,
            })
            .collect(),
    }
}

/// A stand-in for containerd's streaming server: answers `/refuse…` with 400
/// and anything else with `101 Switching Protocols`, then echoes bytes. It
/// keeps the request heads it got.
pub struct StreamingServer {
    pub address: SocketAddr,
    pub heads: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl StreamingServer {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&heads);
        let task = tokio::spawn(async move {
            let mut sessions = tokio::task::JoinSet::new();
            while let Ok((tcp, _)) = listener.accept().await {
                sessions.spawn(session(tcp, Arc::clone(&seen)));
            }
        });
        Self {
            address,
            heads,
            task,
        }
    }
}

impl Drop for StreamingServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn session(mut tcp: TcpStream, heads: Arc<Mutex<Vec<String>>>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if tcp.read(&mut byte).await.unwrap_or(0) == 0 {
            return;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let refuse = head.starts_with("GET /refuse") || head.starts_with("POST /refuse");
    crate::lock(&heads).push(head);
    if refuse {
        let body = "websocket protocol not supported";
        let answer = format!("HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}", body.len());
        let _ = tcp.write_all(answer.as_bytes()).await;
        return;
    }
    let answer = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n";
    if tcp.write_all(answer.as_bytes()).await.is_err() {
        return;
    }
    let (mut read, mut write) = tcp.split();
    let _ = tokio::io::copy(&mut read, &mut write).await;
}

/// The kubelet API over `runtime`, on a free port of 127.0.0.1.
pub struct TestServer {
    pub address: SocketAddr,
    pub serving_cert_pem: String,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    pub async fn start(
        runtime: Arc<FakeRuntime>,
        pki: &Pki,
        serving: Option<(String, String)>,
    ) -> Self {
        let config = ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            node_name: "node-1".into(),
            client_ca_pem: pki.ca_pem.clone(),
            serving_cert_pem: serving.as_ref().map(|s| s.0.clone()),
            serving_key_pem: serving.map(|s| s.1),
        };
        let server = Server::bind(
            config,
            runtime,
            crate::metrics::KubeletMetrics::new("node-1"),
        )
        .await
        .unwrap();
        let address = server.local_addr().unwrap();
        let serving_cert_pem = server.serving_cert_pem().to_owned();
        let cancel = CancellationToken::new();
        let task = tokio::spawn(server.serve(cancel.clone()));
        Self {
            address,
            serving_cert_pem,
            cancel,
            task,
        }
    }

    /// Stops the server and waits until it has closed everything.
    pub async fn stop(self) {
        self.cancel.cancel();
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("the server stops")
            .unwrap();
    }
}

/// A TLS connection to `address` trusting `trusted_pem`, presenting
/// `identity` (certificate and key PEM) when given.
pub async fn connect(
    address: SocketAddr,
    trusted_pem: &str,
    identity: Option<(&str, &str)>,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut trusted_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let config = match identity {
        Some((cert, key)) => {
            let certs = rustls_pemfile::certs(&mut cert.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let key = rustls_pemfile::private_key(&mut key.as_bytes())
                .unwrap()
                .unwrap();
            builder.with_client_auth_cert(certs, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    let tcp = TcpStream::connect(address).await?;
    let name = ServerName::IpAddress(address.ip().into());
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
}

/// An HTTP/1.1 client over an authenticated connection to `server`.
pub async fn client(server: &TestServer, pki: &Pki) -> SendRequest<Empty<Bytes>> {
    let tls = connect(
        server.address,
        &server.serving_cert_pem,
        Some((&pki.client_cert_pem, &pki.client_key_pem)),
    )
    .await
    .unwrap();
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(connection.with_upgrades());
    sender
}

/// `GET target` with `headers`, on a fresh connection.
pub async fn get(server: &TestServer, pki: &Pki, target: &str) -> hyper::Response<Incoming> {
    let mut sender = client(server, pki).await;
    let request = hyper::Request::get(target)
        .header("host", "node-1")
        .body(Empty::new())
        .unwrap();
    sender.send_request(request).await.unwrap()
}

/// The status and whole body of a response.
pub async fn text(response: hyper::Response<Incoming>) -> (u16, String) {
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}
