//! Server-side apply field management, the pure core: which manager owns which fields of an
//! object (`metadata.managedFields`), how an applied configuration merges into a live object,
//! and how creates, updates and applies move ownership, with upstream's conflict messages. It
//! follows sigs.k8s.io/structured-merge-diff and kube-apiserver's field manager; it never reads
//! storage or a clock, and never validates or defaults objects (the caller does, around it).
//!
//! How the API server uses it (one [`BuiltinApplySchema`] per kind, built once; [`DeducedSchema`]
//! for kinds without one):
//! - create (POST): after decoding and defaulting, [`create`] gives the new object's managed
//!   fields; [`ManagedFields::write_into`] stores them in it.
//! - update (PUT) and non-apply PATCH: on the object about to be stored (patched, defaulted),
//!   [`update`] with the live object and [`ManagedFields::for_update`] (or the live object's own
//!   managed fields for subresources); write the result into the new object.
//! - apply (PATCH `application/apply-patch+yaml`): [`apply`] with the live object (`{}` when it
//!   does not exist yet, which creates it) and its managed fields; default, validate and store
//!   the object it returns, whose managed fields are already written (do not call [`update`]
//!   after it). [`ApplyError::Conflicts`] becomes a 409.

mod builtin;
mod conflict;
mod fieldset;
mod last_applied;
mod managed;
mod path;
mod schema;
#[cfg(test)]
mod tests;
mod typed;
mod update;

use jiff::Timestamp;
use serde_json::Value;

pub use builtin::{BuiltinApplySchema, BuiltinApplySchemaError};
pub use conflict::{Conflict, Conflicts};
pub use fieldset::{FieldSet, FieldsV1Error};
pub use last_applied::{before_first_apply, BEFORE_FIRST_APPLY_MANAGER, LAST_APPLIED_ANNOTATION};
pub use managed::{
    ManagedFields, ManagedFieldsEntry, ManagedFieldsError, Operation, ANCIENT_CHANGES_MANAGER,
    MAX_UPDATE_MANAGERS,
};
pub use path::{Path, PathElement};
pub use schema::{ApplySchema, DeducedSchema, FieldSchema, ListMapKey, ListType, MapType};
pub use typed::InvalidObject;

use crate::apply::path::values_equal;
use crate::apply::update::{
    apply_fields, empty_object, strip_meta_from_all, strip_nulls, update_fields,
    without_managed_fields,
};

/// The longest field manager name kube-apiserver accepts or derives.
pub const FIELD_MANAGER_MAX_LENGTH: usize = 128;

/// The manager name of a create, update or non-apply patch that names none: the user agent up
/// to its first `/` (`kubectl` for `kubectl/v1.33.0 (linux/amd64)`), without unprintable
/// characters and cut to [`FIELD_MANAGER_MAX_LENGTH`] bytes, as upstream derives it. Applies
/// must name their manager.
pub fn manager_from_user_agent(user_agent: &str) -> String {
    let prefix = user_agent.split('/').next().unwrap_or_default();
    let mut manager = String::new();
    for c in prefix.chars().filter(|c| !c.is_control()) {
        if manager.len() + c.len_utf8() > FIELD_MANAGER_MAX_LENGTH {
            break;
        }
        manager.push(c);
    }
    manager
}

/// Who is writing, and what the write may record: the identity a `managedFields` entry gets.
#[derive(Debug, Clone)]
pub struct Writer<'a> {
    /// The field manager (`?fieldManager=`, or the name derived from the user agent).
    pub manager: &'a str,
    /// The API version of the request (`apps/v1`), which the entry records.
    pub api_version: &'a str,
    /// The subresource written through (`status`, `scale`), empty for the main resource.
    pub subresource: &'a str,
    /// Now, passed in so tests and replays are deterministic; recorded to the second.
    pub time: Timestamp,
    /// Fields this endpoint resets whatever the client sends (upstream's reset fields, such as
    /// `status` on the main resource or `spec` on `/status`): nobody comes to own them through
    /// this endpoint.
    pub reset_fields: Option<&'a FieldSet>,
}

impl<'a> Writer<'a> {
    /// A write by `manager` at `api_version` to the main resource, at `time`.
    pub fn new(manager: &'a str, api_version: &'a str, time: Timestamp) -> Self {
        Writer {
            manager,
            api_version,
            subresource: "",
            time,
            reset_fields: None,
        }
    }

    /// The same write, through a subresource.
    pub fn with_subresource(mut self, subresource: &'a str) -> Self {
        self.subresource = subresource;
        self
    }

    /// The same write, to an endpoint that resets these fields.
    pub fn with_reset_fields(mut self, reset_fields: &'a FieldSet) -> Self {
        self.reset_fields = Some(reset_fields);
        self
    }
}

/// Why an apply failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// The apply would change fields other managers own: answer 409 Conflict with one
    /// `FieldManagerConflict` cause per conflict. The client may retry with `force=true`.
    #[error(transparent)]
    Conflicts(#[from] Conflicts),
    /// The configuration sets `metadata.managedFields`, which only the server writes: answer
    /// 400 Bad Request with this message.
    #[error("metadata.managedFields must be nil")]
    ManagedFieldsInConfig,
    /// The configuration (or the live object) does not fit the kind's list keys: duplicate or
    /// keyless items of a map list, maps in a set. Answer 400 Bad Request; the message names
    /// the path.
    #[error("failed to apply the configuration: {0}")]
    Invalid(#[from] InvalidObject),
}

/// Server-side apply of `applied` by `writer` to `live`, whose managed fields are `managed`.
///
/// The configuration merges into the live object (map lists by key, sets by value, atomic
/// values replaced); fields the writer applied last time and omits now are removed unless
/// another manager owns them; fields the configuration changes that another manager owns are
/// conflicts unless `force`, which moves them to the writer; equal values are shared. The
/// writer's apply entry then holds exactly the configuration's fields (without type and
/// identity metadata and reset fields). An object without managed fields first has its fields
/// given to [`BEFORE_FIRST_APPLY_MANAGER`]; a `kubectl` apply to an object managed by
/// client-side apply takes the fields its last-applied configuration still matches without
/// conflict, and keeps that annotation current.
///
/// Returns the object to store, nulls removed and `metadata.managedFields` written, and its
/// managed fields. The caller validates and defaults it as for any write.
pub fn apply(
    live: &Value,
    managed: &ManagedFields,
    applied: &Value,
    writer: &Writer<'_>,
    force: bool,
    schema: &dyn ApplySchema,
) -> Result<(Value, ManagedFields), ApplyError> {
    if applied
        .pointer("/metadata/managedFields")
        .is_some_and(|fields| !fields.is_null())
    {
        return Err(ApplyError::ManagedFieldsInConfig);
    }
    let live = without_managed_fields(live);
    let mut managed = managed.clone();
    if managed.is_empty() {
        managed = before_first_apply(&live, writer, schema)?;
    }
    let result = match apply_once(&live, &managed, applied, writer, force, schema) {
        Err(ApplyError::Conflicts(conflicts)) => {
            let allowed =
                last_applied::allowed_conflicts(&live, writer.manager, writer.api_version, schema);
            match allowed {
                Some(allowed) if conflicts.without(&allowed).is_empty() => {
                    apply_once(&live, &managed, applied, writer, true, schema)
                }
                Some(allowed) => Err(ApplyError::Conflicts(conflicts.without(&allowed))),
                None => Err(ApplyError::Conflicts(conflicts)),
            }
        }
        other => other,
    };
    let (mut object, managed) = result?;
    last_applied::update_last_applied(&live, &mut object, writer.manager, applied);
    strip_nulls(&mut object);
    managed.write_into(&mut object);
    Ok((object, managed))
}

/// One apply attempt: the merge and ownership moves, type metadata stripped from every entry,
/// and the writer's time set if the object changed.
fn apply_once(
    live: &Value,
    managed: &ManagedFields,
    applied: &Value,
    writer: &Writer<'_>,
    force: bool,
    schema: &dyn ApplySchema,
) -> Result<(Value, ManagedFields), ApplyError> {
    let mut managed = managed.clone();
    let object = apply_fields(live, applied, &mut managed, writer, force, schema)?;
    strip_meta_from_all(&mut managed);
    if !values_equal(live, &object) {
        if let Some(entry) = managed.find_mut(
            writer.manager,
            Operation::Apply,
            writer.api_version,
            writer.subresource,
        ) {
            entry.time = Some(writer.time);
        }
    }
    Ok((object, managed))
}

/// The managed fields after `writer` changed `old` into `new` by create, update or a non-apply
/// patch: fields whose values changed (or appeared) move to the writer's update entry and leave
/// every other manager; removed fields leave everyone. Never fails, as upstream: an object that
/// does not fit its schema gets no managed fields at all.
pub fn update(
    old: &Value,
    new: &Value,
    managed: &ManagedFields,
    writer: &Writer<'_>,
    schema: &dyn ApplySchema,
) -> ManagedFields {
    let mut managed = managed.clone();
    // The comparison skips managedFields itself; no copies without them are needed.
    let updated = update_fields(old, new, &mut managed, writer, schema);
    match updated {
        Ok(()) => {
            managed.cap_update_managers(MAX_UPDATE_MANAGERS);
            managed
        }
        Err(_) => ManagedFields::default(),
    }
}

/// The managed fields of an object `writer` creates: every field it sets, in the writer's update
/// entry, after any managed fields the request itself carries (which upstream honours).
pub fn create(new: &Value, writer: &Writer<'_>, schema: &dyn ApplySchema) -> ManagedFields {
    let empty = empty_object();
    update(
        &empty,
        new,
        &ManagedFields::for_update(&empty, new),
        writer,
        schema,
    )
}
