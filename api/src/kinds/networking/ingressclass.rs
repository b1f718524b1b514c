//! IngressClasses: the required, immutable `spec.controller`, upstream's
//! default parameters scope, and the CONTROLLER / PARAMETERS columns.

use serde_json::{json, Value};

use crate::field::FieldCause;
use crate::kinds::{immutable_fields, set_default, KindRules};
use crate::table::print::str_at;
use crate::table::{col, Column, AGE, NAME};

/// The rules of `networking.k8s.io/v1` IngressClass.
#[derive(Debug, Clone, Copy, Default)]
pub struct IngressClass;

impl KindRules for IngressClass {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn default(&self, obj: &mut Value) {
        if let Some(params) = obj
            .pointer_mut("/spec/parameters")
            .and_then(Value::as_object_mut)
        {
            set_default(params, "scope", json!("Cluster"));
        }
    }

    fn validate(&self, obj: &Value) -> Vec<FieldCause> {
        let mut causes = Vec::new();
        let controller = str_at(obj, &["spec", "controller"]).unwrap_or("");
        if controller.is_empty() {
            causes.push(FieldCause::required("spec.controller", ""));
        } else if controller.len() > 250 {
            causes.push(FieldCause {
                reason: "FieldValueTooLong",
                field: "spec.controller".into(),
                message: "Too long: may not be more than 250 bytes".into(),
            });
        }
        if let Some(params) = obj.pointer("/spec/parameters") {
            if str_at(params, &["kind"]).unwrap_or("").is_empty() {
                causes.push(FieldCause::required("spec.parameters.kind", ""));
            }
            if str_at(params, &["name"]).unwrap_or("").is_empty() {
                causes.push(FieldCause::required("spec.parameters.name", ""));
            }
            let scope = str_at(params, &["scope"]).unwrap_or("");
            let namespace = str_at(params, &["namespace"]);
            match (scope, namespace) {
                ("Cluster", Some(_)) => causes.push(FieldCause::forbidden(
                    "spec.parameters.namespace",
                    "`parameters.scope` is set to 'Cluster'",
                )),
                ("Namespace", None) => causes.push(FieldCause::required(
                    "spec.parameters.namespace",
                    "`parameters.scope` is set to 'Namespace'",
                )),
                ("Cluster" | "Namespace", _) => {}
                (other, _) => causes.push(FieldCause::not_supported(
                    "spec.parameters.scope",
                    &json!(other),
                    &["Cluster", "Namespace"],
                )),
            }
        }
        causes
    }

    fn validate_update(&self, old: &Value, new: &Value) -> Vec<FieldCause> {
        immutable_fields(old, new, &["/spec/controller"])
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            col(
                "Controller",
                "string",
                0,
                "Controller that is responsible for handling this class",
            ),
            col(
                "Parameters",
                "string",
                0,
                "A reference to a resource with additional parameters",
            ),
            AGE,
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let parameters = match obj.pointer("/spec/parameters") {
            Some(p) => {
                let mut text = str_at(p, &["kind"]).unwrap_or_default().to_owned();
                if let Some(group) = str_at(p, &["apiGroup"]) {
                    text = format!("{text}.{group}");
                }
                format!("{text}/{}", str_at(p, &["name"]).unwrap_or_default())
            }
            None => "<none>".to_owned(),
        };
        vec![
            crate::table::name_cell(obj),
            json!(str_at(obj, &["spec", "controller"]).unwrap_or_default()),
            json!(parameters),
            crate::table::age_cell(obj, now),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controller_is_required_and_immutable() {
        let ok = json!({"spec": {"controller": "example.com/ingress-controller"}});
        assert!(IngressClass.validate(&ok).is_empty());
        let cases = [
            (json!({"spec": {}}), "spec.controller", "Required value"),
            (
                json!({"spec": {"controller": "a/b", "parameters": {"kind": "K", "name": "n", "scope": "Namespace"}}}),
                "spec.parameters.namespace",
                "Required value: `parameters.scope` is set to 'Namespace'",
            ),
        ];
        for (obj, field, message) in cases {
            let got = IngressClass.validate(&obj);
            assert!(
                got.iter().any(|c| c.field == field && c.message == message),
                "{got:?}"
            );
        }
        let changed = json!({"spec": {"controller": "other/x"}});
        assert_eq!(
            IngressClass.validate_update(&ok, &changed)[0].field,
            "spec.controller"
        );
    }

    #[test]
    fn parameters_default_to_cluster_scope_and_print_kind_group_name() {
        let mut obj = json!({"metadata": {"name": "c"}, "spec": {"controller": "a/b",
            "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "external-lb"}}});
        IngressClass.default(&mut obj);
        assert_eq!(obj["spec"]["parameters"]["scope"], "Cluster");
        let cells = IngressClass.cells(&obj, jiff::Timestamp::now());
        assert_eq!(
            cells[2],
            json!("IngressParameters.k8s.example.com/external-lb")
        );
    }
}
