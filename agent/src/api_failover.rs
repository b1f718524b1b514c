//! A local forwarder in front of every API server of a cluster, so a node
//! keeps talking to the cluster when one master goes away (RKE2's agent load
//! balancer does the same). The agent's clients dial `https://127.0.0.1:PORT`;
//! each connection is passed, bytes untouched (TLS stays end to end, every
//! master's serving certificate covers 127.0.0.1), to the first master that
//! accepts it, starting with the one that answered last. A master that dies
//! drops its connections; the watches reconnect and land on the next one.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long one master gets to accept a connection before the next is tried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Why the forwarder could not start.
#[derive(Debug, thiserror::Error)]
pub enum FailoverError {
    /// A `--server` entry is not an `https://HOST:PORT` URL.
    #[error("--server {url:?} is not a URL like https://10.0.0.1:6443")]
    Url {
        /// The text given.
        url: String,
    },
    /// The local port could not be bound.
    #[error("listening on 127.0.0.1 for the API forwarder: {0}")]
    Listen(#[from] std::io::Error),
}

/// The upstream `HOST:PORT` of each `https://` URL in `urls`.
pub fn upstreams(urls: &[&str]) -> Result<Vec<String>, FailoverError> {
    urls.iter()
        .map(|url| {
            let bad = || FailoverError::Url {
                url: (*url).to_owned(),
            };
            let uri = url.parse::<http::Uri>().map_err(|_| bad())?;
            if uri.scheme_str() != Some("https") {
                return Err(bad());
            }
            let authority = uri.authority().ok_or_else(bad)?;
            let port = authority.port_u16().unwrap_or(443);
            Ok(format!("{}:{port}", authority.host()))
        })
        .collect()
}

/// The order to try the masters in: the last one that answered, then the rest.
fn attempt_order(preferred: usize, count: usize) -> impl Iterator<Item = usize> {
    (0..count).map(move |offset| (preferred + offset) % count)
}

/// A running forwarder; stops when its token is cancelled.
#[derive(Debug)]
pub struct ApiFailover {
    local: SocketAddr,
    task: JoinHandle<()>,
}

impl ApiFailover {
    /// Listens on an ephemeral loopback port and forwards to `upstreams`
    /// (`HOST:PORT`) until `cancel` fires.
    pub async fn start(
        upstreams: Vec<String>,
        cancel: CancellationToken,
    ) -> Result<Self, FailoverError> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let local = listener.local_addr()?;
        tracing::info!(%local, masters = ?upstreams, "forwarding the API to every master");
        let task = tokio::spawn(accept_until(listener, Arc::new(upstreams), cancel));
        Ok(Self { local, task })
    }

    /// The URL the node's clients use.
    pub fn url(&self) -> String {
        format!("https://{}", self.local)
    }

    /// Waits until the forwarder and its connections have stopped (after cancel).
    pub async fn stopped(self) {
        let _ = self.task.await;
    }
}

async fn accept_until(
    listener: TcpListener,
    upstreams: Arc<Vec<String>>,
    cancel: CancellationToken,
) {
    let preferred = Arc::new(AtomicUsize::new(0));
    let connections = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            () = cancel.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let client = match accepted {
            Ok((client, _)) => client,
            Err(e) => {
                tracing::warn!(error = %e, "accepting an API connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (upstreams, preferred, cancel) = (
            Arc::clone(&upstreams),
            Arc::clone(&preferred),
            cancel.clone(),
        );
        connections.spawn(async move {
            let Some(server) = connect_first(&upstreams, &preferred).await else {
                return;
            };
            let mut client = client;
            let mut server = server;
            tokio::select! {
                () = cancel.cancelled() => {}
                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
            }
        });
    }
    connections.close();
    connections.wait().await;
}

/// A connection to the first master that accepts one, remembered as preferred.
async fn connect_first(upstreams: &[String], preferred: &AtomicUsize) -> Option<TcpStream> {
    let start = preferred.load(Ordering::Relaxed);
    for index in attempt_order(start, upstreams.len()) {
        let upstream = &upstreams[index];
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(upstream.as_str())).await {
            Ok(Ok(stream)) => {
                if index != start {
                    tracing::warn!(%upstream, "API server failover: now using this master");
                    preferred.store(index, Ordering::Relaxed);
                }
                let _ = stream.set_nodelay(true);
                return Some(stream);
            }
            Ok(Err(e)) => tracing::debug!(%upstream, error = %e, "master refused"),
            Err(_) => tracing::debug!(%upstream, "master did not answer in time"),
        }
    }
    tracing::warn!(masters = ?upstreams, "no API server accepted a connection");
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn urls_give_host_and_port() {
        type Case<'a> = (&'a [&'a str], Result<Vec<&'a str>, &'a str>);
        let cases: [Case; 4] = [
            (
                &["https://10.0.0.1:6443", "https://m2.example:7443/"],
                Ok(vec!["10.0.0.1:6443", "m2.example:7443"]),
            ),
            (&["https://[fd00::1]:6443"], Ok(vec!["[fd00::1]:6443"])),
            (&["https://10.0.0.1"], Ok(vec!["10.0.0.1:443"])),
            (&["http://10.0.0.1:6443"], Err("http://10.0.0.1:6443")),
        ];
        for (urls, want) in cases {
            match (upstreams(urls), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want),
                (Err(FailoverError::Url { url }), Err(want)) => assert_eq!(url, want),
                (got, want) => panic!("{urls:?}: {got:?}, wanted {want:?}"),
            }
        }
    }

    #[test]
    fn the_preferred_master_comes_first_then_the_others_in_turn() {
        assert_eq!(attempt_order(0, 3).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(attempt_order(2, 3).collect::<Vec<_>>(), [2, 0, 1]);
    }

    /// A server that answers every connection with `name`.
    async fn named_server(name: &'static str) -> (String, JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let _ = stream.write_all(name.as_bytes()).await;
            }
        });
        (address, task)
    }

    async fn read_through(failover: &ApiFailover) -> String {
        let mut stream = TcpStream::connect(failover.local).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        answer
    }

    #[tokio::test]
    async fn connections_move_to_the_next_master_when_one_goes_away() {
        let (first, first_task) = named_server("m1").await;
        let (second, _second_task) = named_server("m2").await;
        let cancel = CancellationToken::new();
        let failover = ApiFailover::start(vec![first, second], cancel.clone())
            .await
            .unwrap();
        assert_eq!(read_through(&failover).await, "m1");
        first_task.abort();
        let _ = first_task.await;
        assert_eq!(read_through(&failover).await, "m2");
        cancel.cancel();
        failover.stopped().await;
    }
}
