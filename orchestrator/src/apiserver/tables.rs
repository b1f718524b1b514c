//! Wraps objects into `meta.k8s.io/v1` Tables (what `kubectl get` asks for),
//! with each row carrying the object's metadata as kubectl expects.

use serde_json::{json, Value};

use super::catalog::ResourceInfo;
use super::request::Query;

fn column_definitions(r: &ResourceInfo) -> Vec<Value> {
    r.rules
        .columns()
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            json!({
                "name": c.name,
                "type": c.kind,
                "format": if i == 0 && c.name == "Name" { "name" } else { "" },
                "description": c.description,
                "priority": c.priority,
            })
        })
        .collect()
}

fn row_object(r: &ResourceInfo, obj: &Value, query: &Query) -> Value {
    match query.get("includeObject") {
        Some("Object") => {
            let mut full = obj.clone();
            full["kind"] = json!(r.kind);
            full["apiVersion"] = json!(r.api_version());
            full
        }
        Some("None") => Value::Null,
        _ => json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
        }),
    }
}

/// A Table of `objects`, with list metadata (resourceVersion, continue).
pub fn table(r: &ResourceInfo, objects: &[Value], list_metadata: Value, query: &Query) -> Value {
    let now = jiff::Timestamp::now();
    let rows: Vec<Value> = objects
        .iter()
        .map(|obj| {
            json!({
                "cells": r.rules.cells(obj, now),
                "object": row_object(r, obj, query),
            })
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_metadata,
        "columnDefinitions": column_definitions(r),
        "rows": rows,
    })
}
