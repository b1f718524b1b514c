//! Just enough SPDY/3.1 to be a client of a CRI streaming server: frames,
//! header compression, and a cancel-safe frame reader. No flow control: the
//! streaming servers (Go's spdystream) neither send nor honour windows.
//! It never opens the connection; the caller hands it an upgraded one.

mod dictionary;
mod frame;
mod header_block;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt};

use frame::Decoder;
pub(crate) use frame::{encode_without_headers, rst_status, Encoder, Frame, MAX_FRAME_BODY};
#[cfg(test)]
pub(crate) use header_block::Headers;

/// How much the reader asks the connection for at once.
const READ_CHUNK: usize = 32 * 1024;

/// Why a SPDY connection cannot go on.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SpdyError {
    /// The connection failed.
    #[error("SPDY connection: {0}")]
    Io(#[from] std::io::Error),
    /// The peer speaks another SPDY version.
    #[error("the peer sent a SPDY/{0} frame; only SPDY/3.1 is spoken here")]
    UnsupportedVersion(u16),
    /// A frame breaks the framing rules.
    #[error("malformed SPDY frame: {0}")]
    Malformed(&'static str),
    /// A header block does not compress or inflate.
    #[error("SPDY header block: {0}")]
    HeaderBlock(String),
    /// The connection closed in the middle of a frame.
    #[error("the SPDY connection closed in the middle of a frame")]
    Truncated,
}

/// Reads whole frames off one direction of a connection.
pub(crate) struct FrameReader<R> {
    io: R,
    buffer: BytesMut,
    decoder: Decoder,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(io: R) -> Self {
        Self {
            io,
            buffer: BytesMut::new(),
            decoder: Decoder::new(),
        }
    }

    /// The next frame; `None` once the peer closed the connection between
    /// frames. Cancel-safe: a frame cut short by cancellation stays buffered.
    pub async fn next(&mut self) -> Result<Option<Frame>, SpdyError> {
        loop {
            if let Some(frame) = self.decoder.decode(&mut self.buffer)? {
                return Ok(Some(frame));
            }
            self.buffer.reserve(READ_CHUNK);
            if self.io.read_buf(&mut self.buffer).await? == 0 {
                return match self.buffer.is_empty() {
                    true => Ok(None),
                    false => Err(SpdyError::Truncated),
                };
            }
        }
    }
}
