//! SPDY/3.1 frames and their wire layout: an 8-byte header (control bit,
//! version and type, or a stream id; flags; 24-bit length), then the body.
//! Header blocks go through the connection's zlib contexts, so frames are
//! encoded and decoded strictly in connection order. Pure: no I/O.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::header_block::{HeaderCompressor, HeaderDecompressor, Headers};
use super::SpdyError;

/// The protocol version in every control frame.
const VERSION: u16 = 3;

/// The largest frame body the 24-bit length allows.
pub(crate) const MAX_FRAME_BODY: usize = (1 << 24) - 1;

/// A frame's fixed header length.
const HEADER: usize = 8;

/// FLAG_FIN: the sender sends nothing more on the stream.
const FLAG_FIN: u8 = 0x01;
/// FLAG_UNIDIRECTIONAL (SYN_STREAM): the receiver must not answer with data.
const FLAG_UNIDIRECTIONAL: u8 = 0x02;

/// Control frame types.
mod kind {
    pub const SYN_STREAM: u16 = 1;
    pub const SYN_REPLY: u16 = 2;
    pub const RST_STREAM: u16 = 3;
    pub const SETTINGS: u16 = 4;
    pub const PING: u16 = 6;
    pub const GOAWAY: u16 = 7;
    pub const HEADERS: u16 = 8;
    pub const WINDOW_UPDATE: u16 = 9;
}

/// RST_STREAM status codes used here.
pub(crate) mod rst_status {
    /// The stream is not accepted (a peer-initiated stream we do not serve).
    pub const REFUSED_STREAM: u32 = 3;
    /// The stream is no longer needed (what streaming servers send at the end).
    #[cfg(test)]
    pub const CANCEL: u32 = 5;
}

/// One frame of a SPDY/3.1 connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame {
    /// Opens a stream.
    SynStream {
        stream_id: u32,
        associated_to: u32,
        /// 0 (highest) to 7.
        priority: u8,
        fin: bool,
        unidirectional: bool,
        headers: Headers,
    },
    /// Accepts a stream the other side opened.
    SynReply {
        stream_id: u32,
        fin: bool,
        headers: Headers,
    },
    /// Ends a stream abnormally.
    RstStream { stream_id: u32, status: u32 },
    /// Connection parameters: (flags, id, value).
    Settings {
        clear: bool,
        entries: Vec<(u8, u32, u32)>,
    },
    /// Asks for (or is) the echo of the same id.
    Ping { id: u32 },
    /// The sender opens no more streams and accepts none above `last_good_stream_id`.
    GoAway {
        last_good_stream_id: u32,
        status: u32,
    },
    /// More headers for a stream.
    Headers {
        stream_id: u32,
        fin: bool,
        headers: Headers,
    },
    /// Flow control credit for a stream (0: the connection).
    WindowUpdate { stream_id: u32, delta: u32 },
    /// Bytes of a stream; `fin` half-closes it.
    Data {
        stream_id: u32,
        fin: bool,
        data: Bytes,
    },
    /// A control frame of a type this side does not know; the protocol says ignore it.
    Unknown { kind: u16 },
}

/// Encodes the frames one side sends, with its header compression context.
pub(crate) struct Encoder {
    headers: HeaderCompressor,
}

impl Encoder {
    pub fn new() -> Self {
        Self {
            headers: HeaderCompressor::new(),
        }
    }

    /// Appends `frame`'s wire form to `out`.
    pub fn encode(&mut self, frame: &Frame, out: &mut BytesMut) -> Result<(), SpdyError> {
        let mut body = BytesMut::new();
        let (kind, flags) = match frame {
            Frame::SynStream {
                stream_id,
                associated_to,
                priority,
                fin,
                unidirectional,
                headers,
            } => {
                body.put_u32(stream_id & 0x7fff_ffff);
                body.put_u32(associated_to & 0x7fff_ffff);
                body.put_u8((priority & 0x07) << 5);
                body.put_u8(0); // slot
                body.extend_from_slice(&self.headers.compress(headers)?);
                let unidirectional = if *unidirectional {
                    FLAG_UNIDIRECTIONAL
                } else {
                    0
                };
                (kind::SYN_STREAM, fin_flag(*fin) | unidirectional)
            }
            Frame::SynReply {
                stream_id,
                fin,
                headers,
            } => {
                body.put_u32(stream_id & 0x7fff_ffff);
                body.extend_from_slice(&self.headers.compress(headers)?);
                (kind::SYN_REPLY, fin_flag(*fin))
            }
            Frame::Headers {
                stream_id,
                fin,
                headers,
            } => {
                body.put_u32(stream_id & 0x7fff_ffff);
                body.extend_from_slice(&self.headers.compress(headers)?);
                (kind::HEADERS, fin_flag(*fin))
            }
            frame => return encode_without_headers(frame, out),
        };
        put_control(out, kind, flags, &body)
    }
}

/// Appends the wire form of a frame that carries no header block (data,
/// PING, RST_STREAM …) to `out`: no compression context needed, so any
/// task of the connection may encode these.
pub(crate) fn encode_without_headers(frame: &Frame, out: &mut BytesMut) -> Result<(), SpdyError> {
    let mut body = BytesMut::new();
    let (kind, flags) = match frame {
        Frame::Data {
            stream_id,
            fin,
            data,
        } => {
            check_body(data.len())?;
            out.put_u32(stream_id & 0x7fff_ffff);
            put_flags_and_length(out, fin_flag(*fin), data.len());
            out.extend_from_slice(data);
            return Ok(());
        }
        Frame::RstStream { stream_id, status } => {
            body.put_u32(stream_id & 0x7fff_ffff);
            body.put_u32(*status);
            (kind::RST_STREAM, 0)
        }
        Frame::Settings { clear, entries } => {
            body.put_u32(
                u32::try_from(entries.len())
                    .map_err(|_| SpdyError::Malformed("too many settings"))?,
            );
            for (flags, id, value) in entries {
                body.put_u32((u32::from(*flags) << 24) | (id & 0x00ff_ffff));
                body.put_u32(*value);
            }
            (kind::SETTINGS, u8::from(*clear))
        }
        Frame::Ping { id } => {
            body.put_u32(*id);
            (kind::PING, 0)
        }
        Frame::GoAway {
            last_good_stream_id,
            status,
        } => {
            body.put_u32(last_good_stream_id & 0x7fff_ffff);
            body.put_u32(*status);
            (kind::GOAWAY, 0)
        }
        Frame::WindowUpdate { stream_id, delta } => {
            body.put_u32(stream_id & 0x7fff_ffff);
            body.put_u32(delta & 0x7fff_ffff);
            (kind::WINDOW_UPDATE, 0)
        }
        Frame::SynStream { .. } | Frame::SynReply { .. } | Frame::Headers { .. } => {
            return Err(SpdyError::Malformed(
                "a frame with headers needs the connection's header compression",
            ))
        }
        Frame::Unknown { .. } => {
            return Err(SpdyError::Malformed(
                "a frame of unknown type cannot be sent",
            ))
        }
    };
    put_control(out, kind, flags, &body)
}

fn put_control(out: &mut BytesMut, kind: u16, flags: u8, body: &[u8]) -> Result<(), SpdyError> {
    check_body(body.len())?;
    out.put_u16(0x8000 | VERSION);
    out.put_u16(kind);
    put_flags_and_length(out, flags, body.len());
    out.extend_from_slice(body);
    Ok(())
}

fn fin_flag(fin: bool) -> u8 {
    if fin {
        FLAG_FIN
    } else {
        0
    }
}

fn check_body(length: usize) -> Result<(), SpdyError> {
    if length > MAX_FRAME_BODY {
        return Err(SpdyError::Malformed("a frame body is over 16 MiB"));
    }
    Ok(())
}

fn put_flags_and_length(out: &mut BytesMut, flags: u8, length: usize) {
    let length = u32::try_from(length).expect("checked against MAX_FRAME_BODY");
    out.put_u32((u32::from(flags) << 24) | length);
}

/// Decodes the frames the other side sends, with its header compression context.
pub(crate) struct Decoder {
    headers: HeaderDecompressor,
}

impl Decoder {
    pub fn new() -> Self {
        Self {
            headers: HeaderDecompressor::new(),
        }
    }

    /// Takes the first whole frame off `buffer`; `None` (and `buffer`
    /// untouched) while the frame is still incomplete.
    pub fn decode(&mut self, buffer: &mut BytesMut) -> Result<Option<Frame>, SpdyError> {
        if buffer.len() < HEADER {
            return Ok(None);
        }
        let word = u32::from_be_bytes([buffer[0], buffer[1], buffer[2], buffer[3]]);
        let flags = buffer[4];
        let length = u32::from_be_bytes([0, buffer[5], buffer[6], buffer[7]]) as usize;
        if buffer.len() < HEADER + length {
            buffer.reserve(HEADER + length - buffer.len());
            return Ok(None);
        }
        buffer.advance(HEADER);
        let mut body = buffer.split_to(length).freeze();
        let fin = flags & FLAG_FIN != 0;
        if word & 0x8000_0000 == 0 {
            return Ok(Some(Frame::Data {
                stream_id: word,
                fin,
                data: body,
            }));
        }
        let version = ((word >> 16) & 0x7fff) as u16;
        if version != VERSION {
            return Err(SpdyError::UnsupportedVersion(version));
        }
        let kind = (word & 0xffff) as u16;
        let need = |body: &Bytes, count: usize| {
            if body.len() < count {
                Err(SpdyError::Malformed("a control frame is too short"))
            } else {
                Ok(())
            }
        };
        let frame = match kind {
            kind::SYN_STREAM => {
                need(&body, 10)?;
                let stream_id = body.get_u32() & 0x7fff_ffff;
                let associated_to = body.get_u32() & 0x7fff_ffff;
                let priority = body.get_u8() >> 5;
                body.advance(1); // slot
                Frame::SynStream {
                    stream_id,
                    associated_to,
                    priority,
                    fin,
                    unidirectional: flags & FLAG_UNIDIRECTIONAL != 0,
                    headers: self.headers.decompress(&body)?,
                }
            }
            kind::SYN_REPLY => {
                need(&body, 4)?;
                let stream_id = body.get_u32() & 0x7fff_ffff;
                Frame::SynReply {
                    stream_id,
                    fin,
                    headers: self.headers.decompress(&body)?,
                }
            }
            kind::HEADERS => {
                need(&body, 4)?;
                let stream_id = body.get_u32() & 0x7fff_ffff;
                Frame::Headers {
                    stream_id,
                    fin,
                    headers: self.headers.decompress(&body)?,
                }
            }
            kind::RST_STREAM => {
                need(&body, 8)?;
                Frame::RstStream {
                    stream_id: body.get_u32() & 0x7fff_ffff,
                    status: body.get_u32(),
                }
            }
            kind::SETTINGS => {
                need(&body, 4)?;
                let count = body.get_u32() as usize;
                need(&body, count.saturating_mul(8))?;
                let entries = (0..count)
                    .map(|_| {
                        let word = body.get_u32();
                        ((word >> 24) as u8, word & 0x00ff_ffff, body.get_u32())
                    })
                    .collect();
                Frame::Settings {
                    clear: flags & 0x01 != 0,
                    entries,
                }
            }
            kind::PING => {
                need(&body, 4)?;
                Frame::Ping { id: body.get_u32() }
            }
            kind::GOAWAY => {
                need(&body, 4)?;
                let last_good_stream_id = body.get_u32() & 0x7fff_ffff;
                // SPDY/2 peers send no status.
                let status = if body.len() >= 4 { body.get_u32() } else { 0 };
                Frame::GoAway {
                    last_good_stream_id,
                    status,
                }
            }
            kind::WINDOW_UPDATE => {
                need(&body, 8)?;
                Frame::WindowUpdate {
                    stream_id: body.get_u32() & 0x7fff_ffff,
                    delta: body.get_u32() & 0x7fff_ffff,
                }
            }
            kind => Frame::Unknown { kind },
        };
        Ok(Some(frame))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Headers {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn every_kind_of_frame() -> Vec<Frame> {
        vec![
            Frame::SynStream {
                stream_id: 1,
                associated_to: 0,
                priority: 0,
                fin: false,
                unidirectional: false,
                headers: headers(&[("streamtype", "error")]),
            },
            Frame::SynStream {
                stream_id: 3,
                associated_to: 1,
                priority: 7,
                fin: true,
                unidirectional: true,
                headers: headers(&[("streamtype", "stdin")]),
            },
            Frame::SynReply {
                stream_id: 1,
                fin: false,
                headers: headers(&[]),
            },
            Frame::RstStream {
                stream_id: 5,
                status: rst_status::CANCEL,
            },
            Frame::Settings {
                clear: true,
                entries: vec![(0, 4, 1000), (1, 7, 65536)],
            },
            Frame::Ping { id: 2 },
            Frame::GoAway {
                last_good_stream_id: 9,
                status: 0,
            },
            Frame::Headers {
                stream_id: 3,
                fin: true,
                headers: headers(&[("a", "b")]),
            },
            Frame::WindowUpdate {
                stream_id: 0,
                delta: 65536,
            },
            Frame::Data {
                stream_id: 5,
                fin: false,
                data: Bytes::from_static(b"hello"),
            },
            Frame::Data {
                stream_id: 0x7fff_ffff,
                fin: true,
                data: Bytes::new(),
            },
        ]
    }

    #[test]
    fn every_frame_round_trips_in_connection_order() {
        let frames = every_kind_of_frame();
        let mut encoder = Encoder::new();
        let mut wire = BytesMut::new();
        for frame in &frames {
            encoder.encode(frame, &mut wire).unwrap();
        }
        let mut decoder = Decoder::new();
        let mut decoded = Vec::new();
        // Byte by byte: a partial frame waits, whole ones come out in order.
        let mut buffer = BytesMut::new();
        for byte in wire {
            buffer.put_u8(byte);
            while let Some(frame) = decoder.decode(&mut buffer).unwrap() {
                decoded.push(frame);
            }
        }
        assert!(buffer.is_empty());
        assert_eq!(decoded, frames);
    }

    #[test]
    fn frames_have_the_spdy3_layout() {
        let cases: [(Frame, &[u8]); 4] = [
            (
                Frame::Ping { id: 1 },
                b"\x80\x03\x00\x06\x00\x00\x00\x04\x00\x00\x00\x01",
            ),
            (
                Frame::Data {
                    stream_id: 3,
                    fin: true,
                    data: Bytes::from_static(b"hi"),
                },
                b"\x00\x00\x00\x03\x01\x00\x00\x02hi",
            ),
            (
                Frame::RstStream {
                    stream_id: 1,
                    status: rst_status::REFUSED_STREAM,
                },
                b"\x80\x03\x00\x03\x00\x00\x00\x08\x00\x00\x00\x01\x00\x00\x00\x03",
            ),
            (
                Frame::GoAway {
                    last_good_stream_id: 0,
                    status: 0,
                },
                b"\x80\x03\x00\x07\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00",
            ),
        ];
        for (frame, wire) in cases {
            let mut out = BytesMut::new();
            Encoder::new().encode(&frame, &mut out).unwrap();
            assert_eq!(&out[..], wire, "{frame:?}");
        }
    }

    #[test]
    fn foreign_and_broken_control_frames() {
        let cases: [(&str, &[u8], Result<Frame, ()>); 4] = [
            (
                "an unknown type is passed over",
                b"\x80\x03\x00\x0a\x00\x00\x00\x02xy",
                Ok(Frame::Unknown { kind: 10 }),
            ),
            (
                "SPDY/2 is refused",
                b"\x80\x02\x00\x06\x00\x00\x00\x04\x00\x00\x00\x01",
                Err(()),
            ),
            (
                "a short RST_STREAM",
                b"\x80\x03\x00\x03\x00\x00\x00\x04\x00\x00\x00\x01",
                Err(()),
            ),
            (
                "settings counting more than they hold",
                b"\x80\x03\x00\x04\x00\x00\x00\x04\x00\x00\x00\x09",
                Err(()),
            ),
        ];
        for (name, wire, want) in cases {
            let got = Decoder::new().decode(&mut BytesMut::from(wire));
            match want {
                Ok(frame) => assert_eq!(got.unwrap(), Some(frame), "{name}"),
                Err(()) => assert!(got.is_err(), "{name}: {got:?}"),
            }
        }
    }
}
