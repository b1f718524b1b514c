//! The two ways ownership changes (structured-merge-diff's `Updater`): an update takes the
//! fields it changed from everyone else; an apply merges a configuration, prunes what its
//! manager stopped applying, and takes the fields it changed, failing on conflicts unless
//! forced. Pure functions over values and [`ManagedFields`]; the caller stores the results.

use std::borrow::Cow;

use serde_json::{json, Value};

use super::conflict::Conflicts;
use super::fieldset::FieldSet;
use super::managed::{ManagedFields, ManagedFieldsEntry, Operation};
use super::path::Path;
use super::schema::ApplySchema;
use super::typed::{
    compare, ensure_named_fields_are_members, field_set, merge, remove_items, Comparison,
    InvalidObject,
};
use super::{ApplyError, Writer};

/// The entry an apply writes, which its own conflict check skips.
pub(crate) struct Identity<'a> {
    pub(crate) manager: &'a str,
    pub(crate) operation: Operation,
    pub(crate) api_version: &'a str,
    pub(crate) subresource: &'a str,
}

impl Identity<'_> {
    fn matches(&self, entry: &ManagedFieldsEntry) -> bool {
        entry.is(
            self.manager,
            self.operation,
            self.api_version,
            self.subresource,
        )
    }
}

/// The fields kube-apiserver never records in managed fields: type and identity metadata that
/// clients must send but do not own.
pub(crate) fn strip_meta(fields: &FieldSet) -> FieldSet {
    let strip: FieldSet = [
        &["apiVersion"][..],
        &["kind"],
        &["metadata"],
        &["metadata", "name"],
        &["metadata", "namespace"],
        &["metadata", "creationTimestamp"],
        &["metadata", "selfLink"],
        &["metadata", "uid"],
        &["metadata", "clusterName"],
        &["metadata", "generation"],
        &["metadata", "managedFields"],
        &["metadata", "resourceVersion"],
    ]
    .into_iter()
    .map(|path| Path::fields(path.iter().copied()))
    .collect();
    fields.difference(&strip)
}

/// Strips type and identity metadata from every entry and drops entries left empty.
pub(crate) fn strip_meta_from_all(managed: &mut ManagedFields) {
    for entry in managed.entries_mut() {
        entry.fields = strip_meta(&entry.fields);
    }
    managed.drop_empty();
}

/// Compares `old` and `new` and moves ownership accordingly (upstream's `update`): the fields
/// `new` added or modified leave every other manager (a conflict unless `force`), and the
/// fields it removed leave every other manager. Returns the comparison, without ignored fields.
pub(crate) fn take_changed_fields(
    old: &Value,
    new: &Value,
    managed: &mut ManagedFields,
    writer: Option<&Identity<'_>>,
    force: bool,
    ignored: Option<&FieldSet>,
    schema: &dyn ApplySchema,
) -> Result<Comparison, ApplyError> {
    let mut comparison = compare(old, new, schema)?;
    if let Some(ignored) = ignored {
        comparison = comparison.excluding(ignored);
    }
    let changed = comparison.changed();
    let conflicting: Vec<(usize, FieldSet)> = managed
        .entries()
        .iter()
        .enumerate()
        .filter(|(_, entry)| !writer.is_some_and(|writer| writer.matches(entry)))
        .map(|(index, entry)| (index, entry.fields.intersection(&changed)))
        .filter(|(_, fields)| !fields.is_empty())
        .collect();
    if !force && !conflicting.is_empty() {
        let entries = managed.entries();
        return Err(ApplyError::Conflicts(Conflicts::from_owners(
            conflicting
                .into_iter()
                .map(|(index, fields)| (&entries[index], fields)),
        )));
    }
    for (index, fields) in conflicting {
        let entry = &mut managed.entries_mut()[index];
        entry.fields = entry.fields.difference(&fields);
    }
    if !comparison.removed.is_empty() {
        for entry in managed.entries_mut() {
            if !writer.is_some_and(|writer| writer.matches(entry)) {
                entry.fields = entry.fields.difference(&comparison.removed);
            }
        }
    }
    managed.drop_empty();
    Ok(comparison)
}

/// An update by `writer` from `old` to `new` (upstream's managed-fields updater around
/// `Updater.Update`): the changed fields move to the writer's update entry, whose time is set
/// only if it gained fields. Type and identity metadata are never recorded.
pub(crate) fn update_fields(
    old: &Value,
    new: &Value,
    managed: &mut ManagedFields,
    writer: &Writer<'_>,
    schema: &dyn ApplySchema,
) -> Result<(), ApplyError> {
    // The write is checked against every entry, the writer's own included: what it changed
    // leaves its old set too and comes back through the union below.
    let comparison =
        take_changed_fields(old, new, managed, None, true, writer.reset_fields, schema)?;
    strip_meta_from_all(managed);
    let gained = strip_meta(&comparison.changed());
    if gained.is_empty() {
        return Ok(());
    }
    match managed.find_mut(
        writer.manager,
        Operation::Update,
        writer.api_version,
        writer.subresource,
    ) {
        Some(entry) => {
            entry.fields = entry.fields.union(&gained);
            entry.time = Some(writer.time);
        }
        None => managed.upsert(ManagedFieldsEntry {
            manager: writer.manager.to_owned(),
            operation: Operation::Update,
            api_version: writer.api_version.to_owned(),
            time: Some(writer.time),
            subresource: writer.subresource.to_owned(),
            fields: gained,
        }),
    }
    Ok(())
}

/// An apply of `config` by `writer` to `live` (upstream's `Updater.Apply`): merges, records the
/// configuration's fields as the writer's apply entry, prunes the fields the writer applied
/// last time and nobody owns now, and takes the fields it changed from other managers. Returns
/// the new object (nulls included, as the merge leaves them).
pub(crate) fn apply_fields(
    live: &Value,
    config: &Value,
    managed: &mut ManagedFields,
    writer: &Writer<'_>,
    force: bool,
    schema: &dyn ApplySchema,
) -> Result<Value, ApplyError> {
    let merged = merge(live, config, schema)?;
    let identity = Identity {
        manager: writer.manager,
        operation: Operation::Apply,
        api_version: writer.api_version,
        subresource: writer.subresource,
    };
    let previous = managed
        .entries()
        .iter()
        .find(|entry| identity.matches(entry))
        .cloned();
    let mut applied = field_set(config, schema)?;
    if let Some(ignored) = writer.reset_fields {
        applied = applied.recursive_difference(ignored);
    }
    managed.upsert(ManagedFieldsEntry {
        manager: writer.manager.to_owned(),
        operation: Operation::Apply,
        api_version: writer.api_version.to_owned(),
        time: previous.as_ref().and_then(|entry| entry.time),
        subresource: writer.subresource.to_owned(),
        fields: applied,
    });
    let last = previous.map(|entry| entry.fields).unwrap_or_default();
    let new = prune(&merged, managed, &last, schema)?;
    take_changed_fields(
        live,
        &new,
        managed,
        Some(&identity),
        force,
        writer.reset_fields,
        schema,
    )?;
    Ok(new)
}

/// Removes from `merged` what the applier applied last time (`last`), no longer applies and
/// nobody else owns; fields nobody ever owned, or that updaters own, stay.
fn prune(
    merged: &Value,
    managed: &ManagedFields,
    last: &FieldSet,
    schema: &dyn ApplySchema,
) -> Result<Value, InvalidObject> {
    if last.is_empty() {
        return Ok(merged.clone());
    }
    let named = |fields: &FieldSet| ensure_named_fields_are_members(fields, schema);
    let set_of = |value: &Value| -> Result<FieldSet, InvalidObject> {
        Ok(named(&field_set(value, schema)?))
    };
    let last = named(last);
    let merged_set = set_of(merged)?;

    // Remove everything applied last time, whole structs included...
    let pruned = remove_items(merged, &last, schema);
    // ...add back what anyone (the applier's new configuration included) owns...
    let owned = managed
        .entries()
        .iter()
        .fold(FieldSet::new(), |owned, entry| owned.union(&entry.fields));
    let keep = set_of(&pruned)?.union(&named(&owned));
    let pruned = remove_items(merged, &merged_set.difference(&keep), schema);
    // ...and remove only what was in the last applied set, so unowned fields stay.
    let gone = merged_set.difference(&set_of(&pruned)?).intersection(&last);
    Ok(remove_items(merged, &gone, schema))
}

/// Removes `null` map values everywhere: a null in an applied configuration means "owned and
/// unset", and the object stored must not carry it (upstream drops it when it converts the
/// result back to the kind's type).
pub(crate) fn strip_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, value| !value.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// `object` without `metadata.managedFields`, which the field logic never sees;
/// borrowed when there are none (a create's body), to spare a copy per write.
pub(crate) fn without_managed_fields(object: &Value) -> Cow<'_, Value> {
    if object.pointer("/metadata/managedFields").is_none() {
        return Cow::Borrowed(object);
    }
    let mut object = object.clone();
    if let Some(Value::Object(metadata)) = object.get_mut("metadata") {
        metadata.remove("managedFields");
    }
    Cow::Owned(object)
}

/// The empty object an update or apply to a new object starts from.
pub(crate) fn empty_object() -> Value {
    json!({})
}
