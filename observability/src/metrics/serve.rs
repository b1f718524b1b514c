//! The plain-HTTP `/metrics` and `/healthz` endpoint of the standalone
//! control-plane commands (`berth scheduler`, `controller-manager`,
//! `cloud-controller`), behind their `--metrics-bind-address`, as
//! kube-scheduler and controller-runtime serve theirs. One server for all
//! of them, so each command only binds and spawns it.
//!
//! The address it serves on is also advertised (see [`advertised_address`])
//! so the command's leader-election Lease can carry it, which is how the API
//! server's scrape-target discovery finds the component.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::OnceLock;

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use super::MetricsRegistry;

/// The annotation on a leader-election Lease naming the `HOST:PORT` its
/// holder serves `/metrics` on (plain HTTP).
pub const METRICS_ADDRESS_ANNOTATION: &str = "berth.dev/metrics-address";

static ADVERTISED: OnceLock<String> = OnceLock::new();

/// The `HOST:PORT` this process serves its control-plane metrics on, once a
/// [`MetricsServer`] is bound; leader election writes it on its Lease.
pub fn advertised_address() -> Option<&'static str> {
    ADVERTISED.get().map(String::as_str)
}

/// A bound metrics endpoint, not yet serving.
#[derive(Debug)]
pub struct MetricsServer {
    listener: TcpListener,
    registry: MetricsRegistry,
}

impl MetricsServer {
    /// Binds `address` (`HOST:PORT`; port 0 picks a free one) for
    /// `registry` and advertises where it listens: the bound address, or
    /// this host's name with the port when bound to every interface.
    pub async fn bind(address: &str, registry: MetricsRegistry) -> std::io::Result<Self> {
        let listener = TcpListener::bind(address).await?;
        let bound = listener.local_addr()?;
        let _ = ADVERTISED.set(advertise(bound));
        Ok(Self { listener, registry })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let registry = self.registry;
        let router = Router::new()
            .route(
                "/metrics",
                get(move |headers: HeaderMap| async move { metrics(&registry, &headers) }),
            )
            .route("/healthz", get(|| async { "ok" }));
        axum::serve(self.listener, router)
            .with_graceful_shutdown(shutdown)
            .await
    }
}

fn metrics(registry: &MetricsRegistry, headers: &HeaderMap) -> impl IntoResponse {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let (content_type, body) = registry.encode_for(accept);
    (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body)
}

/// Where a scraper reaches `bound`: itself, unless it is every interface,
/// then this host's name.
fn advertise(bound: SocketAddr) -> String {
    if !bound.ip().is_unspecified() {
        return bound.to_string();
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".to_owned());
    format!("{host}:{}", bound.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_specific_address_is_advertised_as_is_and_every_interface_by_host_name() {
        assert_eq!(
            advertise("127.0.0.1:10259".parse().unwrap()),
            "127.0.0.1:10259"
        );
        let any = advertise("0.0.0.0:10257".parse().unwrap());
        assert!(
            any.ends_with(":10257") && !any.starts_with("0.0.0.0"),
            "{any}"
        );
    }

    #[tokio::test]
    async fn serves_the_registry_and_health_over_plain_http() {
        let registry = MetricsRegistry::with_process_metrics();
        let server = MetricsServer::bind("127.0.0.1:0", registry).await.unwrap();
        let addr = server.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(async {
            let _ = stopped.await;
        }));
        let get = |path: &'static str| async move {
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            stream.write_all(request.as_bytes()).await.unwrap();
            let mut answer = String::new();
            stream.read_to_string(&mut answer).await.unwrap();
            answer
        };
        let metrics = get("/metrics").await;
        assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
        assert!(metrics.contains("text/plain; version=0.0.4"), "{metrics}");
        assert!(metrics.contains("process_start_time_seconds"), "{metrics}");
        let health = get("/healthz").await;
        assert!(
            health.starts_with("HTTP/1.1 200") && health.ends_with("ok"),
            "{health}"
        );
        assert_eq!(advertised_address(), Some(addr.to_string().as_str()));
        let _ = stop.send(());
        task.await.unwrap().unwrap();
    }
}
