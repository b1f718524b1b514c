//! The framing around an object's own protobuf: the `k8s\0` + `runtime.Unknown` envelope of
//! request and response bodies, and the length-prefixed `WatchEvent` frames of watch streams.

use serde_json::{Map, Value};

use super::decode::{decode_message, MAX_DEPTH};
use super::encode::encode_message;
use super::path::Path;
use super::schema::message_for_kind;
use super::wire::{Reader, WireType, Writer};
use super::{Malformation, ProtobufError, CONTENT_TYPE, MAGIC};

/// A decoded `runtime.Unknown` envelope: the object's type and its own protobuf bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// `apiVersion` of the object inside, e.g. `apps/v1`.
    pub api_version: String,
    /// `kind` of the object inside, e.g. `Deployment`.
    pub kind: String,
    /// The object's protobuf encoding, without apiVersion and kind (they live here).
    pub raw: &'a [u8],
    /// How `raw` is compressed; upstream always leaves it empty.
    pub content_encoding: String,
    /// What `raw` is; empty means protobuf.
    pub content_type: String,
}

fn malformed(path: &str, problem: Malformation) -> ProtobufError {
    ProtobufError::Malformed {
        path: path.to_owned(),
        problem,
    }
}

fn read_string(
    reader: &mut Reader,
    wire_type: WireType,
    path: &str,
) -> Result<String, ProtobufError> {
    let bytes = read_bytes(reader, wire_type, path)?;
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|_| malformed(path, Malformation::InvalidUtf8))
}

fn read_bytes<'a>(
    reader: &mut Reader<'a>,
    wire_type: WireType,
    path: &str,
) -> Result<&'a [u8], ProtobufError> {
    if wire_type != WireType::Len {
        return Err(malformed(
            path,
            Malformation::WrongWireType {
                expected: WireType::Len.name(),
                found: wire_type.name(),
            },
        ));
    }
    reader
        .len_delimited()
        .map_err(|problem| malformed(path, problem))
}

/// Splits a protobuf body (`k8s\0` + `runtime.Unknown`) into type and raw object bytes.
///
/// Errors say what is wrong with the body (no magic, truncated, bad field), so a server can
/// answer 400 with a message the client's author can act on.
pub fn decode_envelope(bytes: &[u8]) -> Result<Envelope<'_>, ProtobufError> {
    let Some(body) = bytes.strip_prefix(&MAGIC) else {
        return Err(ProtobufError::BadMagic);
    };
    let mut envelope = Envelope {
        api_version: String::new(),
        kind: String::new(),
        raw: &[],
        content_encoding: String::new(),
        content_type: String::new(),
    };
    let mut reader = Reader::new(body);
    while !reader.is_empty() {
        let (number, wire_type) = reader
            .key()
            .map_err(|problem| malformed("Unknown", problem))?;
        match number {
            1 => {
                let type_meta = read_bytes(&mut reader, wire_type, "Unknown.typeMeta")?;
                let mut inner = Reader::new(type_meta);
                while !inner.is_empty() {
                    let (number, wire_type) = inner
                        .key()
                        .map_err(|problem| malformed("Unknown.typeMeta", problem))?;
                    match number {
                        1 => {
                            envelope.api_version =
                                read_string(&mut inner, wire_type, "Unknown.typeMeta.apiVersion")?
                        }
                        2 => {
                            envelope.kind =
                                read_string(&mut inner, wire_type, "Unknown.typeMeta.kind")?
                        }
                        _ => inner
                            .skip(wire_type)
                            .map_err(|problem| malformed("Unknown.typeMeta", problem))?,
                    }
                }
            }
            2 => envelope.raw = read_bytes(&mut reader, wire_type, "Unknown.raw")?,
            3 => {
                envelope.content_encoding =
                    read_string(&mut reader, wire_type, "Unknown.contentEncoding")?
            }
            4 => {
                envelope.content_type = read_string(&mut reader, wire_type, "Unknown.contentType")?
            }
            _ => reader
                .skip(wire_type)
                .map_err(|problem| malformed("Unknown", problem))?,
        }
    }
    Ok(envelope)
}

/// Wraps an object's protobuf bytes in the envelope, byte for byte as upstream writes it
/// (type meta, raw, then empty content encoding and content type).
pub fn encode_envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let mut writer = Writer {
        bytes: Vec::with_capacity(raw.len() + api_version.len() + kind.len() + 16),
    };
    writer.bytes.extend_from_slice(&MAGIC);
    write_unknown(&mut writer, api_version, kind, raw);
    writer.bytes
}

fn write_unknown(writer: &mut Writer, api_version: &str, kind: &str, raw: &[u8]) {
    let _ = writer.nested::<()>(1, |writer| {
        writer.len_delimited(1, api_version.as_bytes());
        writer.len_delimited(2, kind.as_bytes());
        Ok(())
    });
    writer.len_delimited(2, raw);
    writer.len_delimited(3, b"");
    writer.len_delimited(4, b"");
}

/// Decodes a whole protobuf body into the JSON object the JSON path would have received:
/// `apiVersion` and `kind` first, then the object's fields.
///
/// An `apiVersion`/`kind` without a protobuf definition is [`ProtobufError::UnknownKind`]
/// (upstream answers 415 for those, e.g. custom resources).
pub fn decode_object(bytes: &[u8]) -> Result<Value, ProtobufError> {
    decode_object_at(bytes, 0)
}

pub(crate) fn decode_object_at(bytes: &[u8], depth: usize) -> Result<Value, ProtobufError> {
    if depth > MAX_DEPTH {
        return Err(malformed("Unknown.raw", Malformation::TooDeep(MAX_DEPTH)));
    }
    let envelope = decode_envelope(bytes)?;
    if !envelope.content_encoding.is_empty() {
        return Err(ProtobufError::UnsupportedContentEncoding(
            envelope.content_encoding,
        ));
    }
    if !envelope.content_type.is_empty() && envelope.content_type != CONTENT_TYPE {
        return Err(ProtobufError::UnsupportedContentType(envelope.content_type));
    }
    let message = message_for_kind(&envelope.api_version, &envelope.kind).ok_or_else(|| {
        ProtobufError::UnknownKind {
            api_version: envelope.api_version.clone(),
            kind: envelope.kind.clone(),
        }
    })?;
    let body = decode_message(message, envelope.raw, &Path::root(message.name), depth)?;
    let mut object = Map::new();
    object.insert("apiVersion".to_owned(), Value::String(envelope.api_version));
    object.insert("kind".to_owned(), Value::String(envelope.kind));
    if let Value::Object(fields) = body {
        object.extend(fields);
    }
    Ok(Value::Object(object))
}

/// Encodes a JSON object that names its own `apiVersion` and `kind` into a protobuf body.
pub fn encode_object(object: &Value) -> Result<Vec<u8>, ProtobufError> {
    let member = |name: &'static str| {
        object
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| ProtobufError::InvalidJson {
                path: name.to_owned(),
                problem: "the object must name its apiVersion and kind as strings".to_owned(),
            })
    };
    let (api_version, kind) = (member("apiVersion")?, member("kind")?);
    let message =
        message_for_kind(api_version, kind).ok_or_else(|| ProtobufError::UnknownKind {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
        })?;
    let mut raw = Writer::default();
    encode_message(
        message,
        Some(object),
        &mut raw,
        &Path::root(message.name),
        0,
    )?;
    Ok(encode_envelope(api_version, kind, &raw.bytes))
}

/// One event of a protobuf watch stream, ready to write: a 4-byte big-endian length, then a
/// `meta.v1.WatchEvent` {type, object: RawExtension{raw = the object's envelope}}.
///
/// The `WatchEvent` itself carries no envelope: upstream's watch stream uses the *raw*
/// protobuf serializer with a length-delimited framer (apimachinery `codec_factory.go`),
/// and only the embedded object is enveloped. `object` is the object's own protobuf bytes.
pub fn encode_watch_event(
    event_type: &str,
    api_version: &str,
    kind: &str,
    object: &[u8],
) -> Vec<u8> {
    let mut writer = Writer {
        bytes: Vec::with_capacity(
            object.len() + event_type.len() + api_version.len() + kind.len() + 32,
        ),
    };
    writer.bytes.extend_from_slice(&[0; 4]);
    writer.len_delimited(1, event_type.as_bytes());
    let _ = writer.nested::<()>(2, |writer| {
        writer.key(1, WireType::Len);
        let envelope_length = MAGIC.len() + unknown_length(api_version, kind, object.len());
        writer.varint(envelope_length as u64);
        writer.bytes.extend_from_slice(&MAGIC);
        write_unknown(writer, api_version, kind, object);
        Ok(())
    });
    let frame_length = (writer.bytes.len() - 4) as u32;
    writer.bytes[..4].copy_from_slice(&frame_length.to_be_bytes());
    writer.bytes
}

fn varint_length(value: usize) -> usize {
    let mut length = 1;
    let mut value = value >> 7;
    while value > 0 {
        length += 1;
        value >>= 7;
    }
    length
}

/// The encoded size of `runtime.Unknown` as `write_unknown` writes it.
fn unknown_length(api_version: &str, kind: &str, raw: usize) -> usize {
    let type_meta = 2
        + varint_length(api_version.len())
        + api_version.len()
        + varint_length(kind.len())
        + kind.len();
    1 + varint_length(type_meta) + type_meta + 1 + varint_length(raw) + raw + 2 + 2
}

/// A decoded watch frame, as a client reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchEvent {
    /// `ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK` or `ERROR`.
    pub event_type: String,
    /// The object, as [`decode_object`] returns it.
    pub object: Value,
}

/// Reads one frame written by [`encode_watch_event`] (length prefix included); the inverse,
/// for clients and tests.
pub fn decode_watch_event(frame: &[u8]) -> Result<WatchEvent, ProtobufError> {
    let Some((prefix, body)) = frame.split_first_chunk::<4>() else {
        return Err(malformed(
            "WatchEvent",
            Malformation::LengthPastEnd {
                length: 4,
                available: frame.len(),
            },
        ));
    };
    let length = u32::from_be_bytes(*prefix) as usize;
    if length != body.len() {
        return Err(malformed(
            "WatchEvent",
            Malformation::LengthPastEnd {
                length: length as u64,
                available: body.len(),
            },
        ));
    }
    let message = message_for_kind("v1", "WatchEvent")
        .ok_or_else(|| ProtobufError::UnknownMessage("WatchEvent".to_owned()))?;
    let root = Path::root(message.name);
    let mut event = match decode_message(message, body, &root, 0)? {
        Value::Object(event) => event,
        _ => {
            return Err(malformed(
                "WatchEvent",
                Malformation::InvalidValue("not an object".to_owned()),
            ))
        }
    };
    let event_type = match event.remove("type") {
        Some(Value::String(event_type)) => event_type,
        _ => String::new(),
    };
    let object = event.remove("object").unwrap_or(Value::Null);
    Ok(WatchEvent { event_type, object })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_round_trips_and_matches_upstream_layout() {
        let bytes = encode_envelope("v1", "Namespace", &[0x0a, 0x00]);
        let expected: &[u8] =
            b"k8s\0\x0a\x0f\x0a\x02v1\x12\x09Namespace\x12\x02\x0a\x00\x1a\x00\x22\x00";
        assert_eq!(bytes, expected);
        let envelope = decode_envelope(&bytes).unwrap();
        assert_eq!(
            (
                envelope.api_version.as_str(),
                envelope.kind.as_str(),
                envelope.raw
            ),
            ("v1", "Namespace", &[0x0a, 0x00][..])
        );
        assert_eq!(unknown_length("v1", "Namespace", 2), bytes.len() - 4);
    }

    #[test]
    fn envelope_errors_name_the_problem() {
        assert_eq!(
            decode_envelope(b"{\"kind\":\"Pod\"}"),
            Err(ProtobufError::BadMagic)
        );
        assert_eq!(decode_envelope(b"k8s"), Err(ProtobufError::BadMagic));
        let truncated = &encode_envelope("v1", "Pod", b"abc")[..10];
        assert!(
            matches!(decode_envelope(truncated), Err(ProtobufError::Malformed { path, .. }) if path == "Unknown.typeMeta")
        );
        let wrong_type = b"k8s\0\x08\x01";
        assert!(matches!(
            decode_envelope(wrong_type),
            Err(ProtobufError::Malformed {
                problem: Malformation::WrongWireType { .. },
                ..
            })
        ));
        let custom = encode_envelope("berth.dev/v1", "NodePool", b"");
        assert_eq!(
            decode_object(&custom),
            Err(ProtobufError::UnknownKind {
                api_version: "berth.dev/v1".to_owned(),
                kind: "NodePool".to_owned()
            })
        );
    }

    #[test]
    fn unknown_length_matches_the_written_size_for_long_fields() {
        let raw = vec![1u8; 70_000];
        let kind = "K".repeat(200);
        let bytes = encode_envelope("apps/v1", &kind, &raw);
        assert_eq!(unknown_length("apps/v1", &kind, raw.len()), bytes.len() - 4);
    }
}
