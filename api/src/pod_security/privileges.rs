//! Checks on what a container may do to the host kernel: `privileged`,
//! `allowPrivilegeEscalation`, added/dropped capabilities, `procMount` and
//! Windows `hostProcess`. Each returns upstream's reason and detail text.

use serde_json::Value;

use super::pod::{
    containers_phrase, is_true, join_quote, list, name, security, setters, sorted_set, text,
    PodView,
};
use super::Violation;

/// Baseline `privileged` (1.0+): no container sets `privileged=true`.
pub fn privileged(pod: &PodView) -> Option<Violation> {
    let bad: Vec<String> = pod
        .containers()
        .filter(|c| is_true(security(c, "/privileged")))
        .map(name)
        .collect();
    (!bad.is_empty()).then(|| {
        Violation::new(
            "privileged",
            format!(
                "{} must not set securityContext.privileged=true",
                containers_phrase(&bad)
            ),
        )
    })
}

/// Restricted `allowPrivilegeEscalation` (1.8): every container sets it to false.
pub fn allow_privilege_escalation_1_8(pod: &PodView) -> Option<Violation> {
    let bad: Vec<String> = pod
        .containers()
        .filter(|c| {
            security(c, "/allowPrivilegeEscalation").and_then(Value::as_bool) != Some(false)
        })
        .map(name)
        .collect();
    (!bad.is_empty()).then(|| {
        Violation::new(
            "allowPrivilegeEscalation != false",
            format!(
                "{} must set securityContext.allowPrivilegeEscalation=false",
                containers_phrase(&bad)
            ),
        )
    })
}

/// Restricted `allowPrivilegeEscalation` (1.25+): Windows pods are exempt.
pub fn allow_privilege_escalation_1_25(pod: &PodView) -> Option<Violation> {
    if pod.is_windows() {
        return None;
    }
    allow_privilege_escalation_1_8(pod)
}

/// The capabilities a baseline container may add.
const BASELINE_CAPABILITIES: [&str; 13] = [
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// The capability names in a container's `securityContext.capabilities.<field>`.
fn capabilities(container: &Value, field: &str) -> Vec<String> {
    list(security(container, &format!("/capabilities/{field}")))
        .map(|c| text(Some(c)))
        .collect()
}

/// Baseline `capabilities_baseline` (1.0+): only the default set may be added.
pub fn capabilities_baseline(pod: &PodView) -> Option<Violation> {
    let mut bad = Vec::new();
    let mut added = Vec::new();
    for container in pod.containers() {
        let extra: Vec<String> = capabilities(container, "add")
            .into_iter()
            .filter(|c| !BASELINE_CAPABILITIES.contains(&c.as_str()))
            .collect();
        if !extra.is_empty() {
            bad.push(name(container));
            added.extend(extra);
        }
    }
    (!bad.is_empty()).then(|| {
        Violation::new(
            "non-default capabilities",
            format!(
                "{} must not include {} in securityContext.capabilities.add",
                containers_phrase(&bad),
                join_quote(&sorted_set(added))
            ),
        )
    })
}

/// Restricted `capabilities_restricted` (1.22): drop `ALL`, add at most `NET_BIND_SERVICE`.
pub fn capabilities_restricted_1_22(pod: &PodView) -> Option<Violation> {
    let mut missing_drop = Vec::new();
    let mut adding = Vec::new();
    let mut forbidden = Vec::new();
    for container in pod.containers() {
        if security(container, "/capabilities").is_none() {
            missing_drop.push(name(container));
            continue;
        }
        if !capabilities(container, "drop").iter().any(|c| c == "ALL") {
            missing_drop.push(name(container));
        }
        let extra: Vec<String> = capabilities(container, "add")
            .into_iter()
            .filter(|c| c != "NET_BIND_SERVICE")
            .collect();
        if !extra.is_empty() {
            adding.push(name(container));
            forbidden.extend(extra);
        }
    }
    let mut details = Vec::new();
    if !missing_drop.is_empty() {
        details.push(format!(
            "{} must set securityContext.capabilities.drop=[\"ALL\"]",
            containers_phrase(&missing_drop)
        ));
    }
    if !adding.is_empty() {
        details.push(format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_phrase(&adding),
            join_quote(&sorted_set(forbidden))
        ));
    }
    (!details.is_empty()).then(|| Violation::new("unrestricted capabilities", details.join("; ")))
}

/// Restricted `capabilities_restricted` (1.25+): Windows pods are exempt.
pub fn capabilities_restricted_1_25(pod: &PodView) -> Option<Violation> {
    if pod.is_windows() {
        return None;
    }
    capabilities_restricted_1_22(pod)
}

/// `procMount` (baseline 1.0, restricted 1.35+): only `Default` when set.
pub fn proc_mount_1_0(pod: &PodView) -> Option<Violation> {
    let mut bad = Vec::new();
    let mut types = Vec::new();
    for container in pod.containers() {
        if let Some(mount) = security(container, "/procMount") {
            let mount = text(Some(mount));
            if mount != "Default" {
                bad.push(name(container));
                types.push(mount);
            }
        }
    }
    (!bad.is_empty()).then(|| {
        Violation::new(
            "procMount",
            format!(
                "{} must not set securityContext.procMount to {}",
                containers_phrase(&bad),
                join_quote(&sorted_set(types))
            ),
        )
    })
}

/// Baseline `procMount` (1.35+): any value in a user namespace.
pub fn proc_mount_1_35_baseline(pod: &PodView) -> Option<Violation> {
    if pod.in_user_namespace() {
        return None;
    }
    proc_mount_1_0(pod)
}

/// Baseline `windowsHostProcess` (1.0+): neither pod nor container sets `hostProcess=true`.
pub fn windows_host_process(pod: &PodView) -> Option<Violation> {
    let bad: Vec<String> = pod
        .containers()
        .filter(|c| is_true(security(c, "/windowsOptions/hostProcess")))
        .map(name)
        .collect();
    let pod_level = is_true(pod.security("/windowsOptions/hostProcess"));
    (pod_level || !bad.is_empty()).then(|| {
        Violation::new(
            "hostProcess",
            format!(
                "{} must not set securityContext.windowsOptions.hostProcess=true",
                setters(pod_level, &bad)
            ),
        )
    })
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
    fn privileged_containers_are_named() {
        let spec = json!({"containers": [
            {"name": "a", "securityContext": {"privileged": true}},
            {"name": "b", "securityContext": {"privileged": false}},
            {"name": "c"}]});
        assert_eq!(
            run(privileged, spec).as_deref(),
            Some("privileged (container \"a\" must not set securityContext.privileged=true)")
        );
    }

    #[test]
    fn privilege_escalation_must_be_explicitly_false_except_on_windows() {
        let spec = json!({"containers": [
            {"name": "a", "securityContext": {"allowPrivilegeEscalation": false}},
            {"name": "b"}, {"name": "c", "securityContext": {"allowPrivilegeEscalation": true}}]});
        assert_eq!(
            run(allow_privilege_escalation_1_25, spec.clone()).as_deref(),
            Some("allowPrivilegeEscalation != false (containers \"b\", \"c\" must set securityContext.allowPrivilegeEscalation=false)")
        );
        let mut windows = spec;
        windows["os"] = json!({"name": "windows"});
        assert_eq!(run(allow_privilege_escalation_1_25, windows.clone()), None);
        assert!(run(allow_privilege_escalation_1_8, windows).is_some());
    }

    #[test]
    fn capabilities_outside_the_allowed_sets_are_listed_sorted() {
        let spec = json!({"containers": [
            {"name": "a", "securityContext": {"capabilities": {"add": ["SYS_ADMIN", "CHOWN", "NET_RAW"]}}},
            {"name": "b", "securityContext": {"capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}}]});
        assert_eq!(
            run(capabilities_baseline, spec.clone()).as_deref(),
            Some("non-default capabilities (container \"a\" must not include \"NET_RAW\", \"SYS_ADMIN\" in securityContext.capabilities.add)")
        );
        assert_eq!(
            run(capabilities_restricted_1_25, spec).as_deref(),
            Some("unrestricted capabilities (container \"a\" must set securityContext.capabilities.drop=[\"ALL\"]; container \"a\" must not include \"CHOWN\", \"NET_RAW\", \"SYS_ADMIN\" in securityContext.capabilities.add)")
        );
    }

    #[test]
    fn unmasked_proc_mount_is_allowed_in_a_user_namespace_by_baseline_1_35_only() {
        let spec = json!({"hostUsers": false, "containers": [
            {"name": "a", "securityContext": {"procMount": "Unmasked"}}]});
        assert_eq!(run(proc_mount_1_35_baseline, spec.clone()), None);
        assert_eq!(
            run(proc_mount_1_0, spec).as_deref(),
            Some("procMount (container \"a\" must not set securityContext.procMount to \"Unmasked\")")
        );
    }

    #[test]
    fn host_process_names_pod_and_containers() {
        let spec = json!({"securityContext": {"windowsOptions": {"hostProcess": true}},
            "containers": [{"name": "a", "securityContext": {"windowsOptions": {"hostProcess": true}}}]});
        assert_eq!(
            run(windows_host_process, spec).as_deref(),
            Some("hostProcess (pod and container \"a\" must not set securityContext.windowsOptions.hostProcess=true)")
        );
    }
}
