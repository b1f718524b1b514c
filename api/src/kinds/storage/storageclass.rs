//! StorageClasses: upstream's defaults (reclaim policy, binding mode), the
//! fields updates may not change, and the columns with `(default)` on the name.

use serde_json::{json, Value};

use crate::field::FieldCause;
use crate::kinds::KindRules;
use crate::table::print::str_at;
use crate::table::{col, Column, AGE, NAME};

/// The rules of `storage.k8s.io/v1` StorageClass.
#[derive(Debug, Clone, Copy, Default)]
pub struct StorageClass;

/// The annotation that marks the cluster's default class.
const DEFAULT_CLASS: &str = "storageclass.kubernetes.io/is-default-class";

impl KindRules for StorageClass {
    fn default(&self, obj: &mut Value) {
        let Some(map) = obj.as_object_mut() else {
            return;
        };
        crate::kinds::set_default(map, "reclaimPolicy", json!("Delete"));
        crate::kinds::set_default(map, "volumeBindingMode", json!("Immediate"));
    }

    fn validate(&self, obj: &Value) -> Vec<FieldCause> {
        let mut causes = Vec::new();
        let provisioner = str_at(obj, &["provisioner"]).unwrap_or("");
        if provisioner.is_empty() {
            causes.push(FieldCause::required("provisioner", ""));
        } else {
            for msg in crate::validation::is_qualified_name(&provisioner.to_lowercase()) {
                causes.push(FieldCause::invalid("provisioner", &json!(provisioner), msg));
            }
        }
        if let Some(p) = str_at(obj, &["reclaimPolicy"]) {
            if !matches!(p, "Delete" | "Retain") {
                causes.push(FieldCause::not_supported(
                    "reclaimPolicy",
                    &json!(p),
                    &["Delete", "Retain"],
                ));
            }
        }
        if let Some(m) = str_at(obj, &["volumeBindingMode"]) {
            if !matches!(m, "Immediate" | "WaitForFirstConsumer") {
                causes.push(FieldCause::not_supported(
                    "volumeBindingMode",
                    &json!(m),
                    &["Immediate", "WaitForFirstConsumer"],
                ));
            }
        }
        causes
    }

    fn validate_update(&self, old: &Value, new: &Value) -> Vec<FieldCause> {
        let mut causes = Vec::new();
        for field in ["parameters", "provisioner", "reclaimPolicy"] {
            if old.get(field) != new.get(field) {
                causes.push(FieldCause::forbidden(
                    field,
                    format!("updates to {field} are forbidden."),
                ));
            }
        }
        causes.extend(crate::kinds::immutable_fields(
            old,
            new,
            &["/volumeBindingMode"],
        ));
        causes
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            col(
                "Provisioner",
                "string",
                0,
                "Indicates the type of the provisioner.",
            ),
            col(
                "ReclaimPolicy",
                "string",
                0,
                "Indicates the type of the reclaim policy.",
            ),
            col(
                "VolumeBindingMode",
                "string",
                0,
                "Indicates when volume binding and dynamic provisioning should occur.",
            ),
            col(
                "AllowVolumeExpansion",
                "string",
                0,
                "Indicates whether the storage class allow volume expand.",
            ),
            AGE,
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let mut name = str_at(obj, &["metadata", "name"])
            .unwrap_or_default()
            .to_owned();
        let default = obj
            .pointer("/metadata/annotations")
            .and_then(|a| {
                a.get(DEFAULT_CLASS)
                    .or_else(|| a.get("storageclass.beta.kubernetes.io/is-default-class"))
            })
            .and_then(Value::as_str)
            == Some("true");
        if default {
            name.push_str(" (default)");
        }
        let expansion = obj
            .get("allowVolumeExpansion")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        vec![
            json!(name),
            json!(str_at(obj, &["provisioner"]).unwrap_or_default()),
            json!(str_at(obj, &["reclaimPolicy"]).unwrap_or("Delete")),
            json!(str_at(obj, &["volumeBindingMode"]).unwrap_or("Immediate")),
            json!(expansion.to_string()),
            crate::table::age_cell(obj, now),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validation_and_forbidden_updates() {
        let mut obj =
            json!({"metadata": {"name": "s"}, "provisioner": "kubernetes.io/no-provisioner"});
        StorageClass.default(&mut obj);
        assert_eq!(obj["reclaimPolicy"], "Delete");
        assert_eq!(obj["volumeBindingMode"], "Immediate");
        assert!(StorageClass.validate(&obj).is_empty());
        let cases = [
            (json!({}), "provisioner", "Required value"),
            (
                json!({"provisioner": "a", "reclaimPolicy": "Recycle"}),
                "reclaimPolicy",
                "Unsupported value: \"Recycle\": supported values: \"Delete\", \"Retain\"",
            ),
        ];
        for (obj, field, message) in cases {
            let got = StorageClass.validate(&obj);
            assert!(
                got.iter().any(|c| c.field == field && c.message == message),
                "{got:?}"
            );
        }
        let mut changed = obj.clone();
        changed["parameters"] = json!({"type": "gp3"});
        let got = StorageClass.validate_update(&obj, &changed);
        assert_eq!(
            got[0].message,
            "Forbidden: updates to parameters are forbidden."
        );
    }

    #[test]
    fn the_default_class_is_marked_on_its_name() {
        let obj = json!({"metadata": {"name": "std", "annotations": {DEFAULT_CLASS: "true"}}, "provisioner": "p"});
        assert_eq!(
            StorageClass.cells(&obj, jiff::Timestamp::now())[0],
            json!("std (default)")
        );
    }
}
