//! SPDY/3 name/value header blocks: the plain layout (a count, then
//! length-prefixed names and values) and the zlib contexts that compress
//! them. One context per direction lives as long as the connection; a block
//! is never compressed or inflated out of order. Pure: no I/O.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};

use super::dictionary::DICTIONARY;
use super::SpdyError;

/// A header block's pairs, in order. A name with several values carries
/// them in one value, separated by NUL, as on the wire.
pub(crate) type Headers = Vec<(String, String)>;

/// The most one header block may inflate to: more is an attack, not headers.
const MAX_HEADER_BLOCK: usize = 256 * 1024;

/// Compresses the header blocks one side sends.
pub(crate) struct HeaderCompressor {
    zlib: Compress,
}

impl HeaderCompressor {
    pub fn new() -> Self {
        let mut zlib = Compress::new(Compression::default(), true);
        zlib.set_dictionary(DICTIONARY)
            .expect("a fresh zlib stream takes a dictionary");
        Self { zlib }
    }

    /// The compressed form of `headers`, flushed so that the peer can
    /// inflate it from this block alone (with the blocks before it).
    pub fn compress(&mut self, headers: &[(String, String)]) -> Result<Vec<u8>, SpdyError> {
        let plain = encode_plain(headers)?;
        let start = self.zlib.total_in();
        let mut compressed = Vec::with_capacity(plain.len() / 2 + 64);
        loop {
            if compressed.capacity() - compressed.len() < 64 {
                compressed.reserve(256);
            }
            let consumed = consumed_since(start, self.zlib.total_in());
            self.zlib
                .compress_vec(&plain[consumed..], &mut compressed, FlushCompress::Sync)
                .map_err(|e| SpdyError::HeaderBlock(e.to_string()))?;
            let consumed = consumed_since(start, self.zlib.total_in());
            // A sync flush is complete once all input is in and the output
            // was not filled to the brim.
            if consumed == plain.len() && compressed.len() < compressed.capacity() {
                return Ok(compressed);
            }
        }
    }
}

/// Inflates the header blocks the other side sends.
pub(crate) struct HeaderDecompressor {
    zlib: Decompress,
}

impl HeaderDecompressor {
    pub fn new() -> Self {
        Self {
            zlib: Decompress::new(true),
        }
    }

    /// The headers of one compressed block.
    pub fn decompress(&mut self, block: &[u8]) -> Result<Headers, SpdyError> {
        let start = self.zlib.total_in();
        let mut plain = Vec::with_capacity(block.len() * 4 + 256);
        loop {
            if plain.capacity() - plain.len() < 256 {
                plain.reserve(4096);
            }
            let (before_in, before_out) = (self.zlib.total_in(), plain.len());
            let consumed = consumed_since(start, before_in);
            match self
                .zlib
                .decompress_vec(&block[consumed..], &mut plain, FlushDecompress::Sync)
            {
                Ok(_) => {}
                Err(e) if e.needs_dictionary().is_some() => {
                    self.zlib
                        .set_dictionary(DICTIONARY)
                        .map_err(|e| SpdyError::HeaderBlock(e.to_string()))?;
                    continue;
                }
                Err(e) => return Err(SpdyError::HeaderBlock(e.to_string())),
            }
            if plain.len() > MAX_HEADER_BLOCK {
                return Err(SpdyError::HeaderBlock(format!(
                    "a header block inflates to more than {MAX_HEADER_BLOCK} bytes"
                )));
            }
            let consumed = consumed_since(start, self.zlib.total_in());
            if consumed == block.len() && plain.len() < plain.capacity() {
                return decode_plain(&plain);
            }
            if self.zlib.total_in() == before_in && plain.len() == before_out {
                return Err(SpdyError::HeaderBlock(
                    "a header block ends in the middle of its compressed data".into(),
                ));
            }
        }
    }
}

fn consumed_since(start: u64, now: u64) -> usize {
    usize::try_from(now - start).expect("a header block fits in memory")
}

/// The plain (uncompressed) layout of `headers`.
fn encode_plain(headers: &[(String, String)]) -> Result<Vec<u8>, SpdyError> {
    let length =
        |s: &str| u32::try_from(s.len()).map_err(|_| SpdyError::Malformed("a header is too long"));
    let mut plain = Vec::new();
    plain.extend_from_slice(&length_of(headers.len())?.to_be_bytes());
    for (name, value) in headers {
        plain.extend_from_slice(&length(name)?.to_be_bytes());
        plain.extend_from_slice(name.as_bytes());
        plain.extend_from_slice(&length(value)?.to_be_bytes());
        plain.extend_from_slice(value.as_bytes());
    }
    Ok(plain)
}

fn length_of(count: usize) -> Result<u32, SpdyError> {
    u32::try_from(count).map_err(|_| SpdyError::Malformed("too many headers"))
}

/// The headers of a plain (inflated) block.
fn decode_plain(plain: &[u8]) -> Result<Headers, SpdyError> {
    let mut cursor = Cursor(plain);
    let count = cursor.length()?;
    let mut headers = Headers::with_capacity(count.min(64));
    for _ in 0..count {
        let name = cursor.string()?;
        let value = cursor.string()?;
        headers.push((name, value));
    }
    Ok(headers)
}

/// What is left of a plain header block.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, count: usize) -> Result<&'a [u8], SpdyError> {
        if self.0.len() < count {
            return Err(SpdyError::Malformed(
                "a header block is shorter than it says",
            ));
        }
        let (taken, rest) = self.0.split_at(count);
        self.0 = rest;
        Ok(taken)
    }

    fn length(&mut self) -> Result<usize, SpdyError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }

    fn string(&mut self) -> Result<String, SpdyError> {
        let length = self.length()?;
        String::from_utf8(self.take(length)?.to_vec())
            .map_err(|_| SpdyError::Malformed("a header is not UTF-8"))
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

    #[test]
    fn blocks_round_trip_through_one_context_per_direction() {
        let blocks = [
            headers(&[("streamtype", "error")]),
            headers(&[("streamtype", "stdin")]),
            headers(&[]),
            headers(&[("port", "80"), ("requestid", "0"), ("streamtype", "data")]),
            headers(&[("x-many", "one\0two"), ("long", &"v".repeat(70_000))]),
        ];
        let mut compressor = HeaderCompressor::new();
        let mut decompressor = HeaderDecompressor::new();
        for block in &blocks {
            let compressed = compressor.compress(block).unwrap();
            assert_eq!(&decompressor.decompress(&compressed).unwrap(), block);
        }
    }

    #[test]
    fn the_first_block_names_the_spdy_dictionary() {
        let compressed = HeaderCompressor::new()
            .compress(&headers(&[("streamtype", "error")]))
            .unwrap();
        // zlib header: CMF, FLG with FDICT (0x20) set, then the dictionary's Adler-32.
        assert_eq!(compressed[1] & 0x20, 0x20, "{compressed:x?}");
        assert_eq!(&compressed[2..6], &[0xe3, 0xc6, 0xa7, 0xc2]);
        // Later blocks continue the stream: no second zlib header.
        let mut compressor = HeaderCompressor::new();
        let first = compressor.compress(&headers(&[("a", "b")])).unwrap();
        let second = compressor.compress(&headers(&[("a", "b")])).unwrap();
        assert!(second.len() < first.len(), "{first:x?} {second:x?}");
    }

    #[test]
    fn broken_blocks_are_errors_not_panics() {
        let mut compressor = HeaderCompressor::new();
        let compressed = compressor
            .compress(&headers(&[("streamtype", "stdout")]))
            .unwrap();
        let cases: [(&str, Vec<u8>); 3] = [
            ("not zlib", b"\xff\xff\xff\xff".to_vec()),
            ("cut short", compressed[..compressed.len() / 2].to_vec()),
            ("empty", Vec::new()),
        ];
        for (name, block) in cases {
            assert!(
                HeaderDecompressor::new().decompress(&block).is_err(),
                "{name}"
            );
        }
        let plain_cases: [(&str, &[u8]); 3] = [
            ("count without pairs", b"\x00\x00\x00\x01"),
            (
                "name longer than the block",
                b"\x00\x00\x00\x01\x00\x00\x00\x09ab",
            ),
            (
                "not UTF-8",
                b"\x00\x00\x00\x01\x00\x00\x00\x01\xff\x00\x00\x00\x00",
            ),
        ];
        for (name, plain) in plain_cases {
            assert!(decode_plain(plain).is_err(), "{name}");
        }
    }
}
