//! Protobuf bytes → the JSON object Go's `encoding/json` would write for the same Go value.
//! Walks the generated table; unknown fields are skipped, anything malformed is an error
//! naming the field, and nesting is bounded so hostile input cannot exhaust the stack.

use base64::Engine as _;
use serde_json::{Map, Value};

use super::path::{Path, Segment};
use super::schema::{Field, Label, Message, Omit, Shape, Type};
use super::special;
use super::wire::{Reader, WireType};
use super::{Malformation, ProtobufError};

/// How many messages deep an object may nest (Kubernetes kinds stay far below it).
pub(crate) const MAX_DEPTH: usize = 100;

fn malformed(path: &Path, problem: Malformation) -> ProtobufError {
    ProtobufError::Malformed {
        path: path.render(),
        problem,
    }
}

pub(crate) fn field_segment(field: &Field) -> Segment<'static> {
    if field.json_name.is_empty() {
        Segment::Inline
    } else {
        Segment::Field(field.json_name)
    }
}

/// Decodes one message's bytes into its JSON value.
pub(crate) fn decode_message(
    message: &'static Message,
    bytes: &[u8],
    path: &Path,
    depth: usize,
) -> Result<Value, ProtobufError> {
    if depth > MAX_DEPTH {
        return Err(malformed(path, Malformation::TooDeep(MAX_DEPTH)));
    }
    match &message.shape {
        Shape::Fields { fields, json_order } => {
            let mut object = Map::new();
            decode_fields(fields, json_order, bytes, path, depth, &mut object)?;
            Ok(Value::Object(object))
        }
        Shape::Time => special::decode_time(bytes, path, false),
        Shape::MicroTime => special::decode_time(bytes, path, true),
        Shape::IntOrString => special::decode_int_or_string(bytes, path),
        Shape::Quantity => special::decode_quantity(bytes, path),
        Shape::RawJson => special::decode_raw_json(bytes, path, depth),
        Shape::StringArray => special::unions::decode_string_array(bytes, path),
        Shape::SchemaUnion { union, schema } => {
            special::unions::decode_union(*union, schema, bytes, path, depth)
        }
    }
}

/// What arrived for one field before the JSON object is assembled.
#[derive(Default)]
struct Slot {
    one: Option<Value>,
    many: Vec<Value>,
    entries: Vec<(String, Value)>,
}

fn decode_fields(
    fields: &'static [Field],
    json_order: &[u8],
    bytes: &[u8],
    path: &Path,
    depth: usize,
    object: &mut Map<String, Value>,
) -> Result<(), ProtobufError> {
    let mut slots: Vec<Slot> = fields.iter().map(|_| Slot::default()).collect();
    let mut reader = Reader::new(bytes);
    while !reader.is_empty() {
        let (number, wire_type) = reader.key().map_err(|problem| malformed(path, problem))?;
        let Ok(index) = fields.binary_search_by_key(&number, |field| field.number) else {
            reader
                .skip(wire_type)
                .map_err(|problem| malformed(&path.child(Segment::Number(number)), problem))?;
            continue;
        };
        let field = &fields[index];
        let field_path = path.child(field_segment(field));
        match field.label {
            Label::Repeated { .. } => {
                read_repeated(
                    &mut reader,
                    wire_type,
                    field.ty,
                    &mut slots[index].many,
                    &field_path,
                    depth,
                )?;
            }
            Label::Map { .. } => {
                expect(&field_path, wire_type, WireType::Len)?;
                let entry = reader
                    .len_delimited()
                    .map_err(|problem| malformed(&field_path, problem))?;
                let at = slots[index].entries.len();
                let pair = read_entry(entry, field.ty, &field_path, at, depth)?;
                slots[index].entries.push(pair);
            }
            Label::Optional | Label::Value(_) | Label::Inline => {
                // A repeated singular field: the last one wins (Go would merge messages;
                // no encoder writes a singular field twice).
                slots[index].one = Some(read_value(
                    &mut reader,
                    wire_type,
                    field.ty,
                    &field_path,
                    depth,
                )?);
            }
        }
    }

    for &index in json_order {
        let index = usize::from(index);
        let field = &fields[index];
        let slot = std::mem::take(&mut slots[index]);
        match field.label {
            Label::Optional => {
                if let Some(value) = slot.one {
                    object.insert(field.json_name.to_owned(), value);
                }
            }
            Label::Value(omit) => {
                let value = match slot.one {
                    Some(value) => value,
                    None => zero_value(field.ty, &path.child(field_segment(field)), depth)?,
                };
                if !omitted(omit, &value) {
                    object.insert(field.json_name.to_owned(), value);
                }
            }
            Label::Inline => {
                let value = match slot.one {
                    Some(value) => value,
                    None => zero_value(field.ty, &path.child(Segment::Inline), depth)?,
                };
                if let Value::Object(inner) = value {
                    object.extend(inner);
                }
            }
            Label::Repeated { omitempty } => {
                let list = slot.many;
                if !(omitempty && list.is_empty()) {
                    object.insert(field.json_name.to_owned(), Value::Array(list));
                }
            }
            Label::Map { omitempty } => {
                let mut entries = slot.entries;
                if omitempty && entries.is_empty() {
                    continue;
                }
                // Go's encoding/json sorts map keys; for a repeated key the last one wins.
                entries.reverse();
                entries.sort_by(|left, right| left.0.cmp(&right.0));
                entries.dedup_by(|later, earlier| later.0 == earlier.0);
                object.insert(
                    field.json_name.to_owned(),
                    Value::Object(entries.into_iter().collect()),
                );
            }
        }
    }
    Ok(())
}

/// Whether `omitempty`/`omitzero` leaves this value out of JSON.
fn omitted(omit: Omit, value: &Value) -> bool {
    let zero_scalar = match value {
        Value::String(text) => text.is_empty(),
        Value::Number(number) => number.as_f64() == Some(0.0),
        Value::Bool(flag) => !flag,
        _ => false,
    };
    match omit {
        Omit::Never => false,
        Omit::Empty => zero_scalar,
        Omit::Zero => {
            zero_scalar || value.is_null() || value.as_object().is_some_and(Map::is_empty)
        }
    }
}

/// The JSON of a Go value field the wire did not carry: its zero value.
fn zero_value(ty: Type, path: &Path, depth: usize) -> Result<Value, ProtobufError> {
    Ok(match ty {
        Type::String | Type::Bytes => Value::String(String::new()),
        Type::Bool => Value::Bool(false),
        Type::Int32 | Type::Int64 | Type::Double => Value::from(0),
        Type::Message(message) => decode_message(message, &[], path, depth + 1)?,
    })
}

fn expect(path: &Path, wire_type: WireType, expected: WireType) -> Result<(), ProtobufError> {
    if wire_type == expected {
        Ok(())
    } else {
        Err(malformed(
            path,
            Malformation::WrongWireType {
                expected: expected.name(),
                found: wire_type.name(),
            },
        ))
    }
}

fn wire_type_of(ty: Type) -> WireType {
    match ty {
        Type::Bool | Type::Int32 | Type::Int64 => WireType::Varint,
        Type::Double => WireType::Fixed64,
        Type::String | Type::Bytes | Type::Message(_) => WireType::Len,
    }
}

/// Reads one field value of type `ty` from the reader.
fn read_value(
    reader: &mut Reader,
    wire_type: WireType,
    ty: Type,
    path: &Path,
    depth: usize,
) -> Result<Value, ProtobufError> {
    expect(path, wire_type, wire_type_of(ty))?;
    match ty {
        Type::Bool | Type::Int32 | Type::Int64 => {
            let raw = reader
                .varint()
                .map_err(|problem| malformed(path, problem))?;
            Ok(varint_value(ty, raw))
        }
        Type::Double => {
            let raw = reader
                .fixed64()
                .map_err(|problem| malformed(path, problem))?;
            double_value(f64::from_bits(raw), path)
        }
        Type::String | Type::Bytes | Type::Message(_) => {
            let bytes = reader
                .len_delimited()
                .map_err(|problem| malformed(path, problem))?;
            len_value(ty, bytes, path, depth)
        }
    }
}

fn varint_value(ty: Type, raw: u64) -> Value {
    match ty {
        Type::Bool => Value::Bool(raw != 0),
        // Go's generated code truncates, as `int32(v)` does.
        Type::Int32 => Value::from(raw as i32),
        _ => Value::from(raw as i64),
    }
}

fn double_value(value: f64, path: &Path) -> Result<Value, ProtobufError> {
    // Go's encoding/json writes integral floats without a fraction (`1`, not `1.0`).
    if value.fract() == 0.0 && value.abs() < 1e15 {
        return Ok(Value::from(value as i64));
    }
    serde_json::Number::from_f64(value)
        .map(Value::Number)
        .ok_or_else(|| {
            malformed(
                path,
                Malformation::InvalidValue(format!("{value} has no JSON form")),
            )
        })
}

fn len_value(ty: Type, bytes: &[u8], path: &Path, depth: usize) -> Result<Value, ProtobufError> {
    match ty {
        Type::String => std::str::from_utf8(bytes)
            .map(|text| Value::String(text.to_owned()))
            .map_err(|_| malformed(path, Malformation::InvalidUtf8)),
        Type::Bytes => Ok(Value::String(
            base64::engine::general_purpose::STANDARD.encode(bytes),
        )),
        Type::Message(message) => decode_message(message, bytes, path, depth + 1),
        Type::Bool | Type::Int32 | Type::Int64 | Type::Double => Err(malformed(
            path,
            Malformation::WrongWireType {
                expected: wire_type_of(ty).name(),
                found: WireType::Len.name(),
            },
        )),
    }
}

/// One element of a repeated field, or a packed run of scalars.
fn read_repeated(
    reader: &mut Reader,
    wire_type: WireType,
    ty: Type,
    list: &mut Vec<Value>,
    path: &Path,
    depth: usize,
) -> Result<(), ProtobufError> {
    let scalar_wire_type = wire_type_of(ty);
    if wire_type == WireType::Len && scalar_wire_type != WireType::Len {
        // Packed encoding: Go writes these unpacked, but readers must accept both.
        let packed = reader
            .len_delimited()
            .map_err(|problem| malformed(path, problem))?;
        let mut inner = Reader::new(packed);
        while !inner.is_empty() {
            let element = path.child(Segment::Index(list.len()));
            list.push(read_value(
                &mut inner,
                scalar_wire_type,
                ty,
                &element,
                depth,
            )?);
        }
        return Ok(());
    }
    let element = path.child(Segment::Index(list.len()));
    list.push(read_value(reader, wire_type, ty, &element, depth)?);
    Ok(())
}

/// One map entry message: `key = 1` (string), `value = 2` (of type `ty`).
fn read_entry(
    entry: &[u8],
    ty: Type,
    path: &Path,
    at: usize,
    depth: usize,
) -> Result<(String, Value), ProtobufError> {
    let entry_path = path.child(Segment::Index(at));
    let mut key: Option<&str> = None;
    let mut value: Option<&[u8]> = None;
    let mut reader = Reader::new(entry);
    while !reader.is_empty() {
        let (number, wire_type) = reader
            .key()
            .map_err(|problem| malformed(&entry_path, problem))?;
        match number {
            1 | 2 => {
                expect(&entry_path, wire_type, WireType::Len)?;
                let bytes = reader
                    .len_delimited()
                    .map_err(|problem| malformed(&entry_path, problem))?;
                if number == 1 {
                    key = Some(
                        std::str::from_utf8(bytes)
                            .map_err(|_| malformed(&entry_path, Malformation::InvalidUtf8))?,
                    );
                } else {
                    value = Some(bytes);
                }
            }
            _ => reader
                .skip(wire_type)
                .map_err(|problem| malformed(&entry_path, problem))?,
        }
    }
    let key = key.unwrap_or_default();
    let value_path = path.child(Segment::Key(key));
    let value = match value {
        Some(bytes) => len_value(ty, bytes, &value_path, depth)?,
        None => zero_value(ty, &value_path, depth)?,
    };
    Ok((key.to_owned(), value))
}
