//! The `apps` group's kinds, and the rules every workload with a pod template
//! shares: non-negative replicas, a required selector that matches the
//! template's labels, a valid pod spec, and an immutable selector.

pub mod controllerrevision;
pub mod daemonset;
pub mod deployment;
pub mod replicaset;
pub mod statefulset;
pub mod workload;

use serde_json::Value;

use super::core::pod::spec::validate_pod_spec;
use super::non_negative;
use crate::field::FieldCause;

/// Upstream's checks of a workload's replicas, selector and template.
pub fn validate_workload(obj: &Value) -> Vec<FieldCause> {
    let mut causes: Vec<FieldCause> = non_negative(obj, "/spec/replicas").into_iter().collect();
    match obj.pointer("/spec/selector") {
        None | Some(Value::Null) => causes.push(FieldCause::required("spec.selector", "")),
        Some(selector) => causes.extend(selector_matches_template(selector, obj)),
    }
    causes.extend(validate_pod_spec(
        "spec.template.spec",
        obj.pointer("/spec/template/spec"),
    ));
    causes
}

/// The selector of a workload must be non-empty and select its own template.
pub fn selector_matches_template(selector: &Value, obj: &Value) -> Vec<FieldCause> {
    let parsed = match crate::selector::LabelSelector::from_value(selector) {
        Ok(parsed) => parsed,
        Err(e) => {
            return vec![FieldCause::invalid(
                "spec.selector",
                selector,
                e.to_string(),
            )]
        }
    };
    if parsed.is_empty() {
        return vec![FieldCause::invalid(
            "spec.selector",
            selector,
            "empty selector is invalid for deployment",
        )];
    }
    let labels = obj.pointer("/spec/template/metadata/labels");
    if !parsed.matches_value(labels) {
        let shown = labels.cloned().unwrap_or(Value::Object(Default::default()));
        return vec![FieldCause::invalid(
            "spec.template.metadata.labels",
            &Value::String(labels_string(&shown)),
            "`selector` does not match template `labels`",
        )];
    }
    Vec::new()
}

fn labels_string(labels: &Value) -> String {
    labels
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}
