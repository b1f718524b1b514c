//! Server-side apply (`PATCH` with `application/apply-patch+yaml`): creates the
//! object when absent, otherwise merges the applied configuration into the live
//! object with the kind's merge strategies and records the field manager.
//!
//! Field ownership (removing fields a manager stopped applying, and 409 conflicts
//! between managers) is not tracked yet; see issue 2's notes.

use axum::response::Response;
use berth_api::patch::PatchType;
use http::StatusCode;
use serde_json::{json, Value};

use super::catalog::ResourceInfo;
use super::errors::ApiError;
use super::handlers::apply_patch;
use super::negotiate::{self, Rendering};
use super::objects::{Objects, WriteOptions};
use super::request::Query;

fn stamp_apply_manager(obj: &mut Value, manager: &str) {
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let api_version = obj.get("apiVersion").cloned().unwrap_or(Value::Null);
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let entries = meta.entry("managedFields").or_insert_with(|| json!([]));
    if !entries.is_array() {
        *entries = json!([]);
    }
    let list = entries.as_array_mut().expect("just made an array");
    list.retain(|e| {
        !(e.get("manager").and_then(Value::as_str) == Some(manager)
            && e.get("operation").and_then(Value::as_str) == Some("Apply"))
    });
    list.push(json!({
        "manager": manager,
        "operation": "Apply",
        "apiVersion": api_version,
        "time": now,
        "fieldsType": "FieldsV1",
        "fieldsV1": {},
    }));
}

/// Answers an apply patch.
#[allow(clippy::too_many_arguments)]
pub async fn server_side_apply(
    objects: &Objects,
    r: &'static ResourceInfo,
    ns: Option<&str>,
    name: &str,
    document: Value,
    manager: &str,
    opts: &WriteOptions,
    rendering: Rendering,
    _query: &Query,
) -> Result<Response, ApiError> {
    if !document.is_object() {
        return Err(ApiError::BadRequest(
            "the applied configuration must be an object".into(),
        ));
    }
    if let Some(body_name) = document.pointer("/metadata/name").and_then(Value::as_str) {
        if body_name != name {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
    }
    match objects.get(r, ns, name).await {
        Err(ApiError::NotFound(_)) => {
            let mut obj = document.clone();
            obj["metadata"]["name"] = json!(name);
            stamp_apply_manager(&mut obj, manager);
            let created = objects.create(r, ns, obj, opts).await?;
            Ok(negotiate::respond(StatusCode::CREATED, rendering, &created))
        }
        Err(e) => Err(e),
        Ok(_) => {
            let updated = objects
                .read_modify_write(r, ns, name, opts, |current| {
                    let mut applied = document.clone();
                    if let Some(meta) = applied.get_mut("metadata").and_then(Value::as_object_mut) {
                        meta.remove("resourceVersion");
                    }
                    let patch_type = if r.definition.is_some() {
                        PatchType::StrategicMergePatch
                    } else {
                        PatchType::MergePatch
                    };
                    let mut merged = apply_patch(r, patch_type, current, &applied)?;
                    stamp_apply_manager(&mut merged, manager);
                    Ok(merged)
                })
                .await?;
            Ok(negotiate::respond(StatusCode::OK, rendering, &updated))
        }
    }
}
