//! The node's ingress proxy for IngressClass `berth`, run in every agent as
//! ingress-nginx runs as a DaemonSet with host ports: it listens on the
//! node's address (`--ingress-http-port`, `--ingress-https-port`), follows
//! the Ingresses of its classes and the Services, EndpointSlices and TLS
//! Secrets behind them, and forwards each request to a ready endpoint. It
//! announces its ports in the Node annotation [`PORTS_ANNOTATION`], from
//! which the ingress controller fills `status.loadBalancer`.

pub mod proxy;
pub mod routes;
pub mod tls;
pub mod upstream;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::Duration;

use berth_api::kinds::networking::ingressclass::ingress_served_by;
use futures::stream;
use k8s_openapi::api::core::v1::{Node, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::watcher;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::network::cache::{next_burst, objects, ready, reflected};

pub use berth_api::kinds::networking::ingressclass::{
    BERTH_CONTROLLER as CONTROLLER, BERTH_PORTS_ANNOTATION as PORTS_ANNOTATION,
};

/// How long changes are gathered before the table is rebuilt.
const SETTLE: Duration = Duration::from_millis(50);

/// Where the proxy listens; a port of 0 turns that listener off.
#[derive(Debug, Clone, Copy)]
pub struct IngressConfig {
    /// The node's address.
    pub address: IpAddr,
    /// Plain HTTP (80 by default).
    pub http_port: u16,
    /// TLS (443 by default).
    pub https_port: u16,
}

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum IngressError {
    /// A port is taken.
    #[error("cannot listen on {address} for ingress traffic: {source}; free the port or choose another with --ingress-http-port/--ingress-https-port (0 turns it off)")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// The default certificate could not be made.
    #[error("ingress default certificate: {0}")]
    Certificate(String),
}

/// Reads a lock whose data stays consistent even if a writer panicked.
pub(crate) fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Namespaced objects by (namespace, name).
pub(crate) fn by_name<K: kube::Resource>(objects: &[K]) -> HashMap<(&str, &str), &K> {
    objects
        .iter()
        .filter_map(|o| {
            let meta = o.meta();
            Some(((meta.namespace.as_deref()?, meta.name.as_deref()?), o))
        })
        .collect()
}

/// Replaces the value of a lock.
fn replace<T>(lock: &RwLock<T>, value: T) {
    *lock
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = value;
}

/// Runs the proxy of node `node` until `cancel` fires. With both ports 0 it
/// only removes a stale [`PORTS_ANNOTATION`].
pub async fn run(
    client: kube::Client,
    node: String,
    config: IngressConfig,
    cancel: CancellationToken,
) -> Result<(), IngressError> {
    let bind = |port: u16| async move {
        if port == 0 {
            return Ok(None);
        }
        let address = SocketAddr::new(config.address, port);
        TcpListener::bind(address)
            .await
            .map(Some)
            .map_err(|source| IngressError::Bind { address, source })
    };
    let http = bind(config.http_port).await?;
    let https = bind(config.https_port).await?;
    let ports: Vec<String> = [&http, &https]
        .into_iter()
        .flatten()
        .filter_map(|l| l.local_addr().ok())
        .map(|a| a.port().to_string())
        .collect();
    let announce = announce(&client, &node, ports, &cancel);
    if http.is_none() && https.is_none() {
        announce.await;
        return Ok(());
    }
    let resolver = Arc::new(tls::Resolver::new(
        tls::default_certificate().map_err(IngressError::Certificate)?,
    ));
    let acceptor = https.as_ref().map(|_| {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(&resolver) as _);
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        tokio_rustls::TlsAcceptor::from(Arc::new(server))
    });
    let proxy = Arc::new(proxy::Proxy::new());
    let serve_http = async {
        if let Some(listener) = http {
            proxy::serve(listener, None, Arc::clone(&proxy), cancel.clone()).await;
        }
    };
    let serve_https = async {
        if let Some(listener) = https {
            proxy::serve(listener, acceptor, Arc::clone(&proxy), cancel.clone()).await;
        }
    };
    tokio::join!(
        announce,
        serve_http,
        serve_https,
        sync(client.clone(), &proxy, &resolver, &cancel)
    );
    Ok(())
}

/// Keeps the proxy's table and certificates in step with the API.
async fn sync(
    client: kube::Client,
    proxy: &proxy::Proxy,
    resolver: &tls::Resolver,
    cancel: &CancellationToken,
) {
    let all = watcher::Config::default;
    let (ingresses, ingress_events) = reflected::<Ingress>(&client, all());
    let (classes, class_events) = reflected::<IngressClass>(&client, all());
    let (services, service_events) = reflected::<Service>(&client, all());
    let (slices, slice_events) = reflected::<EndpointSlice>(&client, all());
    let (secrets, secret_events) = reflected::<Secret>(&client, all());
    let mut changes = std::pin::pin!(stream::select(
        stream::select(ingress_events, class_events),
        stream::select(stream::select(service_events, slice_events), secret_events),
    ));
    while next_burst(&mut changes, SETTLE, None, None, cancel).await {
        if !(ready(&ingresses)
            && ready(&classes)
            && ready(&services)
            && ready(&slices)
            && ready(&secrets))
        {
            continue;
        }
        let classes = objects(&classes);
        let served: Vec<Ingress> = objects(&ingresses)
            .into_iter()
            .filter(|i| ingress_served_by(i, &classes, CONTROLLER))
            .collect();
        let table = routes::Table::build(&served, &objects(&services), &objects(&slices));
        replace(&proxy.table, Arc::new(table));
        let certificates = tls::Certificates::build(&served, &objects(&secrets));
        replace(&resolver.current, Arc::new(certificates));
        tracing::debug!(ingresses = served.len(), "ingress routes updated");
    }
}

/// Sets (or, with no ports, removes) the node's [`PORTS_ANNOTATION`],
/// retrying until the Node exists or `cancel` fires.
async fn announce(
    client: &kube::Client,
    node: &str,
    ports: Vec<String>,
    cancel: &CancellationToken,
) {
    let api: Api<Node> = Api::all(client.clone());
    let value = (!ports.is_empty()).then(|| ports.join(","));
    let patch = Patch::Merge(serde_json::json!({
        "metadata": {"annotations": {PORTS_ANNOTATION: value}}
    }));
    loop {
        match api.patch(node, &PatchParams::default(), &patch).await {
            Ok(_) => return,
            Err(error) => tracing::debug!(%node, %error, "announcing the ingress ports; retrying"),
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}
