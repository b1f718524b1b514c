//! exec and attach over WebSocket (`v5.channel.k8s.io`, `v4.channel.k8s.io`)
//! translated to the runtime's SPDY remotecommand protocol v4: each binary
//! message is `[channel][data]` (0 stdin, 1 stdout, 2 stderr, 3 error,
//! 4 resize; in v5 `[255][channel]` closes a stream), each channel one SPDY
//! stream. It relays; it never interprets what the command reads or prints.

use bytes::{BufMut, Bytes, BytesMut};
use futures::{Sink, SinkExt, Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

use super::super::spdy::{
    encode_without_headers, rst_status, Encoder, Frame, FrameReader, MAX_FRAME_BODY,
};
use crate::server::Streams;

/// How long the client gets to take the closing handshake.
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// The largest data frame sent to the runtime.
const MAX_DATA: usize = 32 * 1024;

/// v5's message type for "the sender closed this stream".
const STREAM_CLOSE: u8 = 255;

/// The most of the runtime's status (a JSON `Status`) kept for the client.
const MAX_STATUS: usize = 64 * 1024;

/// How many client messages may wait for the runtime's connection.
const PENDING_CLIENT_FRAMES: usize = 16;

/// The WebSocket subprotocols for exec and attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::server) enum ChannelProtocol {
    /// Channels 0–4.
    V4,
    /// v4 plus stream close messages (stdin EOF), kubectl 1.30+.
    V5,
}

impl ChannelProtocol {
    pub fn name(self) -> &'static str {
        match self {
            Self::V4 => "v4.channel.k8s.io",
            Self::V5 => "v5.channel.k8s.io",
        }
    }
}

/// The streams of a remotecommand session: a WebSocket channel each, and a
/// SPDY stream each with its `streamtype` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Channel {
    Stdin,
    Stdout,
    Stderr,
    Error,
    Resize,
}

impl Channel {
    fn number(self) -> u8 {
        match self {
            Self::Stdin => 0,
            Self::Stdout => 1,
            Self::Stderr => 2,
            Self::Error => 3,
            Self::Resize => 4,
        }
    }

    fn from_number(number: u8) -> Option<Self> {
        [
            Self::Stdin,
            Self::Stdout,
            Self::Stderr,
            Self::Error,
            Self::Resize,
        ]
        .into_iter()
        .find(|channel| channel.number() == number)
    }

    fn stream_type(self) -> &'static str {
        match self {
            Self::Stdin => "stdin",
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
            Self::Error => "error",
            Self::Resize => "resize",
        }
    }
}

/// The SPDY streams opened for `streams`, with their ids: the error stream
/// first, then stdin, stdout, stderr and resize as asked, in the order
/// client-go opens them. The runtime waits for exactly these.
fn plan(streams: Streams) -> Vec<(u32, Channel)> {
    [
        (true, Channel::Error),
        (streams.stdin, Channel::Stdin),
        (streams.stdout, Channel::Stdout),
        (streams.stderr, Channel::Stderr),
        (streams.tty, Channel::Resize),
    ]
    .into_iter()
    .filter(|(wanted, _)| *wanted)
    .zip((1u32..).step_by(2))
    .map(|((_, channel), id)| (id, channel))
    .collect()
}

fn stream_of(plan: &[(u32, Channel)], channel: Channel) -> Option<u32> {
    plan.iter().find(|(_, c)| *c == channel).map(|(id, _)| *id)
}

fn channel_of(plan: &[(u32, Channel)], stream_id: u32) -> Option<Channel> {
    plan.iter()
        .find(|(id, _)| *id == stream_id)
        .map(|(_, c)| *c)
}

/// What a client's binary message asks for.
#[derive(Debug, PartialEq, Eq)]
enum ClientMessage {
    /// Bytes for stdin or a terminal size for resize.
    Data(Channel, Bytes),
    /// The client sends nothing more on the channel (v5).
    Close(Channel),
    /// Nothing to pass on (an empty message, a channel the client may not write).
    Ignore,
}

fn client_message(protocol: ChannelProtocol, mut message: Bytes) -> ClientMessage {
    let Some(&first) = message.first() else {
        return ClientMessage::Ignore;
    };
    if protocol == ChannelProtocol::V5 && first == STREAM_CLOSE {
        return match message.get(1..) {
            Some(&[number]) => {
                Channel::from_number(number).map_or(ClientMessage::Ignore, ClientMessage::Close)
            }
            _ => ClientMessage::Ignore,
        };
    }
    let data = message.split_off(1);
    match Channel::from_number(first) {
        Some(channel @ (Channel::Stdin | Channel::Resize)) => ClientMessage::Data(channel, data),
        _ => ClientMessage::Ignore,
    }
}

/// `data` as a message on `channel`.
fn channel_message(channel: Channel, data: &[u8]) -> Message {
    let mut message = BytesMut::with_capacity(data.len() + 1);
    message.put_u8(channel.number());
    message.extend_from_slice(data);
    Message::Binary(message.freeze())
}

/// Why the client's side of a session ended.
#[derive(Debug, PartialEq, Eq)]
enum Upstream {
    /// The client closed the WebSocket or went away: the session is over.
    ClientGone,
    /// The runtime's connection takes no more: its output may still come.
    RuntimeGone,
}

/// Runs one session: opens the SPDY streams for `streams` on `runtime`,
/// then relays both ways until the runtime reports the command's status
/// (sent on the error channel) or either side goes away.
pub(super) async fn run<C, R>(
    client: WebSocketStream<C>,
    runtime: R,
    protocol: ChannelProtocol,
    streams: Streams,
) where
    C: AsyncRead + AsyncWrite + Unpin,
    R: AsyncRead + AsyncWrite + Unpin,
{
    let plan = plan(streams);
    let (runtime_read, mut runtime_write) = tokio::io::split(runtime);
    let mut encoder = Encoder::new();
    let mut opening = BytesMut::new();
    for (stream_id, channel) in &plan {
        let syn_stream = Frame::SynStream {
            stream_id: *stream_id,
            associated_to: 0,
            priority: 0,
            fin: false,
            unidirectional: false,
            headers: vec![("streamtype".into(), channel.stream_type().into())],
        };
        if let Err(e) = encoder.encode(&syn_stream, &mut opening) {
            tracing::debug!(error = %e, "cannot open the runtime's SPDY streams");
            return;
        }
    }
    if let Err(e) = runtime_write.write_all(&opening).await {
        tracing::debug!(error = %e, "cannot open the runtime's SPDY streams");
        return;
    }

    let (mut client_sink, mut client_stream) = client.split();
    let (data_tx, data_rx) = mpsc::channel(PENDING_CLIENT_FRAMES);
    let (control_tx, control_rx) = mpsc::unbounded_channel();
    let writing = async {
        write_runtime(runtime_write, data_rx, control_rx).await;
        std::future::pending::<()>().await
    };
    let upstream = async {
        match client_to_runtime(&mut client_stream, &plan, protocol, data_tx).await {
            Upstream::ClientGone => {}
            Upstream::RuntimeGone => std::future::pending().await,
        }
    };
    let downstream = runtime_to_client(
        FrameReader::new(runtime_read),
        &mut client_sink,
        &plan,
        control_tx,
    );
    tokio::select! {
        () = downstream => {}
        () = upstream => tracing::debug!("the client closed the stream"),
        () = writing => {}
    }
    // Sends what is still queued: the closing message, or the answer to the client's.
    let _ = tokio::time::timeout(CLOSE_GRACE, client_sink.flush()).await;
}

/// Writes the frames for the runtime: control answers first, then data.
async fn write_runtime<W: AsyncWrite + Unpin>(
    mut runtime: W,
    mut data: mpsc::Receiver<Bytes>,
    mut control: mpsc::UnboundedReceiver<Bytes>,
) {
    loop {
        let frame = tokio::select! {
            biased;
            Some(frame) = control.recv() => frame,
            Some(frame) = data.recv() => frame,
            else => return,
        };
        if let Err(e) = runtime.write_all(&frame).await {
            tracing::debug!(error = %e, "the runtime's stream connection takes no more");
            return;
        }
    }
}

/// Passes the client's stdin, resizes and stream closes on to the runtime.
async fn client_to_runtime<S>(
    client: &mut S,
    plan: &[(u32, Channel)],
    protocol: ChannelProtocol,
    runtime: mpsc::Sender<Bytes>,
) -> Upstream
where
    S: Stream<Item = Result<Message, WsError>> + Unpin,
{
    let mut closed = Vec::new();
    while let Some(message) = client.next().await {
        let data = match message {
            Ok(Message::Binary(data)) => data,
            Ok(Message::Close(_)) => return Upstream::ClientGone,
            Ok(_) => continue,
            Err(e) => {
                tracing::debug!(error = %e, "the client's WebSocket failed");
                return Upstream::ClientGone;
            }
        };
        let (channel, data, fin) = match client_message(protocol, data) {
            ClientMessage::Data(channel, data) if !data.is_empty() => (channel, data, false),
            ClientMessage::Close(channel) => (channel, Bytes::new(), true),
            ClientMessage::Data(..) | ClientMessage::Ignore => continue,
        };
        let Some(stream_id) = stream_of(plan, channel) else {
            continue;
        };
        if closed.contains(&channel) {
            continue;
        }
        if fin {
            closed.push(channel);
        }
        let mut frames = BytesMut::new();
        let mut chunks: Vec<&[u8]> = data.chunks(MAX_DATA.min(MAX_FRAME_BODY)).collect();
        if chunks.is_empty() {
            chunks.push(&[]);
        }
        let last = chunks.len() - 1;
        for (at, chunk) in chunks.into_iter().enumerate() {
            let frame = Frame::Data {
                stream_id,
                fin: fin && at == last,
                data: Bytes::copy_from_slice(chunk),
            };
            encode_without_headers(&frame, &mut frames).expect("a data frame within limits");
        }
        if runtime.send(frames.freeze()).await.is_err() {
            return Upstream::RuntimeGone;
        }
    }
    Upstream::ClientGone
}

/// Passes the runtime's stdout, stderr and final status on to the client,
/// then closes the WebSocket normally.
async fn runtime_to_client<R, K>(
    mut runtime: FrameReader<R>,
    client: &mut K,
    plan: &[(u32, Channel)],
    control: mpsc::UnboundedSender<Bytes>,
) where
    R: AsyncRead + Unpin,
    K: Sink<Message, Error = WsError> + Unpin,
{
    let mut status = BytesMut::new();
    loop {
        let frame = match runtime.next().await {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(e) => {
                tracing::debug!(error = %e, "the runtime's stream connection failed");
                break;
            }
        };
        let answer = match frame {
            Frame::Data {
                stream_id,
                fin,
                data,
            } => match channel_of(plan, stream_id) {
                Some(Channel::Error) => {
                    let room = MAX_STATUS.saturating_sub(status.len());
                    status.extend_from_slice(&data[..data.len().min(room)]);
                    if fin {
                        break;
                    }
                    None
                }
                Some(channel @ (Channel::Stdout | Channel::Stderr)) if !data.is_empty() => {
                    if let Err(e) = client.send(channel_message(channel, &data)).await {
                        tracing::debug!(error = %e, "the client's WebSocket takes no more");
                        return;
                    }
                    None
                }
                _ => None,
            },
            // The status is complete once its stream ends, however it ends.
            Frame::SynReply {
                stream_id,
                fin: true,
                ..
            }
            | Frame::Headers {
                stream_id,
                fin: true,
                ..
            }
            | Frame::RstStream { stream_id, .. }
                if channel_of(plan, stream_id) == Some(Channel::Error) =>
            {
                break
            }
            Frame::GoAway { .. } => break,
            Frame::Ping { id } => Some(Frame::Ping { id }),
            Frame::SynStream { stream_id, .. } => Some(Frame::RstStream {
                stream_id,
                status: rst_status::REFUSED_STREAM,
            }),
            _ => None,
        };
        if let Some(answer) = answer {
            let mut out = BytesMut::new();
            encode_without_headers(&answer, &mut out).expect("a control frame within limits");
            let _ = control.send(out.freeze());
        }
    }
    if !status.is_empty() {
        if let Err(e) = client.send(channel_message(Channel::Error, &status)).await {
            tracing::debug!(error = %e, "the client's WebSocket takes no more");
            return;
        }
    }
    let close = CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    };
    let _ = client.send(Message::Close(Some(close))).await;
}

#[cfg(test)]
mod tests;
