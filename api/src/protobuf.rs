//! Kubernetes' protobuf wire format ↔ the JSON objects berth stores, for every built-in kind
//! in the generated field table. Generic: one table walk plus a few special shapes (`Time`,
//! `MicroTime`, `IntOrString`, `Quantity`, raw JSON), never code per kind. Pure: bytes and
//! `serde_json::Value` in and out, no I/O; malformed input is an error, never a panic.
//!
//! The bytes follow what Go's generated code writes and the JSON what Go's `encoding/json`
//! writes for the same Go value, so a body kubectl sends decodes to the JSON kubectl would
//! have sent, and what we encode is what kube-apiserver would have sent:
//! - a Go *pointer* field is on the wire and in JSON exactly when set (`replicas: 0` stays);
//! - a Go *value* field is always on the wire (zero when absent) and in JSON unless
//!   `omitempty` hides its zero; structs are always in JSON (`status: {}`), a zero `Time` is
//!   `null` (or left out under `omitzero`, as `metadata.creationTimestamp` is);
//! - lists and maps are left out of JSON when empty and `omitempty`, else `[]`/`{}`.
//!
//! The table (`protobuf/generated.rs`) is produced by `api/tools/gen_protobuf_table.py` from
//! the k8s-pb crate and the Kubernetes Go types; rerun it to add a kind.

mod decode;
mod encode;
mod envelope;
#[rustfmt::skip]
mod generated;
mod path;
mod schema;
mod special;
pub(crate) mod wire;

#[cfg(test)]
mod tests;

use serde_json::Value;

pub use envelope::{
    decode_envelope, decode_object, decode_watch_event, encode_envelope, encode_object,
    encode_watch_event, Envelope, WatchEvent,
};

/// The four bytes every Kubernetes protobuf body starts with.
pub const MAGIC: [u8; 4] = *b"k8s\0";

/// The media type of protobuf bodies (`Content-Type` and `Accept`).
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The media type of a protobuf watch stream.
pub const WATCH_CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf;stream=watch";

/// Why bytes could not become JSON, or JSON could not become bytes. A server answers
/// [`ProtobufError::UnknownKind`] with 415 (the client should send JSON) and the rest with 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtobufError {
    /// The message name is not in the table (a programming error in the caller).
    #[error("no protobuf message named {0}")]
    UnknownMessage(String),
    /// The kind has no protobuf definition here (custom resources, berth's own kinds).
    #[error("{kind} in {api_version} has no protobuf serialization; send it as application/json")]
    UnknownKind {
        /// The `apiVersion` the body named.
        api_version: String,
        /// The `kind` the body named.
        kind: String,
    },
    /// The body does not start with `k8s\0`.
    #[error("not a Kubernetes protobuf body: it must begin with the 4 bytes \"k8s\\x00\"")]
    BadMagic,
    /// The envelope says the object is compressed; upstream never does that.
    #[error("protobuf content encoding {0:?} is not supported")]
    UnsupportedContentEncoding(String),
    /// The envelope says the object is not protobuf.
    #[error("embedded content type {0:?} is not supported; expected {CONTENT_TYPE}")]
    UnsupportedContentType(String),
    /// The bytes are not a valid encoding of the message.
    #[error("malformed protobuf at {path}: {problem}")]
    Malformed {
        /// Where, as a JSON-style path (`Deployment.spec.template.spec.containers[0].image`).
        path: String,
        /// What was wrong there.
        problem: Malformation,
    },
    /// The JSON does not fit the message (a string where a number belongs, bad base64, …).
    #[error("cannot encode {path} as protobuf: {problem}")]
    InvalidJson {
        /// Where, as a JSON-style path.
        path: String,
        /// What was wrong there.
        problem: String,
    },
}

/// What exactly was malformed, so tests and logs can tell truncation from bad data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformation {
    /// The input ended inside a varint.
    #[error("truncated varint")]
    TruncatedVarint,
    /// A varint ran past 64 bits.
    #[error("varint longer than 64 bits")]
    VarintOverflow,
    /// A length (or fixed-size value) runs past the end of its message.
    #[error("length {length} runs past the end of the message ({available} bytes left)")]
    LengthPastEnd {
        /// The length the record claimed.
        length: u64,
        /// The bytes that were left.
        available: usize,
    },
    /// Wire types 3, 4 (groups), 6 and 7 do not occur in Kubernetes messages.
    #[error("unsupported wire type {0}")]
    UnsupportedWireType(u8),
    /// Field number 0 or beyond protobuf's range.
    #[error("invalid field number {0}")]
    InvalidFieldNumber(u64),
    /// A known field arrived with the wrong wire type.
    #[error("wrong wire type: expected {expected}, found {found}")]
    WrongWireType {
        /// The wire type the field's type needs.
        expected: &'static str,
        /// The wire type on the wire.
        found: &'static str,
    },
    /// A string field is not UTF-8.
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    /// Messages nest deeper than the codec allows.
    #[error("messages nest more than {0} deep")]
    TooDeep(usize),
    /// Well-formed protobuf whose value has no JSON form (a bad `IntOrString` type, a time
    /// outside years 0–9999, raw bytes that are not JSON).
    #[error("{0}")]
    InvalidValue(String),
}

/// The protobuf message that carries objects of this `apiVersion` and `kind`
/// (`("apps/v1", "Deployment")` → `k8s.io.api.apps.v1.Deployment`), or `None` when the kind
/// has no protobuf form here and the server should answer 415.
pub fn message_for_kind(api_version: &str, kind: &str) -> Option<&'static str> {
    schema::message_for_kind(api_version, kind).map(|message| message.name)
}

/// Decodes a message's own bytes (no envelope), e.g. `k8s.io.api.apps.v1.Deployment`, into
/// the JSON object Go would write. `apiVersion` and `kind` are not part of the message; use
/// [`decode_object`] for whole request bodies.
pub fn decode(message: &str, bytes: &[u8]) -> Result<Value, ProtobufError> {
    let message = schema::message(message)
        .ok_or_else(|| ProtobufError::UnknownMessage(message.to_owned()))?;
    decode::decode_message(message, bytes, &path::Path::root(message.name), 0)
}

/// Encodes a JSON object as the named message's own bytes (no envelope), as Go would.
pub fn encode(message: &str, value: &Value) -> Result<Vec<u8>, ProtobufError> {
    let message = schema::message(message)
        .ok_or_else(|| ProtobufError::UnknownMessage(message.to_owned()))?;
    let mut writer = wire::Writer::default();
    encode::encode_message(
        message,
        Some(value).filter(|value| !value.is_null()),
        &mut writer,
        &path::Path::root(message.name),
        0,
    )?;
    Ok(writer.bytes)
}
