//! Admission steps that need the server's configuration rather than the kind's
//! pure rules: upstream's DefaultTolerationSeconds for new pods, the
//! ServiceAccount default, and NamespaceLifecycle's immortal namespaces.

use berth_api::kinds::obj_mut;
use serde_json::{json, Value};

use super::catalog::ResourceInfo;
use super::errors::ApiError;
use super::objects::target;

/// Namespaces every cluster needs; upstream refuses to delete them.
pub const IMMORTAL_NAMESPACES: [&str; 4] =
    ["default", "kube-system", "kube-public", "kube-node-lease"];

/// Refuses deleting an immortal namespace, with upstream's NamespaceLifecycle message.
pub fn check_delete(r: &ResourceInfo, name: &str) -> Result<(), ApiError> {
    if r.group.is_empty() && r.kind == "Namespace" && IMMORTAL_NAMESPACES.contains(&name) {
        return Err(ApiError::forbidden(
            &target(r, name),
            "this namespace may not be deleted",
        ));
    }
    Ok(())
}

/// Upstream's ServiceAccount admission default: a pod names the service
/// account it runs as, `default` unless it says otherwise.
pub fn default_service_account(pod: &mut Value) {
    if !pod.is_object() {
        return;
    }
    let spec = obj_mut(pod, "spec");
    let name = spec
        .get("serviceAccountName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .or_else(|| {
            spec.get("serviceAccount")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
        })
        .unwrap_or("default")
        .to_owned();
    spec.insert("serviceAccountName".into(), json!(name));
    spec.insert("serviceAccount".into(), json!(name));
}

/// Seconds the DefaultTolerationSeconds admission gives new pods (upstream's
/// `--default-not-ready-toleration-seconds` / `--default-unreachable-toleration-seconds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefaultTolerationSeconds {
    /// `tolerationSeconds` of the `node.kubernetes.io/not-ready:NoExecute` toleration.
    pub not_ready: i64,
    /// `tolerationSeconds` of the `node.kubernetes.io/unreachable:NoExecute` toleration.
    pub unreachable: i64,
}

impl Default for DefaultTolerationSeconds {
    /// 30 s each (upstream: 300): with the 20 s node grace period a lost
    /// node's pods are evicted, and so replaced, within about a minute.
    fn default() -> Self {
        Self {
            not_ready: 30,
            unreachable: 30,
        }
    }
}

/// Upstream's DefaultTolerationSeconds admission plugin, applied to Pods on
/// create: a pod that does not already tolerate `not-ready` / `unreachable`
/// with effect NoExecute (a toleration with an empty key or effect counts)
/// gets an `Exists` toleration for each, bounded by `seconds`. This is what
/// makes pods leave a lost node instead of staying bound to it for ever.
pub fn default_tolerations(pod: &mut Value, seconds: DefaultTolerationSeconds) {
    if !pod.is_object() {
        return;
    }
    let spec = obj_mut(pod, "spec");
    let tolerations = spec.entry("tolerations").or_insert_with(|| json!([]));
    if !tolerations.is_array() {
        *tolerations = json!([]);
    }
    let list = tolerations.as_array_mut().expect("just made an array");
    let tolerates = |list: &[Value], key: &str| {
        list.iter().any(|t| {
            let field = |name: &str| t.get(name).and_then(Value::as_str).unwrap_or("");
            (field("key") == key || field("key").is_empty())
                && (field("effect") == "NoExecute" || field("effect").is_empty())
        })
    };
    for (key, seconds) in [
        ("node.kubernetes.io/not-ready", seconds.not_ready),
        ("node.kubernetes.io/unreachable", seconds.unreachable),
    ] {
        if !tolerates(list, key) {
            list.push(json!({
                "key": key,
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": seconds,
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_pods_get_default_not_ready_and_unreachable_tolerations() {
        let seconds = DefaultTolerationSeconds {
            not_ready: 30,
            unreachable: 7,
        };
        // (tolerations before, keys expected to be added)
        let cases = [
            (
                json!(null),
                vec![
                    "node.kubernetes.io/not-ready",
                    "node.kubernetes.io/unreachable",
                ],
            ),
            (
                json!([{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 1}]),
                vec!["node.kubernetes.io/not-ready"],
            ),
            (json!([{"operator": "Exists"}]), vec![]),
            (
                json!([{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoSchedule"}]),
                vec![
                    "node.kubernetes.io/not-ready",
                    "node.kubernetes.io/unreachable",
                ],
            ),
        ];
        for (before, added) in cases {
            let mut pod = json!({"spec": {"containers": []}});
            if !before.is_null() {
                pod["spec"]["tolerations"] = before.clone();
            }
            default_tolerations(&mut pod, seconds);
            let after = pod["spec"]["tolerations"].as_array().unwrap().clone();
            let old = before.as_array().cloned().unwrap_or_default();
            assert_eq!(after[..old.len()], old[..], "{before}");
            let new: Vec<&str> = after[old.len()..]
                .iter()
                .map(|t| t["key"].as_str().unwrap())
                .collect();
            assert_eq!(new, added, "{before}");
            for t in &after[old.len()..] {
                let expected = if t["key"] == "node.kubernetes.io/unreachable" {
                    7
                } else {
                    30
                };
                assert_eq!(t["tolerationSeconds"], json!(expected));
                assert_eq!(t["effect"], json!("NoExecute"));
            }
        }
    }
}
