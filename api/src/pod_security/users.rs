//! Checks on the user a pod's containers run as: restricted pods must run as
//! non-root and never as UID 0, unless they are in a user namespace (1.35+).
//! Each returns upstream's reason and detail text.

use serde_json::Value;

use super::pod::{containers_phrase, name, security, setters, PodView};
use super::Violation;

/// Restricted `runAsNonRoot` (1.0): `runAsNonRoot=true` on the pod or every container.
pub fn run_as_non_root_1_0(pod: &PodView) -> Option<Violation> {
    let pod_setting = pod.security("/runAsNonRoot").and_then(Value::as_bool);
    let pod_bad = pod_setting == Some(false);
    let pod_non_root = pod_setting == Some(true);
    let mut explicit = Vec::new();
    let mut implicit = Vec::new();
    for container in pod.containers() {
        match security(container, "/runAsNonRoot") {
            Some(value) if value.as_bool() != Some(true) => explicit.push(name(container)),
            None if !pod_non_root => implicit.push(name(container)),
            _ => {}
        }
    }
    if pod_bad || !explicit.is_empty() {
        return Some(Violation::new(
            "runAsNonRoot != true",
            format!(
                "{} must not set securityContext.runAsNonRoot=false",
                setters(pod_bad, &explicit)
            ),
        ));
    }
    (!implicit.is_empty()).then(|| {
        Violation::new(
            "runAsNonRoot != true",
            format!(
                "pod or {} must set securityContext.runAsNonRoot=true",
                containers_phrase(&implicit)
            ),
        )
    })
}

/// Restricted `runAsNonRoot` (1.35+): any value in a user namespace.
pub fn run_as_non_root_1_35(pod: &PodView) -> Option<Violation> {
    if pod.in_user_namespace() {
        return None;
    }
    run_as_non_root_1_0(pod)
}

/// Restricted `runAsUser` (1.23): neither pod nor container sets `runAsUser: 0`.
pub fn run_as_user_1_23(pod: &PodView) -> Option<Violation> {
    let root = |v: Option<&Value>| v.and_then(Value::as_i64) == Some(0);
    let pod_bad = root(pod.security("/runAsUser"));
    let bad: Vec<String> = pod
        .containers()
        .filter(|c| root(security(c, "/runAsUser")))
        .map(name)
        .collect();
    (pod_bad || !bad.is_empty()).then(|| {
        Violation::new(
            "runAsUser=0",
            format!("{} must not set runAsUser=0", setters(pod_bad, &bad)),
        )
    })
}

/// Restricted `runAsUser` (1.35+): any value in a user namespace.
pub fn run_as_user_1_35(pod: &PodView) -> Option<Violation> {
    if pod.in_user_namespace() {
        return None;
    }
    run_as_user_1_23(pod)
}

#[cfg(test)]
mod tests {
    use super::super::pod::run_check;
    use super::*;
    use serde_json::json;

    fn run(check: fn(&PodView) -> Option<Violation>, spec: Value) -> Option<String> {
        run_check(check, json!({}), spec)
    }

    #[test]
    fn explicit_false_is_reported_before_missing_settings() {
        let spec = json!({"containers": [{"name": "a"}, {"name": "b", "securityContext": {"runAsNonRoot": false}}]});
        assert_eq!(
            run(run_as_non_root_1_35, spec).as_deref(),
            Some("runAsNonRoot != true (container \"b\" must not set securityContext.runAsNonRoot=false)")
        );
        let spec = json!({"containers": [{"name": "a"}]});
        assert_eq!(
            run(run_as_non_root_1_35, spec.clone()).as_deref(),
            Some("runAsNonRoot != true (pod or container \"a\" must set securityContext.runAsNonRoot=true)")
        );
        let mut user_namespace = spec;
        user_namespace["hostUsers"] = json!(false);
        assert_eq!(run(run_as_non_root_1_35, user_namespace.clone()), None);
        assert!(run(run_as_non_root_1_0, user_namespace).is_some());
    }

    #[test]
    fn root_uid_is_refused_on_pod_and_containers() {
        let spec = json!({"securityContext": {"runAsUser": 0}, "containers": [{"name": "a", "securityContext": {"runAsUser": 0}}, {"name": "b", "securityContext": {"runAsUser": 1000}}]});
        assert_eq!(
            run(run_as_user_1_35, spec).as_deref(),
            Some("runAsUser=0 (pod and container \"a\" must not set runAsUser=0)")
        );
    }
}
