//! One entry of `spec.versions`: its schema (with the status-subresource
//! root restrictions), subresources, printer columns and selectable fields.

use serde_json::{json, Value};

use super::{list, str_at};
use crate::crd::{fieldpath, path, CustomSchema};
use crate::field::FieldCause;

const COLUMN_TYPES: [&str; 5] = ["boolean", "date", "integer", "number", "string"];
const COLUMN_FORMATS: [&str; 8] = [
    "byte",
    "date",
    "date-time",
    "double",
    "float",
    "int32",
    "int64",
    "password",
];
const MAX_SELECTABLE_FIELDS: usize = 8;

pub(super) fn version(version: &Value, at: &str, errors: &mut Vec<FieldCause>) {
    let deprecated = version.get("deprecated") == Some(&Value::Bool(true));
    if let Some(warning) = version.get("deprecationWarning") {
        let text = warning.as_str().unwrap_or("");
        let here = path::child(at, "deprecationWarning");
        let mut problems = Vec::new();
        if !deprecated {
            problems.push("can only be set for deprecated versions".to_owned());
        } else {
            if text.len() > 256 {
                problems.push("must be <= 256 characters long".to_owned());
            }
            if text.is_empty() {
                problems.push("must not be an empty string".to_owned());
            }
            if let Some((i, _)) = text.char_indices().find(|(_, c)| c.is_control()) {
                problems.push(format!("must only contain printable UTF-8 characters; non-printable character found at index {i}"));
            }
        }
        for p in problems {
            errors.push(FieldCause::invalid(&here, warning, p));
        }
    }
    let status_enabled = version.pointer("/subresources/status").is_some();
    let schema_at = path::child(at, "schema.openAPIV3Schema");
    let mut schema = None;
    if let Some(raw) = version.pointer("/schema/openAPIV3Schema") {
        if status_enabled {
            root_with_status(raw, &schema_at, errors);
        }
        if raw.get("nullable") == Some(&Value::Bool(true)) {
            errors.push(FieldCause::forbidden(
                path::child(&schema_at, "nullable"),
                "nullable cannot be true at the root",
            ));
        }
        match CustomSchema::new(raw, &schema_at) {
            Ok(s) => schema = Some(s),
            Err(errs) => errors.extend(errs),
        }
    }
    if let Some(sub) = version.get("subresources") {
        subresources(sub, &path::child(at, "subresources"), errors);
    }
    for (i, column) in list(version.get("additionalPrinterColumns"))
        .iter()
        .enumerate()
    {
        printer_column(
            column,
            &path::index(&path::child(at, "additionalPrinterColumns"), i),
            errors,
        );
    }
    let fields = list(version.get("selectableFields"));
    if !fields.is_empty() {
        let here = path::child(at, "selectableFields");
        match &schema {
            None if version.pointer("/schema/openAPIV3Schema").is_none() => {
                errors.push(FieldCause::invalid(
                    &here,
                    &json!(""),
                    "selectableFields may only be set when version.schema.openAPIV3Schema is not included",
                ));
            }
            None => {}
            Some(schema) => selectable_fields(fields, schema, &here, errors),
        }
    }
}

/// With the status subresource, only some keywords may sit at the root.
fn root_with_status(raw: &Value, at: &str, errors: &mut Vec<FieldCause>) {
    const ALLOWED: [&str; 22] = [
        "description",
        "type",
        "format",
        "title",
        "maximum",
        "exclusiveMaximum",
        "minimum",
        "exclusiveMinimum",
        "maxLength",
        "minLength",
        "pattern",
        "maxItems",
        "minItems",
        "uniqueItems",
        "multipleOf",
        "required",
        "items",
        "properties",
        "externalDocs",
        "example",
        "x-kubernetes-preserve-unknown-fields",
        "x-kubernetes-validations",
    ];
    let Some(map) = raw.as_object() else { return };
    for (key, value) in map {
        if key == "type" {
            if value != "object" {
                errors.push(FieldCause::invalid(
                    path::child(at, "type"),
                    value,
                    "only \"object\" is allowed as the type at the root of the schema if the status subresource is enabled",
                ));
                return;
            }
            continue;
        }
        let zero = matches!(value, Value::Null | Value::Bool(false))
            || value.as_str() == Some("")
            || value.as_array().is_some_and(Vec::is_empty)
            || value.as_object().is_some_and(|m| m.is_empty());
        if !zero && !ALLOWED.contains(&key.as_str()) {
            errors.push(FieldCause::invalid(
                at,
                raw,
                "only [Description Type Format Title Maximum ExclusiveMaximum Minimum ExclusiveMinimum MaxLength MinLength Pattern MaxItems MinItems UniqueItems MultipleOf Required Items Properties ExternalDocs Example XPreserveUnknownFields XValidations] fields are allowed at the root of the schema if the status subresource is enabled",
            ));
            return;
        }
    }
}

fn simple_json_path(s: &str, at: &str, errors: &mut Vec<FieldCause>) -> bool {
    let detail = if s.is_empty() {
        "must not be empty"
    } else if !s.starts_with('.') {
        "must be a simple json path starting with ."
    } else {
        return true;
    };
    errors.push(FieldCause::invalid(at, &json!(s), detail));
    false
}

fn subresources(sub: &Value, at: &str, errors: &mut Vec<FieldCause>) {
    let Some(scale) = sub.get("scale") else {
        return;
    };
    for (key, prefixes, detail) in [
        (
            "specReplicasPath",
            &[".spec."][..],
            "should be a json path under .spec",
        ),
        (
            "statusReplicasPath",
            &[".status."][..],
            "should be a json path under .status",
        ),
    ] {
        let here = path::child(at, &format!("scale.{key}"));
        let value = str_at(scale, &[key]);
        if value.is_empty() {
            errors.push(FieldCause::required(here, ""));
        } else if simple_json_path(value, &here, errors)
            && !prefixes.iter().any(|p| value.starts_with(p))
        {
            errors.push(FieldCause::invalid(here, &json!(value), detail));
        }
    }
    let selector = str_at(scale, &["labelSelectorPath"]);
    if !selector.is_empty() {
        let here = path::child(at, "scale.labelSelectorPath");
        if simple_json_path(selector, &here, errors)
            && !selector.starts_with(".spec.")
            && !selector.starts_with(".status.")
        {
            errors.push(FieldCause::invalid(
                here,
                &json!(selector),
                "should be a json path under either .spec or .status",
            ));
        }
    }
}

fn printer_column(column: &Value, at: &str, errors: &mut Vec<FieldCause>) {
    if str_at(column, &["name"]).is_empty() {
        errors.push(FieldCause::required(path::child(at, "name"), ""));
    }
    let types = format!("must be one of {}", COLUMN_TYPES.join(","));
    let ty = str_at(column, &["type"]);
    if ty.is_empty() {
        errors.push(FieldCause::required(path::child(at, "type"), &types));
    } else if !COLUMN_TYPES.contains(&ty) {
        errors.push(FieldCause::invalid(
            path::child(at, "type"),
            &json!(ty),
            &types,
        ));
    }
    let format = str_at(column, &["format"]);
    if !format.is_empty() && !COLUMN_FORMATS.contains(&format) {
        errors.push(FieldCause::invalid(
            path::child(at, "format"),
            &json!(format),
            format!("must be one of {}", COLUMN_FORMATS.join(",")),
        ));
    }
    // Upstream names this field by its Go name.
    let json_path = str_at(column, &["jsonPath"]);
    let here = path::child(at, "JSONPath");
    if json_path.is_empty() {
        errors.push(FieldCause::required(here, ""));
    } else {
        simple_json_path(json_path, &here, errors);
    }
}

fn selectable_fields(
    fields: &[Value],
    schema: &CustomSchema,
    at: &str,
    errors: &mut Vec<FieldCause>,
) {
    let mut unique: Vec<String> = Vec::new();
    for (i, f) in fields.iter().enumerate() {
        let here = path::child(&path::index(at, i), "jsonPath");
        let json_path = str_at(f, &["jsonPath"]);
        if json_path.is_empty() {
            errors.push(FieldCause::required(here, ""));
            continue;
        }
        let (normalized, node) = match fieldpath::resolve(json_path, &schema.root, false) {
            Ok(found) => found,
            Err(err) => {
                errors.push(FieldCause::invalid(
                    here,
                    &json!(json_path),
                    format!("is an invalid path: {err}"),
                ));
                continue;
            }
        };
        let root = normalized.split(['.', '[']).next().unwrap_or("");
        if root == "metadata" {
            errors.push(FieldCause::invalid(
                &here,
                &json!(json_path),
                "must not point to fields in metadata",
            ));
        }
        if !node.is_some_and(|n| matches!(n.ty.as_str(), "string" | "boolean" | "integer")) {
            errors.push(FieldCause::invalid(
                &here,
                &json!(json_path),
                "must point to a field of type string, boolean or integer. Enum string fields and strings with formats are allowed.",
            ));
        }
        if unique.contains(&normalized) {
            errors.push(FieldCause::duplicate(here, &json!(json_path)));
        } else {
            unique.push(normalized);
        }
    }
    if unique.len() > MAX_SELECTABLE_FIELDS {
        errors.push(FieldCause {
            reason: "FieldValueTooMany",
            field: at.to_owned(),
            message: format!(
                "Too many: {}: must have at most {MAX_SELECTABLE_FIELDS} items",
                unique.len()
            ),
        });
    }
}
