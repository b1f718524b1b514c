//! Tests across the codec: round trips of every served kind, bodies captured from kubectl,
//! a cross-check against prost (k8s-pb), the Go presence rules, and corrupted input.

mod kubectl;
mod malformed;
mod prost_crosscheck;
mod round_trip;
mod semantics;

use std::path::PathBuf;

use serde_json::Value;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/protobuf/fixtures")
}

/// Every `fixtures/objects/*.json`, sorted by file name.
fn object_fixtures() -> Vec<(String, Value)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(fixtures().join("objects"))
        .expect("fixtures/objects")
        .map(|entry| entry.expect("fixture entry").path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "json")
        })
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let name = path
                .file_stem()
                .and_then(|stem| stem.to_str())
                .expect("fixture name")
                .to_owned();
            let text = std::fs::read_to_string(&path).expect("fixture text");
            let value =
                serde_json::from_str(&text).unwrap_or_else(|error| panic!("{name}: {error}"));
            (name, value)
        })
        .collect()
}

fn object_fixture(name: &str) -> Value {
    object_fixtures()
        .into_iter()
        .find(|(fixture, _)| fixture == name)
        .map(|(_, value)| value)
        .unwrap_or_else(|| panic!("no fixture {name}"))
}

/// The JSON paths where two values differ, so a failing round trip says where.
fn differences(expected: &Value, actual: &Value) -> Vec<String> {
    let mut out = Vec::new();
    collect_differences("", expected, actual, &mut out);
    out
}

fn collect_differences(path: &str, expected: &Value, actual: &Value, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(left), Value::Object(right)) => {
            for (key, value) in left {
                match right.get(key) {
                    Some(other) => collect_differences(&format!("{path}.{key}"), value, other, out),
                    None => out.push(format!("{path}.{key}: expected {value}, missing")),
                }
            }
            for (key, value) in right {
                if !left.contains_key(key) {
                    out.push(format!("{path}.{key}: unexpected {value}"));
                }
            }
        }
        (Value::Array(left), Value::Array(right)) if left.len() == right.len() => {
            for (index, (value, other)) in left.iter().zip(right).enumerate() {
                collect_differences(&format!("{path}[{index}]"), value, other, out);
            }
        }
        _ if expected != actual => out.push(format!("{path}: expected {expected}, found {actual}")),
        _ => {}
    }
}
