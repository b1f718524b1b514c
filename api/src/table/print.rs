//! Small readers the kinds' printers share: values at a path, `<none>` for
//! empty cells, ages, and the selector and container summaries of workloads.

use serde_json::Value;

use super::human_duration;

/// The string at `path`.
pub fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

/// The integer at `path`, 0 when absent.
pub fn int_at(v: &Value, path: &[&str]) -> i64 {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// The list at `path`, empty when absent.
pub fn array_at<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The number of entries of the map at `path`.
pub fn count_map(v: &Value, path: &[&str]) -> usize {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_object)
        .map_or(0, |m| m.len())
}

/// `<none>` for an empty cell, as kubectl prints it.
pub fn or_none(s: String) -> String {
    if s.is_empty() {
        "<none>".to_owned()
    } else {
        s
    }
}

/// The age of the timestamp at `path`, `<unknown>` when absent.
pub fn age(obj: &Value, path: &[&str], now: jiff::Timestamp) -> String {
    match str_at(obj, path).and_then(|t| t.parse::<jiff::Timestamp>().ok()) {
        Some(t) => human_duration(now.as_second() - t.as_second()),
        None => "<unknown>".to_owned(),
    }
}

/// The CONTAINERS and IMAGES cells of a pod template's spec.
pub fn containers_and_images(template_spec: &Value) -> (String, String) {
    let containers = array_at(template_spec, &["containers"]);
    let names: Vec<&str> = containers
        .iter()
        .filter_map(|c| str_at(c, &["name"]))
        .collect();
    let images: Vec<&str> = containers
        .iter()
        .filter_map(|c| str_at(c, &["image"]))
        .collect();
    (names.join(","), images.join(","))
}

/// A label selector as kubectl prints it (`app=web,tier in (a,b)`).
pub fn selector_string(selector: Option<&Value>) -> String {
    let Some(selector) = selector else {
        return "<none>".to_owned();
    };
    let mut parts = Vec::new();
    if let Some(labels) = selector.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in labels {
            parts.push(format!("{k}={}", v.as_str().unwrap_or_default()));
        }
    }
    for expr in array_at(selector, &["matchExpressions"]) {
        let key = str_at(expr, &["key"]).unwrap_or_default();
        let values: Vec<&str> = array_at(expr, &["values"])
            .iter()
            .filter_map(Value::as_str)
            .collect();
        match str_at(expr, &["operator"]).unwrap_or_default() {
            "In" => parts.push(format!("{key} in ({})", values.join(","))),
            "NotIn" => parts.push(format!("{key} notin ({})", values.join(","))),
            "Exists" => parts.push(key.to_owned()),
            "DoesNotExist" => parts.push(format!("!{key}")),
            _ => {}
        }
    }
    or_none(parts.join(","))
}

/// The integer at `path`, `<none>` when absent.
pub fn optional_int(v: &Value, path: &[&str]) -> String {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_i64)
        .map_or_else(|| "<none>".to_owned(), |n| n.to_string())
}

/// The string at `path`, `<none>` when absent or empty.
pub fn str_or_none(v: &Value, path: &[&str]) -> String {
    or_none(str_at(v, path).unwrap_or_default().to_owned())
}
