//! kube-proxy's per-Service health checks: for every Service with
//! `externalTrafficPolicy: Local` and a `healthCheckNodePort`, an HTTP
//! server on that port answers 200 while this node runs an endpoint of it
//! and 503 otherwise, so a load balancer sends only to nodes that can serve.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// What one health check reports: the Service and its endpoints on this node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Check {
    /// The Service's namespace.
    pub namespace: String,
    /// The Service's name.
    pub name: String,
    /// How many of its endpoints run on this node.
    pub local_endpoints: usize,
}

/// The answer kube-proxy gives for `check`: status and JSON body.
pub fn answer(check: &Check) -> (StatusCode, String) {
    let status = if check.local_endpoints > 0 {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "service": {"namespace": check.namespace, "name": check.name},
        "localEndpoints": check.local_endpoints,
        "serviceProxyHealthy": true,
    });
    (status, body.to_string())
}

struct Listener {
    check: Arc<Mutex<Check>>,
    stop: CancellationToken,
}

/// The health-check servers of one node, opened and closed as Services
/// come and go.
pub struct HealthChecks {
    address: IpAddr,
    listeners: HashMap<u16, Listener>,
    tasks: JoinSet<()>,
    cancel: CancellationToken,
}

impl HealthChecks {
    /// Servers on `address` (the node's), stopped when `cancel` fires.
    pub fn new(address: IpAddr, cancel: CancellationToken) -> Self {
        Self {
            address,
            listeners: HashMap::new(),
            tasks: JoinSet::new(),
            cancel,
        }
    }

    /// Serves exactly `checks` (by port) from now on.
    pub async fn update(&mut self, checks: BTreeMap<u16, Check>) {
        self.listeners.retain(|port, listener| {
            let keep = checks.contains_key(port);
            if !keep {
                listener.stop.cancel();
            }
            keep
        });
        for (port, check) in checks {
            if let Some(listener) = self.listeners.get(&port) {
                *listener.check.lock().unwrap_or_else(|e| e.into_inner()) = check;
                continue;
            }
            let socket = SocketAddr::new(self.address, port);
            let bound = match tokio::net::TcpListener::bind(socket).await {
                Ok(bound) => bound,
                Err(e) => {
                    tracing::warn!(%socket, error = %e, "cannot serve a Service health check");
                    continue;
                }
            };
            let check = Arc::new(Mutex::new(check));
            let stop = self.cancel.child_token();
            self.tasks
                .spawn(serve(bound, Arc::clone(&check), stop.clone()));
            self.listeners.insert(port, Listener { check, stop });
        }
    }

    /// Stops every server and waits for them.
    pub async fn shutdown(mut self) {
        for listener in self.listeners.values() {
            listener.stop.cancel();
        }
        while self.tasks.join_next().await.is_some() {}
    }
}

async fn serve(
    listener: tokio::net::TcpListener,
    check: Arc<Mutex<Check>>,
    stop: CancellationToken,
) {
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else {
            continue;
        };
        let check = Arc::clone(&check);
        connections.spawn(async move {
            let service =
                hyper::service::service_fn(move |_request: Request<hyper::body::Incoming>| {
                    let current = check.lock().unwrap_or_else(|e| e.into_inner()).clone();
                    async move {
                        let (status, body) = answer(&current);
                        let response = Response::builder()
                            .status(status)
                            .header("Content-Type", "application/json")
                            .header("X-Content-Type-Options", "nosniff")
                            .body(Full::new(Bytes::from(body)))
                            .expect("a valid response");
                        Ok::<_, Infallible>(response)
                    }
                });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
        while connections.try_join_next().is_some() {}
    }
    connections.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_without_local_endpoints_is_unavailable() {
        let mut check = Check {
            namespace: "default".into(),
            name: "web".into(),
            local_endpoints: 0,
        };
        let (status, body) = answer(&check);
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&body).unwrap(),
            json!({"service": {"namespace": "default", "name": "web"}, "localEndpoints": 0, "serviceProxyHealthy": true})
        );
        check.local_endpoints = 2;
        assert_eq!(answer(&check).0, StatusCode::OK);
    }

    #[tokio::test]
    async fn checks_open_answer_and_close() {
        let cancel = CancellationToken::new();
        let mut checks = HealthChecks::new("127.0.0.1".parse().unwrap(), cancel.clone());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let check = Check {
            namespace: "default".into(),
            name: "web".into(),
            local_endpoints: 1,
        };
        checks.update(BTreeMap::from([(port, check)])).await;
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).await.unwrap();
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        assert!(reply.contains(r#""localEndpoints":1"#), "{reply}");
        checks.update(BTreeMap::new()).await;
        checks.shutdown().await;
        assert!(tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err());
    }
}
