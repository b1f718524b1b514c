//! Interplay with objects server-side apply did not write: objects without managed fields
//! (stored before berth tracked them, or after a client cleared them) whose fields become owned
//! by `before-first-apply`, and objects managed by client-side `kubectl apply`, whose
//! `last-applied-configuration` lets `kubectl apply --server-side` take over without conflicts
//! and is kept up to date. Pure functions; nothing here reads a clock.

use serde_json::{Map, Value};

use super::fieldset::FieldSet;
use super::managed::ManagedFields;
use super::path::write_go_json;
use super::schema::ApplySchema;
use super::typed::{compare, field_set, InvalidObject};
use super::update::{empty_object, update_fields, without_managed_fields};
use super::{ApplyError, Writer};

/// The manager that owns the fields of an object nobody was recorded as owning, once somebody
/// applies to it.
pub const BEFORE_FIRST_APPLY_MANAGER: &str = "before-first-apply";

/// The annotation client-side `kubectl apply` keeps its last configuration in.
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The manager whose applies upgrade objects from client-side apply (`kubectl apply
/// --server-side`); other managers opt out by name, as upstream.
const KUBECTL_MANAGER: &str = "kubectl";

/// Upstream's limit on the total size of an object's annotations; the last-applied annotation is
/// dropped rather than let an apply exceed it.
const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// The managed fields of an object that has none, as upstream records them before the object's
/// first apply: an update from an empty object to `live` by `before-first-apply` (at the writer's
/// API version, subresource and time), so every field already set has an owner an applier can
/// conflict with. Client-side `kubectl apply` objects created before managed fields were
/// tracked are the common case.
pub fn before_first_apply(
    live: &Value,
    writer: &Writer<'_>,
    schema: &dyn ApplySchema,
) -> Result<ManagedFields, InvalidObject> {
    let before = Writer {
        manager: BEFORE_FIRST_APPLY_MANAGER,
        ..writer.clone()
    };
    let mut managed = ManagedFields::default();
    match update_fields(
        &empty_object(),
        &without_managed_fields(live),
        &mut managed,
        &before,
        schema,
    ) {
        Ok(()) => Ok(managed),
        Err(ApplyError::Invalid(invalid)) => Err(invalid),
        Err(other) => unreachable!("a forced update cannot fail with {other}"),
    }
}

/// The fields a `kubectl` apply may take without conflict from an object managed by client-side
/// apply: those of the last-applied configuration whose values the live object still has.
/// `None` when the object has no usable annotation (absent, unparsable, or of another version).
pub(crate) fn allowed_conflicts(
    live: &Value,
    manager: &str,
    api_version: &str,
    schema: &dyn ApplySchema,
) -> Option<FieldSet> {
    if manager != KUBECTL_MANAGER {
        return None;
    }
    let annotation = last_applied(live)?;
    let last: Value = serde_json::from_str(annotation).ok()?;
    if last.get("apiVersion").and_then(Value::as_str) != Some(api_version) {
        return None;
    }
    let fields = field_set(&last, schema).ok()?;
    let comparison = compare(&last, live, schema).ok()?;
    Some(
        fields
            .difference(&comparison.modified)
            .difference(&comparison.added)
            .difference(&comparison.removed),
    )
}

/// After a `kubectl` apply to an object that has a last-applied annotation, rewrites the
/// annotation to the configuration just applied, so a later client-side apply diffs against it.
pub(crate) fn update_last_applied(
    live: &Value,
    result: &mut Value,
    manager: &str,
    applied: &Value,
) {
    if manager != KUBECTL_MANAGER || last_applied(live).is_none() {
        return;
    }
    let mut config = applied.clone();
    if let Some(Value::Object(annotations)) = config.pointer_mut("/metadata/annotations") {
        annotations.remove(LAST_APPLIED_ANNOTATION);
    }
    let mut encoded = String::new();
    write_go_json(&mut encoded, &config);
    encoded.push('\n');

    let Some(object) = result.as_object_mut() else {
        return;
    };
    let metadata = object
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(metadata) = metadata.as_object_mut() else {
        return;
    };
    let annotations = metadata
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(annotations) = annotations.as_object_mut() else {
        return;
    };
    annotations.insert(LAST_APPLIED_ANNOTATION.to_owned(), Value::from(encoded));
    let total: usize = annotations
        .iter()
        .map(|(key, value)| key.len() + value.as_str().map_or(0, str::len))
        .sum();
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        annotations.remove(LAST_APPLIED_ANNOTATION);
    }
}

fn last_applied(object: &Value) -> Option<&str> {
    object
        .pointer("/metadata/annotations")?
        .get(LAST_APPLIED_ANNOTATION)?
        .as_str()
        .filter(|annotation| !annotation.is_empty())
}
