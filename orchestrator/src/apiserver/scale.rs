//! The `/scale` subresource: an `autoscaling/v1` Scale view of a workload's
//! replicas, and writes through it back into `spec.replicas`.

use berth_api::patch::PatchType;
use serde_json::{json, Value};

use super::catalog::ResourceInfo;
use super::errors::{ApiError, FieldCause};
use super::objects::{target, Objects, WriteOptions};

/// A workload's selector as Scale's `status.selector` string: a
/// `LabelSelector`, or an equality map of plain strings (ReplicationControllers),
/// which upstream prints as `key=value` pairs sorted by key.
fn selector_string(selector: Option<&Value>) -> String {
    let Some(selector) = selector else {
        return String::new();
    };
    if let Some(map) = selector
        .as_object()
        .filter(|m| !m.is_empty() && m.values().all(Value::is_string))
    {
        let mut pairs: Vec<String> = map
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect();
        pairs.sort();
        return pairs.join(",");
    }
    berth_api::selector::LabelSelector::from_value(selector)
        .map(|s| s.to_string())
        .unwrap_or_default()
}

/// The Scale object of an object of resource `r`, read from where the kind
/// keeps its replicas and selector.
pub fn to_scale(r: &ResourceInfo, obj: &Value) -> Value {
    let mapping = r.rules.scale_mapping();
    let meta = obj.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let selector = match &mapping.label_selector {
        Some(pointer) => obj
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        None => selector_string(obj.pointer("/spec/selector")),
    };
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
            "creationTimestamp": meta.get("creationTimestamp"),
        },
        "spec": {"replicas": obj.pointer(&mapping.spec_replicas).and_then(Value::as_i64).unwrap_or(0)},
        "status": {
            "replicas": obj.pointer(&mapping.status_replicas).and_then(Value::as_i64).unwrap_or(0),
            "selector": selector,
        },
    })
}

/// Writes `replicas` where the kind keeps its desired replicas.
fn set_replicas(r: &ResourceInfo, obj: &mut Value, replicas: i64) {
    let pointer = r.rules.scale_mapping().spec_replicas;
    let mut at = &mut *obj;
    for segment in pointer.trim_start_matches('/').split('/') {
        if !at.is_object() {
            *at = json!({});
        }
        at = at
            .as_object_mut()
            .expect("just made an object")
            .entry(segment.to_owned())
            .or_insert(Value::Null);
    }
    *at = json!(replicas);
}

fn replicas_from(r: &ResourceInfo, name: &str, scale: &Value) -> Result<i64, ApiError> {
    let replicas = scale
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if replicas < 0 {
        return Err(ApiError::Invalid(
            super::errors::Target {
                kind: "Scale".into(),
                group: "autoscaling".into(),
                ..target(r, name)
            },
            vec![FieldCause::invalid(
                "spec.replicas",
                &json!(replicas),
                "must be greater than or equal to 0",
            )],
        ));
    }
    Ok(replicas)
}

/// `PUT …/scale`.
pub async fn update_scale(
    objects: &Objects,
    r: &ResourceInfo,
    ns: Option<&str>,
    name: &str,
    scale: Value,
    opts: &WriteOptions,
) -> Result<Value, ApiError> {
    let replicas = replicas_from(r, name, &scale)?;
    let pinned = scale
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .map(str::to_owned);
    objects
        .read_modify_write(r, ns, name, opts, |current| {
            let mut next = current.clone();
            set_replicas(r, &mut next, replicas);
            if let Some(rv) = &pinned {
                next["metadata"]["resourceVersion"] = json!(rv);
            }
            Ok(next)
        })
        .await
}

/// `PATCH …/scale`.
pub async fn patch_scale(
    objects: &Objects,
    r: &ResourceInfo,
    ns: Option<&str>,
    name: &str,
    patch_type: PatchType,
    document: &Value,
    opts: &WriteOptions,
) -> Result<Value, ApiError> {
    objects
        .read_modify_write(r, ns, name, opts, |current| {
            let scale = to_scale(r, current);
            let patched = match patch_type {
                PatchType::JsonPatch => {
                    let mut s = scale.clone();
                    berth_api::patch::json_patch(&mut s, document)
                        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
                    s
                }
                _ => {
                    let mut s = scale.clone();
                    berth_api::patch::json_merge_patch(&mut s, document);
                    s
                }
            };
            let replicas = replicas_from(r, name, &patched)?;
            let mut next = current.clone();
            set_replicas(r, &mut next, replicas);
            if let Some(rv) = patched.pointer("/metadata/resourceVersion").filter(|rv| {
                *rv != scale
                    .pointer("/metadata/resourceVersion")
                    .unwrap_or(&Value::Null)
            }) {
                next["metadata"]["resourceVersion"] = rv.clone();
            }
            Ok(next)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_selectors_from_label_selectors_and_equality_maps() {
        let rcs = super::super::catalog::builtin("", "v1", "replicationcontrollers").unwrap();
        let to_scale = |obj: &Value| super::to_scale(rcs, obj);
        let rc = json!({"metadata": {"name": "nginx"}, "spec": {"replicas": 3, "selector": {"tier": "web", "app": "nginx"}},
                        "status": {"replicas": 2}});
        let scale = to_scale(&rc);
        assert_eq!(scale["status"]["selector"], "app=nginx,tier=web");
        assert_eq!(scale["spec"]["replicas"], 3);
        assert_eq!(scale["status"]["replicas"], 2);
        let rs = json!({"metadata": {"name": "web"}, "spec": {"selector": {"matchLabels": {"app": "web"}}}});
        assert_eq!(to_scale(&rs)["status"]["selector"], "app=web");
        assert_eq!(to_scale(&json!({"spec": {}}))["status"]["selector"], "");
    }
}
