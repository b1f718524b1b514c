//! APIServices: upstream's validation (the name is `version.group`, priority
//! ranges, local services have no CA bundle), and the SERVICE / AVAILABLE columns.

use serde_json::{json, Value};

use crate::field::FieldCause;
use crate::kinds::{KindRules, NameRule};
use crate::table::print::{array_at, str_at};
use crate::table::{col, Column, AGE, NAME};

/// The rules of `apiregistration.k8s.io/v1` APIService.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiService;

/// Upstream's validation of an APIService.
pub fn validate_api_service(obj: &Value) -> Vec<FieldCause> {
    let mut causes = Vec::new();
    let spec = obj.get("spec").cloned().unwrap_or(json!({}));
    let group = str_at(&spec, &["group"]).unwrap_or("");
    let version = str_at(&spec, &["version"]).unwrap_or("");
    let required = format!("{version}.{group}");
    let name = str_at(obj, &["metadata", "name"]).unwrap_or("");
    if !name.is_empty() && name != required {
        causes.push(FieldCause::invalid(
            "metadata.name",
            &json!(name),
            format!("must be `spec.version+\".\"+spec.group`: \"{required}\""),
        ));
    }
    if group.is_empty() && version != "v1" {
        causes.push(FieldCause::required(
            "spec.group",
            "only v1 may have an empty group and it better be legacy kube",
        ));
    }
    if !group.is_empty() {
        for msg in crate::validation::is_dns1123_subdomain(group) {
            causes.push(FieldCause::invalid("spec.group", &json!(group), msg));
        }
    }
    for msg in crate::validation::is_dns1035_label(version) {
        causes.push(FieldCause::invalid("spec.version", &json!(version), msg));
    }
    let number = |field: &str| spec.get(field).and_then(Value::as_i64).unwrap_or(0);
    let group_priority = number("groupPriorityMinimum");
    if !(1..=20000).contains(&group_priority) {
        causes.push(FieldCause::invalid(
            "spec.groupPriorityMinimum",
            &json!(group_priority),
            "must be positive and less than 20000",
        ));
    }
    let version_priority = number("versionPriority");
    if !(1..=1000).contains(&version_priority) {
        causes.push(FieldCause::invalid(
            "spec.versionPriority",
            &json!(version_priority),
            "must be positive and less than 1000",
        ));
    }
    let ca_bundle = str_at(&spec, &["caBundle"]).unwrap_or("");
    let insecure = spec
        .get("insecureSkipTLSVerify")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    match spec.get("service") {
        None => {
            if !ca_bundle.is_empty() {
                causes.push(FieldCause::invalid(
                    "spec.caBundle",
                    &json!(format!("{} bytes", ca_bundle.len() * 3 / 4)),
                    "local APIServices may not have a caBundle",
                ));
            }
            if insecure {
                causes.push(FieldCause::invalid(
                    "spec.insecureSkipTLSVerify",
                    &json!(true),
                    "local APIServices may not have insecureSkipTLSVerify",
                ));
            }
        }
        Some(service) => {
            if str_at(service, &["namespace"]).unwrap_or("").is_empty() {
                causes.push(FieldCause::required("spec.service.namespace", ""));
            }
            if str_at(service, &["name"]).unwrap_or("").is_empty() {
                causes.push(FieldCause::required("spec.service.name", ""));
            }
            if insecure && !ca_bundle.is_empty() {
                causes.push(FieldCause::invalid(
                    "spec.insecureSkipTLSVerify",
                    &json!(true),
                    "may not be true if caBundle is present",
                ));
            }
        }
    }
    causes
}

impl KindRules for ApiService {
    fn name_rule(&self) -> NameRule {
        NameRule::PathSegment
    }

    fn default(&self, obj: &mut Value) {
        if let Some(service) = obj
            .pointer_mut("/spec/service")
            .and_then(Value::as_object_mut)
        {
            crate::kinds::set_default(service, "port", json!(443));
        }
    }

    fn validate(&self, obj: &Value) -> Vec<FieldCause> {
        validate_api_service(obj)
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            col(
                "Service",
                "string",
                0,
                "The reference to the service that hosts this API endpoint.",
            ),
            col(
                "Available",
                "string",
                0,
                "Whether this service is available.",
            ),
            AGE,
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let service = match obj.pointer("/spec/service") {
            Some(s) => format!(
                "{}/{}",
                str_at(s, &["namespace"]).unwrap_or_default(),
                str_at(s, &["name"]).unwrap_or_default()
            ),
            None => "Local".to_owned(),
        };
        let available = array_at(obj, &["status", "conditions"])
            .iter()
            .find(|c| str_at(c, &["type"]) == Some("Available"))
            .map_or_else(
                || "Unknown".to_owned(),
                |c| match str_at(c, &["status"]).unwrap_or("Unknown") {
                    "True" => "True".to_owned(),
                    other => format!("{other} ({})", str_at(c, &["reason"]).unwrap_or_default()),
                },
            );
        vec![
            crate::table::name_cell(obj),
            json!(service),
            json!(available),
            crate::table::age_cell(obj, now),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_priorities_and_local_services_follow_upstream() {
        let svc = |name: &str, spec: Value| json!({"metadata": {"name": name}, "spec": spec});
        let ok = svc(
            "v1beta1.metrics.k8s.io",
            json!({"group": "metrics.k8s.io", "version": "v1beta1",
            "groupPriorityMinimum": 100, "versionPriority": 100,
            "service": {"namespace": "kube-system", "name": "metrics-server"}, "insecureSkipTLSVerify": true}),
        );
        assert!(ApiService.validate(&ok).is_empty());
        let cases = [
            (
                svc(
                    "foo",
                    json!({"group": "bar", "version": "v1", "groupPriorityMinimum": 1, "versionPriority": 1}),
                ),
                "metadata.name",
                "Invalid value: \"foo\": must be `spec.version+\".\"+spec.group`: \"v1.bar\"",
            ),
            (
                svc(
                    "v1.bar",
                    json!({"group": "bar", "version": "v1", "groupPriorityMinimum": 0, "versionPriority": 1}),
                ),
                "spec.groupPriorityMinimum",
                "Invalid value: 0: must be positive and less than 20000",
            ),
        ];
        for (obj, field, message) in cases {
            let got = ApiService.validate(&obj);
            assert!(
                got.iter().any(|c| c.field == field && c.message == message),
                "{got:?}"
            );
        }
    }

    #[test]
    fn cells_show_local_and_availability() {
        let obj = json!({"metadata": {"name": "v1.apps"}, "spec": {},
            "status": {"conditions": [{"type": "Available", "status": "True", "reason": "Local"}]}});
        let cells = ApiService.cells(&obj, jiff::Timestamp::now());
        assert_eq!(cells[1..3], [json!("Local"), json!("True")]);
        let down = json!({"spec": {"service": {"namespace": "ns", "name": "s"}},
            "status": {"conditions": [{"type": "Available", "status": "False", "reason": "ServiceNotFound"}]}});
        assert_eq!(
            ApiService.cells(&down, jiff::Timestamp::now())[2],
            json!("False (ServiceNotFound)")
        );
    }
}
