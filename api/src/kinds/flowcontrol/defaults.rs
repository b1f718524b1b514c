//! Upstream's bootstrap API priority and fairness configuration of 1.33: the
//! mandatory `exempt` and `catch-all` objects and the suggested ones, which the
//! API server creates at start (stored, not enforced).

use serde_json::{json, Value};

/// The annotation upstream sets on objects it keeps up to date.
const AUTOUPDATE: &str = "apf.kubernetes.io/autoupdate-spec";

fn meta(name: &str) -> Value {
    json!({"name": name, "annotations": {AUTOUPDATE: "true"}})
}

/// Queuing of a limited level: (queues, hand size, queue length limit); None rejects.
type Queuing = Option<(i64, i64, i64)>;

/// A limited level: (name, nominal shares, lendable percent, queuing).
const LIMITED: &[(&str, i64, i64, Queuing)] = &[
    ("catch-all", 5, 0, None),
    ("system", 30, 33, Some((64, 6, 50))),
    ("node-high", 40, 25, Some((64, 6, 50))),
    ("leader-election", 10, 0, Some((16, 4, 50))),
    ("workload-high", 40, 50, Some((128, 6, 50))),
    ("workload-low", 100, 90, Some((128, 6, 50))),
    ("global-default", 20, 50, Some((128, 6, 50))),
];

/// The default PriorityLevelConfigurations.
pub fn priority_levels() -> Vec<Value> {
    let mut levels = vec![json!({
        "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
        "kind": "PriorityLevelConfiguration",
        "metadata": meta("exempt"),
        "spec": {"type": "Exempt", "exempt": {"nominalConcurrencyShares": 0, "lendablePercent": 0}},
    })];
    for (name, shares, lendable, queuing) in LIMITED {
        let limit_response = match queuing {
            Some((queues, hand, length)) => json!({"type": "Queue", "queuing": {
                "queues": queues, "handSize": hand, "queueLengthLimit": length}}),
            None => json!({"type": "Reject"}),
        };
        levels.push(json!({
            "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
            "kind": "PriorityLevelConfiguration",
            "metadata": meta(name),
            "spec": {"type": "Limited", "limited": {
                "nominalConcurrencyShares": shares,
                "lendablePercent": lendable,
                "limitResponse": limit_response,
            }},
        }));
    }
    levels
}

fn group(name: &str) -> Value {
    json!({"kind": "Group", "group": {"name": name}})
}

fn user(name: &str) -> Value {
    json!({"kind": "User", "user": {"name": name}})
}

fn kube_system_sa(name: &str) -> Value {
    json!({"kind": "ServiceAccount", "serviceAccount": {"namespace": "kube-system", "name": name}})
}

fn everything(subjects: Vec<Value>) -> Value {
    json!({
        "subjects": subjects,
        "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"], "clusterScope": true, "namespaces": ["*"]}],
        "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
    })
}

fn leases(subjects: Vec<Value>) -> Value {
    json!({
        "subjects": subjects,
        "resourceRules": [{"verbs": ["get", "create", "update"], "apiGroups": ["coordination.k8s.io"],
                           "resources": ["leases"], "namespaces": ["*"]}],
    })
}

fn schema(
    name: &str,
    level: &str,
    precedence: i64,
    distinguisher: Option<&str>,
    rules: Vec<Value>,
) -> Value {
    let mut spec = json!({
        "priorityLevelConfiguration": {"name": level},
        "matchingPrecedence": precedence,
        "rules": rules,
    });
    if let Some(method) = distinguisher {
        spec["distinguisherMethod"] = json!({"type": method});
    }
    json!({
        "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
        "kind": "FlowSchema",
        "metadata": meta(name),
        "spec": spec,
    })
}

/// The default FlowSchemas.
pub fn flow_schemas() -> Vec<Value> {
    let everyone = || {
        vec![
            group("system:unauthenticated"),
            group("system:authenticated"),
        ]
    };
    vec![
        schema(
            "exempt",
            "exempt",
            1,
            None,
            vec![everything(vec![group("system:masters")])],
        ),
        schema(
            "probes",
            "exempt",
            2,
            None,
            vec![json!({
                "subjects": everyone(),
                "nonResourceRules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz", "/readyz", "/livez"]}],
            })],
        ),
        schema(
            "system-leader-election",
            "leader-election",
            100,
            Some("ByUser"),
            vec![leases(vec![
                user("system:kube-controller-manager"),
                user("system:kube-scheduler"),
                kube_system_sa("*"),
            ])],
        ),
        schema(
            "endpoint-controller",
            "workload-high",
            150,
            Some("ByUser"),
            vec![json!({
                "subjects": [user("system:kube-controller-manager"), kube_system_sa("endpoint-controller")],
                "resourceRules": [{"verbs": ["get", "create", "update"], "apiGroups": [""],
                                   "resources": ["endpoints"], "namespaces": ["*"]}],
            })],
        ),
        schema(
            "workload-leader-election",
            "leader-election",
            200,
            Some("ByUser"),
            vec![leases(vec![kube_system_sa("*")])],
        ),
        schema(
            "system-node-high",
            "node-high",
            400,
            Some("ByUser"),
            vec![json!({
                "subjects": [group("system:nodes")],
                "resourceRules": [
                    {"verbs": ["*"], "apiGroups": [""], "resources": ["nodes", "nodes/status"], "clusterScope": true},
                    {"verbs": ["*"], "apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "namespaces": ["*"]},
                ],
            })],
        ),
        schema(
            "system-nodes",
            "system",
            500,
            Some("ByUser"),
            vec![everything(vec![group("system:nodes")])],
        ),
        schema(
            "kube-controller-manager",
            "workload-high",
            800,
            Some("ByNamespace"),
            vec![everything(vec![user("system:kube-controller-manager")])],
        ),
        schema(
            "kube-scheduler",
            "workload-high",
            800,
            Some("ByNamespace"),
            vec![everything(vec![user("system:kube-scheduler")])],
        ),
        schema(
            "kube-system-service-accounts",
            "workload-high",
            900,
            Some("ByNamespace"),
            vec![everything(vec![kube_system_sa("*")])],
        ),
        schema(
            "service-accounts",
            "workload-low",
            9000,
            Some("ByUser"),
            vec![everything(vec![group("system:serviceaccounts")])],
        ),
        schema(
            "global-default",
            "global-default",
            9900,
            Some("ByUser"),
            vec![everything(everyone())],
        ),
        schema(
            "catch-all",
            "catch-all",
            10000,
            Some("ByUser"),
            vec![everything(everyone())],
        ),
    ]
}

/// The status the API server gives a default FlowSchema: its level exists.
pub fn found_status(schema: &Value, now: &str) -> Value {
    let level = schema
        .pointer("/spec/priorityLevelConfiguration/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    json!({"conditions": [{
        "type": "Dangling",
        "status": "False",
        "lastTransitionTime": now,
        "reason": "Found",
        "message": format!("This FlowSchema references the PriorityLevelConfiguration object named \"{level}\" and it exists"),
    }]})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::flowcontrol::{
        flowschema::FlowSchema, prioritylevel::PriorityLevelConfiguration,
    };
    use crate::kinds::KindRules;

    #[test]
    fn defaults_are_valid_and_reference_existing_levels() {
        let levels = priority_levels();
        let names: Vec<&str> = levels
            .iter()
            .filter_map(|l| l.pointer("/metadata/name")?.as_str())
            .collect();
        for level in &levels {
            assert!(
                PriorityLevelConfiguration.validate(level).is_empty(),
                "{level}"
            );
        }
        let schemas = flow_schemas();
        assert_eq!(schemas.len(), 13);
        for schema in &schemas {
            assert!(FlowSchema.validate(schema).is_empty(), "{schema}");
            let level = schema
                .pointer("/spec/priorityLevelConfiguration/name")
                .and_then(Value::as_str)
                .unwrap();
            assert!(names.contains(&level), "{level}");
        }
        for mandatory in ["exempt", "catch-all"] {
            assert!(names.contains(&mandatory));
        }
    }
}
