//! Paths into an object as server-side apply names them: field names, items of map lists by
//! their key fields, items of sets by value. The order, the `FieldsV1` key encoding (`f:`, `k:`,
//! `v:`, `i:`) and the printed form (`.spec.containers[name="web"].image`) follow
//! structured-merge-diff, because clients read and compare them. Nothing here knows schemas.

use std::cmp::Ordering;
use std::fmt::{self, Write as _};

use serde_json::Value;

/// One step into an object.
#[derive(Debug, Clone)]
pub enum PathElement {
    /// A field of a map or struct (`f:name` in `FieldsV1`).
    Field(String),
    /// An item of a map list, named by its key fields, sorted by field name
    /// (`k:{"name":"web"}`).
    Key(Vec<(String, Value)>),
    /// An item of a set of primitives, named by its value (`v:"x"`).
    Value(Value),
    /// A list item by position (`i:0`). Nothing here produces these; they are kept when read so
    /// entries written by other servers survive a round trip.
    Index(usize),
}

impl PathElement {
    /// A field step.
    pub fn field(name: impl Into<String>) -> Self {
        PathElement::Field(name.into())
    }

    /// A map-list item step; the key fields are sorted by name as upstream stores them.
    pub fn key<N: Into<String>>(fields: impl IntoIterator<Item = (N, Value)>) -> Self {
        let mut fields: Vec<(String, Value)> = fields
            .into_iter()
            .map(|(name, value)| (name.into(), value))
            .collect();
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        PathElement::Key(fields)
    }

    /// The field name, for a field step.
    pub fn as_field(&self) -> Option<&str> {
        match self {
            PathElement::Field(name) => Some(name),
            _ => None,
        }
    }

    /// The key of this element in a `FieldsV1` document (`f:spec`, `k:{"name":"web"}`).
    pub fn to_fields_v1_key(&self) -> String {
        let mut out = String::new();
        match self {
            PathElement::Field(name) => {
                out.push_str("f:");
                out.push_str(name);
            }
            PathElement::Key(fields) => {
                out.push_str("k:{");
                for (index, (name, value)) in fields.iter().enumerate() {
                    if index > 0 {
                        out.push(',');
                    }
                    write_go_json_string(&mut out, name);
                    out.push(':');
                    write_go_json(&mut out, value);
                }
                out.push('}');
            }
            PathElement::Value(value) => {
                out.push_str("v:");
                write_go_json(&mut out, value);
            }
            PathElement::Index(index) => {
                let _ = write!(out, "i:{index}");
            }
        }
        out
    }

    /// Parses a `FieldsV1` key. `Ok(None)` is a well-formed key of a kind this version does not
    /// know, which upstream skips rather than rejects.
    pub fn from_fields_v1_key(key: &str) -> Result<Option<PathElement>, String> {
        let mut chars = key.chars();
        let (Some(kind), Some(separator)) = (chars.next(), chars.next()) else {
            return Err(format!("key must be 2 characters long: {key:?}"));
        };
        if separator != ':' {
            return Err(format!("missing colon: {key:?}"));
        }
        let rest = chars.as_str();
        let element = match kind {
            'f' => PathElement::Field(rest.to_owned()),
            'v' => PathElement::Value(
                serde_json::from_str(rest).map_err(|error| format!("{key:?}: {error}"))?,
            ),
            'k' => match serde_json::from_str(rest).map_err(|error| format!("{key:?}: {error}"))? {
                Value::Object(fields) => PathElement::key(fields),
                _ => return Err(format!("{key:?}: a key must be a JSON object")),
            },
            'i' => PathElement::Index(
                rest.parse()
                    .map_err(|error| format!("{key:?}: bad index: {error}"))?,
            ),
            _ => return Ok(None),
        };
        Ok(Some(element))
    }

    fn rank(&self) -> u8 {
        match self {
            PathElement::Field(_) => 0,
            PathElement::Key(_) => 1,
            PathElement::Value(_) => 2,
            PathElement::Index(_) => 3,
        }
    }
}

/// Upstream's total order: fields, then keys, then values, then indexes; within each, by
/// content. It decides the order of `FieldsV1` keys and of conflict lists.
impl Ord for PathElement {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (PathElement::Field(a), PathElement::Field(b)) => a.cmp(b),
            (PathElement::Key(a), PathElement::Key(b)) => compare_key_fields(a, b),
            (PathElement::Value(a), PathElement::Value(b)) => compare_values(a, b),
            (PathElement::Index(a), PathElement::Index(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for PathElement {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Equal when the order says so, so `1` and `1.0` name the same key, as upstream treats them.
impl PartialEq for PathElement {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for PathElement {}

/// Upstream's printed form, used in conflict messages: `.name`, `[name="web"]`, `[="x"]`, `[0]`.
impl fmt::Display for PathElement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(name) => write!(f, ".{name}"),
            PathElement::Key(fields) => {
                f.write_char('[')?;
                for (index, (name, value)) in fields.iter().enumerate() {
                    if index > 0 {
                        f.write_char(',')?;
                    }
                    write!(f, "{name}={}", DisplayValue(value))?;
                }
                f.write_char(']')
            }
            PathElement::Value(value) => write!(f, "[={}]", DisplayValue(value)),
            PathElement::Index(index) => write!(f, "[{index}]"),
        }
    }
}

/// A path from the root of an object to one field or item.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Path(Vec<PathElement>);

impl Path {
    /// The path of nested fields, e.g. `Path::fields(["spec", "replicas"])`.
    pub fn fields<N: Into<String>>(names: impl IntoIterator<Item = N>) -> Self {
        Path(names.into_iter().map(PathElement::field).collect())
    }

    /// The steps of this path.
    pub fn elements(&self) -> &[PathElement] {
        &self.0
    }

    /// This path extended by one step.
    pub fn child(&self, element: PathElement) -> Path {
        let mut elements = self.0.clone();
        elements.push(element);
        Path(elements)
    }
}

impl From<Vec<PathElement>> for Path {
    fn from(elements: Vec<PathElement>) -> Self {
        Path(elements)
    }
}

/// Upstream's printed form: `.spec.template.spec.containers[name="web"].image`.
impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|element| element.fmt(f))
    }
}

fn compare_key_fields(a: &[(String, Value)], b: &[(String, Value)]) -> Ordering {
    for ((a_name, a_value), (b_name, b_value)) in a.iter().zip(b) {
        let order = a_name
            .cmp(b_name)
            .then_with(|| compare_values(a_value, b_value));
        if order != Ordering::Equal {
            return order;
        }
    }
    a.len().cmp(&b.len())
}

/// The kinds of JSON value in upstream's order: floats and integers (compared numerically with
/// each other), strings, booleans, lists, maps, null.
fn value_rank(value: &Value) -> u8 {
    match value {
        Value::Number(number) if number.is_f64() => 0,
        Value::Number(_) => 1,
        Value::String(_) => 2,
        Value::Bool(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
        Value::Null => 6,
    }
}

/// Upstream's total order over JSON values.
pub(crate) fn compare_values(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(a), Value::Number(b)) => {
            if a.is_f64() || b.is_f64() {
                let (a, b) = (a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(0.0));
                a.partial_cmp(&b).unwrap_or(Ordering::Equal)
            } else {
                integer(a).cmp(&integer(b))
            }
        }
        (Value::String(a), Value::String(b)) => a.cmp(b),
        (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
        (Value::Array(a), Value::Array(b)) => {
            for (a, b) in a.iter().zip(b) {
                let order = compare_values(a, b);
                if order != Ordering::Equal {
                    return order;
                }
            }
            a.len().cmp(&b.len())
        }
        (Value::Object(a), Value::Object(b)) => {
            let mut a_keys: Vec<&String> = a.keys().collect();
            let mut b_keys: Vec<&String> = b.keys().collect();
            a_keys.sort();
            b_keys.sort();
            for (a_key, b_key) in a_keys.iter().zip(&b_keys) {
                let order = a_key
                    .cmp(b_key)
                    .then_with(|| compare_values(&a[a_key.as_str()], &b[b_key.as_str()]));
                if order != Ordering::Equal {
                    return order;
                }
            }
            a_keys.len().cmp(&b_keys.len())
        }
        (Value::Null, Value::Null) => Ordering::Equal,
        _ => value_rank(a).cmp(&value_rank(b)),
    }
}

/// Deep equality as upstream sees it: numbers compare by value across integer and float, maps
/// regardless of key order.
pub(crate) fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| values_equal(a, b))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(key, a)| b.get(key).is_some_and(|b| values_equal(a, b)))
        }
        (Value::Number(_), Value::Number(_)) => compare_values(a, b) == Ordering::Equal,
        _ => a == b,
    }
}

fn integer(number: &serde_json::Number) -> i128 {
    number
        .as_i64()
        .map(i128::from)
        .or_else(|| number.as_u64().map(i128::from))
        .unwrap_or_default()
}

/// Writes a value as Go's `encoding/json` does (map keys sorted, `<`, `>`, `&` escaped), so key
/// strings match what kube-apiserver writes byte for byte.
pub(crate) fn write_go_json(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(value) => out.push_str(if *value { "true" } else { "false" }),
        Value::Number(number) => {
            let _ = write!(out, "{number}");
        }
        Value::String(text) => write_go_json_string(out, text),
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_go_json(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (index, key) in keys.into_iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_go_json_string(out, key);
                out.push(':');
                write_go_json(out, &map[key.as_str()]);
            }
            out.push('}');
        }
    }
}

fn write_go_json_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A value as upstream prints it in paths: strings quoted Go-style, numbers and booleans bare.
struct DisplayValue<'a>(&'a Value);

impl fmt::Display for DisplayValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Value::Null => f.write_str("null"),
            Value::Bool(value) => write!(f, "{value}"),
            Value::Number(number) => write!(f, "{number}"),
            Value::String(text) => write_go_quoted(f, text),
            Value::Array(items) => {
                f.write_char('[')?;
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        f.write_char(',')?;
                    }
                    DisplayValue(item).fmt(f)?;
                }
                f.write_char(']')
            }
            Value::Object(map) => map
                .iter()
                .try_for_each(|(key, value)| write!(f, "{key}={}", DisplayValue(value))),
        }
    }
}

/// Go's `%q`: printable characters as they are, the rest escaped.
fn write_go_quoted(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in text.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            '\u{7}' => f.write_str("\\a")?,
            '\u{8}' => f.write_str("\\b")?,
            '\u{b}' => f.write_str("\\v")?,
            '\u{c}' => f.write_str("\\f")?,
            c if (c as u32) < 0x80 && c.is_control() => write!(f, "\\x{:02x}", c as u32)?,
            c if c.is_control() => write!(f, "\\u{:04x}", c as u32)?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn fields_v1_keys_round_trip_in_upstream_spelling() {
        let cases = [
            (PathElement::field("metadata"), "f:metadata"),
            (
                PathElement::key([("name", json!("web"))]),
                r#"k:{"name":"web"}"#,
            ),
            (
                PathElement::key([("protocol", json!("TCP")), ("containerPort", json!(80))]),
                r#"k:{"containerPort":80,"protocol":"TCP"}"#,
            ),
            (PathElement::Value(json!("x")), r#"v:"x""#),
            (PathElement::Value(json!(5)), "v:5"),
            (PathElement::Index(3), "i:3"),
            (
                PathElement::key([("name", json!("a<b&c>"))]),
                r#"k:{"name":"a\u003cb\u0026c\u003e"}"#,
            ),
        ];
        for (element, key) in cases {
            assert_eq!(element.to_fields_v1_key(), key);
            assert_eq!(
                PathElement::from_fields_v1_key(key).unwrap(),
                Some(element),
                "{key}"
            );
        }
    }

    #[test]
    fn malformed_keys_are_rejected_and_unknown_kinds_skipped() {
        assert!(PathElement::from_fields_v1_key("f").is_err());
        assert!(PathElement::from_fields_v1_key("fx").is_err());
        assert!(PathElement::from_fields_v1_key("k:[1]").is_err());
        assert!(PathElement::from_fields_v1_key(r#"v:"x" trailing"#).is_err());
        assert_eq!(PathElement::from_fields_v1_key("z:whatever").unwrap(), None);
    }

    #[test]
    fn paths_print_as_upstream_conflict_messages_do() {
        let path = Path::from(vec![
            PathElement::field("spec"),
            PathElement::field("containers"),
            PathElement::key([("name", json!("web"))]),
            PathElement::field("ports"),
            PathElement::key([("containerPort", json!(80)), ("protocol", json!("TCP"))]),
        ]);
        assert_eq!(
            path.to_string(),
            r#".spec.containers[name="web"].ports[containerPort=80,protocol="TCP"]"#
        );
        let finalizer = Path::fields(["metadata", "finalizers"])
            .child(PathElement::Value(json!("example.com/keep")));
        assert_eq!(
            finalizer.to_string(),
            r#".metadata.finalizers[="example.com/keep"]"#
        );
    }

    #[test]
    fn elements_order_fields_before_keys_before_values_and_numbers_by_value() {
        let mut elements = vec![
            PathElement::Index(0),
            PathElement::Value(json!("b")),
            PathElement::key([("name", json!("a"))]),
            PathElement::field("z"),
            PathElement::field("a"),
        ];
        elements.sort();
        assert_eq!(
            elements,
            vec![
                PathElement::field("a"),
                PathElement::field("z"),
                PathElement::key([("name", json!("a"))]),
                PathElement::Value(json!("b")),
                PathElement::Index(0),
            ]
        );
        assert_eq!(PathElement::Value(json!(1)), PathElement::Value(json!(1.0)));
        assert!(values_equal(
            &json!({"a": 1, "b": [2.0]}),
            &json!({"b": [2], "a": 1.0})
        ));
        assert!(!values_equal(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
    }
}
