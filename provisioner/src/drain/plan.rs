//! Which pods a drain evicts, as `kubectl drain --ignore-daemonsets
//! --delete-emptydir-data` decides: DaemonSet pods and mirror pods stay
//! (their controllers would put them back), pods with no controller are
//! refused unless forced (nothing would recreate them), emptyDir data is
//! lost with its pod. Pure: pods in, plan out.

use k8s_openapi::api::core::v1::Pod;

/// Upstream's annotation on a kubelet's mirror of a static pod.
const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// A pod by namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PodKey {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl std::fmt::Display for PodKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// What a drain does with the pods of a node.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DrainPlan {
    /// Pods to evict.
    pub evict: Vec<PodKey>,
    /// Pods left in place, with why (DaemonSet, mirror).
    pub skipped: Vec<(PodKey, String)>,
    /// Pods that stop the drain unless forced, with why.
    pub refused: Vec<(PodKey, String)>,
    /// Warnings to show (forced unmanaged pods, local data deleted).
    pub warnings: Vec<String>,
}

/// The plan for draining `pods` (the node's); `force` evicts pods that
/// declare no controller too, as `kubectl drain --force` does.
pub fn plan(pods: &[Pod], force: bool) -> DrainPlan {
    let mut plan = DrainPlan::default();
    for pod in pods {
        let key = PodKey {
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            name: pod.metadata.name.clone().unwrap_or_default(),
        };
        let finished = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .is_some_and(|phase| phase == "Succeeded" || phase == "Failed");
        let controller = pod
            .metadata
            .owner_references
            .iter()
            .flatten()
            .find(|owner| owner.controller == Some(true));
        if controller.is_some_and(|owner| owner.kind == "DaemonSet") {
            plan.skipped
                .push((key, "DaemonSet-managed (--ignore-daemonsets)".to_owned()));
            continue;
        }
        if pod
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(MIRROR_ANNOTATION))
        {
            plan.skipped.push((key, "mirror pod".to_owned()));
            continue;
        }
        if !finished {
            if controller.is_none() {
                if !force {
                    plan.refused.push((
                        key,
                        "cannot delete Pods that declare no controller (use --force to override)"
                            .to_owned(),
                    ));
                    continue;
                }
                plan.warnings
                    .push(format!("deleting Pod that declares no controller: {key}"));
            }
            let empty_dir = pod
                .spec
                .as_ref()
                .and_then(|s| s.volumes.as_ref())
                .is_some_and(|volumes| volumes.iter().any(|v| v.empty_dir.is_some()));
            if empty_dir {
                plan.warnings
                    .push(format!("deleting Pod with local storage: {key}"));
            }
        }
        plan.evict.push(key);
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pod named `name` from JSON fields merged into its metadata, spec and status.
    fn pod(name: &str, metadata: serde_json::Value, extra: serde_json::Value) -> Pod {
        let mut value = serde_json::json!({
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]},
        });
        for (key, field) in metadata.as_object().unwrap() {
            value["metadata"][key] = field.clone();
        }
        for (key, field) in extra.as_object().unwrap() {
            value[key] = field.clone();
        }
        serde_json::from_value(value).unwrap()
    }

    fn owned_by(kind: &str) -> serde_json::Value {
        serde_json::json!({"ownerReferences": [{
            "apiVersion": "apps/v1", "kind": kind, "name": "owner", "uid": "1", "controller": true
        }]})
    }

    fn key(name: &str) -> PodKey {
        PodKey {
            namespace: "default".to_owned(),
            name: name.to_owned(),
        }
    }

    #[test]
    fn each_kind_of_pod_is_evicted_skipped_or_refused_as_kubectl_drain_does() {
        let none = serde_json::json!({});
        let pods = [
            pod("web", owned_by("ReplicaSet"), none.clone()),
            pod("agent", owned_by("DaemonSet"), none.clone()),
            pod(
                "static",
                serde_json::json!({"annotations": {MIRROR_ANNOTATION: "x"}}),
                none.clone(),
            ),
            pod("bare", none.clone(), none.clone()),
            pod(
                "done",
                none.clone(),
                serde_json::json!({"status": {"phase": "Succeeded"}}),
            ),
            pod(
                "cache",
                owned_by("StatefulSet"),
                serde_json::json!({"spec": {
                    "containers": [{"name": "c", "image": "busybox"}],
                    "volumes": [{"name": "tmp", "emptyDir": {}}]
                }}),
            ),
            pod(
                "loose",
                serde_json::json!({"ownerReferences": [{
                    "apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "2"
                }]}),
                none,
            ),
        ];
        // (force, evicted, skipped, refused)
        type Case<'a> = (bool, &'a [&'a str], &'a [&'a str], &'a [&'a str]);
        let cases: [Case; 2] = [
            (
                false,
                &["web", "done", "cache"],
                &["agent", "static"],
                &["bare", "loose"],
            ),
            (
                true,
                &["web", "bare", "done", "cache", "loose"],
                &["agent", "static"],
                &[],
            ),
        ];
        for (force, evict, skipped, refused) in cases {
            let plan = plan(&pods, force);
            let names = |keys: Vec<&PodKey>| -> Vec<String> {
                keys.into_iter().map(|k| k.name.clone()).collect()
            };
            assert_eq!(names(plan.evict.iter().collect()), evict, "force {force}");
            assert_eq!(
                names(plan.skipped.iter().map(|(k, _)| k).collect()),
                skipped,
                "force {force}"
            );
            assert_eq!(
                names(plan.refused.iter().map(|(k, _)| k).collect()),
                refused,
                "force {force}"
            );
            assert!(plan
                .warnings
                .contains(&"deleting Pod with local storage: default/cache".to_owned()));
        }
        assert_eq!(
            plan(&pods, false).refused[0],
            (
                key("bare"),
                "cannot delete Pods that declare no controller (use --force to override)"
                    .to_owned()
            )
        );
    }
}
