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

/// The annotation that makes an IngressClass the cluster's default (Ingresses
/// without a class belong to it).
pub const DEFAULT_CLASS_ANNOTATION: &str = "ingressclass.kubernetes.io/is-default-class";
/// The `spec.controller` of berth's own ingress (the node agents' proxies).
pub const BERTH_CONTROLLER: &str = "berth.dev/ingress";
/// The Node annotation a node agent sets while its ingress proxy listens:
/// the ports, `"80,443"`.
pub const BERTH_PORTS_ANNOTATION: &str = "berth.dev/ingress-ports";
/// The deprecated annotation that named an Ingress's class before
/// `spec.ingressClassName`; controllers still honour it.
pub const CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

/// Whether `ingress` belongs to a class whose `spec.controller` is
/// `controller`, as ingress controllers decide: the deprecated annotation
/// first, then `spec.ingressClassName`, and an Ingress naming neither
/// belongs to the default class (if exactly that one is ours).
pub fn ingress_served_by(
    ingress: &k8s_openapi::api::networking::v1::Ingress,
    classes: &[k8s_openapi::api::networking::v1::IngressClass],
    controller: &str,
) -> bool {
    let ours = |name: &str| {
        classes.iter().any(|c| {
            c.metadata.name.as_deref() == Some(name)
                && c.spec.as_ref().and_then(|s| s.controller.as_deref()) == Some(controller)
        })
    };
    let annotated = ingress
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(CLASS_ANNOTATION));
    let named = ingress
        .spec
        .as_ref()
        .and_then(|s| s.ingress_class_name.as_deref());
    match (annotated, named) {
        (Some(class), _) => ours(class),
        (None, Some(class)) => ours(class),
        (None, None) => {
            let defaults: Vec<_> = classes
                .iter()
                .filter(|c| {
                    c.metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get(DEFAULT_CLASS_ANNOTATION))
                        .is_some_and(|v| v == "true")
                })
                .collect();
            // Upstream's admission refuses to pick when several classes claim
            // to be the default; so does this.
            matches!(defaults.as_slice(), [only]
                if only.spec.as_ref().and_then(|s| s.controller.as_deref()) == Some(controller))
        }
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

    #[test]
    fn an_ingress_belongs_to_a_class_by_annotation_name_or_default() {
        use k8s_openapi::api::networking::v1::{Ingress, IngressClass as Class};
        let class = |name: &str, controller: &str, default: bool| -> Class {
            serde_json::from_value(json!({
                "metadata": {"name": name, "annotations": if default {
                    json!({DEFAULT_CLASS_ANNOTATION: "true"}) } else { json!({}) }},
                "spec": {"controller": controller}}))
            .unwrap()
        };
        let ingress = |annotation: Option<&str>, name: Option<&str>| -> Ingress {
            let mut obj = json!({"metadata": {"name": "i"}, "spec": {}});
            if let Some(a) = annotation {
                obj["metadata"]["annotations"] = json!({CLASS_ANNOTATION: a});
            }
            if let Some(n) = name {
                obj["spec"]["ingressClassName"] = json!(n);
            }
            serde_json::from_value(obj).unwrap()
        };
        let ours = class("berth", "berth.dev/ingress", true);
        let other = class("nginx", "k8s.io/ingress-nginx", false);
        let other_default = class("nginx", "k8s.io/ingress-nginx", true);
        let cases = [
            (
                ingress(None, Some("berth")),
                vec![ours.clone(), other.clone()],
                true,
            ),
            (
                ingress(None, Some("nginx")),
                vec![ours.clone(), other.clone()],
                false,
            ),
            (ingress(None, Some("missing")), vec![ours.clone()], false),
            (
                ingress(Some("berth"), Some("nginx")),
                vec![ours.clone(), other.clone()],
                true,
            ),
            (
                ingress(Some("nginx"), Some("berth")),
                vec![ours.clone(), other.clone()],
                false,
            ),
            (ingress(None, None), vec![ours.clone(), other.clone()], true),
            (
                ingress(None, None),
                vec![class("berth", "berth.dev/ingress", false)],
                false,
            ),
            (
                ingress(None, None),
                vec![ours.clone(), other_default],
                false,
            ),
            (ingress(None, None), vec![], false),
        ];
        for (i, (ingress, classes, want)) in cases.into_iter().enumerate() {
            assert_eq!(
                ingress_served_by(&ingress, &classes, "berth.dev/ingress"),
                want,
                "case {i}"
            );
        }
    }
}
