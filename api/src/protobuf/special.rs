//! The few messages whose JSON is not an object of their fields: `Time`, `MicroTime`,
//! `IntOrString`, `Quantity`, and the raw-JSON holders `RawExtension` and `FieldsV1`.
//! Each is converted the way its hand-written Go (un)marshallers do it. The messages whose JSON
//! is an array or one of several types (`ExtraValue`, apiextensions' schema unions) are in
//! [`unions`].

pub(crate) mod unions;

use serde_json::Value;

use super::path::Path;
use super::wire::{Reader, WireType, Writer};
use super::{Malformation, ProtobufError};

/// Go's zero `time.Time` (0001-01-01T00:00:00Z) in Unix seconds: it is written as an empty
/// message and read back as JSON `null`.
const ZERO_TIME_SECONDS: i64 = -62_135_596_800;

fn malformed(path: &Path, problem: Malformation) -> ProtobufError {
    ProtobufError::Malformed {
        path: path.render(),
        problem,
    }
}

fn invalid(path: &Path, problem: impl Into<String>) -> ProtobufError {
    ProtobufError::InvalidJson {
        path: path.render(),
        problem: problem.into(),
    }
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

/// Reads `{seconds = 1, nanos = 2}`; `None` for an empty message (Go's zero time).
fn read_timestamp(bytes: &[u8], path: &Path) -> Result<Option<(i64, i64)>, ProtobufError> {
    if bytes.is_empty() {
        return Ok(None);
    }
    let (mut seconds, mut nanos) = (0i64, 0i64);
    let mut reader = Reader::new(bytes);
    while !reader.is_empty() {
        let (number, wire_type) = reader.key().map_err(|problem| malformed(path, problem))?;
        match number {
            1 | 2 => {
                expect(path, wire_type, WireType::Varint)?;
                let value = reader
                    .varint()
                    .map_err(|problem| malformed(path, problem))?;
                if number == 1 {
                    seconds = value as i64;
                } else {
                    nanos = i64::from(value as i32);
                }
            }
            _ => reader
                .skip(wire_type)
                .map_err(|problem| malformed(path, problem))?,
        }
    }
    Ok(Some((seconds, nanos)))
}

/// `meta.v1.Time` (`micro` false) or `MicroTime` (`micro` true) → RFC 3339 or `null`.
pub(crate) fn decode_time(bytes: &[u8], path: &Path, micro: bool) -> Result<Value, ProtobufError> {
    let Some((seconds, nanos)) = read_timestamp(bytes, path)? else {
        return Ok(Value::Null);
    };
    // Time drops the nanoseconds (upstream's JSON only ever carried seconds); MicroTime keeps
    // microseconds. Out-of-range nanos are normalised as Go's time.Unix does.
    let total = i128::from(seconds) * 1_000_000_000 + if micro { i128::from(nanos) } else { 0 };
    let seconds = total.div_euclid(1_000_000_000) as i64;
    let micros = (total.rem_euclid(1_000_000_000) / 1000) as u32;
    if seconds == ZERO_TIME_SECONDS && micros == 0 {
        return Ok(Value::Null);
    }
    format_time(seconds, micro.then_some(micros))
        .map(Value::String)
        .ok_or_else(|| {
            malformed(
                path,
                Malformation::InvalidValue(format!("time {seconds}s is outside years 0 to 9999")),
            )
        })
}

/// JSON (RFC 3339 string or `null`) → the body of a `Time` or `MicroTime` message.
pub(crate) fn encode_time(
    value: Option<&Value>,
    writer: &mut Writer,
    path: &Path,
    micro: bool,
) -> Result<(), ProtobufError> {
    let text = match value {
        None => return Ok(()),
        Some(Value::String(text)) => text,
        Some(other) => {
            return Err(invalid(
                path,
                format!("expected an RFC 3339 time string, found {}", kind_of(other)),
            ))
        }
    };
    let (seconds, nanos) = parse_time(text)
        .ok_or_else(|| invalid(path, format!("{text:?} is not an RFC 3339 time")))?;
    let nanos = if micro { nanos - nanos % 1000 } else { 0 };
    if seconds == ZERO_TIME_SECONDS && nanos == 0 {
        return Ok(());
    }
    writer.varint_field(1, seconds as u64);
    writer.varint_field(2, u64::from(nanos));
    Ok(())
}

/// `intstr.IntOrString` `{type = 1, intVal = 2, strVal = 3}` → a JSON number or string.
pub(crate) fn decode_int_or_string(bytes: &[u8], path: &Path) -> Result<Value, ProtobufError> {
    let (mut kind, mut int_value, mut string_value) = (0i64, 0i32, String::new());
    let mut reader = Reader::new(bytes);
    while !reader.is_empty() {
        let (number, wire_type) = reader.key().map_err(|problem| malformed(path, problem))?;
        match number {
            1 | 2 => {
                expect(path, wire_type, WireType::Varint)?;
                let value = reader
                    .varint()
                    .map_err(|problem| malformed(path, problem))?;
                if number == 1 {
                    kind = value as i64;
                } else {
                    int_value = value as i32;
                }
            }
            3 => {
                expect(path, wire_type, WireType::Len)?;
                let bytes = reader
                    .len_delimited()
                    .map_err(|problem| malformed(path, problem))?;
                string_value = std::str::from_utf8(bytes)
                    .map_err(|_| malformed(path, Malformation::InvalidUtf8))?
                    .to_owned();
            }
            _ => reader
                .skip(wire_type)
                .map_err(|problem| malformed(path, problem))?,
        }
    }
    match kind {
        0 => Ok(Value::from(int_value)),
        1 => Ok(Value::String(string_value)),
        other => Err(malformed(
            path,
            Malformation::InvalidValue(format!(
                "IntOrString type {other} is neither 0 (int) nor 1 (string)"
            )),
        )),
    }
}

/// A JSON number or string (`null`: the integer 0, as Go reads it) → an `IntOrString` body.
/// Go writes all three fields, always.
pub(crate) fn encode_int_or_string(
    value: Option<&Value>,
    writer: &mut Writer,
    path: &Path,
) -> Result<(), ProtobufError> {
    let (kind, int_value, string_value) = match value {
        None => (0, 0, ""),
        Some(Value::String(text)) => (1, 0, text.as_str()),
        Some(Value::Number(number)) => {
            let int_value = number
                .as_i64()
                .and_then(|value| i32::try_from(value).ok())
                .ok_or_else(|| invalid(path, format!("{number} is not a 32-bit integer")))?;
            (0, int_value, "")
        }
        Some(other) => {
            return Err(invalid(
                path,
                format!("expected an integer or a string, found {}", kind_of(other)),
            ))
        }
    };
    writer.varint_field(1, kind);
    writer.varint_field(2, i64::from(int_value) as u64);
    writer.len_delimited(3, string_value.as_bytes());
    Ok(())
}

/// `resource.Quantity` `{string = 1}` → the JSON string; a message without it is Go's zero, "0".
pub(crate) fn decode_quantity(bytes: &[u8], path: &Path) -> Result<Value, ProtobufError> {
    let mut text = None;
    let mut reader = Reader::new(bytes);
    while !reader.is_empty() {
        let (number, wire_type) = reader.key().map_err(|problem| malformed(path, problem))?;
        if number == 1 {
            expect(path, wire_type, WireType::Len)?;
            let bytes = reader
                .len_delimited()
                .map_err(|problem| malformed(path, problem))?;
            text = Some(
                std::str::from_utf8(bytes)
                    .map_err(|_| malformed(path, Malformation::InvalidUtf8))?,
            );
        } else {
            reader
                .skip(wire_type)
                .map_err(|problem| malformed(path, problem))?;
        }
    }
    Ok(Value::String(text.unwrap_or("0").to_owned()))
}

/// A JSON quantity (a string, or a bare number as Go also accepts) → a `Quantity` body.
/// The text is kept as given; upstream would also canonicalise it (`1000m` → `1`).
pub(crate) fn encode_quantity(
    value: Option<&Value>,
    writer: &mut Writer,
    path: &Path,
) -> Result<(), ProtobufError> {
    match value {
        None => writer.len_delimited(1, b"0"),
        Some(Value::String(text)) => writer.len_delimited(1, text.as_bytes()),
        Some(Value::Number(number)) => writer.len_delimited(1, number.to_string().as_bytes()),
        Some(other) => {
            return Err(invalid(
                path,
                format!("expected a quantity string, found {}", kind_of(other)),
            ))
        }
    }
    Ok(())
}

/// `RawExtension`/`FieldsV1` `{raw = 1}` → the embedded JSON value (`null` when absent). A raw
/// that is itself a Kubernetes protobuf envelope (a watch event's object) is decoded too.
pub(crate) fn decode_raw_json(
    bytes: &[u8],
    path: &Path,
    depth: usize,
) -> Result<Value, ProtobufError> {
    let mut raw: Option<&[u8]> = None;
    let mut reader = Reader::new(bytes);
    while !reader.is_empty() {
        let (number, wire_type) = reader.key().map_err(|problem| malformed(path, problem))?;
        if number == 1 {
            expect(path, wire_type, WireType::Len)?;
            raw = Some(
                reader
                    .len_delimited()
                    .map_err(|problem| malformed(path, problem))?,
            );
        } else {
            reader
                .skip(wire_type)
                .map_err(|problem| malformed(path, problem))?;
        }
    }
    match raw {
        None | Some([]) => Ok(Value::Null),
        Some(raw) if raw.starts_with(&super::MAGIC) => {
            super::envelope::decode_object_at(raw, depth + 1)
        }
        Some(raw) => serde_json::from_slice(raw).map_err(|error| {
            malformed(
                path,
                Malformation::InvalidValue(format!("raw bytes are not JSON: {error}")),
            )
        }),
    }
}

/// A JSON value → a `RawExtension`/`FieldsV1` body holding its compact JSON; `null` → no raw.
pub(crate) fn encode_raw_json(
    value: Option<&Value>,
    writer: &mut Writer,
    path: &Path,
) -> Result<(), ProtobufError> {
    if let Some(value) = value {
        let raw = serde_json::to_vec(value).map_err(|error| invalid(path, error.to_string()))?;
        writer.len_delimited(1, &raw);
    }
    Ok(())
}

/// The name of a JSON value's type, for error messages.
pub(crate) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The proleptic Gregorian date of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// RFC 3339 in UTC, as Go's `time.RFC3339` (or, with micros, `RFC3339Micro`) formats it;
/// `None` outside years 0–9999, which Go refuses to marshal.
pub(crate) fn format_time(seconds: i64, micros: Option<u32>) -> Option<String> {
    let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
    if !(0..=9999).contains(&year) {
        return None;
    }
    let second_of_day = seconds.rem_euclid(86_400);
    let (hour, minute, second) = (
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60,
    );
    Some(match micros {
        None => format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z"),
        Some(micros) => {
            format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{micros:06}Z")
        }
    })
}

/// Parses RFC 3339 (`2024-01-02T03:04:05Z`, optional fraction, `Z` or `±hh:mm`) into Unix
/// seconds and nanoseconds, as Go's `time.Parse(time.RFC3339, …)` accepts it.
pub(crate) fn parse_time(text: &str) -> Option<(i64, u32)> {
    let bytes = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        let slice = bytes.get(range)?;
        slice.iter().try_fold(0u32, |acc, &byte| {
            byte.is_ascii_digit()
                .then(|| acc * 10 + u32::from(byte - b'0'))
        })
    };
    if bytes.len() < 20
        || bytes[4] != b'-'
        || bytes[7] != b'-'
        || bytes[10] != b'T'
        || bytes[13] != b':'
        || bytes[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&month)
        || day == 0
        || day > month_days[month as usize - 1]
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let mut position = 19;
    let mut nanos = 0u32;
    if bytes[position] == b'.' {
        let start = position + 1;
        position = start;
        while position < bytes.len() && bytes[position].is_ascii_digit() {
            position += 1;
        }
        let fraction = &bytes[start..position];
        if fraction.is_empty() {
            return None;
        }
        for index in 0..9 {
            nanos = nanos * 10
                + fraction
                    .get(index)
                    .map_or(0, |&byte| u32::from(byte - b'0'));
        }
    }
    let offset_seconds = match &bytes[position..] {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let hours = digits(position + 1..position + 3)?;
            let minutes = digits(position + 4..position + 6)?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let offset = i64::from(hours * 3600 + minutes * 60);
            if *sign == b'+' {
                offset
            } else {
                -offset
            }
        }
        _ => return None,
    };
    let days = days_from_civil(i64::from(year), month, day);
    let seconds = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset_seconds;
    Some((seconds, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_format_and_parse_like_go() {
        let cases = [
            ("1970-01-01T00:00:00Z", 0, 0),
            ("2024-01-02T03:04:05Z", 1_704_164_645, 0),
            ("2024-02-29T23:59:59Z", 1_709_251_199, 0),
            ("1969-12-31T23:59:59Z", -1, 0),
            ("0001-01-01T00:00:00Z", ZERO_TIME_SECONDS, 0),
            ("9999-12-31T23:59:59Z", 253_402_300_799, 0),
        ];
        for (text, seconds, nanos) in cases {
            assert_eq!(parse_time(text), Some((seconds, nanos)), "{text}");
            assert_eq!(format_time(seconds, None).as_deref(), Some(text));
        }
        assert_eq!(
            parse_time("2024-01-02T04:04:05.5+01:00"),
            Some((1_704_164_645, 500_000_000))
        );
        assert_eq!(
            parse_time("2024-01-02T02:34:05-00:30"),
            Some((1_704_164_645, 0))
        );
        assert_eq!(
            format_time(1_704_164_645, Some(123_456)).as_deref(),
            Some("2024-01-02T03:04:05.123456Z")
        );
        assert_eq!(format_time(253_402_300_800, None), None);
    }

    #[test]
    fn malformed_times_are_rejected() {
        for text in [
            "",
            "2024-01-02",
            "2024-01-02 03:04:05Z",
            "2024-13-02T03:04:05Z",
            "2023-02-29T03:04:05Z",
            "2024-01-02T24:00:00Z",
            "2024-01-02T03:04:05",
            "2024-01-02T03:04:05.Z",
            "2024-01-02T03:04:05+0100",
            "２０２４-01-02T03:04:05Z",
        ] {
            assert_eq!(parse_time(text), None, "{text}");
        }
    }
}
