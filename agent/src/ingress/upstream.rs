//! Keep-alive HTTP/1.1 connections from the ingress proxy to endpoints, held
//! per client connection: the requests of one client connection go out one
//! after another on the same upstream connection, so forwarding a request
//! takes no shared pool lock, builds no pool key and spawns no task; only
//! concurrent requests (h2 streams) open more connections.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::JoinSet;

/// How long connecting to an endpoint may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a serial request waits for its reused connection to finish the
/// previous exchange before opening another.
const READY_TIMEOUT: Duration = Duration::from_secs(1);
/// Idle upstream connections kept per client connection.
const MAX_IDLE: usize = 16;

/// Why a request could not be forwarded.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The endpoint refused or could not be reached.
    #[error("connect: {0}")]
    Connect(#[source] std::io::Error),
    /// The endpoint did not accept the connection in time.
    #[error("connect: timed out after {CONNECT_TIMEOUT:?}")]
    ConnectTimeout,
    /// The HTTP exchange failed.
    #[error(transparent)]
    Http(#[from] hyper::Error),
}

/// The tasks driving upstream connections, shared by the whole proxy so
/// they outlive a client connection that hands its upgraded one to a tunnel,
/// and are aborted with the proxy.
#[derive(Default)]
pub struct Drivers(Mutex<JoinSet<()>>);

impl Drivers {
    fn spawn(&self, driver: impl std::future::Future<Output = ()> + Send + 'static) {
        let mut set = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while set.try_join_next().is_some() {}
        set.spawn(driver);
    }
}

/// The upstream connections of one client connection, idle between requests.
#[derive(Default)]
pub struct Upstreams {
    idle: Mutex<Vec<(SocketAddr, SendRequest<Incoming>)>>,
}

impl Upstreams {
    /// Sends `request` to `endpoint` on an idle connection to it, else a new
    /// one. With `serial` (an HTTP/1 client: one request at a time) the idle
    /// connection is awaited until its previous response body is done; else
    /// only a ready one is taken. A reused connection that the endpoint closed
    /// before the request went out is replaced by a new one, as an unsent
    /// request is safe to retry.
    pub async fn send(
        &self,
        drivers: &Drivers,
        endpoint: SocketAddr,
        mut request: Request<Incoming>,
        serial: bool,
    ) -> Result<Response<Incoming>, UpstreamError> {
        if let Some(mut sender) = self.reuse(endpoint, serial).await {
            match sender.try_send_request(request).await {
                Ok(response) => {
                    self.put_back(endpoint, sender);
                    return Ok(response);
                }
                Err(mut error) => match error.take_message() {
                    Some(unsent) => request = unsent,
                    None => return Err(error.into_error().into()),
                },
            }
        }
        let mut sender = dial(drivers, endpoint).await?;
        let response = sender.send_request(request).await?;
        self.put_back(endpoint, sender);
        Ok(response)
    }

    /// An idle connection to `endpoint` able to take a request.
    async fn reuse(&self, endpoint: SocketAddr, serial: bool) -> Option<SendRequest<Incoming>> {
        let mut sender = {
            let mut idle = self.lock();
            let i = idle
                .iter()
                .rposition(|(a, s)| *a == endpoint && (serial || s.is_ready()))?;
            idle.swap_remove(i).1
        };
        if sender.is_ready() {
            return Some(sender);
        }
        match tokio::time::timeout(READY_TIMEOUT, sender.ready()).await {
            Ok(Ok(())) => Some(sender),
            _ => None,
        }
    }

    /// Keeps `sender` for the next request unless its connection is gone.
    fn put_back(&self, endpoint: SocketAddr, sender: SendRequest<Incoming>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.lock();
        if idle.len() >= MAX_IDLE {
            idle.retain(|(_, s)| !s.is_closed());
            if idle.len() >= MAX_IDLE {
                idle.remove(0);
            }
        }
        idle.push((endpoint, sender));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(SocketAddr, SendRequest<Incoming>)>> {
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A new HTTP/1.1 connection to `endpoint` (no Nagle delay), its driver on
/// `drivers`; upgrades (WebSocket) are handed on when they happen.
async fn dial(
    drivers: &Drivers,
    endpoint: SocketAddr,
) -> Result<SendRequest<Incoming>, UpstreamError> {
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(endpoint))
        .await
        .map_err(|_| UpstreamError::ConnectTimeout)?
        .map_err(UpstreamError::Connect)?;
    let _ = tcp.set_nodelay(true);
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    drivers.spawn(async move {
        if let Err(error) = connection.with_upgrades().await {
            tracing::debug!(%endpoint, %error, "upstream connection ended with an error");
        }
    });
    Ok(sender)
}
