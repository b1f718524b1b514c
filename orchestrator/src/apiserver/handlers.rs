//! Thin handlers: each typed [`ResourceRequest`] becomes one call into
//! [`Objects`] or the watch/list code, and its answer is encoded per the
//! client's `Accept`. No storage rules live here.

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use berth_api::patch::{self, PatchType};
use http::{header, HeaderMap, StatusCode};
use serde_json::{json, Value};

use super::catalog::ResourceInfo;
use super::errors::ApiError;
use super::listing;
use super::negotiate::{self, Rendering};
use super::objects::{target, DeleteOptions, Objects, Warnings, WriteOptions};
use super::request::{Query, ResourceRequest, Verb};
use super::{actions, eviction, scale, tables, watch};

/// How unknown fields in a request are treated (`fieldValidation`; upstream defaults to Warn).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FieldValidation {
    Ignore,
    Warn,
    Strict,
}

pub(super) fn field_validation(query: &Query) -> Result<FieldValidation, ApiError> {
    match query.get("fieldValidation").unwrap_or("") {
        "" | "Warn" => Ok(FieldValidation::Warn),
        "Ignore" => Ok(FieldValidation::Ignore),
        "Strict" => Ok(FieldValidation::Strict),
        other => Err(ApiError::BadRequest(format!(
            "fieldValidation must be one of \"Ignore\", \"Warn\", or \"Strict\", got {other:?}"
        ))),
    }
}

/// Drops fields the kind does not define; in Strict mode they are a 400 instead.
/// Returns the warnings to send for Warn mode.
pub(super) fn check_fields(
    r: &ResourceInfo,
    obj: &mut Value,
    mode: FieldValidation,
) -> Result<Vec<String>, ApiError> {
    let unknown = match r.rules.prune(obj) {
        Some(pruned) => pruned,
        None => berth_api::strict::prune_unknown_fields(&r.json_schema(), obj),
    };
    if unknown.is_empty() {
        return Ok(Vec::new());
    }
    let described: Vec<String> = unknown
        .iter()
        .map(|f| format!("unknown field \"{f}\""))
        .collect();
    match mode {
        FieldValidation::Strict => Err(ApiError::BadRequest(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: {}",
            described.join(", "),
            kind = r.kind,
            version = r.version,
        ))),
        FieldValidation::Warn => Ok(described),
        FieldValidation::Ignore => Ok(Vec::new()),
    }
}

pub(super) fn with_warnings(mut response: Response, warnings: &[String]) -> Response {
    for warning in warnings {
        let text = format!("299 - \"{}\"", warning.replace('"', "\\\""));
        if let Ok(value) = http::HeaderValue::from_str(&text) {
            response.headers_mut().append("Warning", value);
        }
    }
    response
}

fn write_options(
    query: &Query,
    headers: &HeaderMap,
    subresource: Option<&str>,
    admitted: &Warnings,
) -> WriteOptions {
    WriteOptions {
        dry_run: query.get("dryRun") == Some("All"),
        field_manager: Some(field_manager(query, headers)),
        subresource: subresource.map(str::to_owned),
        warnings: admitted.clone(),
    }
}

fn render_object(
    r: &ResourceInfo,
    status: StatusCode,
    rendering: Rendering,
    obj: Value,
    query: &Query,
) -> Response {
    match rendering {
        Rendering::Table => {
            let rv = obj
                .pointer("/metadata/resourceVersion")
                .cloned()
                .unwrap_or(Value::Null);
            negotiate::json_response(
                status,
                &tables::table(r, &[obj], json!({"resourceVersion": rv}), query),
            )
        }
        other => negotiate::respond(status, other, &obj),
    }
}

fn delete_options(
    query: &Query,
    body: &[u8],
    headers: &HeaderMap,
) -> Result<DeleteOptions, ApiError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        negotiate::decode_body(headers, body)?
    };
    delete_options_from(&body, query)
}

/// `DeleteOptions` from a decoded body (a `DeleteOptions` object) and the query,
/// the query winning as upstream; also what an Eviction carries.
pub fn delete_options_from(body: &Value, query: &Query) -> Result<DeleteOptions, ApiError> {
    let grace = match query.number("gracePeriodSeconds")? {
        Some(g) => Some(g),
        None => body.get("gracePeriodSeconds").and_then(Value::as_i64),
    };
    let mut policy = query
        .get("propagationPolicy")
        .map(str::to_owned)
        .or_else(|| {
            body.get("propagationPolicy")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
    if policy.is_none() {
        match body
            .get("orphanDependents")
            .and_then(Value::as_bool)
            .or_else(|| query.get("orphanDependents").map(|v| v == "true"))
        {
            Some(true) => policy = Some("Orphan".into()),
            Some(false) => policy = Some("Background".into()),
            None => {}
        }
    }
    if let Some(p) = &policy {
        if !matches!(p.as_str(), "Orphan" | "Background" | "Foreground") {
            return Err(ApiError::BadRequest(format!(
                "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"{p}\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
            )));
        }
    }
    let dry_run = query.get("dryRun") == Some("All")
        || body
            .get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|d| d.iter().any(|v| v == "All"));
    Ok(DeleteOptions {
        grace_period_seconds: grace,
        propagation_policy: policy,
        precondition_uid: body
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(str::to_owned),
        precondition_resource_version: body
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_owned),
        dry_run,
    })
}

/// Applies one patch document of `patch_type` to `current`.
pub fn apply_patch(
    r: &ResourceInfo,
    patch_type: PatchType,
    current: &Value,
    body: &Value,
) -> Result<Value, ApiError> {
    let mut patched = current.clone();
    match patch_type {
        PatchType::JsonPatch => patch::json_patch(&mut patched, body).map_err(|e| {
            ApiError::Invalid(
                target(r, ""),
                vec![super::errors::FieldCause::invalid(
                    "",
                    &Value::Null,
                    e.to_string(),
                )],
            )
        })?,
        PatchType::MergePatch => {
            if !body.is_object() {
                return Err(ApiError::BadRequest(
                    "the merge patch must be a JSON object".into(),
                ));
            }
            patch::json_merge_patch(&mut patched, body)
        }
        PatchType::StrategicMergePatch | PatchType::ApplyPatch => {
            let schema = r.patch_schema();
            patch::strategic_merge_patch(&mut patched, body, &schema)
                .map_err(|e| ApiError::BadRequest(e.to_string()))?
        }
    }
    Ok(patched)
}

fn patch_type(r: &ResourceInfo, headers: &HeaderMap) -> Result<PatchType, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let supported = if r.builtin {
        "application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml"
    } else {
        "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
    };
    match PatchType::from_content_type(content_type) {
        Some(PatchType::StrategicMergePatch) if !r.builtin => Err(ApiError::UnsupportedMediaType(format!(
            "the body of the request was in an unknown format - accepted media types include: {supported}"
        ))),
        Some(t) => Ok(t),
        None => Err(ApiError::UnsupportedMediaType(format!(
            "the body of the request was in an unknown format - accepted media types include: {supported}"
        ))),
    }
}

/// The manager a write is recorded under: `?fieldManager=`, else derived from the user agent.
fn field_manager(query: &Query, headers: &HeaderMap) -> String {
    match query.get("fieldManager").filter(|m| !m.is_empty()) {
        Some(manager) => manager.to_owned(),
        None => {
            let agent = headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            berth_api::apply::manager_from_user_agent(agent)
        }
    }
}

/// Answers one resource request.
pub async fn handle(
    objects: &Objects,
    req: ResourceRequest,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let mut warnings = Vec::new();
    let admitted = Warnings::default();
    let deprecation = req.resource.rules.deprecation_warning(&req.resource.kind);
    let response = handle_inner(objects, req, headers, body, &mut warnings, &admitted).await?;
    warnings.extend(admitted.take());
    warnings.extend(deprecation);
    Ok(with_warnings(response, &warnings))
}

async fn handle_inner(
    objects: &Objects,
    req: ResourceRequest,
    headers: &HeaderMap,
    body: &[u8],
    warnings: &mut Vec<String>,
    admitted: &Warnings,
) -> Result<Response, ApiError> {
    let resource = Arc::clone(&req.resource);
    let r = &*resource;
    let rendering = negotiate::rendering(headers);
    let ns = req.namespace.as_deref();
    let name = req.name.as_deref().unwrap_or("");
    let query = &req.query;
    let sub = req.subresource.as_deref();
    match (req.verb, sub) {
        (Verb::Get, Some("scale")) => {
            let obj = objects.get(r, ns, name).await?;
            Ok(negotiate::respond(
                StatusCode::OK,
                rendering,
                &scale::to_scale(r, &obj),
            ))
        }
        (Verb::Get, _) => {
            let obj = objects.get(r, ns, name).await?;
            Ok(render_object(r, StatusCode::OK, rendering, obj, query))
        }
        (Verb::List, _) => {
            let result = listing::list(objects.store().as_ref(), r, ns, query).await?;
            if rendering == Rendering::Table {
                let mut metadata = json!({"resourceVersion": result.revision.to_string()});
                if let Some(token) = &result.continue_token {
                    metadata["continue"] = json!(token);
                }
                return Ok(negotiate::json_response(
                    StatusCode::OK,
                    &tables::table(r, &result.items, metadata, query),
                ));
            }
            Ok(negotiate::respond(
                StatusCode::OK,
                rendering,
                &listing::list_object(r, result),
            ))
        }
        (Verb::Watch, _) => {
            // Kinds without a protobuf definition stream JSON, as for custom resources upstream.
            let rendering = match rendering {
                Rendering::Protobuf if !r.builtin => Rendering::Json,
                other => other,
            };
            let content_type = if rendering.is_protobuf() {
                berth_api::protobuf::WATCH_CONTENT_TYPE
            } else {
                "application/json"
            };
            let stream = watch::start(
                objects.store().as_ref(),
                Arc::clone(objects.shared_events()),
                Arc::clone(&resource),
                ns,
                req.name.as_deref(),
                query.clone(),
                rendering,
            )
            .await?;
            Ok(Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, content_type)
                .header(header::CACHE_CONTROL, "no-cache, private")
                .body(Body::from_stream(stream))
                .map_err(|e| ApiError::Internal(e.to_string()))?)
        }
        (Verb::Create, Some("binding")) => {
            let body = negotiate::decode_body(headers, body)?;
            let status = actions::bind(objects, r, ns, name, &body).await?;
            Ok(negotiate::json_response(StatusCode::CREATED, &status))
        }
        (Verb::Create, Some("eviction")) => {
            let body = negotiate::decode_body(headers, body)?;
            let dry_run = query.get("dryRun") == Some("All");
            let (code, status) = eviction::evict(objects, r, ns, name, &body, dry_run).await?;
            Ok(negotiate::json_response(code, &status))
        }
        (Verb::Update, Some("finalize")) => {
            let body = negotiate::decode_body(headers, body)?;
            let updated = actions::finalize(
                objects,
                r,
                name,
                &body,
                &write_options(query, headers, sub, admitted),
            )
            .await?;
            Ok(render_object(r, StatusCode::OK, rendering, updated, query))
        }
        (Verb::Create, None) if r.group.is_empty() && r.plural == "bindings" => {
            let body = negotiate::decode_body(headers, body)?;
            let status = actions::bind_named(objects, ns, &body).await?;
            Ok(negotiate::json_response(StatusCode::CREATED, &status))
        }
        (Verb::Create, None) if r.terminating => Err(ApiError::MethodNotAllowed(
            "create not allowed while custom resource definition is terminating".into(),
        )),
        (Verb::Create, None) => {
            let mut obj = negotiate::decode_body(headers, body)?;
            warnings.extend(check_fields(r, &mut obj, field_validation(query)?)?);
            if obj.is_object() {
                let api_version = r.api_version();
                obj["apiVersion"] = obj.get("apiVersion").cloned().unwrap_or(json!(api_version));
            }
            let created = objects
                .create(r, ns, obj, &write_options(query, headers, sub, admitted))
                .await?;
            Ok(render_object(
                r,
                StatusCode::CREATED,
                rendering,
                created,
                query,
            ))
        }
        (Verb::Update, Some("scale")) => {
            let scale_obj = negotiate::decode_body(headers, body)?;
            let updated = scale::update_scale(
                objects,
                r,
                ns,
                name,
                scale_obj,
                &write_options(query, headers, sub, admitted),
            )
            .await?;
            Ok(negotiate::respond(
                StatusCode::OK,
                rendering,
                &scale::to_scale(r, &updated),
            ))
        }
        (Verb::Update, sub) => {
            let mut obj = negotiate::decode_body(headers, body)?;
            warnings.extend(check_fields(r, &mut obj, field_validation(query)?)?);
            if obj.is_object() {
                obj["apiVersion"] = obj
                    .get("apiVersion")
                    .cloned()
                    .unwrap_or(json!(r.api_version()));
            }
            let updated = objects
                .update(
                    r,
                    ns,
                    name,
                    obj,
                    sub,
                    &write_options(query, headers, sub, admitted),
                )
                .await?;
            Ok(render_object(r, StatusCode::OK, rendering, updated, query))
        }
        (Verb::Patch, sub) => {
            let patch_type = patch_type(r, headers)?;
            let mut document = negotiate::decode_body(headers, body)?;
            let validation = field_validation(query)?;
            let manager = field_manager(query, headers);
            if patch_type == PatchType::ApplyPatch {
                if query.get("fieldManager").is_none_or(str::is_empty) {
                    return Err(ApiError::BadRequest(
                        "PATCH, application/apply-patch+yaml requests require a non-empty fieldManager".into(),
                    ));
                }
                warnings.extend(check_fields(r, &mut document, validation)?);
                let request = super::apply::ApplyRequest {
                    resource: r,
                    namespace: ns,
                    name,
                    manager: &manager,
                    force: query.flag("force"),
                    dry_run: query.get("dryRun") == Some("All"),
                    subresource: sub,
                    warnings: admitted.clone(),
                };
                let (status, obj) =
                    super::apply::server_side_apply(objects, request, document).await?;
                return Ok(render_object(r, status, rendering, obj, query));
            }
            let opts = write_options(query, headers, sub, admitted);
            let updated = if sub == Some("scale") {
                scale::patch_scale(objects, r, ns, name, patch_type, &document, &opts).await?
            } else {
                objects
                    .read_modify_write(r, ns, name, &opts, |current| {
                        let mut patched = apply_patch(r, patch_type, current, &document)?;
                        let found = check_fields(r, &mut patched, validation)?;
                        warnings.clear();
                        warnings.extend(found);
                        Ok(super::objects::merge_for_update(r, current, patched, sub))
                    })
                    .await?
            };
            if sub == Some("scale") {
                return Ok(negotiate::respond(
                    StatusCode::OK,
                    rendering,
                    &scale::to_scale(r, &updated),
                ));
            }
            Ok(render_object(r, StatusCode::OK, rendering, updated, query))
        }
        (Verb::Delete, None) => {
            let opts = delete_options(query, body, headers)?;
            let deleted = objects.delete(r, ns, name, &opts).await?;
            Ok(render_object(r, StatusCode::OK, rendering, deleted, query))
        }
        (Verb::DeleteCollection, None) => {
            let opts = delete_options(query, body, headers)?;
            let mut list_query = query.clone();
            list_query.remove("limit");
            list_query.remove("continue");
            let result = listing::list(objects.store().as_ref(), r, ns, &list_query).await?;
            let mut deleted = Vec::new();
            for item in result.items {
                let item_ns = item
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                let item_name = item
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                match objects
                    .delete(r, item_ns.as_deref(), &item_name, &opts)
                    .await
                {
                    Ok(obj) => deleted.push(obj),
                    Err(ApiError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            let revision = objects.store().current_revision().await?;
            let list = listing::list_object(
                r,
                listing::ListResult {
                    items: deleted,
                    revision,
                    continue_token: None,
                },
            );
            Ok(negotiate::respond(StatusCode::OK, rendering, &list))
        }
        (verb, sub) => Err(ApiError::MethodNotAllowed(format!(
            "the server does not allow this method on the requested resource ({verb:?} {}{})",
            r.plural,
            sub.map(|s| format!("/{s}")).unwrap_or_default()
        ))),
    }
}
