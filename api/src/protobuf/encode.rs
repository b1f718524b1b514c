//! JSON object → the protobuf bytes Go's generated `Marshal` writes for the same Go value:
//! fields in number order, value fields always (zero when absent), pointers only when set,
//! map entries sorted by key. JSON members the message lacks (`apiVersion`, `kind`) are ignored.

use base64::Engine as _;
use serde_json::{Map, Value};

use super::decode::{field_segment, MAX_DEPTH};
use super::path::{Path, Segment};
use super::schema::{Field, Label, Message, Shape, Type};
use super::special::{self, kind_of};
use super::wire::Writer;
use super::{Malformation, ProtobufError};

fn invalid(path: &Path, problem: impl Into<String>) -> ProtobufError {
    ProtobufError::InvalidJson {
        path: path.render(),
        problem: problem.into(),
    }
}

/// Writes the body of `message` for `value` (`None`: the Go zero value).
pub(crate) fn encode_message(
    message: &'static Message,
    value: Option<&Value>,
    writer: &mut Writer,
    path: &Path,
    depth: usize,
) -> Result<(), ProtobufError> {
    if depth > MAX_DEPTH {
        return Err(ProtobufError::Malformed {
            path: path.render(),
            problem: Malformation::TooDeep(MAX_DEPTH),
        });
    }
    match &message.shape {
        Shape::Fields { fields, .. } => {
            let object = match value {
                None => None,
                Some(Value::Object(object)) => Some(object),
                Some(other) => {
                    return Err(invalid(
                        path,
                        format!("expected an object, found {}", kind_of(other)),
                    ))
                }
            };
            encode_fields(fields, object, writer, path, depth)
        }
        Shape::Time => special::encode_time(value, writer, path, false),
        Shape::MicroTime => special::encode_time(value, writer, path, true),
        Shape::IntOrString => special::encode_int_or_string(value, writer, path),
        Shape::Quantity => special::encode_quantity(value, writer, path),
        Shape::RawJson => special::encode_raw_json(value, writer, path),
        Shape::StringArray => special::unions::encode_string_array(value, writer, path),
        Shape::SchemaUnion { union, schema } => {
            special::unions::encode_union(*union, schema, value, writer, path, depth)
        }
    }
}

fn encode_fields(
    fields: &'static [Field],
    object: Option<&Map<String, Value>>,
    writer: &mut Writer,
    path: &Path,
    depth: usize,
) -> Result<(), ProtobufError> {
    for field in fields {
        let field_path = path.child(field_segment(field));
        // JSON `null` means "not set", as it does for Go's encoding/json.
        let value = match field.label {
            Label::Inline => None,
            _ => object
                .and_then(|object| object.get(field.json_name))
                .filter(|value| !value.is_null()),
        };
        match field.label {
            Label::Optional => {
                if let Some(value) = value {
                    write_field(
                        writer,
                        field.number,
                        field.ty,
                        Some(value),
                        &field_path,
                        depth,
                    )?;
                }
            }
            Label::Value(_) => {
                write_field(writer, field.number, field.ty, value, &field_path, depth)?
            }
            Label::Inline => {
                let Type::Message(message) = field.ty else {
                    return Err(invalid(&field_path, "an inline field must be a message"));
                };
                // The embedded struct's fields sit in this same JSON object.
                let Shape::Fields { fields: inner, .. } = &message.shape else {
                    return Err(invalid(
                        &field_path,
                        "an inline field must be a message of fields",
                    ));
                };
                writer.nested(field.number, |writer| {
                    encode_fields(inner, object, writer, &field_path, depth + 1)
                })?;
            }
            Label::Repeated { .. } => match value {
                None => {}
                Some(Value::Array(items)) => {
                    for (index, item) in items.iter().enumerate() {
                        let item = Some(item).filter(|item| !item.is_null());
                        write_field(
                            writer,
                            field.number,
                            field.ty,
                            item,
                            &field_path.child(Segment::Index(index)),
                            depth,
                        )?;
                    }
                }
                Some(other) => {
                    return Err(invalid(
                        &field_path,
                        format!("expected an array, found {}", kind_of(other)),
                    ))
                }
            },
            Label::Map { .. } => match value {
                None => {}
                Some(Value::Object(entries)) => {
                    let mut keys: Vec<&String> = entries.keys().collect();
                    keys.sort_unstable();
                    for key in keys {
                        let entry_value = entries.get(key).filter(|value| !value.is_null());
                        let value_path = field_path.child(Segment::Key(key));
                        writer.nested(field.number, |writer| {
                            writer.len_delimited(1, key.as_bytes());
                            // Go skips a nil []byte value but writes every other value.
                            if entry_value.is_some() || !matches!(field.ty, Type::Bytes) {
                                write_field(writer, 2, field.ty, entry_value, &value_path, depth)?;
                            }
                            Ok(())
                        })?;
                    }
                }
                Some(other) => {
                    return Err(invalid(
                        &field_path,
                        format!("expected an object, found {}", kind_of(other)),
                    ))
                }
            },
        }
    }
    Ok(())
}

/// Writes field `number` holding `value` of type `ty`; `None` writes Go's zero value.
fn write_field(
    writer: &mut Writer,
    number: u32,
    ty: Type,
    value: Option<&Value>,
    path: &Path,
    depth: usize,
) -> Result<(), ProtobufError> {
    let mismatch = |expected: &str, found: &Value| {
        invalid(
            path,
            format!("expected {expected}, found {}", kind_of(found)),
        )
    };
    match ty {
        Type::String => match value {
            None => writer.len_delimited(number, b""),
            Some(Value::String(text)) => writer.len_delimited(number, text.as_bytes()),
            Some(other) => return Err(mismatch("a string", other)),
        },
        Type::Bytes => match value {
            None => writer.len_delimited(number, b""),
            Some(Value::String(text)) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .map_err(|error| invalid(path, format!("not base64: {error}")))?;
                writer.len_delimited(number, &bytes);
            }
            Some(other) => return Err(mismatch("a base64 string", other)),
        },
        Type::Bool => match value {
            None => writer.varint_field(number, 0),
            Some(Value::Bool(flag)) => writer.varint_field(number, u64::from(*flag)),
            Some(other) => return Err(mismatch("a boolean", other)),
        },
        Type::Int32 | Type::Int64 => {
            let integer = match value {
                None => 0,
                Some(Value::Number(number)) => {
                    let integer = number
                        .as_i64()
                        .ok_or_else(|| invalid(path, format!("{number} is not an integer")))?;
                    if matches!(ty, Type::Int32) && i32::try_from(integer).is_err() {
                        return Err(invalid(path, format!("{number} does not fit in 32 bits")));
                    }
                    integer
                }
                Some(other) => return Err(mismatch("an integer", other)),
            };
            // Negative numbers are sign-extended to ten bytes, as Go's `uint64(v)` does.
            writer.varint_field(number, integer as u64);
        }
        Type::Double => match value {
            None => writer.fixed64_field(number, 0f64.to_bits()),
            Some(Value::Number(float)) => {
                let float = float
                    .as_f64()
                    .ok_or_else(|| invalid(path, format!("{float} is not a number")))?;
                writer.fixed64_field(number, float.to_bits());
            }
            Some(other) => return Err(mismatch("a number", other)),
        },
        Type::Message(message) => writer.nested(number, |writer| {
            encode_message(message, value, writer, path, depth + 1)
        })?,
    }
    Ok(())
}
