//! Shared pieces of berth's benchmarks: an in-process API server on a fresh
//! data directory, and keep-alive HTTPS connections to it.

pub mod netns;
pub mod process;
pub mod ssh_lab;

use std::sync::Arc;

use berth_observability::metrics::MetricsRegistry;
use berth_orchestrator::apiserver::{ApiServer, ApiServerConfig};
use berth_orchestrator::store::sqlite::SqliteStore;
use berth_orchestrator::store::Store;
use berth_pki::Pki;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;
use tokio_util::sync::CancellationToken;

/// Where and how to reach an API server: enough to open raw keep-alive
/// HTTPS connections, for load that must not cost more on the client side
/// than the server work it measures.
#[derive(Clone)]
pub struct Endpoint {
    /// Where the server listens.
    pub addr: std::net::SocketAddr,
    /// The admin bearer token.
    pub token: Arc<str>,
    connector: TlsConnector,
}

impl Endpoint {
    /// An endpoint trusting the CA in `ca_pem`.
    pub fn new(addr: std::net::SocketAddr, token: &str, ca_pem: &str) -> anyhow::Result<Self> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
            roots.add(cert?)?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self {
            addr,
            token: Arc::from(token),
            connector: TlsConnector::from(Arc::new(tls)),
        })
    }

    /// The endpoint an admin kubeconfig written by `berth server` names.
    pub fn from_kubeconfig(path: &std::path::Path) -> anyhow::Result<Self> {
        use anyhow::Context;
        let config = kube::config::Kubeconfig::read_from(path)?;
        let cluster = config
            .clusters
            .first()
            .and_then(|c| c.cluster.as_ref())
            .context("the kubeconfig names no cluster")?;
        let server = cluster
            .server
            .as_deref()
            .context("the cluster has no server")?;
        let addr = server
            .trim_start_matches("https://")
            .trim_end_matches('/')
            .parse()
            .with_context(|| format!("server {server} is not https://IP:PORT"))?;
        let ca = cluster
            .certificate_authority_data
            .as_deref()
            .context("the cluster has no certificate-authority-data")?;
        let ca_pem = String::from_utf8(base64::engine::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            ca,
        )?)?;
        let token = config
            .auth_infos
            .first()
            .and_then(|a| a.auth_info.as_ref())
            .and_then(|a| a.token.as_ref())
            .context("the kubeconfig has no token")?;
        Self::new(addr, secrecy::ExposeSecret::expose_secret(token), &ca_pem)
    }

    /// A new keep-alive connection.
    pub async fn connect(&self) -> anyhow::Result<Connection> {
        let tcp = TcpStream::connect(self.addr).await?;
        tcp.set_nodelay(true)?;
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1")?.to_owned();
        let tls = self.connector.connect(name, tcp).await?;
        let (sender, conn) = http1::handshake(TokioIo::new(tls)).await?;
        tokio::spawn(conn);
        Ok(Connection {
            sender,
            token: Arc::clone(&self.token),
        })
    }
}

/// An API server running in this process on SQLite, stopped by [`TestServer::stop`].
pub struct TestServer {
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    /// The admin bearer token.
    pub token: Arc<str>,
    /// An admin kubeconfig (YAML) for kube-rs clients of this server.
    pub kubeconfig: String,
    /// Raw connections to it.
    pub endpoint: Endpoint,
    cancel: CancellationToken,
    serving: JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// Starts a server on a fresh SQLite store in a temporary directory.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(MetricsRegistry::default()).await
    }

    /// [`TestServer::start`] serving `metrics` (one that is not recording
    /// gives the server without its metrics, to measure their cost).
    pub async fn start_with(metrics: MetricsRegistry) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let pki = Pki::load_or_create(dir.path(), &["127.0.0.1".to_owned()])?;
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("state.db"))?);
        let config = ApiServerConfig {
            listen: "127.0.0.1:0".parse()?,
            service_cidr: "10.43.0.0/16".parse().map_err(anyhow::Error::msg)?,
            advertise_address: None,
            in_process: Vec::new(),
            metrics,
            pod_security: Default::default(),
        };
        let server = ApiServer::bind(config, store, &pki).await?;
        let addr = server.local_addr()?;
        let cancel = CancellationToken::new();
        let serving = tokio::spawn(server.serve(cancel.clone()));
        Ok(Self {
            addr,
            token: Arc::from(pki.admin_token.as_str()),
            kubeconfig: pki.admin_kubeconfig(&format!("https://{addr}")),
            endpoint: Endpoint::new(addr, &pki.admin_token, &pki.ca_pem)?,
            cancel,
            serving,
            _dir: dir,
        })
    }

    /// A new keep-alive connection.
    pub async fn connect(&self) -> anyhow::Result<Connection> {
        self.endpoint.connect().await
    }

    /// Stops the server and waits for it.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.cancel.cancel();
        self.serving.await?;
        Ok(())
    }
}

/// One keep-alive HTTPS connection to the server.
pub struct Connection {
    sender: http1::SendRequest<Full<Bytes>>,
    token: Arc<str>,
}

impl Connection {
    /// Sends a request and returns the response, body unread.
    pub async fn send(
        &mut self,
        method: http::Method,
        path: &str,
        accept: &str,
        body: Option<(Bytes, &str)>,
    ) -> anyhow::Result<http::Response<hyper::body::Incoming>> {
        self.sender.ready().await?;
        let mut req = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "127.0.0.1")
            .header("authorization", format!("Bearer {}", self.token))
            .header("accept", accept);
        let payload = match body {
            Some((bytes, content_type)) => {
                req = req.header("content-type", content_type);
                bytes
            }
            None => Bytes::new(),
        };
        Ok(self
            .sender
            .send_request(req.body(Full::new(payload))?)
            .await?)
    }

    /// Sends a JSON request and reads the whole answer; returns the status.
    pub async fn request(
        &mut self,
        method: http::Method,
        path: &str,
        body: Option<(String, &str)>,
    ) -> anyhow::Result<u16> {
        let body = body.map(|(text, content_type)| (Bytes::from(text), content_type));
        let response = self.send(method, path, "application/json", body).await?;
        let status = response.status().as_u16();
        response.into_body().collect().await?;
        Ok(status)
    }

    /// Sends a bodiless request and reads the whole answer; returns the
    /// status and the body.
    pub async fn request_body(
        &mut self,
        method: http::Method,
        path: &str,
    ) -> anyhow::Result<(u16, Bytes)> {
        let response = self.send(method, path, "application/json", None).await?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}

/// CPU time (user + system) this process has used, from `/proc/self/stat`.
pub fn process_cpu() -> std::time::Duration {
    cpu_of("/proc/self/stat")
}

/// CPU time (user + system) process `pid` has used: lets a benchmark split
/// the cost between the server it started and its own client side.
pub fn child_cpu(pid: u32) -> std::time::Duration {
    cpu_of(&format!("/proc/{pid}/stat"))
}

fn cpu_of(stat_path: &str) -> std::time::Duration {
    let stat = std::fs::read_to_string(stat_path).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the ')'.
    let total = ticks(11) + ticks(12);
    std::time::Duration::from_millis(total * 1000 / clock_ticks_per_second())
}

fn clock_ticks_per_second() -> u64 {
    // USER_HZ is 100 on every Linux architecture berth builds for.
    100
}
