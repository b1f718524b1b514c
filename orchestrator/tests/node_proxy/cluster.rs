//! An in-process API server on SQLite with a Node whose kubelet is the fake
//! one, pods bound to it, and the clients the tests drive it with (raw HTTPS
//! over HTTP/1.1, as kubectl streams, and kubectl itself).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use berth_orchestrator::apiserver::{ApiServer, ApiServerConfig};
use berth_orchestrator::store::sqlite::SqliteStore;
use berth_orchestrator::store::Store;
use berth_pki::Pki;
use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_util::sync::CancellationToken;

use super::fake_kubelet::{FakeKubelet, Recorded};

/// A kubectl that speaks JSON on the wire.
pub const KUBECTL: &str = "/usr/lib/google-cloud-sdk/bin/kubectl.1.31";
/// How long any single step may take before the test fails.
pub const STEP: Duration = Duration::from_secs(20);

/// An API server with a Node whose kubelet is the fake, and pods bound to it.
pub struct Cluster {
    pub api: SocketAddr,
    pub token: String,
    pub connector: TlsConnector,
    pub kubeconfig: PathBuf,
    pub kubelet: FakeKubelet,
    /// A port nothing listens on (node `down`'s kubelet).
    pub closed_port: u16,
    pub cancel: CancellationToken,
    pub dir: tempfile::TempDir,
}

impl Cluster {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::load_or_create(dir.path(), &["127.0.0.1".to_owned()]).unwrap();
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(dir.path().join("state.db")).unwrap());
        let config = ApiServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            service_cidr: "10.43.0.0/16".parse().unwrap(),
            advertise_address: None,
            in_process: Vec::new(),
            metrics: Default::default(),
            pod_security: Default::default(),
        };
        let server = ApiServer::bind(config, store, &pki).await.unwrap();
        let api = server.local_addr().unwrap();
        let cancel = CancellationToken::new();
        tokio::spawn(server.serve(cancel.clone()));
        let kubeconfig = dir.path().join("admin.kubeconfig");
        pki.write_admin_kubeconfig(&kubeconfig, &format!("https://{api}"))
            .unwrap();

        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut pki.ca_pem.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        // As kubectl does for streaming requests: HTTP/1.1 only.
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];

        let kubelet = FakeKubelet::default();
        let kubelet_addr = kubelet.start(&pki.ca_pem, cancel.clone()).await;
        let closed_port = {
            let probe = TcpListener::bind("127.0.0.1:0").await.unwrap();
            probe.local_addr().unwrap().port()
        };
        let cluster = Self {
            api,
            token: pki.admin_token.clone(),
            connector: TlsConnector::from(Arc::new(tls)),
            kubeconfig,
            kubelet,
            closed_port,
            cancel,
            dir,
        };
        cluster.node("fake", kubelet_addr.port()).await;
        cluster.node("down", closed_port).await;
        let one = |name: &str| json!([{"name": name, "image": "busybox"}]);
        cluster
            .pod("web", Some("fake"), one("app"), json!([]))
            .await;
        cluster
            .pod(
                "multi",
                Some("fake"),
                json!([{"name": "app", "image": "busybox"}, {"name": "sidecar", "image": "busybox"}]),
                one("setup"),
            )
            .await;
        cluster
            .pod("slow", Some("fake"), one("app"), json!([]))
            .await;
        cluster
            .pod("broken", Some("fake"), one("app"), json!([]))
            .await;
        cluster.pod("pending", None, one("app"), json!([])).await;
        cluster
            .pod("orphan", Some("down"), one("app"), json!([]))
            .await;
        cluster
    }

    pub async fn node(&self, name: &str, port: u16) {
        let node = json!({
            "apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
            "status": {
                "addresses": [{"type": "Hostname", "address": name}, {"type": "InternalIP", "address": "127.0.0.1"}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
            },
        });
        let (status, body) = self.json(Method::POST, "/api/v1/nodes", node).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    pub async fn pod(&self, name: &str, node: Option<&str>, containers: Value, init: Value) {
        let mut pod = json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"containers": containers, "initContainers": init},
        });
        if let Some(node) = node {
            pod["spec"]["nodeName"] = json!(node);
        }
        let (status, body) = self
            .json(Method::POST, "/api/v1/namespaces/default/pods", pod)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    /// Sends one request on a fresh HTTP/1.1 connection, with the admin token.
    pub async fn send(&self, mut request: Request<Full<Bytes>>) -> Response<Incoming> {
        let tcp = TcpStream::connect(self.api).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let tls = self.connector.connect(name, tcp).await.unwrap();
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .unwrap();
        tokio::spawn(connection.with_upgrades());
        request.headers_mut().insert(
            header::AUTHORIZATION,
            format!("Bearer {}", self.token).parse().unwrap(),
        );
        request
            .headers_mut()
            .insert(header::HOST, self.api.to_string().parse().unwrap());
        tokio::time::timeout(STEP, sender.send_request(request))
            .await
            .expect("the API server answers")
            .unwrap()
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Bytes) {
        let response = self
            .send(Request::get(path).body(Full::default()).unwrap())
            .await;
        let status = response.status();
        let body = tokio::time::timeout(STEP, response.into_body().collect())
            .await
            .expect("the body ends")
            .unwrap()
            .to_bytes();
        (status, body)
    }

    pub async fn json(&self, method: Method, path: &str, body: Value) -> (StatusCode, Value) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap();
        let response = self.send(request).await;
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// A Status answer: its code and message.
    pub async fn status(&self, path: &str) -> (u16, String) {
        let (status, body) = self.get(path).await;
        let status_object: Value = serde_json::from_slice(&body)
            .unwrap_or_else(|_| panic!("{path}: not a Status: {}", String::from_utf8_lossy(&body)));
        assert_eq!(status_object["kind"], "Status", "{status_object}");
        assert_eq!(status_object["code"], status.as_u16(), "{status_object}");
        (
            status.as_u16(),
            status_object["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        )
    }

    /// Runs kubectl against this server; `None` when kubectl is not installed here.
    pub async fn kubectl(&self, args: &[&str]) -> Option<std::process::Output> {
        if !std::path::Path::new(KUBECTL).exists() {
            eprintln!("{KUBECTL} is missing: skipping the kubectl checks");
            return None;
        }
        let output = tokio::process::Command::new(KUBECTL)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.dir.path().join("kubectl-cache"))
            .args(args)
            .output();
        Some(
            tokio::time::timeout(STEP, output)
                .await
                .expect("kubectl finishes")
                .unwrap(),
        )
    }

    pub fn kubelet_requests_to(&self, prefix: &str) -> Vec<Recorded> {
        self.kubelet
            .requests()
            .into_iter()
            .filter(|r| r.path_and_query.starts_with(prefix))
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

pub fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `response`, which must be a 101 (else the test fails showing its body).
pub async fn switching(response: Response<Incoming>) -> Response<Incoming> {
    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        return response;
    }
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    panic!(
        "expected 101, got {status}: {}",
        String::from_utf8_lossy(&body)
    );
}

/// The next non-empty data chunk of a body, or `None` at its end.
pub async fn next_chunk(body: &mut Incoming) -> Option<Bytes> {
    loop {
        let frame = tokio::time::timeout(STEP, body.frame())
            .await
            .expect("a chunk arrives while the stream is open");
        match frame {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    if !data.is_empty() {
                        return Some(data);
                    }
                }
            }
            Some(Err(e)) => panic!("{e}"),
            None => return None,
        }
    }
}
