//! Messages whose JSON is not an object. `ExtraValue` (authentication, authorization and
//! certificates alike) is a Go `[]string` that protobuf wraps as `{repeated string items = 1}`.
//! apiextensions' three schema unions are written by hand-made Go marshallers as whichever JSON
//! type is set:
//!
//! | message                        | wire                                     | JSON                                  |
//! |--------------------------------|------------------------------------------|---------------------------------------|
//! | `JSONSchemaPropsOrArray`       | `schema = 1`, `repeated jSONSchemas = 2` | the array if any, else schema or null |
//! | `JSONSchemaPropsOrBool`        | `allows = 1` (always), `schema = 2`      | the schema if set, else the bool      |
//! | `JSONSchemaPropsOrStringArray` | `schema = 1`, `repeated property = 2`    | the strings if any, else schema or null |
//!
//! The generator checks that k8s-pb's fields are the ones laid out here (`SPECIAL_LAYOUTS`).

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

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use crate::protobuf::{decode, encode, Malformation, ProtobufError};

    const SCHEMA: &str = "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps";
    const SAR_SPEC: &str = "k8s.io.api.authorization.v1.SubjectAccessReviewSpec";

    fn round_trip(message: &str, value: &Value) -> Value {
        decode(message, &encode(message, value).unwrap()).unwrap()
    }

    #[test]
    fn every_alternative_of_a_union_comes_back_as_go_writes_it() {
        // (JSON in, JSON out) for a JSONSchemaProps.
        let cases = [
            // OrArray: a schema, an array of schemas; an empty array is Go's nil schema.
            (
                json!({"items": {"type": "string"}}),
                json!({"items": {"type": "string"}}),
            ),
            (
                json!({"items": [{"type": "string"}, {"type": "integer", "minimum": 1}]}),
                json!({"items": [{"type": "string"}, {"type": "integer", "minimum": 1}]}),
            ),
            (json!({"items": []}), json!({"items": null})),
            (json!({"items": [null]}), json!({"items": [{}]})),
            // OrBool: a schema, true or false; absent stays absent (a pointer).
            (
                json!({"additionalProperties": {"type": "string"}}),
                json!({"additionalProperties": {"type": "string"}}),
            ),
            (
                json!({"additionalProperties": true, "additionalItems": false}),
                json!({"additionalProperties": true, "additionalItems": false}),
            ),
            (json!({"additionalProperties": null}), json!({})),
            // OrStringArray, as map values: strings, a schema, and the zero value `null`.
            (
                json!({"dependencies": {"a": ["b", "c"], "d": {"required": ["e"]}, "f": null}}),
                json!({"dependencies": {"a": ["b", "c"], "d": {"required": ["e"]}, "f": null}}),
            ),
            (
                json!({"dependencies": {"a": []}}),
                json!({"dependencies": {"a": null}}),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(round_trip(SCHEMA, &input), expected, "{input}");
        }
    }

    #[test]
    fn extra_values_are_string_arrays_and_never_null() {
        // Go writes every map value and reads an empty one as an empty, non-nil slice.
        let spec = json!({"extra": {"a": ["x", "y"], "b": [], "c": null, "d": [null]}});
        assert_eq!(
            round_trip(SAR_SPEC, &spec)["extra"],
            json!({"a": ["x", "y"], "b": [], "c": [], "d": [""]})
        );
    }

    #[test]
    fn unions_write_the_bytes_go_writes() {
        // What a field adds to a schema's bytes: Go writes every value field of the schema, so
        // the union's record sits between them, in field-number order.
        let empty = encode(SCHEMA, &json!({})).unwrap();
        let added = |value: Value| {
            let full = encode(SCHEMA, &value).unwrap();
            let prefix = full.iter().zip(&empty).take_while(|(a, b)| a == b).count();
            let suffix = full[prefix..]
                .iter()
                .rev()
                .zip(empty[prefix..].iter().rev())
                .take_while(|(a, b)| a == b)
                .count();
            assert_eq!(prefix + suffix, empty.len(), "{value}: not one insertion");
            full[prefix..full.len() - suffix].to_vec()
        };
        // additionalProperties (30): allows = false, which Go always writes.
        assert_eq!(
            added(json!({"additionalProperties": false})),
            [0xf2, 0x01, 2, 0x08, 0x00]
        );
        // A schema sets allows = true before it, in field order.
        let nested = added(json!({"additionalProperties": {}}));
        assert_eq!(
            nested[..7],
            [
                0xf2,
                0x01,
                4 + empty.len() as u8,
                0x08,
                0x01,
                0x12,
                empty.len() as u8
            ]
        );
        assert_eq!(nested[7..], empty);
        // items (24) as an array: one jSONSchemas (2) per element, no schema (1).
        let items = added(json!({"items": [{}, {}]}));
        assert_eq!(items[..4], [0xc2, 0x01, 4 + 2 * empty.len() as u8, 0x12]);
        // dependencies (32): entry {key = "a", value = {property = "b"}}.
        assert_eq!(
            added(json!({"dependencies": {"a": ["b"]}})),
            [0x82, 0x02, 8, 0x0a, 1, b'a', 0x12, 3, 0x12, 1, b'b']
        );
    }

    #[test]
    fn json_of_the_wrong_type_is_an_error_naming_the_field() {
        let cases = [
            (SCHEMA, json!({"items": "string"}), "JSONSchemaProps.items"),
            (
                SCHEMA,
                json!({"additionalProperties": 1}),
                "JSONSchemaProps.additionalProperties",
            ),
            (
                SCHEMA,
                json!({"dependencies": {"a": true}}),
                "JSONSchemaProps.dependencies[\"a\"]",
            ),
            (
                SCHEMA,
                json!({"dependencies": {"a": [1]}}),
                "JSONSchemaProps.dependencies[\"a\"][0]",
            ),
            (
                SAR_SPEC,
                json!({"extra": {"a": "x"}}),
                "SubjectAccessReviewSpec.extra[\"a\"]",
            ),
            (
                SAR_SPEC,
                json!({"extra": {"a": [true]}}),
                "SubjectAccessReviewSpec.extra[\"a\"][0]",
            ),
        ];
        for (message, input, expected_path) in cases {
            match encode(message, &input) {
                Err(ProtobufError::InvalidJson { path, .. }) => {
                    assert_eq!(path, expected_path, "{input}");
                }
                other => panic!("{input}: expected an error, got {other:?}"),
            }
        }
    }

    #[test]
    fn malformed_unions_on_the_wire_are_errors() {
        // additionalProperties = {allows: a length-delimited field}.
        let bytes = [0xf2, 0x01, 3, 0x0a, 1, 0x01];
        match decode(SCHEMA, &bytes) {
            Err(ProtobufError::Malformed { path, problem }) => {
                assert_eq!(path, "JSONSchemaProps.additionalProperties");
                assert!(
                    matches!(problem, Malformation::WrongWireType { .. }),
                    "{problem:?}"
                );
            }
            other => panic!("expected an error, got {other:?}"),
        }
        // items = {jSONSchemas: a varint}.
        let bytes = [0xc2, 0x01, 2, 0x10, 0x01];
        match decode(SCHEMA, &bytes) {
            Err(ProtobufError::Malformed { path, .. }) => {
                assert_eq!(path, "JSONSchemaProps.items[0]");
            }
            other => panic!("expected an error, got {other:?}"),
        }
        // extra = {"a": [an item that is not UTF-8]}.
        let bytes = [0x2a, 8, 0x0a, 1, b'a', 0x12, 3, 0x0a, 1, 0xff];
        match decode(SAR_SPEC, &bytes) {
            Err(ProtobufError::Malformed { path, problem }) => {
                assert_eq!(path, "SubjectAccessReviewSpec.extra[\"a\"][0]");
                assert!(matches!(problem, Malformation::InvalidUtf8), "{problem:?}");
            }
            other => panic!("expected an error, got {other:?}"),
        }
    }
}
