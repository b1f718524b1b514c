//! The cluster DNS every real node runs (CoreDNS's job, here a hickory
//! server inside the agent): it answers `cluster.local` from watch caches of
//! Services and EndpointSlices and forwards everything else to the node's
//! own resolvers. It never asks the API per query; pods reach it through
//! the `kube-system/kube-dns` ClusterIP, which the service proxy sends to
//! the node's own server (`internalTrafficPolicy: Local`).

pub mod endpoint_slice;
pub mod forward;
pub mod handler;
pub mod records;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::{stream, StreamExt};
use hickory_server::ServerFuture;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::watcher;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::network::cache::{objects, ready, reflected};
use crate::network::resolv_conf::ResolvConf;
use forward::Forwarder;
use handler::Handler;
use records::ClusterRecords;

/// How long watch changes are gathered before the records are rebuilt.
const SETTLE: Duration = Duration::from_millis(50);
/// How long a TCP client may stay idle.
const TCP_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the DNS server could not run.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// The listen address could not be bound.
    #[error(
        "binding the cluster DNS to {address} ({protocol}): {source}; pick another --dns-listen"
    )]
    Bind {
        /// The address.
        address: SocketAddr,
        /// `udp` or `tcp`.
        protocol: &'static str,
        /// The system's error.
        source: std::io::Error,
    },
    /// `--resolv-conf` could not be read.
    #[error("reading --resolv-conf {path}: {source}")]
    ResolvConf {
        /// The file.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
}

/// Where and how a node serves DNS.
#[derive(Debug, Clone)]
pub struct DnsConfig {
    /// Address the server binds, UDP and TCP (`--dns-listen`).
    pub listen: SocketAddr,
    /// The cluster domain (`--cluster-domain`).
    pub cluster_domain: String,
    /// The node's resolv.conf, whose nameservers get the other names (`--resolv-conf`).
    pub resolv_conf: PathBuf,
}

/// A DNS server bound to its sockets, ready to serve.
pub struct BoundServer {
    server: ServerFuture<Handler>,
    address: SocketAddr,
}

impl BoundServer {
    /// Binds UDP and TCP on `listen` for `handler`.
    pub async fn bind(listen: SocketAddr, handler: Handler) -> Result<Self, DnsError> {
        let udp = tokio::net::UdpSocket::bind(listen)
            .await
            .map_err(|source| DnsError::Bind {
                address: listen,
                protocol: "udp",
                source,
            })?;
        let address = udp.local_addr().map_err(|source| DnsError::Bind {
            address: listen,
            protocol: "udp",
            source,
        })?;
        // TCP on the same port UDP got (which matters when asked for port 0).
        let tcp = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|source| DnsError::Bind {
                address,
                protocol: "tcp",
                source,
            })?;
        let mut server = ServerFuture::new(handler);
        server.register_socket(udp);
        server.register_listener(tcp, TCP_TIMEOUT);
        Ok(Self { server, address })
    }

    /// The address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Serves until `cancel` fires, then stops taking requests and waits
    /// for the ones in flight.
    pub async fn serve(mut self, cancel: CancellationToken) {
        tokio::select! {
            _ = cancel.cancelled() => {}
            result = self.server.block_until_done() => {
                if let Err(error) = result {
                    tracing::warn!(%error, "the cluster DNS server stopped");
                }
                return;
            }
        }
        if let Err(error) = self.server.shutdown_gracefully().await {
            tracing::debug!(%error, "stopping the cluster DNS server");
        }
    }
}

/// The current time as an SOA serial (what CoreDNS uses: when the data changed).
fn serial_now() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
        .unwrap_or(0)
}

/// Runs node `node`'s DNS server until `cancel` fires: waits for the first
/// complete lists of Services and EndpointSlices, binds, publishes the
/// node's kube-dns endpoint, keeps the records in step with the watches,
/// and withdraws the endpoint on the way out.
#[tracing::instrument(name = "cluster_dns", skip_all, fields(node = %node, listen = %config.listen))]
pub async fn run(
    client: kube::Client,
    node: String,
    config: DnsConfig,
    cancel: CancellationToken,
) -> Result<(), DnsError> {
    let resolv = ResolvConf::read(&config.resolv_conf).map_err(|source| DnsError::ResolvConf {
        path: config.resolv_conf.clone(),
        source,
    })?;
    let forwarder = Forwarder::from_resolv_conf(&resolv);
    if forwarder.servers().is_empty() {
        tracing::warn!(resolv_conf = %config.resolv_conf.display(), "no nameserver to forward names outside the cluster to");
    }

    let (services, service_events) = reflected::<Service>(&client, watcher::Config::default());
    let (slices, slice_events) = reflected::<EndpointSlice>(&client, watcher::Config::default());
    let mut changes = std::pin::pin!(stream::select(service_events, slice_events));
    let build = || {
        let services = objects(&services);
        let slices = objects(&slices);
        Arc::new(ClusterRecords::build(
            &config.cluster_domain,
            serial_now(),
            &services,
            &slices,
        ))
    };

    // A half-filled cache would answer NXDOMAIN for names that exist.
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            change = changes.next() => if change.is_none() { return Ok(()) },
        }
        if ready(&services) && ready(&slices) {
            break;
        }
    }
    let (records_tx, records_rx) = watch::channel(build());
    let server = BoundServer::bind(config.listen, Handler::new(records_rx, forwarder)).await?;
    tracing::info!(node = %node, listen = %server.address(), "cluster DNS serving");
    let serving = tokio::spawn(server.serve(cancel.clone()));
    endpoint_slice::keep_trying_to_publish(client.clone(), &node, config.listen, &cancel).await;
    'watch: loop {
        tokio::select! {
            _ = cancel.cancelled() => break 'watch,
            change = changes.next() => if change.is_none() { break 'watch },
        }
        let settle = tokio::time::sleep(SETTLE);
        tokio::pin!(settle);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break 'watch,
                _ = &mut settle => break,
                change = changes.next() => if change.is_none() { break 'watch },
            }
        }
        records_tx.send_replace(build());
    }
    if let Err(error) = endpoint_slice::withdraw(client, &node).await {
        tracing::warn!(%error, "removing the node's kube-dns endpoint failed");
    }
    let _ = serving.await;
    Ok(())
}
