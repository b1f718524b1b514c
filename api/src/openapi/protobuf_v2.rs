//! The Swagger 2.0 document in gnostic's protobuf encoding
//! (`application/com.github.proto-openapi.spec.v2@v1.0+protobuf`): the only
//! form kubectl 1.27 and 1.28 accept from `/openapi/v2`, which they read for
//! `apply` validation and `explain`. Field numbers follow gnostic's
//! `openapiv2/OpenAPIv2.proto`; vendor extensions travel as YAML (JSON is YAML).

use std::convert::Infallible;

use serde_json::{Map, Value};

use crate::protobuf::wire::Writer;

type Done = Result<(), Infallible>;

fn string(w: &mut Writer, number: u32, value: Option<&Value>) {
    if let Some(text) = value.and_then(Value::as_str).filter(|t| !t.is_empty()) {
        w.len_delimited(number, text.as_bytes());
    }
}

fn strings(w: &mut Writer, number: u32, value: Option<&Value>) {
    for text in value
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        w.len_delimited(number, text.as_bytes());
    }
}

fn boolean(w: &mut Writer, number: u32, value: Option<&Value>) {
    if value.and_then(Value::as_bool) == Some(true) {
        w.varint_field(number, 1);
    }
}

/// gnostic `Any` holding `value` as YAML text (field 2).
fn any(w: &mut Writer, number: u32, value: &Value) {
    let yaml = serde_json::to_string(value).unwrap_or_default();
    let _ = w.nested(number, |w| -> Done {
        w.len_delimited(2, yaml.as_bytes());
        Ok(())
    });
}

/// Every `x-…` key of `map` as a repeated `NamedAny` field.
fn vendor_extensions(w: &mut Writer, number: u32, map: &Map<String, Value>) {
    for (name, value) in map.iter().filter(|(k, _)| k.starts_with("x-")) {
        let _ = w.nested(number, |w| -> Done {
            w.len_delimited(1, name.as_bytes());
            any(w, 2, value);
            Ok(())
        });
    }
}

fn named<F: FnOnce(&mut Writer)>(
    w: &mut Writer,
    number: u32,
    name: &str,
    value_field: u32,
    body: F,
) {
    let _ = w.nested(number, |w| -> Done {
        w.len_delimited(1, name.as_bytes());
        let _ = w.nested(value_field, |w| -> Done {
            body(w);
            Ok(())
        });
        Ok(())
    });
}

/// `Schema`.
fn schema(w: &mut Writer, s: &Value) {
    let Some(map) = s.as_object() else {
        return;
    };
    string(w, 1, map.get("$ref"));
    string(w, 2, map.get("format"));
    string(w, 3, map.get("title"));
    string(w, 4, map.get("description"));
    strings(w, 19, map.get("required"));
    for value in map
        .get("enum")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        any(w, 20, value);
    }
    match map.get("additionalProperties") {
        Some(Value::Bool(allowed)) => {
            let _ = w.nested(21, |w| -> Done {
                w.varint_field(2, u64::from(*allowed));
                Ok(())
            });
        }
        Some(additional @ Value::Object(_)) => {
            let _ = w.nested(21, |w| -> Done {
                let _ = w.nested(1, |w| -> Done {
                    schema(w, additional);
                    Ok(())
                });
                Ok(())
            });
        }
        _ => {}
    }
    let types: Vec<&str> = match map.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .collect(),
        _ => vec![],
    };
    if !types.is_empty() {
        let _ = w.nested(22, |w| -> Done {
            for t in types {
                w.len_delimited(1, t.as_bytes());
            }
            Ok(())
        });
    }
    if let Some(items) = map.get("items") {
        let _ = w.nested(23, |w| -> Done {
            let list: Vec<&Value> = match items {
                Value::Array(list) => list.iter().collect(),
                one => vec![one],
            };
            for item in list {
                let _ = w.nested(1, |w| -> Done {
                    schema(w, item);
                    Ok(())
                });
            }
            Ok(())
        });
    }
    for part in map
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let _ = w.nested(24, |w| -> Done {
            schema(w, part);
            Ok(())
        });
    }
    if let Some(properties) = map.get("properties").and_then(Value::as_object) {
        let _ = w.nested(25, |w| -> Done {
            for (name, property) in properties {
                named(w, 1, name, 2, |w| schema(w, property));
            }
            Ok(())
        });
    }
    vendor_extensions(w, 31, map);
}

/// `Parameter` (inside a `ParametersItem`): a body or a non-body (query/path) parameter.
fn parameter(w: &mut Writer, p: &Value) {
    let location = p.get("in").and_then(Value::as_str).unwrap_or("query");
    if location == "body" {
        let _ = w.nested(1, |w| -> Done {
            string(w, 1, p.get("description"));
            string(w, 2, p.get("name"));
            string(w, 3, p.get("in"));
            boolean(w, 4, p.get("required"));
            if let Some(body_schema) = p.get("schema") {
                let _ = w.nested(5, |w| -> Done {
                    schema(w, body_schema);
                    Ok(())
                });
            }
            Ok(())
        });
        return;
    }
    let _ = w.nested(2, |w| -> Done {
        // NonBodyParameter: query = 3, path = 4; their sub-schemas number `type`
        // and `uniqueItems` differently.
        let (field, type_field, unique_field) = if location == "path" {
            (4, 5, 19)
        } else {
            (3, 6, 20)
        };
        let _ = w.nested(field, |w| -> Done {
            boolean(w, 1, p.get("required"));
            string(w, 2, p.get("in"));
            string(w, 3, p.get("description"));
            string(w, 4, p.get("name"));
            string(w, type_field, p.get("type"));
            boolean(w, unique_field, p.get("uniqueItems"));
            Ok(())
        });
        Ok(())
    });
}

/// `Operation`.
fn operation(w: &mut Writer, op: &Value) {
    let Some(map) = op.as_object() else {
        return;
    };
    strings(w, 1, map.get("tags"));
    string(w, 3, map.get("description"));
    string(w, 5, map.get("operationId"));
    strings(w, 6, map.get("produces"));
    strings(w, 7, map.get("consumes"));
    for p in map
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        // ParametersItem { parameter: Parameter { … } }
        let _ = w.nested(8, |w| -> Done {
            w.nested(1, |w| -> Done {
                parameter(w, p);
                Ok(())
            })
        });
    }
    if let Some(responses) = map.get("responses").and_then(Value::as_object) {
        let _ = w.nested(9, |w| -> Done {
            for (code, response) in responses {
                // NamedResponseValue { name, value: ResponseValue { response: Response } }
                named(w, 1, code, 2, |w| {
                    let _ = w.nested(1, |w| -> Done {
                        string(w, 1, response.get("description"));
                        if let Some(response_schema) = response.get("schema") {
                            let _ = w.nested(2, |w| -> Done {
                                let _ = w.nested(1, |w| -> Done {
                                    schema(w, response_schema);
                                    Ok(())
                                });
                                Ok(())
                            });
                        }
                        Ok(())
                    });
                });
            }
            Ok(())
        });
    }
    strings(w, 10, map.get("schemes"));
    vendor_extensions(w, 13, map);
}

/// Encodes a Swagger 2.0 JSON document (as [`super::swagger_v2`] builds it).
pub fn encode(document: &Value) -> Vec<u8> {
    let mut w = Writer::default();
    string(&mut w, 1, document.get("swagger"));
    if let Some(info) = document.get("info") {
        let _ = w.nested(2, |w| -> Done {
            string(w, 1, info.get("title"));
            string(w, 2, info.get("version"));
            Ok(())
        });
    }
    if let Some(paths) = document.get("paths").and_then(Value::as_object) {
        let _ = w.nested(8, |w| -> Done {
            for (path, item) in paths {
                named(w, 2, path, 2, |w| {
                    for (verb, number) in [
                        ("get", 2),
                        ("put", 3),
                        ("post", 4),
                        ("delete", 5),
                        ("patch", 8),
                    ] {
                        if let Some(op) = item.get(verb) {
                            let _ = w.nested(number, |w| -> Done {
                                operation(w, op);
                                Ok(())
                            });
                        }
                    }
                });
            }
            Ok(())
        });
    }
    if let Some(definitions) = document.get("definitions").and_then(Value::as_object) {
        let _ = w.nested(9, |w| -> Done {
            for (name, definition) in definitions {
                named(w, 1, name, 2, |w| schema(w, definition));
            }
            Ok(())
        });
    }
    w.bytes
}
