//! The rules of each served kind, one module per kind (upstream's
//! `pkg/registry/<group>/<resource>/strategy.go`): defaulting, validation on
//! create and update, status handling, table columns and field selectors. The
//! API server reaches them through the catalog only, so it stays kind-agnostic
//! and a new kind is one module plus one catalog line. Pure: no I/O here.

pub mod admissionregistration;
pub mod apiextensions;
pub mod apiregistration;
pub mod apps;
pub mod autoscaling;
pub mod batch;
pub mod berth;
pub mod certificates;
pub mod coordination;
pub mod core;
pub mod custom;
pub mod discovery;
pub mod events;
pub mod flowcontrol;
mod meta;
pub mod metrics;
pub mod networking;
pub mod node;
pub mod policy;
pub mod rbac;
pub mod scheduling;
pub mod storage;

use serde_json::{json, Map, Value};

use crate::field::FieldCause;
use crate::table::{self, Column};

pub use meta::validate_metadata;

/// How a kind's object names are checked (upstream's `ValidateNameFunc`s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// A DNS-1123 subdomain: most kinds.
    Subdomain,
    /// A DNS-1123 label: namespaces, services.
    Label,
    /// Only a valid path segment (no `/`, `%`, `.` or `..`): RBAC objects, events.
    PathSegment,
    /// An IP address in canonical form: IPAddresses.
    IpAddress,
}

impl NameRule {
    /// The problems upstream reports for `name` under this rule.
    pub fn check(self, name: &str) -> Vec<String> {
        match self {
            NameRule::Subdomain => crate::validation::is_dns1123_subdomain(name),
            NameRule::Label => crate::validation::is_dns1123_label(name),
            NameRule::PathSegment => Vec::new(),
            NameRule::IpAddress => crate::validation::ip::is_valid_ip(name),
        }
    }
}

/// Everything kind-specific the API server needs, with upstream's generic
/// behaviour as the default of each method, so a kind writes only what differs.
pub trait KindRules: Send + Sync + std::fmt::Debug + 'static {
    /// How names are checked.
    fn name_rule(&self) -> NameRule {
        NameRule::Subdomain
    }

    /// Whether `metadata.generation` counts changes of the desired state.
    fn tracks_generation(&self) -> bool {
        false
    }

    /// Whether a create keeps the client's `status` (nodes report theirs at
    /// registration); otherwise a kind with a status subresource starts without one.
    fn keeps_status_on_create(&self) -> bool {
        false
    }

    /// Fills upstream's defaults into a new or updated object (nulls already dropped).
    fn default(&self, _obj: &mut Value) {}

    /// Kind-specific validation of an object (metadata is checked generically).
    fn validate(&self, _obj: &Value) -> Vec<FieldCause> {
        Vec::new()
    }

    /// Extra rules of an update, e.g. immutable fields; `validate` runs too.
    fn validate_update(&self, _old: &Value, _new: &Value) -> Vec<FieldCause> {
        Vec::new()
    }

    /// Everything wrong with an update: the create rules on the new object
    /// plus [`KindRules::validate_update`]. Kinds whose checks ratchet (custom
    /// resources: unchanged values are not held to the rules again) replace it.
    fn update_causes(&self, old: &Value, new: &Value) -> Vec<FieldCause> {
        let mut causes = self.validate(new);
        causes.extend(self.validate_update(old, new));
        causes
    }

    /// Drops the fields the kind does not define and names them (for
    /// `fieldValidation` warnings or errors); None when the kind's typed schema
    /// decides, as for every built-in kind.
    fn prune(&self, _obj: &mut Value) -> Option<Vec<String>> {
        None
    }

    /// The `Warning` every request on this resource gets (a deprecated version).
    fn deprecation_warning(&self, _kind: &str) -> Option<String> {
        None
    }

    /// Where `/scale` finds replicas and the selector.
    fn scale_mapping(&self) -> ScaleMapping {
        ScaleMapping::default()
    }

    /// Carries over what a write of the main resource may not change besides
    /// `status` (a namespace's `spec.finalizers`, changed only through `finalize`),
    /// or clears what the update made meaningless (a Service's type-dependent
    /// fields); runs after the old status is carried over.
    fn prepare_for_update(&self, _old: &Value, _new: &mut Value) {}

    /// The grace period a delete gives the object, when it is not removed at once
    /// (pods bound to a node wait for their kubelet).
    fn deletion_grace_period(&self, _obj: &Value, _requested: Option<i64>) -> Option<i64> {
        None
    }

    /// Marks the object as being deleted and says whether the kind itself still
    /// holds it (a namespace waits for its `spec.finalizers`).
    fn begin_deletion(&self, _obj: &mut Value) -> bool {
        false
    }

    /// Whether the kind still holds an object marked for deletion.
    fn deletion_held(&self, _obj: &Value) -> bool {
        false
    }

    /// Turns a stored object into this version's form, when another version of
    /// the kind is the one stored (autoscaling/v1 HPAs are stored as v2,
    /// events.k8s.io Events as core Events); the object says its stored
    /// `apiVersion`, so this is a no-op when it is already this version.
    fn convert_from_storage(&self, _obj: &mut Value) {}

    /// The stored form of an object of this version; None when this version is
    /// the stored one.
    fn convert_to_storage(&self, _obj: &Value) -> Option<Value> {
        None
    }

    /// The columns of `kubectl get`.
    fn columns(&self) -> Vec<Column> {
        vec![table::NAME, table::AGE]
    }

    /// One row of cells, matching [`KindRules::columns`].
    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        vec![table::name_cell(obj), table::age_cell(obj, now)]
    }

    /// Field labels a field selector may use besides `metadata.name` and `metadata.namespace`.
    fn field_labels(&self) -> &'static [&'static str] {
        &[]
    }

    /// Whether a field selector may use `field` (besides `metadata.name` and
    /// `metadata.namespace`); kinds with run-time labels (custom resources'
    /// `selectableFields`) replace it.
    fn selects_field(&self, field: &str) -> bool {
        self.field_labels().contains(&field)
    }

    /// A field's value as a field selector compares it (missing = empty string).
    fn field_value(&self, obj: &Value, field: &str) -> String {
        field_value_at(obj, field)
    }
}

/// How a kind's `/scale` subresource maps onto its own fields (JSON pointers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaleMapping {
    /// The desired replicas, written through `/scale`.
    pub spec_replicas: String,
    /// The observed replicas.
    pub status_replicas: String,
    /// A string label selector (custom resources' `labelSelectorPath`); None
    /// reads `spec.selector` as a LabelSelector, as workloads carry it.
    pub label_selector: Option<String>,
}

impl Default for ScaleMapping {
    fn default() -> Self {
        Self {
            spec_replicas: "/spec/replicas".into(),
            status_replicas: "/status/replicas".into(),
            label_selector: None,
        }
    }
}

/// The value at a dotted field path, as field selectors compare it.
pub fn field_value_at(obj: &Value, field: &str) -> String {
    let pointer = format!("/{}", field.replace('.', "/"));
    match obj.pointer(&pointer) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// A kind with upstream's generic behaviour only (ConfigMap-like kinds without rules of their own).
#[derive(Debug, Clone, Copy, Default)]
pub struct Generic;

impl KindRules for Generic {}

/// Removes `null` fields: in Kubernetes JSON a null is an unset field, and dropping
/// them makes a JSON body and the same object sent as protobuf store identically.
pub fn drop_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(drop_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

/// The object at `key` of `v`, created (or replaced, when not an object) if needed.
pub fn obj_mut<'a>(v: &'a mut Value, key: &str) -> &'a mut Map<String, Value> {
    field_obj_mut(v.as_object_mut().expect("defaulting an object"), key)
}

/// The object at `key` of `map`, created (or replaced, when not an object) if needed.
pub fn field_obj_mut<'a>(map: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let entry = map.entry(key.to_owned()).or_insert_with(|| json!({}));
    if !entry.is_object() {
        *entry = json!({});
    }
    entry.as_object_mut().expect("just made an object")
}

/// Sets `key` unless it already has a non-null value.
pub fn set_default(map: &mut Map<String, Value>, key: &str, value: Value) {
    if map.get(key).is_none_or(Value::is_null) {
        map.insert(key.to_owned(), value);
    }
}

/// Causes for fields (JSON pointers) whose value changed although upstream
/// forbids it once set.
pub fn immutable_fields(old: &Value, new: &Value, pointers: &[&str]) -> Vec<FieldCause> {
    pointers
        .iter()
        .filter_map(|pointer| {
            let (before, after) = (old.pointer(pointer), new.pointer(pointer));
            (before.is_some() && before != after).then(|| {
                let field = pointer.trim_start_matches('/').replace('/', ".");
                FieldCause::immutable(field, after.unwrap_or(&Value::Null))
            })
        })
        .collect()
}

/// `replicas` of a workload must not be negative.
pub fn non_negative(obj: &Value, pointer: &str) -> Option<FieldCause> {
    let value = obj.pointer(pointer).and_then(Value::as_i64)?;
    (value < 0).then(|| {
        FieldCause::invalid(
            pointer.trim_start_matches('/').replace('/', "."),
            &Value::from(value),
            "must be greater than or equal to 0",
        )
    })
}
