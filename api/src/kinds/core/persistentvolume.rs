//! PersistentVolumes: upstream's defaults (Retain, Filesystem, phase Pending),
//! validation (access modes, a storage capacity, exactly one volume source),
//! the source immutable after creation, and the `kubectl get pv` columns.

use serde_json::{json, Value};

use crate::field::FieldCause;
use crate::kinds::{obj_mut, set_default, KindRules};
use crate::quantity::Quantity;
use crate::table::print::{array_at, str_at};
use crate::table::{col, Column, AGE, NAME};

/// The rules of `core/v1` PersistentVolume.
#[derive(Debug, Clone, Copy, Default)]
pub struct PersistentVolume;

/// The access modes upstream accepts.
pub const ACCESS_MODES: &[&str] = &[
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];

/// The fields of a PersistentVolumeSpec that are not a volume source.
const NOT_SOURCES: &[&str] = &[
    "accessModes",
    "capacity",
    "claimRef",
    "mountOptions",
    "nodeAffinity",
    "persistentVolumeReclaimPolicy",
    "storageClassName",
    "volumeAttributesClassName",
    "volumeMode",
];

impl KindRules for PersistentVolume {
    fn default(&self, obj: &mut Value) {
        let spec = obj_mut(obj, "spec");
        set_default(spec, "persistentVolumeReclaimPolicy", json!("Retain"));
        set_default(spec, "volumeMode", json!("Filesystem"));
        set_default(obj_mut(obj, "status"), "phase", json!("Pending"));
    }

    fn validate(&self, obj: &Value) -> Vec<FieldCause> {
        validate_pv(obj)
    }

    fn validate_update(&self, old: &Value, new: &Value) -> Vec<FieldCause> {
        if volume_source(old) != volume_source(new) {
            return vec![FieldCause::forbidden(
                "spec.persistentvolumesource",
                "spec.persistentvolumesource is immutable after creation",
            )];
        }
        Vec::new()
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            col("Capacity", "string", 0, "The capacity of the volume."),
            col(
                "Access Modes",
                "string",
                0,
                "The ways the volume can be mounted.",
            ),
            col(
                "Reclaim Policy",
                "string",
                0,
                "What happens to the volume when it is released from its claim.",
            ),
            col("Status", "string", 0, "The phase of the volume."),
            col("Claim", "string", 0, "The claim the volume is bound to."),
            col("StorageClass", "string", 0, "StorageClass of the pv"),
            col(
                "VolumeAttributesClass",
                "string",
                0,
                "VolumeAttributesClass of the pv",
            ),
            col("Reason", "string", 0, "Why the volume is in its phase."),
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
        let claim = match (
            str_at(obj, &["spec", "claimRef", "namespace"]),
            str_at(obj, &["spec", "claimRef", "name"]),
        ) {
            (Some(ns), Some(name)) => format!("{ns}/{name}"),
            _ => String::new(),
        };
        let phase = if obj.pointer("/metadata/deletionTimestamp").is_some() {
            "Terminating"
        } else {
            str_at(obj, &["status", "phase"]).unwrap_or_default()
        };
        vec![
            crate::table::name_cell(obj),
            json!(storage(obj.pointer("/spec/capacity/storage"))),
            json!(access_modes_string(obj.pointer("/spec/accessModes"))),
            json!(str_at(obj, &["spec", "persistentVolumeReclaimPolicy"]).unwrap_or_default()),
            json!(phase),
            json!(claim),
            json!(storage_class(obj)),
            json!(unset(str_at(obj, &["spec", "volumeAttributesClassName"]))),
            json!(str_at(obj, &["status", "reason"]).unwrap_or_default()),
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

/// The volume source of a PV spec: every field that is not one of the common ones.
fn volume_source(obj: &Value) -> Vec<(&String, &Value)> {
    obj.pointer("/spec")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter(|(k, _)| !NOT_SOURCES.contains(&k.as_str()))
        .collect()
}

/// A storage quantity in upstream's canonical form (empty when absent).
pub fn storage(value: Option<&Value>) -> String {
    value
        .and_then(Value::as_str)
        .map(|s| Quantity::parse(s).map_or_else(|_| s.to_owned(), |q| q.to_string()))
        .unwrap_or_default()
}

/// `<unset>` for an absent optional class or mode, as upstream prints it.
pub fn unset(value: Option<&str>) -> String {
    value.unwrap_or("<unset>").to_owned()
}

/// The storage class, from the field or the beta annotation.
pub fn storage_class(obj: &Value) -> String {
    str_at(obj, &["spec", "storageClassName"])
        .or_else(|| {
            obj.pointer("/metadata/annotations/volume.beta.kubernetes.io~1storage-class")
                .and_then(Value::as_str)
        })
        .unwrap_or_default()
        .to_owned()
}

/// Access modes as `kubectl get` abbreviates them (`RWO,ROX,RWX,RWOP`), in that order.
pub fn access_modes_string(modes: Option<&Value>) -> String {
    let modes: Vec<&str> = modes
        .and_then(Value::as_array)
        .map(|m| m.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(mode, _)| modes.contains(mode))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

/// Upstream's checks of `accessModes`, shared with claims.
pub fn validate_access_modes(obj: &Value, required: &str) -> Vec<FieldCause> {
    let modes = array_at(obj, &["spec", "accessModes"]);
    if modes.is_empty() {
        return vec![FieldCause::required("spec.accessModes", required)];
    }
    let mut causes = Vec::new();
    for mode in modes {
        if !mode.as_str().is_some_and(|m| ACCESS_MODES.contains(&m)) {
            causes.push(FieldCause::not_supported(
                "spec.accessModes",
                mode,
                ACCESS_MODES,
            ));
        }
    }
    let has = |m: &str| modes.iter().any(|v| v.as_str() == Some(m));
    if has("ReadWriteOncePod") && modes.len() > 1 {
        causes.push(FieldCause::forbidden(
            "spec.accessModes",
            "may not use ReadWriteOncePod with other access modes",
        ));
    }
    causes
}

/// Upstream's `ValidatePersistentVolumeSpec` (the parts berth checks).
fn validate_pv(obj: &Value) -> Vec<FieldCause> {
    let mut causes = validate_access_modes(obj, "must specify at least 1 access mode");
    match obj.pointer("/spec/capacity").and_then(Value::as_object) {
        None => causes.push(FieldCause::required("spec.capacity", "")),
        Some(capacity) if capacity.is_empty() => {
            causes.push(FieldCause::required("spec.capacity", ""))
        }
        Some(capacity) => {
            if !capacity.contains_key("storage") || capacity.len() > 1 {
                causes.push(FieldCause::not_supported(
                    "spec.capacity",
                    &Value::Object(capacity.clone()),
                    &["storage"],
                ));
            }
            if let Some(size) = capacity.get("storage").and_then(Value::as_str) {
                if Quantity::parse(size).is_ok_and(|q| q.signum() < 0) {
                    causes.push(FieldCause::invalid(
                        "spec.capacity[storage]",
                        &json!(size),
                        "must be greater than or equal to 0",
                    ));
                }
            }
        }
    }
    if let Some(policy) = str_at(obj, &["spec", "persistentVolumeReclaimPolicy"]) {
        if !["Delete", "Recycle", "Retain"].contains(&policy) {
            causes.push(FieldCause::not_supported(
                "spec.persistentVolumeReclaimPolicy",
                &json!(policy),
                &["Delete", "Recycle", "Retain"],
            ));
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
    match volume_source(obj).len() {
        0 => causes.push(FieldCause::required("spec", "must specify a volume type")),
        1 => {}
        _ => causes.push(FieldCause::forbidden(
            "spec",
            "may not specify more than 1 volume type",
        )),
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pv(spec: Value) -> Value {
        json!({"metadata": {"name": "task-pv-volume"}, "spec": spec})
    }

    #[test]
    fn defaults_and_row() {
        let mut obj = pv(
            json!({"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce"],
            "storageClassName": "manual", "hostPath": {"path": "/mnt/data"}}),
        );
        PersistentVolume.default(&mut obj);
        assert_eq!(obj["spec"]["persistentVolumeReclaimPolicy"], "Retain");
        assert_eq!(obj["spec"]["volumeMode"], "Filesystem");
        assert_eq!(obj["status"]["phase"], "Pending");
        assert!(PersistentVolume.validate(&obj).is_empty());
        obj["metadata"]["creationTimestamp"] = json!("2026-01-01T11:59:00Z");
        let row = PersistentVolume.cells(&obj, "2026-01-01T12:00:00Z".parse().unwrap());
        assert_eq!(row.len(), PersistentVolume.columns().len());
        let expected = [
            "task-pv-volume",
            "10Gi",
            "RWO",
            "Retain",
            "Pending",
            "",
            "manual",
            "<unset>",
            "",
            "60s",
            "Filesystem",
        ];
        assert_eq!(row, expected.map(|s| json!(s)));
    }

    #[test]
    fn invalid_volumes_are_refused_with_upstream_words() {
        let cases = [
            (
                pv(json!({"capacity": {"storage": "1Gi"}, "hostPath": {"path": "/x"}})),
                "spec.accessModes",
                "Required value: must specify at least 1 access mode",
            ),
            (
                pv(json!({"accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/x"}})),
                "spec.capacity",
                "Required value",
            ),
            (
                pv(json!({"accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}})),
                "spec",
                "Required value: must specify a volume type",
            ),
            (
                pv(json!({"accessModes": ["Sometimes"], "capacity": {"storage": "1Gi"}, "hostPath": {"path": "/x"}})),
                "spec.accessModes",
                "Unsupported value: \"Sometimes\": supported values: \"ReadOnlyMany\", \"ReadWriteMany\", \"ReadWriteOnce\", \"ReadWriteOncePod\"",
            ),
        ];
        for (obj, field, message) in cases {
            let causes = PersistentVolume.validate(&obj);
            assert!(
                causes
                    .iter()
                    .any(|c| c.field == field && c.message == message),
                "{field}: {causes:?}"
            );
        }
        let old = pv(json!({"hostPath": {"path": "/a"}}));
        let new = pv(json!({"hostPath": {"path": "/b"}}));
        assert_eq!(
            PersistentVolume.validate_update(&old, &new)[0].message,
            "Forbidden: spec.persistentvolumesource is immutable after creation"
        );
    }
}
