//! CSIDrivers: upstream's defaults for every optional spec field, the fields
//! updates may not change, and the `kubectl get csidrivers` columns.

use serde_json::{json, Value};

use crate::field::FieldCause;
use crate::kinds::{immutable_fields, obj_mut, set_default, KindRules};
use crate::table::print::{array_at, str_at};
use crate::table::{col, Column, AGE, NAME};

/// The rules of `storage.k8s.io/v1` CSIDriver.
#[derive(Debug, Clone, Copy, Default)]
pub struct CsiDriver;

impl KindRules for CsiDriver {
    fn default(&self, obj: &mut Value) {
        let spec = obj_mut(obj, "spec");
        set_default(spec, "attachRequired", json!(true));
        set_default(spec, "podInfoOnMount", json!(false));
        set_default(spec, "storageCapacity", json!(false));
        set_default(spec, "fsGroupPolicy", json!("ReadWriteOnceWithFSType"));
        set_default(spec, "requiresRepublish", json!(false));
        set_default(spec, "volumeLifecycleModes", json!(["Persistent"]));
        set_default(spec, "seLinuxMount", json!(false));
    }

    fn validate(&self, obj: &Value) -> Vec<FieldCause> {
        let mut causes = Vec::new();
        let name = str_at(obj, &["metadata", "name"]).unwrap_or("");
        if name.len() > 63 {
            causes.push(FieldCause {
                reason: "FieldValueTooLong",
                field: "metadata.name".into(),
                message: "Too long: may not be more than 63 bytes".into(),
            });
        }
        for (i, mode) in array_at(obj, &["spec", "volumeLifecycleModes"])
            .iter()
            .enumerate()
        {
            if !matches!(mode.as_str(), Some("Persistent" | "Ephemeral")) {
                causes.push(FieldCause::not_supported(
                    format!("spec.volumeLifecycleModes[{i}]"),
                    mode,
                    &["Ephemeral", "Persistent"],
                ));
            }
        }
        if let Some(policy) = str_at(obj, &["spec", "fsGroupPolicy"]) {
            if !matches!(policy, "ReadWriteOnceWithFSType" | "File" | "None") {
                causes.push(FieldCause::not_supported(
                    "spec.fsGroupPolicy",
                    &json!(policy),
                    &["File", "None", "ReadWriteOnceWithFSType"],
                ));
            }
        }
        for (i, token) in array_at(obj, &["spec", "tokenRequests"]).iter().enumerate() {
            if let Some(seconds) = token.get("expirationSeconds").and_then(Value::as_i64) {
                if seconds < 600 {
                    causes.push(FieldCause::invalid(
                        format!("spec.tokenRequests[{i}].expirationSeconds"),
                        &json!(seconds),
                        "may not specify a duration less than 10 minutes",
                    ));
                }
            }
        }
        causes
    }

    fn validate_update(&self, old: &Value, new: &Value) -> Vec<FieldCause> {
        immutable_fields(
            old,
            new,
            &[
                "/spec/attachRequired",
                "/spec/fsGroupPolicy",
                "/spec/volumeLifecycleModes",
                "/spec/storageCapacity",
            ],
        )
        .into_iter()
        .filter(|c| c.field != "spec.storageCapacity")
        .collect()
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            col("AttachRequired", "boolean", 0, "Indicates this CSI volume driver requires an attach operation (because it implements the CSI ControllerPublishVolume() method), and that the Kubernetes attach detach controller should call the attach volume interface which checks the volumeattachment status and waits until the volume is attached before proceeding to mounting."),
            col("PodInfoOnMount", "boolean", 0, "If set to true, podInfoOnMount indicates this CSI volume driver requires additional pod information (like podName, podUID, etc.) during mount operations."),
            col("StorageCapacity", "boolean", 0, "If set to true, storageCapacity indicates that the CSI volume driver wants pod scheduling to consider the storage capacity that the driver deployment will report by creating CSIStorageCapacity objects with capacity information."),
            col("TokenRequests", "string", 0, "Indicates the CSI volume driver requires the token request."),
            col("RequiresRepublish", "boolean", 0, "RequiresRepublish indicates the CSI driver wants `NodePublishVolume` being periodically called to reflect any possible change in the mounted volume."),
            col("Modes", "string", 0, "Defines what kind of volumes this CSI volume driver supports."),
            AGE,
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let flag = |field: &str| {
            obj.pointer(&format!("/spec/{field}"))
                .and_then(Value::as_bool)
                .unwrap_or(false)
        };
        let audiences: Vec<&str> = array_at(obj, &["spec", "tokenRequests"])
            .iter()
            .map(|t| str_at(t, &["audience"]).unwrap_or_default())
            .collect();
        let modes: Vec<&str> = array_at(obj, &["spec", "volumeLifecycleModes"])
            .iter()
            .filter_map(Value::as_str)
            .collect();
        vec![
            crate::table::name_cell(obj),
            json!(obj
                .pointer("/spec/attachRequired")
                .and_then(Value::as_bool)
                .unwrap_or(true)),
            json!(flag("podInfoOnMount")),
            json!(flag("storageCapacity")),
            json!(if audiences.is_empty() {
                "<unset>".to_owned()
            } else {
                audiences.join(",")
            }),
            json!(flag("requiresRepublish")),
            json!(if modes.is_empty() {
                "<none>".to_owned()
            } else {
                modes.join(",")
            }),
            crate::table::age_cell(obj, now),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_validation() {
        let mut obj = json!({"metadata": {"name": "hostpath.csi.k8s.io"}});
        CsiDriver.default(&mut obj);
        assert_eq!(obj["spec"]["attachRequired"], true);
        assert_eq!(obj["spec"]["volumeLifecycleModes"], json!(["Persistent"]));
        assert_eq!(obj["spec"]["fsGroupPolicy"], "ReadWriteOnceWithFSType");
        assert!(CsiDriver.validate(&obj).is_empty());
        let mut bad = obj.clone();
        bad["spec"]["volumeLifecycleModes"] = json!(["Foo"]);
        assert_eq!(
            CsiDriver.validate(&bad)[0].message,
            "Unsupported value: \"Foo\": supported values: \"Ephemeral\", \"Persistent\""
        );
        let mut changed = obj.clone();
        changed["spec"]["attachRequired"] = json!(false);
        assert_eq!(
            CsiDriver.validate_update(&obj, &changed)[0].field,
            "spec.attachRequired"
        );
    }
}
