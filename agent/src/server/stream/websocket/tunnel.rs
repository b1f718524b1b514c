//! port-forward tunnelled over WebSocket (`SPDY/3.1+portforward.k8s.io`):
//! the client already speaks SPDY, one binary message at a time, so the
//! payloads go to the runtime's SPDY connection as they are and its bytes
//! come back as binary messages, as kube-apiserver's tunnelling does. The
//! SPDY frames are never parsed here.

use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// How much of the runtime's output goes into one message at most.
const MAX_MESSAGE: usize = 32 * 1024;

/// How long the client gets to take the closing handshake.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Moves bytes between `client`'s binary messages and `runtime` until the
/// client closes or the runtime's connection ends.
pub(super) async fn run<C, R>(client: WebSocketStream<C>, runtime: R)
where
    C: AsyncRead + AsyncWrite + Unpin,
    R: AsyncRead + AsyncWrite + Unpin,
{
    let (mut client_sink, mut client_stream) = client.split();
    let (mut runtime_read, mut runtime_write) = tokio::io::split(runtime);
    let upstream = async {
        while let Some(message) = client_stream.next().await {
            match message {
                Ok(Message::Binary(data)) => {
                    if let Err(e) = runtime_write.write_all(&data).await {
                        tracing::debug!(error = %e, "the runtime's port-forward connection takes no more");
                        // Its output (and end) may still come.
                        std::future::pending::<()>().await;
                    }
                }
                Ok(Message::Close(_)) => break,
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "the client's WebSocket failed");
                    break;
                }
            }
        }
    };
    let downstream = async {
        let mut buffer = vec![0u8; MAX_MESSAGE];
        loop {
            match runtime_read.read(&mut buffer).await {
                Ok(0) => break,
                Ok(n) => {
                    let message = Message::Binary(Bytes::copy_from_slice(&buffer[..n]));
                    if let Err(e) = client_sink.send(message).await {
                        tracing::debug!(error = %e, "the client's WebSocket takes no more");
                        return;
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "the runtime's port-forward connection failed");
                    break;
                }
            }
        }
        let close = CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        };
        let _ = client_sink.send(Message::Close(Some(close))).await;
    };
    tokio::select! {
        () = upstream => tracing::debug!("the client closed the port-forward tunnel"),
        () = downstream => {}
    }
    let _ = tokio::time::timeout(CLOSE_GRACE, client_sink.flush()).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_tungstenite::tungstenite::protocol::Role;

    #[tokio::test]
    async fn messages_and_bytes_pass_unchanged_both_ways() {
        let (client_io, agent_io) = tokio::io::duplex(64 * 1024);
        let (runtime_io, mut runtime) = tokio::io::duplex(64 * 1024);
        let agent = tokio::spawn(async move {
            let client = WebSocketStream::from_raw_socket(agent_io, Role::Server, None).await;
            run(client, runtime_io).await;
        });
        let mut client = WebSocketStream::from_raw_socket(client_io, Role::Client, None).await;

        client
            .send(Message::Binary(Bytes::from_static(
                b"\x80\x03\x00\x06frames",
            )))
            .await
            .unwrap();
        client
            .send(Message::Binary(Bytes::from_static(b" as they are")))
            .await
            .unwrap();
        let mut got = [0u8; 22];
        runtime.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"\x80\x03\x00\x06frames as they are");

        runtime.write_all(b"from the runtime").await.unwrap();
        let mut echoed = Vec::new();
        while echoed.len() < 16 {
            match client.next().await.unwrap().unwrap() {
                Message::Binary(data) => echoed.extend_from_slice(&data),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(echoed, b"from the runtime");

        // The runtime hangs up: the client gets a normal close.
        drop(runtime);
        match client.next().await.unwrap().unwrap() {
            Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::Normal),
            other => panic!("unexpected {other:?}"),
        }
        agent.await.unwrap();
    }
}
