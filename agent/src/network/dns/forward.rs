//! Forwarding of names outside the cluster to the node's own resolvers
//! (the `nameserver`s of `--resolv-conf`), as CoreDNS's `forward . /etc/resolv.conf`
//! does: UDP first, TCP when the answer is truncated, each server in turn.
//! Messages are encoded and decoded by hickory; only the TCP length prefix
//! is framed here.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::network::resolv_conf::ResolvConf;

/// How long one upstream server gets to answer.
const TIMEOUT: Duration = Duration::from_secs(2);
/// The UDP payload size advertised upstream (the DNS flag day's value).
const UDP_PAYLOAD: u16 = 1232;

/// Why a query could not be forwarded.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// `--resolv-conf` names no usable nameserver.
    #[error("the node's resolv.conf names no nameserver to forward to")]
    NoServers,
    /// Every server failed; the last error.
    #[error("forwarding to {server}: {reason}")]
    Upstream {
        /// The server tried last.
        server: SocketAddr,
        /// What went wrong.
        reason: String,
    },
}

/// The upstream resolvers of this node.
#[derive(Debug, Clone)]
pub struct Forwarder {
    servers: Vec<SocketAddr>,
}

impl Forwarder {
    /// Forwards to `servers`, in order.
    pub fn new(servers: Vec<SocketAddr>) -> Self {
        Self { servers }
    }

    /// The `nameserver`s of `conf`, on port 53; addresses that do not parse
    /// are skipped.
    pub fn from_resolv_conf(conf: &ResolvConf) -> Self {
        Self::new(
            conf.nameservers
                .iter()
                .filter_map(|s| s.parse::<IpAddr>().ok())
                .map(|ip| SocketAddr::new(ip, 53))
                .collect(),
        )
    }

    /// The servers queries go to.
    pub fn servers(&self) -> &[SocketAddr] {
        &self.servers
    }

    /// Sends `query` upstream (recursion desired) and returns the first
    /// complete response.
    pub async fn forward(&self, query: Query) -> Result<Message, ForwardError> {
        let mut request = Message::new();
        let id = (uuid::Uuid::new_v4().as_u128() & 0xffff) as u16;
        request
            .set_id(id)
            .set_message_type(MessageType::Query)
            .set_op_code(OpCode::Query)
            .set_recursion_desired(true)
            .add_query(query);
        let mut edns = Edns::new();
        edns.set_max_payload(UDP_PAYLOAD).set_version(0);
        request.set_edns(edns);
        let bytes = request.to_vec().map_err(|e| ForwardError::Upstream {
            server: SocketAddr::from(([0, 0, 0, 0], 53)),
            reason: e.to_string(),
        })?;
        let mut last = ForwardError::NoServers;
        for server in &self.servers {
            let reply = match tokio::time::timeout(TIMEOUT, udp(*server, &bytes, id)).await {
                Ok(Ok(reply)) if reply.truncated() => {
                    tokio::time::timeout(TIMEOUT, tcp(*server, &bytes, id)).await
                }
                other => other,
            };
            match reply {
                Ok(Ok(message)) => return Ok(message),
                Ok(Err(reason)) => {
                    last = ForwardError::Upstream {
                        server: *server,
                        reason,
                    }
                }
                Err(_) => {
                    last = ForwardError::Upstream {
                        server: *server,
                        reason: format!("no answer within {TIMEOUT:?}"),
                    }
                }
            }
        }
        Err(last)
    }
}

fn check(reply: &[u8], id: u16) -> Result<Message, String> {
    let message = Message::from_vec(reply).map_err(|e| e.to_string())?;
    if message.id() == id && message.message_type() == MessageType::Response {
        Ok(message)
    } else {
        Err("a reply that does not answer the query".to_owned())
    }
}

async fn udp(server: SocketAddr, request: &[u8], id: u16) -> Result<Message, String> {
    let local: SocketAddr = if server.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = tokio::net::UdpSocket::bind(local)
        .await
        .map_err(|e| e.to_string())?;
    socket.connect(server).await.map_err(|e| e.to_string())?;
    socket.send(request).await.map_err(|e| e.to_string())?;
    let mut buffer = vec![0u8; 65_535];
    loop {
        let n = socket.recv(&mut buffer).await.map_err(|e| e.to_string())?;
        // A stray datagram with another id is dropped; wait for ours.
        if let Ok(message) = check(&buffer[..n], id) {
            return Ok(message);
        }
    }
}

async fn tcp(server: SocketAddr, request: &[u8], id: u16) -> Result<Message, String> {
    let mut stream = tokio::net::TcpStream::connect(server)
        .await
        .map_err(|e| e.to_string())?;
    let length = u16::try_from(request.len()).map_err(|e| e.to_string())?;
    let mut framed = length.to_be_bytes().to_vec();
    framed.extend_from_slice(request);
    stream.write_all(&framed).await.map_err(|e| e.to_string())?;
    let length = stream.read_u16().await.map_err(|e| e.to_string())?;
    let mut reply = vec![0u8; usize::from(length)];
    stream
        .read_exact(&mut reply)
        .await
        .map_err(|e| e.to_string())?;
    check(&reply, id)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use hickory_proto::op::ResponseCode;
    use hickory_proto::rr::{Name, RecordType};
    use serde_json::json;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::network::dns::handler::Handler;
    use crate::network::dns::records::ClusterRecords;
    use crate::network::dns::BoundServer;

    /// A headless Service with `count` ready endpoints.
    fn big_headless(count: usize) -> ClusterRecords {
        let service = serde_json::from_value(json!({
            "metadata": {"name": "big", "namespace": "default"},
            "spec": {"clusterIP": "None"}
        }))
        .unwrap();
        let endpoints: Vec<_> = (0..count)
            .map(|i| json!({"addresses": [format!("10.42.{}.{}", i / 200, 1 + i % 200)]}))
            .collect();
        let slice = serde_json::from_value(json!({
            "metadata": {"name": "big-1", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": "big"}},
            "addressType": "IPv4",
            "endpoints": endpoints
        }))
        .unwrap();
        ClusterRecords::build("cluster.local", 1, &[service], &[slice])
    }

    #[tokio::test]
    async fn answers_too_big_for_udp_come_over_tcp() {
        let (_tx, rx) = tokio::sync::watch::channel(Arc::new(big_headless(300)));
        let server = BoundServer::bind(
            "127.0.0.1:0".parse().unwrap(),
            Handler::new(rx, Forwarder::new(Vec::new())),
        )
        .await
        .unwrap();
        let address = server.address();
        let cancel = CancellationToken::new();
        let serving = tokio::spawn(server.serve(cancel.clone()));
        let client = Forwarder::new(vec![address]);
        let query = |name: &str, qtype| Query::query(Name::from_ascii(name).unwrap(), qtype);

        // Over UDP alone the answer is cut (EDNS payload 1232 bytes) …
        let mut request = Message::new();
        request
            .set_id(7)
            .add_query(query("big.default.svc.cluster.local.", RecordType::A));
        let cut = udp(address, &request.to_vec().unwrap(), 7).await.unwrap();
        assert!(cut.truncated());
        // … so the forwarder asks again over TCP.
        let big = client
            .forward(query("big.default.svc.cluster.local.", RecordType::A))
            .await
            .unwrap();
        assert_eq!(big.response_code(), ResponseCode::NoError);
        assert!(!big.truncated());
        assert_eq!(big.answers().len(), 300, "every endpoint, over TCP");

        let missing = client
            .forward(query("nope.default.svc.cluster.local.", RecordType::A))
            .await
            .unwrap();
        assert_eq!(missing.response_code(), ResponseCode::NXDomain);
        assert!(missing.header().authoritative());

        // Nothing to forward to: SERVFAIL, as a resolver with no upstream answers.
        let outside = client
            .forward(query("example.com.", RecordType::A))
            .await
            .unwrap();
        assert_eq!(outside.response_code(), ResponseCode::ServFail);
        cancel.cancel();
        serving.await.unwrap();
    }
}
