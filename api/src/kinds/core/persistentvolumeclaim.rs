//! PersistentVolumeClaims: upstream's defaults (Filesystem, phase Pending),
//! validation (access modes, a positive storage request), the spec immutable
//! but for its requests, and the `kubectl get pvc` columns.

use serde_json::{json, Value};

use super::persistentvolume::{
    access_modes_string, storage, storage_class, unset, validate_access_modes,
};
use crate::field::FieldCause;
use crate::kinds::{obj_mut, set_default, KindRules};
use crate::quantity::Quantity;
use crate::table::print::str_at;
use crate::table::{col, Column, AGE, NAME};

/// The rules of `core/v1` PersistentVolumeClaim.
#[derive(Debug, Clone, Copy, Default)]
pub struct PersistentVolumeClaim;

impl KindRules for PersistentVolumeClaim {
    fn default(&self, obj: &mut Value) {
        set_default(obj_mut(obj, "spec"), "volumeMode", json!("Filesystem"));
        set_default(obj_mut(obj, "status"), "phase", json!("Pending"));
    }

    fn validate(&self, obj: &Value) -> Vec<FieldCause> {
        validate_claim(obj)
    }

    fn validate_update(&self, old: &Value, new: &Value) -> Vec<FieldCause> {
        let class_from_nil = class_set_from_nil(old, new);
        let fixed = |obj: &Value| {
            let mut spec = obj.get("spec").cloned().unwrap_or_else(|| json!({}));
            if let Some(spec) = spec.as_object_mut() {
                spec.remove("volumeAttributesClassName");
                if let Some(resources) = spec.get_mut("resources").and_then(Value::as_object_mut) {
                    resources.remove("requests");
                }
                // The binder fills volumeName once; setting it on an unbound claim is allowed.
                if old.pointer("/spec/volumeName").is_none() {
                    spec.remove("volumeName");
                }
                if class_from_nil {
                    spec.remove("storageClassName");
                }
            }
            spec
        };
        if fixed(old) != fixed(new) {
            return vec![FieldCause::forbidden(
                "spec",
                "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
            )];
        }
        Vec::new()
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            col("Status", "string", 0, "The phase of the claim."),
            col("Volume", "string", 0, "The volume the claim is bound to."),
            col("Capacity", "string", 0, "The capacity of the bound volume."),
            col(
                "Access Modes",
                "string",
                0,
                "The ways the volume can be mounted.",
            ),
            col("StorageClass", "string", 0, "StorageClass of the pvc"),
            col(
                "VolumeAttributesClass",
                "string",
                0,
                "VolumeAttributesClass of the pvc",
            ),
            AGE,
            col(
                "VolumeMode",
                "string",
                1,
                "Whether the volume is a filesystem or a block device.",
            ),
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let phase = if obj.pointer("/metadata/deletionTimestamp").is_some() {
            "Terminating"
        } else {
            str_at(obj, &["status", "phase"]).unwrap_or_default()
        };
        let volume = str_at(obj, &["spec", "volumeName"]).unwrap_or_default();
        let (capacity, modes) = if volume.is_empty() {
            (String::new(), String::new())
        } else {
            (
                storage(obj.pointer("/status/capacity/storage")),
                access_modes_string(obj.pointer("/status/accessModes")),
            )
        };
        vec![
            crate::table::name_cell(obj),
            json!(phase),
            json!(volume),
            json!(capacity),
            json!(modes),
            json!(storage_class(obj)),
            json!(unset(str_at(obj, &["spec", "volumeAttributesClassName"]))),
            crate::table::age_cell(obj, now),
            json!(unset(str_at(obj, &["spec", "volumeMode"]))),
        ]
    }

    fn field_labels(&self) -> &'static [&'static str] {
        &["name"]
    }

    fn field_value(&self, obj: &Value, field: &str) -> String {
        match field {
            "name" => str_at(obj, &["metadata", "name"])
                .unwrap_or_default()
                .to_owned(),
            other => crate::kinds::field_value_at(obj, other),
        }
    }
}

/// Upstream's `ValidatePersistentVolumeClaimSpec` (the parts berth checks).
/// Upstream's retroactive default StorageClass rule: a claim created without
/// a class (no `storageClassName`, not even "", and no beta annotation) may
/// be given a non-empty one later, bound or not.
fn class_set_from_nil(old: &Value, new: &Value) -> bool {
    let unset = |obj: &Value| {
        obj.pointer("/spec/storageClassName")
            .is_none_or(Value::is_null)
    };
    let annotated = old
        .pointer("/metadata/annotations/volume.beta.kubernetes.io~1storage-class")
        .is_some();
    let named = new
        .pointer("/spec/storageClassName")
        .and_then(Value::as_str)
        .is_some_and(|c| !c.is_empty());
    unset(old) && !annotated && named
}

fn validate_claim(obj: &Value) -> Vec<FieldCause> {
    let mut causes = validate_access_modes(obj, "at least 1 access mode is required");
    match obj.pointer("/spec/resources/requests/storage") {
        None => causes.push(FieldCause::required("spec.resources[storage]", "")),
        Some(value) => {
            let text = value
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| value.to_string());
            match Quantity::parse(&text) {
                Ok(q) if q.signum() <= 0 => causes.push(FieldCause::invalid(
                    "spec.resources[storage]",
                    &Value::String(q.to_string()),
                    "must be greater than zero",
                )),
                Ok(_) => {}
                Err(e) => causes.push(FieldCause::invalid(
                    "spec.resources[storage]",
                    &Value::String(text),
                    e.to_string(),
                )),
            }
        }
    }
    if let Some(mode) = str_at(obj, &["spec", "volumeMode"]) {
        if !["Block", "Filesystem"].contains(&mode) {
            causes.push(FieldCause::not_supported(
                "spec.volumeMode",
                &json!(mode),
                &["Block", "Filesystem"],
            ));
        }
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(spec: Value) -> Value {
        json!({"metadata": {"name": "task-pv-claim"}, "spec": spec})
    }

    #[test]
    fn defaults_validation_and_row() {
        let mut obj = claim(
            json!({"storageClassName": "manual", "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "3Gi"}}}),
        );
        PersistentVolumeClaim.default(&mut obj);
        assert_eq!(obj["spec"]["volumeMode"], "Filesystem");
        assert_eq!(obj["status"]["phase"], "Pending");
        assert!(PersistentVolumeClaim.validate(&obj).is_empty());
        let row = PersistentVolumeClaim.cells(&obj, jiff::Timestamp::UNIX_EPOCH);
        assert_eq!(row.len(), PersistentVolumeClaim.columns().len());
        assert_eq!(
            row[1..7],
            ["Pending", "", "", "", "manual", "<unset>"].map(|s| json!(s))
        );
    }

    #[test]
    fn invalid_claims_are_refused_with_upstream_words() {
        let cases = [
            (
                claim(json!({"resources": {"requests": {"storage": "1Gi"}}})),
                "spec.accessModes",
                "Required value: at least 1 access mode is required",
            ),
            (
                claim(json!({"accessModes": ["ReadWriteOnce"]})),
                "spec.resources[storage]",
                "Required value",
            ),
            (
                claim(
                    json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "0"}}}),
                ),
                "spec.resources[storage]",
                "Invalid value: \"0\": must be greater than zero",
            ),
        ];
        for (obj, field, message) in cases {
            let causes = PersistentVolumeClaim.validate(&obj);
            assert!(
                causes
                    .iter()
                    .any(|c| c.field == field && c.message == message),
                "{field}: {causes:?}"
            );
        }
        let old = claim(
            json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}),
        );
        let mut grown = old.clone();
        grown["spec"]["resources"]["requests"]["storage"] = json!("2Gi");
        assert!(PersistentVolumeClaim
            .validate_update(&old, &grown)
            .is_empty());
        let mut changed = old.clone();
        changed["spec"]["accessModes"] = json!(["ReadWriteMany"]);
        assert_eq!(
            PersistentVolumeClaim.validate_update(&old, &changed)[0].field,
            "spec"
        );
    }

    #[test]
    fn a_class_may_be_set_only_on_a_claim_created_without_one() {
        let with = |class: Value| {
            let mut c = claim(
                json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}),
            );
            if !class.is_null() {
                c["spec"]["storageClassName"] = class;
            }
            c
        };
        let mut annotated = with(Value::Null);
        annotated["metadata"]["annotations"] =
            json!({"volume.beta.kubernetes.io/storage-class": "slow"});
        let mut annotated_new = annotated.clone();
        annotated_new["spec"]["storageClassName"] = json!("fast");
        let mut bound = with(Value::Null);
        bound["spec"]["volumeName"] = json!("pv-1");
        let mut bound_new = bound.clone();
        bound_new["spec"]["storageClassName"] = json!("fast");
        // (old, new, allowed)
        let cases = [
            (with(Value::Null), with(json!("fast")), true),
            (bound, bound_new, true),
            (with(Value::Null), with(json!("")), false),
            (with(json!("")), with(json!("fast")), false),
            (with(json!("slow")), with(json!("fast")), false),
            (annotated, annotated_new, false),
        ];
        for (old, new, allowed) in cases {
            let causes = PersistentVolumeClaim.validate_update(&old, &new);
            assert_eq!(causes.is_empty(), allowed, "{old} -> {new}: {causes:?}");
        }
    }
}
