//! VolumeAttachments: attacher, node and exactly one source required, the
//! spec frozen after creation, and the ATTACHER / PV / NODE / ATTACHED columns.

use serde_json::{json, Value};

use crate::field::FieldCause;
use crate::kinds::KindRules;
use crate::table::print::str_at;
use crate::table::{col, Column, AGE, NAME};

/// The rules of `storage.k8s.io/v1` VolumeAttachment.
#[derive(Debug, Clone, Copy, Default)]
pub struct VolumeAttachment;

impl KindRules for VolumeAttachment {
    fn validate(&self, obj: &Value) -> Vec<FieldCause> {
        let mut causes = Vec::new();
        if str_at(obj, &["spec", "attacher"]).unwrap_or("").is_empty() {
            causes.push(FieldCause::required("spec.attacher", ""));
        }
        if str_at(obj, &["spec", "nodeName"]).unwrap_or("").is_empty() {
            causes.push(FieldCause::required("spec.nodeName", ""));
        }
        let pv = obj.pointer("/spec/source/persistentVolumeName").is_some();
        let inline = obj.pointer("/spec/source/inlineVolumeSpec").is_some();
        if pv == inline {
            causes.push(FieldCause::required(
                "spec.source",
                "must specify exactly one of inlineVolumeSpec and persistentVolumeName",
            ));
        }
        if pv
            && str_at(obj, &["spec", "source", "persistentVolumeName"])
                .unwrap_or("")
                .is_empty()
        {
            causes.push(FieldCause::required(
                "spec.source.persistentVolumeName",
                "must specify non empty persistentVolumeName",
            ));
        }
        causes
    }

    fn validate_update(&self, old: &Value, new: &Value) -> Vec<FieldCause> {
        if old.get("spec") != new.get("spec") {
            // Upstream prints the Go struct; the field and detail are what matter.
            return vec![FieldCause::invalid(
                "spec",
                new.get("spec").unwrap_or(&Value::Null),
                "field is immutable",
            )];
        }
        Vec::new()
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            col(
                "Attacher",
                "string",
                0,
                "Attacher indicates the name of the volume driver that MUST handle this request.",
            ),
            col(
                "PV",
                "string",
                0,
                "Name of the persistent volume to attach.",
            ),
            col(
                "Node",
                "string",
                0,
                "The node that the volume should be attached to.",
            ),
            col(
                "Attached",
                "boolean",
                0,
                "Indicates the volume is successfully attached.",
            ),
            AGE,
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        vec![
            crate::table::name_cell(obj),
            json!(str_at(obj, &["spec", "attacher"]).unwrap_or_default()),
            json!(str_at(obj, &["spec", "source", "persistentVolumeName"]).unwrap_or_default()),
            json!(str_at(obj, &["spec", "nodeName"]).unwrap_or_default()),
            json!(obj
                .pointer("/status/attached")
                .and_then(Value::as_bool)
                .unwrap_or(false)),
            crate::table::age_cell(obj, now),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attacher_node_and_one_source_are_required() {
        let ok = json!({"spec": {"attacher": "csi.example.com", "nodeName": "n1", "source": {"persistentVolumeName": "pv1"}}});
        assert!(VolumeAttachment.validate(&ok).is_empty());
        let got = VolumeAttachment.validate(&json!({"spec": {"source": {}}}));
        let fields: Vec<&str> = got.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["spec.attacher", "spec.nodeName", "spec.source"]);
        let mut changed = ok.clone();
        changed["spec"]["nodeName"] = json!("n2");
        assert_eq!(
            VolumeAttachment.validate_update(&ok, &changed)[0].field,
            "spec"
        );
    }
}
