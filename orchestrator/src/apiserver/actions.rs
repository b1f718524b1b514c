//! Subresources that act on an object: `pods/binding` (the scheduler assigns a
//! node) and `namespaces/finalize` (the namespace controller releases a
//! namespace); `pods/eviction` has its own module, `eviction`.

use serde_json::{json, Value};

use super::catalog::ResourceInfo;
use super::errors::{ApiError, Target};
use super::objects::{target, Objects, WriteOptions};

/// The `Status` upstream answers a successful binding with.
fn success(code: u16) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": code})
}

fn binding_target(name: &str) -> Target {
    Target {
        group: String::new(),
        resource: "pods/binding".into(),
        kind: "Binding".into(),
        name: name.to_owned(),
    }
}

/// `POST /api/v1/namespaces/NS/bindings`: binds the pod the Binding names
/// (`metadata.name`), as `pods/NAME/binding` does.
pub async fn bind_named(
    objects: &Objects,
    ns: Option<&str>,
    body: &Value,
) -> Result<Value, ApiError> {
    let pod = body
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::BadRequest("Binding.metadata.name is required".into()))?
        .to_owned();
    let pods = super::catalog::builtin("", "v1", "pods").expect("pods are a built-in resource");
    bind(objects, pods, ns, &pod, body).await
}

/// `POST pods/NAME/binding`: sets `spec.nodeName` once, and the PodScheduled condition.
pub async fn bind(
    objects: &Objects,
    r: &ResourceInfo,
    ns: Option<&str>,
    name: &str,
    body: &Value,
) -> Result<Value, ApiError> {
    let node = body
        .pointer("/target/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::BadRequest("Binding.target.name is required".into()))?
        .to_owned();
    if let Some(body_name) = body.pointer("/metadata/name").and_then(Value::as_str) {
        if body_name != name {
            return Err(ApiError::BadRequest(format!(
                "the name of the binding ({body_name}) does not match the pod ({name})"
            )));
        }
    }
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    objects
        .update_bypassing_validation(r, ns, name, |pod| {
            if pod.pointer("/metadata/deletionTimestamp").is_some() {
                return Err(ApiError::Conflict(binding_target(name), format!("pod {name} is being deleted, cannot be assigned to a host")));
            }
            match pod.pointer("/spec/nodeName").and_then(Value::as_str).filter(|n| !n.is_empty()) {
                Some(current) => Err(ApiError::Conflict(
                    binding_target(name),
                    format!("pod {name} is already assigned to node \"{current}\""),
                )),
                None => {
                    let mut bound = pod.clone();
                    bound["spec"]["nodeName"] = json!(node);
                    set_condition(&mut bound, json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now}));
                    Ok(bound)
                }
            }
        })
        .await?;
    Ok(success(201))
}

/// Replaces (or adds) the pod condition of the same type.
fn set_condition(pod: &mut Value, condition: Value) {
    if !pod.get("status").is_some_and(Value::is_object) {
        pod["status"] = json!({});
    }
    let status = pod["status"].as_object_mut().expect("status is an object");
    let conditions = status.entry("conditions").or_insert_with(|| json!([]));
    if let Some(list) = conditions.as_array_mut() {
        list.retain(|c| c.get("type") != condition.get("type"));
        list.push(condition);
    }
}

/// `PUT namespaces/NAME/finalize`: only `spec.finalizers` changes; a terminating
/// namespace whose finalizers are all gone is deleted.
pub async fn finalize(
    objects: &Objects,
    r: &ResourceInfo,
    name: &str,
    body: &Value,
    opts: &WriteOptions,
) -> Result<Value, ApiError> {
    let finalizers = body
        .pointer("/spec/finalizers")
        .cloned()
        .unwrap_or_else(|| json!([]));
    if body
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .is_some_and(|n| n != name)
    {
        return Err(ApiError::BadRequest(format!(
            "the name of the object does not match the name on the URL ({name})"
        )));
    }
    objects
        .read_modify_write(r, None, name, opts, |namespace| {
            let mut next = namespace.clone();
            next["spec"]["finalizers"] = finalizers.clone();
            Ok(next)
        })
        .await
        .map_err(|e| match e {
            ApiError::NotFound(_) => ApiError::NotFound(target(r, name)),
            other => other,
        })
}
