//! Server-side apply (`PATCH` with `application/apply-patch+yaml`): merges the
//! applied configuration into the live object (or creates it) with field
//! ownership and conflicts from `berth_api::apply`, then stores it through the
//! same validation and defaulting as every other write.

use berth_api::apply::{self, ApplyError, FieldSet, ManagedFields, Path, Writer};
use http::StatusCode;
use serde_json::{json, Value};

use super::catalog::ResourceInfo;
use super::errors::{self, ApiError};
use super::objects::{target, Objects, Warnings, WriteOptions};

/// One apply request.
pub struct ApplyRequest<'a> {
    /// The resource applied to.
    pub resource: &'a ResourceInfo,
    /// Namespace from the URL.
    pub namespace: Option<&'a str>,
    /// Object name from the URL.
    pub name: &'a str,
    /// `?fieldManager=`.
    pub manager: &'a str,
    /// `?force=true`: take conflicting fields from their owners.
    pub force: bool,
    /// `dryRun=All`.
    pub dry_run: bool,
    /// The subresource applied to (`status`), which decides what the write may change.
    pub subresource: Option<&'a str>,
    /// Where admission leaves warnings for the client.
    pub warnings: Warnings,
}

fn apply_error(r: &ResourceInfo, name: &str, error: ApplyError) -> ApiError {
    match error {
        ApplyError::Conflicts(conflicts) => {
            ApiError::ApplyConflict(Box::new(errors::ApplyConflict {
                target: target(r, name),
                message: conflicts.to_string(),
                conflicts: conflicts
                    .conflicts()
                    .iter()
                    .map(|c| (c.cause_message(), c.field()))
                    .collect(),
            }))
        }
        other => ApiError::BadRequest(other.to_string()),
    }
}

/// The configuration merged into `live` (`{}` when absent) as `request.manager`.
fn merge(request: &ApplyRequest<'_>, live: &Value, document: &Value) -> Result<Value, ApiError> {
    let r = request.resource;
    let managed =
        ManagedFields::from_object(live).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let api_version = r.api_version();
    let reset = r
        .has_status
        .then(|| FieldSet::from_paths([Path::fields(["status"])]));
    let mut writer = Writer::new(request.manager, &api_version, jiff::Timestamp::now());
    if let Some(reset) = &reset {
        writer = writer.with_reset_fields(reset);
    }
    let (object, _) = apply::apply(
        live,
        &managed,
        document,
        &writer,
        request.force,
        &r.apply_schema(),
    )
    .map_err(|e| apply_error(r, request.name, e))?;
    Ok(object)
}

/// Applies `document`; answers 201 with the created object or 200 with the updated one.
pub async fn server_side_apply(
    objects: &Objects,
    request: ApplyRequest<'_>,
    document: Value,
) -> Result<(StatusCode, Value), ApiError> {
    let r = request.resource;
    if !document.is_object() {
        return Err(ApiError::BadRequest(
            "the applied configuration must be an object".into(),
        ));
    }
    if let Some(body_name) = document.pointer("/metadata/name").and_then(Value::as_str) {
        if body_name != request.name {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({})",
                request.name
            )));
        }
    }
    // Ownership is recorded by the apply itself, not by the generic update path.
    let opts = WriteOptions {
        dry_run: request.dry_run,
        field_manager: None,
        subresource: None,
        warnings: request.warnings.clone(),
    };
    match objects.get(r, request.namespace, request.name).await {
        Err(ApiError::NotFound(_)) => {
            let mut object = merge(&request, &json!({}), &document)?;
            object["metadata"]["name"] = json!(request.name);
            let created = objects.create(r, request.namespace, object, &opts).await?;
            Ok((StatusCode::CREATED, created))
        }
        Err(e) => Err(e),
        Ok(_) => {
            let updated = objects
                .read_modify_write(r, request.namespace, request.name, &opts, |current| {
                    let mut merged = merge(&request, current, &document)?;
                    // Optimistic concurrency is the store's job here, not the config's.
                    if let Some(meta) = merged.get_mut("metadata").and_then(Value::as_object_mut) {
                        meta.remove("resourceVersion");
                    }
                    // As for any write of the main resource: status stays, and the
                    // kind carries over what only its own paths change.
                    Ok(super::objects::merge_for_update(
                        r,
                        current,
                        merged,
                        request.subresource,
                    ))
                })
                .await?;
            Ok((StatusCode::OK, updated))
        }
    }
}
