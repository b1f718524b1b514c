//! The local APIServices kube-apiserver registers for the group versions it
//! serves: upstream's table of group and version priorities (its aggregator
//! setup), and the objects built from it.

use serde_json::{json, Value};

/// (group, version, groupPriorityMinimum, versionPriority), as upstream lists them.
pub const PRIORITIES: &[(&str, &str, i64, i64)] = &[
    ("", "v1", 18000, 1),
    ("apiregistration.k8s.io", "v1", 18000, 15),
    ("apps", "v1", 17800, 15),
    ("events.k8s.io", "v1", 17750, 15),
    ("authentication.k8s.io", "v1", 17700, 15),
    ("authorization.k8s.io", "v1", 17600, 15),
    ("autoscaling", "v1", 17500, 15),
    ("autoscaling", "v2", 17500, 30),
    ("batch", "v1", 17400, 15),
    ("certificates.k8s.io", "v1", 17300, 15),
    ("networking.k8s.io", "v1", 17200, 15),
    ("policy", "v1", 17100, 15),
    ("rbac.authorization.k8s.io", "v1", 17000, 15),
    ("storage.k8s.io", "v1", 16800, 15),
    ("apiextensions.k8s.io", "v1", 16700, 15),
    ("admissionregistration.k8s.io", "v1", 16700, 15),
    ("scheduling.k8s.io", "v1", 16600, 15),
    ("coordination.k8s.io", "v1", 16500, 15),
    ("node.k8s.io", "v1", 16300, 15),
    ("discovery.k8s.io", "v1", 16200, 15),
    ("flowcontrol.apiserver.k8s.io", "v1", 16100, 21),
    ("resource.k8s.io", "v1beta1", 15900, 9),
];

/// The priorities of groups upstream's table does not know (those of custom
/// resources' APIServices).
pub const OTHER_PRIORITY: (i64, i64) = (1000, 100);

/// The name of a group version's APIService (`v1.apps`, `v1.` for core).
pub fn name(group: &str, version: &str) -> String {
    format!("{version}.{group}")
}

/// The local APIService of a served group version, with its Available condition.
pub fn local_api_service(group: &str, version: &str, now: &str) -> Value {
    let (group_priority, version_priority) = PRIORITIES
        .iter()
        .find(|(g, v, _, _)| *g == group && *v == version)
        .map_or(OTHER_PRIORITY, |(_, _, g, v)| (*g, *v));
    json!({
        "apiVersion": "apiregistration.k8s.io/v1",
        "kind": "APIService",
        "metadata": {"name": name(group, version), "labels": {"kube-aggregator.kubernetes.io/automanaged": "onstart"}},
        "spec": {
            "group": group,
            "version": version,
            "groupPriorityMinimum": group_priority,
            "versionPriority": version_priority,
        },
        "status": {"conditions": [{
            "type": "Available",
            "status": "True",
            "lastTransitionTime": now,
            "reason": "Local",
            "message": "Local APIServices are always available",
        }]},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_services_take_upstream_priorities() {
        let core = local_api_service("", "v1", "2025-01-01T00:00:00Z");
        assert_eq!(core["metadata"]["name"], "v1.");
        assert_eq!(core["spec"]["groupPriorityMinimum"], 18000);
        let apps = local_api_service("apps", "v1", "2025-01-01T00:00:00Z");
        assert_eq!(
            (
                apps["spec"]["groupPriorityMinimum"].clone(),
                apps["spec"]["versionPriority"].clone()
            ),
            (json!(17800), json!(15))
        );
        assert_eq!(apps["status"]["conditions"][0]["reason"], "Local");
        let other = local_api_service("berth.dev", "v1", "2025-01-01T00:00:00Z");
        assert_eq!(other["spec"]["groupPriorityMinimum"], 1000);
        assert!(crate::kinds::apiregistration::apiservice::validate_api_service(&apps).is_empty());
    }
}
