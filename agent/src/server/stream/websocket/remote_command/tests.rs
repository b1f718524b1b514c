//! The translation alone (tables) and whole sessions between a WebSocket
//! client and a stand-in SPDY streaming server, in memory.

use std::time::Duration;

use tokio::io::{DuplexStream, ReadHalf, WriteHalf};
use tokio_tungstenite::tungstenite::protocol::Role;

use super::*;
use crate::server::stream::spdy::Headers;

const ALL: Streams = Streams {
    stdin: true,
    stdout: true,
    stderr: true,
    tty: false,
};

#[test]
fn streams_are_planned_as_client_go_opens_them() {
    let cases = [
        (
            "everything",
            ALL,
            vec![
                (1, Channel::Error),
                (3, Channel::Stdin),
                (5, Channel::Stdout),
                (7, Channel::Stderr),
            ],
        ),
        (
            "a terminal: resize, no stderr",
            Streams {
                stderr: false,
                tty: true,
                ..ALL
            },
            vec![
                (1, Channel::Error),
                (3, Channel::Stdin),
                (5, Channel::Stdout),
                (7, Channel::Resize),
            ],
        ),
        (
            "output only",
            Streams {
                stdin: false,
                ..ALL
            },
            vec![
                (1, Channel::Error),
                (3, Channel::Stdout),
                (5, Channel::Stderr),
            ],
        ),
    ];
    for (name, streams, want) in cases {
        assert_eq!(plan(streams), want, "{name}");
    }
}

#[test]
fn client_messages_by_protocol() {
    use ChannelProtocol::{V4, V5};
    let data = |channel, bytes: &'static [u8]| ClientMessage::Data(channel, Bytes::from(bytes));
    let cases: [(&str, ChannelProtocol, &'static [u8], ClientMessage); 9] = [
        ("stdin", V5, b"\x00hi\n", data(Channel::Stdin, b"hi\n")),
        ("stdin in v4", V4, b"\x00hi", data(Channel::Stdin, b"hi")),
        (
            "resize",
            V5,
            b"\x04{\"Width\":80,\"Height\":24}",
            data(Channel::Resize, b"{\"Width\":80,\"Height\":24}"),
        ),
        (
            "stdin closed",
            V5,
            b"\xff\x00",
            ClientMessage::Close(Channel::Stdin),
        ),
        (
            "no stream close in v4",
            V4,
            b"\xff\x00",
            ClientMessage::Ignore,
        ),
        (
            "a close naming no channel",
            V5,
            b"\xff\x09",
            ClientMessage::Ignore,
        ),
        (
            "a close too long",
            V5,
            b"\xff\x00\x00",
            ClientMessage::Ignore,
        ),
        (
            "the client may not write stdout",
            V5,
            b"\x01out",
            ClientMessage::Ignore,
        ),
        ("empty", V5, b"", ClientMessage::Ignore),
    ];
    for (name, protocol, message, want) in cases {
        assert_eq!(
            client_message(protocol, Bytes::from_static(message)),
            want,
            "{name}"
        );
    }
}

/// The runtime's end of the SPDY connection, speaking through this crate's
/// own framing (its decoder and encoder are tested against the wire layout).
struct FakeRuntime {
    frames: FrameReader<ReadHalf<DuplexStream>>,
    write: WriteHalf<DuplexStream>,
    encoder: Encoder,
}

impl FakeRuntime {
    async fn next(&mut self) -> Frame {
        tokio::time::timeout(Duration::from_secs(5), self.frames.next())
            .await
            .expect("a frame in time")
            .unwrap()
            .expect("the connection open")
    }

    async fn send(&mut self, frame: Frame) {
        let mut out = BytesMut::new();
        self.encoder.encode(&frame, &mut out).unwrap();
        self.write.write_all(&out).await.unwrap();
    }

    /// Accepts the session's streams; their `streamtype`s in order.
    async fn accept(&mut self, count: usize) -> Vec<String> {
        let mut types = Vec::new();
        for _ in 0..count {
            match self.next().await {
                Frame::SynStream {
                    stream_id, headers, ..
                } => {
                    types.push(stream_type(&headers));
                    self.send(Frame::SynReply {
                        stream_id,
                        fin: false,
                        headers: vec![],
                    })
                    .await;
                }
                other => panic!("expected SYN_STREAM, got {other:?}"),
            }
        }
        types
    }

    async fn data(&mut self, stream_id: u32, data: &'static [u8]) {
        self.send(Frame::Data {
            stream_id,
            fin: false,
            data: Bytes::from_static(data),
        })
        .await;
    }
}

fn stream_type(headers: &Headers) -> String {
    headers
        .iter()
        .find(|(name, _)| name == "streamtype")
        .map(|(_, value)| value.clone())
        .unwrap_or_default()
}

/// A session over in-memory connections: the client's WebSocket, the
/// runtime's SPDY end, and the agent's translation running in between.
async fn session(
    protocol: ChannelProtocol,
    streams: Streams,
) -> (
    WebSocketStream<DuplexStream>,
    FakeRuntime,
    tokio::task::JoinHandle<()>,
) {
    let (client_io, agent_client_io) = tokio::io::duplex(64 * 1024);
    let (agent_runtime_io, runtime_io) = tokio::io::duplex(64 * 1024);
    let agent = tokio::spawn(async move {
        let client = WebSocketStream::from_raw_socket(agent_client_io, Role::Server, None).await;
        run(client, agent_runtime_io, protocol, streams).await;
    });
    let client = WebSocketStream::from_raw_socket(client_io, Role::Client, None).await;
    let (read, write) = tokio::io::split(runtime_io);
    let runtime = FakeRuntime {
        frames: FrameReader::new(read),
        write,
        encoder: Encoder::new(),
    };
    (client, runtime, agent)
}

async fn receive(client: &mut WebSocketStream<DuplexStream>) -> Message {
    tokio::time::timeout(Duration::from_secs(5), client.next())
        .await
        .expect("a message in time")
        .expect("the WebSocket open")
        .unwrap()
}

#[tokio::test]
async fn exec_with_stdin_relays_output_stdin_close_and_status() {
    let (mut client, mut runtime, agent) = session(ChannelProtocol::V5, ALL).await;
    assert_eq!(
        runtime.accept(4).await,
        ["error", "stdin", "stdout", "stderr"]
    );

    client
        .send(Message::Binary(Bytes::from_static(b"\x00hi\n")))
        .await
        .unwrap();
    client
        .send(Message::Binary(Bytes::from_static(b"\xff\x00")))
        .await
        .unwrap();
    let stdin = Frame::Data {
        stream_id: 3,
        fin: false,
        data: Bytes::from_static(b"hi\n"),
    };
    assert_eq!(runtime.next().await, stdin);
    let stdin_closed = Frame::Data {
        stream_id: 3,
        fin: true,
        data: Bytes::new(),
    };
    assert_eq!(runtime.next().await, stdin_closed);

    runtime.send(Frame::Ping { id: 2 }).await;
    assert_eq!(runtime.next().await, Frame::Ping { id: 2 });

    runtime.data(5, b"hi\n").await;
    runtime.data(7, b"oops").await;
    let status = br#"{"metadata":{},"status":"Failure","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}"#;
    runtime.data(1, status).await;
    // The streaming server resets its streams when the command is done.
    for stream_id in [1, 3, 5, 7] {
        runtime
            .send(Frame::RstStream {
                stream_id,
                status: rst_status::CANCEL,
            })
            .await;
    }

    let binary = |bytes: &[u8]| Message::Binary(Bytes::copy_from_slice(bytes));
    assert_eq!(receive(&mut client).await, binary(b"\x01hi\n"));
    assert_eq!(receive(&mut client).await, binary(b"\x02oops"));
    let mut error = vec![3u8];
    error.extend_from_slice(status);
    assert_eq!(receive(&mut client).await, binary(&error));
    match receive(&mut client).await {
        Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::Normal),
        other => panic!("expected a normal close, got {other:?}"),
    }
    tokio::time::timeout(Duration::from_secs(5), agent)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_terminal_session_resizes_and_ends_when_the_runtime_hangs_up() {
    let streams = Streams {
        stdin: true,
        stdout: true,
        stderr: false,
        tty: true,
    };
    let (mut client, mut runtime, agent) = session(ChannelProtocol::V4, streams).await;
    assert_eq!(
        runtime.accept(4).await,
        ["error", "stdin", "stdout", "resize"]
    );
    let size = br#"{"Width":100,"Height":40}"#;
    let mut message = vec![4u8];
    message.extend_from_slice(size);
    client.send(Message::Binary(message.into())).await.unwrap();
    let resize = Frame::Data {
        stream_id: 7,
        fin: false,
        data: Bytes::from_static(size),
    };
    assert_eq!(runtime.next().await, resize);

    runtime.data(5, b"/dev/pts/0\r\n").await;
    drop(runtime);
    assert_eq!(
        receive(&mut client).await,
        Message::Binary(Bytes::from_static(b"\x01/dev/pts/0\r\n"))
    );
    assert!(matches!(
        receive(&mut client).await,
        Message::Close(Some(_))
    ));
    tokio::time::timeout(Duration::from_secs(5), agent)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn the_session_ends_when_the_client_closes() {
    let (mut client, mut runtime, agent) = session(ChannelProtocol::V5, ALL).await;
    runtime.accept(4).await;
    client.close(None).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), agent)
        .await
        .unwrap()
        .unwrap();
    // The agent let go of the runtime's connection.
    let ended = tokio::time::timeout(Duration::from_secs(5), runtime.frames.next())
        .await
        .unwrap();
    assert!(matches!(ended, Ok(None)), "{ended:?}");
}
