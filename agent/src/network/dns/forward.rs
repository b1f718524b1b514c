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
