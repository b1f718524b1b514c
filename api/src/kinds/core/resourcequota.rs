//! ResourceQuotas: validation of `spec.hard` (standard quota resources or
//! qualified names, non-negative quantities) and scopes, and the
//! `kubectl get quota` columns. `status` is the quota controller's.

use serde_json::{json, Value};

use crate::field::FieldCause;
use crate::kinds::KindRules;
use crate::quantity::Quantity;
use crate::table::{col, Column, AGE, NAME};

/// The rules of `core/v1` ResourceQuota.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResourceQuota;

/// Upstream's standard quota resource names (`IsStandardQuotaResourceName`);
/// names with a `/` (`count/deployments.apps`, `requests.nvidia.com/gpu`) are
/// accepted as extended resources.
pub const STANDARD_QUOTA_RESOURCES: &[&str] = &[
    "configmaps",
    "cpu",
    "ephemeral-storage",
    "limits.cpu",
    "limits.ephemeral-storage",
    "limits.memory",
    "memory",
    "persistentvolumeclaims",
    "pods",
    "replicationcontrollers",
    "requests.cpu",
    "requests.ephemeral-storage",
    "requests.memory",
    "requests.storage",
    "resourcequotas",
    "secrets",
    "services",
    "services.loadbalancers",
    "services.nodeports",
];

/// The scopes upstream knows.
const SCOPES: &[&str] = &[
    "BestEffort",
    "CrossNamespacePodAffinity",
    "NotBestEffort",
    "NotTerminating",
    "PriorityClass",
    "Terminating",
    "VolumeAttributesClass",
];

/// Whether upstream accepts `name` as a quota resource.
pub fn is_quota_resource(name: &str) -> bool {
    name.contains('/')
        || STANDARD_QUOTA_RESOURCES.contains(&name)
        || name.starts_with("hugepages-")
        || name.starts_with("requests.hugepages-")
}

impl KindRules for ResourceQuota {
    fn validate(&self, obj: &Value) -> Vec<FieldCause> {
        let mut causes = Vec::new();
        for (section, map) in ["spec.hard", "status.hard", "status.used"]
            .into_iter()
            .filter_map(|s| {
                let pointer = format!("/{}", s.replace('.', "/"));
                obj.pointer(&pointer)
                    .and_then(Value::as_object)
                    .map(|m| (s, m))
            })
        {
            for (resource, value) in map {
                let path = format!("{section}[{resource}]");
                if !is_quota_resource(resource) {
                    causes.push(FieldCause::invalid(
                        &path,
                        &json!(resource),
                        "must be a standard resource for quota",
                    ));
                }
                let text = value
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| value.to_string());
                match Quantity::parse(&text) {
                    Ok(q) if q.signum() < 0 => causes.push(FieldCause::invalid(
                        &path,
                        &json!(q.to_string()),
                        "must be greater than or equal to 0",
                    )),
                    Ok(_) => {}
                    Err(e) => causes.push(FieldCause::invalid(&path, &json!(text), e.to_string())),
                }
            }
        }
        for (i, scope) in obj
            .pointer("/spec/scopes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if !scope.as_str().is_some_and(|s| SCOPES.contains(&s)) {
                causes.push(FieldCause::not_supported(
                    format!("spec.scopes[{i}]"),
                    scope,
                    SCOPES,
                ));
            }
        }
        causes
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            AGE,
            col(
                "Request",
                "string",
                0,
                "Request represents a minimum amount of cpu/memory that a container may consume.",
            ),
            col(
                "Limit",
                "string",
                0,
                "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.",
            ),
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let (requests, limits) = usage_columns(obj);
        vec![
            crate::table::name_cell(obj),
            crate::table::age_cell(obj, now),
            json!(requests),
            json!(limits),
        ]
    }
}

/// The REQUEST and LIMIT cells: `resource: used/hard` per resource of
/// `status.hard`, sorted by name, `limits.*` in the second.
fn usage_columns(obj: &Value) -> (String, String) {
    let hard = obj.pointer("/status/hard").and_then(Value::as_object);
    let (mut requests, mut limits) = (Vec::new(), Vec::new());
    let mut sorted: Vec<(&String, &Value)> = hard.into_iter().flatten().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    for (resource, hard) in sorted {
        let shown = |v: Option<&Value>| {
            v.and_then(Value::as_str)
                .map(|s| Quantity::parse(s).map_or_else(|_| s.to_owned(), |q| q.to_string()))
                .unwrap_or_else(|| "0".to_owned())
        };
        let used = shown(obj.pointer(&format!(
            "/status/used/{}",
            resource.replace('~', "~0").replace('/', "~1")
        )));
        let entry = format!("{resource}: {used}/{}", shown(Some(hard)));
        if resource.split('.').next() == Some("limits") && resource.contains('.') {
            limits.push(entry);
        } else {
            requests.push(entry);
        }
    }
    (requests.join(", "), limits.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_splits_requests_and_limits() {
        let obj = json!({"metadata": {"name": "q"}, "status": {
            "hard": {"pods": "10", "limits.cpu": "2", "requests.memory": "1Gi", "count/deployments.apps": "5"},
            "used": {"pods": "3", "limits.cpu": "500m", "requests.memory": "256Mi"}}});
        let row = ResourceQuota.cells(&obj, jiff::Timestamp::UNIX_EPOCH);
        assert_eq!(row.len(), ResourceQuota.columns().len());
        assert_eq!(
            row[2],
            "count/deployments.apps: 0/5, pods: 3/10, requests.memory: 256Mi/1Gi"
        );
        assert_eq!(row[3], "limits.cpu: 500m/2");
    }

    #[test]
    fn invalid_quotas_are_refused_with_upstream_words() {
        let cases = [
            (
                json!({"hard": {"widgets": "1"}}),
                "spec.hard[widgets]",
                "Invalid value: \"widgets\": must be a standard resource for quota",
            ),
            (
                json!({"hard": {"cpu": "-1"}}),
                "spec.hard[cpu]",
                "Invalid value: \"-1\": must be greater than or equal to 0",
            ),
            (
                json!({"scopes": ["Sometimes"]}),
                "spec.scopes[0]",
                "Unsupported value: \"Sometimes\": supported values: \"BestEffort\", \"CrossNamespacePodAffinity\", \"NotBestEffort\", \"NotTerminating\", \"PriorityClass\", \"Terminating\", \"VolumeAttributesClass\"",
            ),
        ];
        for (spec, field, message) in cases {
            let causes = ResourceQuota.validate(&json!({"spec": spec}));
            assert!(
                causes
                    .iter()
                    .any(|c| c.field == field && c.message == message),
                "{field}: {causes:?}"
            );
        }
        let good = json!({"spec": {"hard": {"requests.nvidia.com/gpu": "4", "count/configmaps": "3", "hugepages-2Mi": "1Gi"}}});
        assert!(ResourceQuota.validate(&good).is_empty());
    }
}
