//! Messages whose JSON is not an object: authentication's `ExtraValue`, a Go `[]string` that
//! protobuf wraps as `{repeated string items = 1}`, and apiextensions' three schema unions,
//! which Go's hand-written marshallers write as whichever JSON type is set:
//!
//! | message                        | wire                                   | JSON                       |
//! |--------------------------------|----------------------------------------|----------------------------|
//! | `JSONSchemaPropsOrArray`       | `schema = 1`, `repeated jSONSchemas = 2` | array if any, else schema or `null` |
//! | `JSONSchemaPropsOrBool`        | `allows = 1` (always), `schema = 2`    | schema if set, else the bool |
//! | `JSONSchemaPropsOrStringArray` | `schema = 1`, `repeated property = 2`  | strings if any, else schema or `null` |
//!
//! The generator checks that k8s-pb's fields are the ones laid out here.

use serde_json::Value;

use super::super::decode::decode_message;
use super::super::encode::encode_message;
use super::super::path::{Path, Segment};
use super::super::schema::{Message, SchemaOr};
use super::super::wire::{Reader, WireType, Writer};
use super::super::{Malformation, ProtobufError};
use super::{expect, invalid, kind_of, malformed};

impl SchemaOr {
    /// The field number of the schema itself.
    fn schema_number(self) -> u32 {
        match self {
            SchemaOr::Bool => 2,
            SchemaOr::Array | SchemaOr::StringArray => 1,
        }
    }
}

/// What arrived for a union (or `ExtraValue`) message.
#[derive(Default)]
struct Parts<'a> {
    schema: Option<&'a [u8]>,
    schemas: Vec<&'a [u8]>,
    strings: Vec<String>,
    allows: bool,
}

fn utf8(bytes: &[u8], path: &Path) -> Result<String, ProtobufError> {
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|_| malformed(path, Malformation::InvalidUtf8))
}

/// Reads the fields of `union` (`None`: `ExtraValue`, whose strings are field 1).
fn read_parts<'a>(
    bytes: &'a [u8],
    union: Option<SchemaOr>,
    path: &Path,
) -> Result<Parts<'a>, ProtobufError> {
    let mut parts = Parts::default();
    let mut reader = Reader::new(bytes);
    while !reader.is_empty() {
        let (number, wire_type) = reader.key().map_err(|problem| malformed(path, problem))?;
        let is_schema = union.is_some_and(|union| union.schema_number() == number);
        match (union, number) {
            (Some(SchemaOr::Bool), 1) => {
                expect(path, wire_type, WireType::Varint)?;
                let raw = reader
                    .varint()
                    .map_err(|problem| malformed(path, problem))?;
                parts.allows = raw != 0;
            }
            (Some(_), _) if is_schema => {
                expect(path, wire_type, WireType::Len)?;
                // A repeated singular field: the last one wins, as elsewhere in the codec.
                parts.schema = Some(
                    reader
                        .len_delimited()
                        .map_err(|problem| malformed(path, problem))?,
                );
            }
            (Some(SchemaOr::Array), 2) => {
                let element = path.child(Segment::Index(parts.schemas.len()));
                expect(&element, wire_type, WireType::Len)?;
                let bytes = reader
                    .len_delimited()
                    .map_err(|problem| malformed(&element, problem))?;
                parts.schemas.push(bytes);
            }
            (None, 1) | (Some(SchemaOr::StringArray), 2) => {
                let element = path.child(Segment::Index(parts.strings.len()));
                expect(&element, wire_type, WireType::Len)?;
                let bytes = reader
                    .len_delimited()
                    .map_err(|problem| malformed(&element, problem))?;
                parts.strings.push(utf8(bytes, &element)?);
            }
            _ => reader
                .skip(wire_type)
                .map_err(|problem| malformed(path, problem))?,
        }
    }
    Ok(parts)
}

/// `ExtraValue` → a JSON array of strings. Go reads even an empty message into an empty,
/// non-nil slice, so this is `[]`, never `null`.
pub(crate) fn decode_string_array(bytes: &[u8], path: &Path) -> Result<Value, ProtobufError> {
    let parts = read_parts(bytes, None, path)?;
    Ok(Value::Array(
        parts.strings.into_iter().map(Value::String).collect(),
    ))
}

/// A JSON array of strings (`null`: none) → an `ExtraValue` body, one `items` per string.
pub(crate) fn encode_string_array(
    value: Option<&Value>,
    writer: &mut Writer,
    path: &Path,
) -> Result<(), ProtobufError> {
    write_strings(value, 1, writer, path)
}

/// Writes each string of a JSON array as field `number`; a `null` element is Go's "".
fn write_strings(
    value: Option<&Value>,
    number: u32,
    writer: &mut Writer,
    path: &Path,
) -> Result<(), ProtobufError> {
    let items = match value {
        None => return Ok(()),
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(invalid(
                path,
                format!("expected an array of strings, found {}", kind_of(other)),
            ))
        }
    };
    for (index, item) in items.iter().enumerate() {
        match item {
            Value::Null => writer.len_delimited(number, b""),
            Value::String(text) => writer.len_delimited(number, text.as_bytes()),
            other => {
                return Err(invalid(
                    &path.child(Segment::Index(index)),
                    format!("expected a string, found {}", kind_of(other)),
                ))
            }
        }
    }
    Ok(())
}

/// A schema union → its JSON: the array (of schemas or strings) when it has elements, else the
/// schema, else `null` (`SchemaOr::Bool`: the boolean).
pub(crate) fn decode_union(
    union: SchemaOr,
    schema: &'static Message,
    bytes: &[u8],
    path: &Path,
    depth: usize,
) -> Result<Value, ProtobufError> {
    let parts = read_parts(bytes, Some(union), path)?;
    if !parts.schemas.is_empty() {
        let items = parts
            .schemas
            .iter()
            .enumerate()
            .map(|(index, bytes)| {
                decode_message(schema, bytes, &path.child(Segment::Index(index)), depth + 1)
            })
            .collect::<Result<_, _>>()?;
        return Ok(Value::Array(items));
    }
    if !parts.strings.is_empty() {
        return Ok(Value::Array(
            parts.strings.into_iter().map(Value::String).collect(),
        ));
    }
    match parts.schema {
        Some(bytes) => decode_message(schema, bytes, path, depth + 1),
        None if union == SchemaOr::Bool => Ok(Value::Bool(parts.allows)),
        None => Ok(Value::Null),
    }
}

/// JSON → the body of a schema union. An object is the schema (for `SchemaOr::Bool` with `allows`
/// true, as Go's `UnmarshalJSON` sets it); an array or a boolean fills the other field.
/// `null` is Go's zero value: nothing, or `allows = false`, which Go always writes. Go would
/// silently read any other JSON type as the zero value; we refuse it instead.
pub(crate) fn encode_union(
    union: SchemaOr,
    schema: &'static Message,
    value: Option<&Value>,
    writer: &mut Writer,
    path: &Path,
    depth: usize,
) -> Result<(), ProtobufError> {
    match (union, value) {
        (SchemaOr::Bool, None | Some(Value::Bool(_))) => {
            let allows = value.and_then(Value::as_bool).unwrap_or(false);
            writer.varint_field(1, u64::from(allows));
        }
        (_, None) => {}
        (_, Some(object @ Value::Object(_))) => {
            if union == SchemaOr::Bool {
                writer.varint_field(1, 1);
            }
            writer.nested(union.schema_number(), |writer| {
                encode_message(schema, Some(object), writer, path, depth + 1)
            })?;
        }
        (SchemaOr::Array, Some(Value::Array(items))) => {
            for (index, item) in items.iter().enumerate() {
                let item = Some(item).filter(|item| !item.is_null());
                let element = path.child(Segment::Index(index));
                writer.nested(2, |writer| {
                    encode_message(schema, item, writer, &element, depth + 1)
                })?;
            }
        }
        (SchemaOr::StringArray, Some(strings @ Value::Array(_))) => {
            write_strings(Some(strings), 2, writer, path)?;
        }
        (_, Some(other)) => {
            let expected = match union {
                SchemaOr::Array => "a schema object or an array of schemas",
                SchemaOr::Bool => "a schema object or a boolean",
                SchemaOr::StringArray => "a schema object or an array of strings",
            };
            return Err(invalid(
                path,
                format!("expected {expected}, found {}", kind_of(other)),
            ));
        }
    }
    Ok(())
}
