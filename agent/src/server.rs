//! The node's kubelet API: the HTTPS server the API server proxies `kubectl
//! logs`, `exec`, `attach`, `cp` and `port-forward` to, and that serves the
//! node's resource usage (`/stats/summary`, `/metrics/resource`) and its
//! Prometheus metrics (`/metrics`, `/metrics/cadvisor`). Clients must present
//! a certificate of the cluster CA. It reads logs and relays streams to the
//! runtime's streaming server; it never changes pods.
//!
//! HTTP/1.1 only (ALPN `http/1.1`): exec, attach and port-forward are
//! connection upgrades, which HTTP/2 cannot carry.

mod container_logs;
mod handle;
mod kubeconfig;
mod metrics;
mod request;
mod stats;
mod stream;
#[cfg(test)]
mod tests;
mod tls;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::metrics::KubeletMetrics;
use crate::runtime::Runtime;

pub use kubeconfig::ca_from_kubeconfig;
pub use request::{NodeRequest, PodRef, RequestError, Streams};

/// How long a client has to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the kubelet API listens and with which certificates: the caller
/// reads these from flags and the agent's kubeconfig.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The address to listen on (kubelet's port is 10250).
    pub listen: SocketAddr,
    /// The node's name, put into a generated serving certificate.
    pub node_name: String,
    /// PEM of the CA whose client certificates are accepted (the cluster CA,
    /// see [`ca_from_kubeconfig`]).
    pub client_ca_pem: String,
    /// PEM of the serving certificate (chain); a self-signed one is made at
    /// start when unset, as kubelet does without `--tls-cert-file`.
    pub serving_cert_pem: Option<String>,
    /// PEM of the serving certificate's private key.
    pub serving_key_pem: Option<String>,
}

/// Why the kubelet API could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The listen address is taken or not ours.
    #[error("cannot listen on {address} for the kubelet API: {source}; stop whatever uses the port or choose another kubelet port")]
    Bind {
        /// The address asked for.
        address: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The certificates given do not make a TLS configuration.
    #[error("kubelet API TLS: {0}")]
    Tls(String),
    /// Generating the self-signed serving certificate failed.
    #[error("generating the kubelet API's serving certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    /// The kubeconfig names no usable cluster CA.
    #[error("kubeconfig {path}: {reason}")]
    Kubeconfig {
        /// The kubeconfig file.
        path: std::path::PathBuf,
        /// What is missing or wrong.
        reason: String,
    },
}

/// A bound kubelet API server, ready to serve: binding first lets the caller
/// learn the address (port 0 in tests) and fail early on a taken port.
pub struct Server {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    serving_cert_pem: String,
    handler: Arc<handle::Handler>,
}

impl Server {
    /// Binds `config.listen` and prepares TLS; serves nothing until
    /// [`Server::serve`]. `/metrics` serves `metrics`, which the node's pod
    /// loop and runtime feed.
    pub async fn bind(
        config: ServerConfig,
        runtime: Arc<dyn Runtime>,
        metrics: KubeletMetrics,
    ) -> Result<Self, ServerError> {
        let (acceptor, serving_cert_pem) = tls::acceptor(&config)?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServerError::Bind {
                    address: config.listen,
                    source,
                })?;
        Ok(Self {
            listener,
            acceptor,
            serving_cert_pem,
            handler: Arc::new(handle::Handler::new(
                config.node_name.clone(),
                runtime,
                metrics,
            )),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// PEM of the certificate it serves (the generated one when none was
    /// given), for clients that want to verify it.
    pub fn serving_cert_pem(&self) -> &str {
        &self.serving_cert_pem
    }

    /// Serves connections until `cancel` fires, then closes them all
    /// (streams included) and returns.
    pub async fn serve(self, cancel: CancellationToken) {
        tracing::info!(address = ?self.listener.local_addr().ok(), "kubelet API listening");
        let mut connections = JoinSet::new();
        loop {
            let (tcp, peer) = tokio::select! {
                _ = cancel.cancelled() => break,
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::warn!(error = %e, "kubelet API accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            };
            connections.spawn(connection(
                tcp,
                peer,
                self.acceptor.clone(),
                Arc::clone(&self.handler),
                cancel.clone(),
            ));
        }
        connections.shutdown().await;
    }
}

/// Binds the kubelet API and serves it until `cancel` fires.
pub async fn run(
    config: ServerConfig,
    runtime: Arc<dyn Runtime>,
    metrics: KubeletMetrics,
    cancel: CancellationToken,
) -> Result<(), ServerError> {
    Server::bind(config, runtime, metrics)
        .await?
        .serve(cancel)
        .await;
    Ok(())
}

/// What an upgraded request leaves for its connection to run once the 101
/// response is out: the byte-for-byte splice of client and runtime.
pub(crate) type Splice = Arc<Mutex<Option<BoxFuture<'static, ()>>>>;

/// Serves one client connection: TLS, HTTP/1.1 requests, and at most one
/// upgraded stream, which ends the HTTP part of the connection.
async fn connection(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    handler: Arc<handle::Handler>,
    cancel: CancellationToken,
) {
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "kubelet API TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "kubelet API TLS handshake timed out");
            return;
        }
    };
    let splice: Splice = Arc::default();
    let slot = Arc::clone(&splice);
    let service = hyper::service::service_fn(move |request| {
        let handler = Arc::clone(&handler);
        let slot = Arc::clone(&slot);
        async move { Ok::<_, std::convert::Infallible>(handler.handle(request, &slot).await) }
    });
    let served = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(tls), service)
        .with_upgrades();
    tokio::select! {
        result = served => if let Err(e) = result {
            tracing::debug!(%peer, error = %e, "kubelet API connection ended with an error");
        },
        _ = cancel.cancelled() => return,
    }
    let upgraded = crate::lock(&splice).take();
    if let Some(upgraded) = upgraded {
        tokio::select! {
            _ = upgraded => {}
            _ = cancel.cancelled() => {}
        }
    }
}
