//! Checks on the kernel security profiles a pod asks for: seccomp, AppArmor,
//! SELinux options and sysctls. Each returns upstream's reason and detail text.

use serde_json::Value;

use super::pod::{
    containers_phrase, join_quote, list, name, pluralize, security, setters, sorted_set, text,
    PodView,
};
use super::Violation;
use crate::kinds::apps::workload::go_quote;

const SECCOMP_POD_ANNOTATION: &str = "seccomp.security.alpha.kubernetes.io/pod";
const SECCOMP_CONTAINER_ANNOTATION: &str = "container.seccomp.security.alpha.kubernetes.io/";
const APPARMOR_CONTAINER_ANNOTATION: &str = "container.apparmor.security.beta.kubernetes.io/";

/// A seccomp or AppArmor profile type the policies allow.
fn allowed_profile_type(kind: &str) -> bool {
    kind == "RuntimeDefault" || kind == "Localhost"
}

/// Baseline `seccompProfile_baseline` (1.0–1.18): the alpha annotations name
/// the runtime default or a localhost profile.
pub fn seccomp_baseline_1_0(pod: &PodView) -> Option<Violation> {
    let allowed =
        |v: &str| v == "runtime/default" || v == "docker/default" || v.starts_with("localhost/");
    let mut keys = vec![SECCOMP_POD_ANNOTATION.to_owned()];
    keys.extend(
        pod.containers()
            .map(|c| format!("{SECCOMP_CONTAINER_ANNOTATION}{}", name(c))),
    );
    let forbidden: Vec<String> = keys
        .iter()
        .filter_map(|key| Some((key, pod.annotation(key)?)))
        .filter(|(_, value)| !allowed(value))
        .map(|(key, value)| format!("{key}={}", go_quote(value)))
        .collect();
    let forbidden = sorted_set(forbidden);
    (!forbidden.is_empty()).then(|| {
        Violation::new(
            "seccompProfile",
            format!(
                "forbidden {} {}",
                pluralize("annotation", "annotations", forbidden.len()),
                forbidden.join(", ")
            ),
        )
    })
}

/// The seccomp profiles a pod sets: whether the pod level set an allowed
/// one, the pod level set a bad one, the containers that set a bad one, the
/// containers that set none, and the bad types.
struct Seccomp {
    pod_allowed: bool,
    pod_bad: bool,
    bad: Vec<String>,
    unset: Vec<String>,
    types: Vec<String>,
}

fn seccomp(pod: &PodView) -> Seccomp {
    let mut found = Seccomp {
        pod_allowed: false,
        pod_bad: false,
        bad: Vec::new(),
        unset: Vec::new(),
        types: Vec::new(),
    };
    if let Some(profile) = pod.security("/seccompProfile") {
        let kind = text(profile.get("type"));
        if allowed_profile_type(&kind) {
            found.pod_allowed = true;
        } else {
            found.pod_bad = true;
            found.types.push(kind);
        }
    }
    for container in pod.containers() {
        match security(container, "/seccompProfile") {
            Some(profile) => {
                let kind = text(profile.get("type"));
                if !allowed_profile_type(&kind) {
                    found.bad.push(name(container));
                    found.types.push(kind);
                }
            }
            None => found.unset.push(name(container)),
        }
    }
    found.types = sorted_set(std::mem::take(&mut found.types));
    found
}

/// The violation for profiles explicitly set to a forbidden type.
fn seccomp_set_badly(found: &Seccomp) -> Option<Violation> {
    (found.pod_bad || !found.bad.is_empty()).then(|| {
        Violation::new(
            "seccompProfile",
            format!(
                "{} must not set securityContext.seccompProfile.type to {}",
                setters(found.pod_bad, &found.bad),
                join_quote(&found.types)
            ),
        )
    })
}

/// Baseline `seccompProfile_baseline` (1.19+): a profile, where set, is
/// `RuntimeDefault` or `Localhost`.
pub fn seccomp_baseline_1_19(pod: &PodView) -> Option<Violation> {
    seccomp_set_badly(&seccomp(pod))
}

/// Restricted `seccompProfile_restricted` (1.19): every container has an
/// allowed profile, its own or the pod's.
pub fn seccomp_restricted_1_19(pod: &PodView) -> Option<Violation> {
    let found = seccomp(pod);
    if let Some(violation) = seccomp_set_badly(&found) {
        return Some(violation);
    }
    (!found.pod_allowed && !found.unset.is_empty()).then(|| {
        Violation::new(
            "seccompProfile",
            format!(
                "pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
                containers_phrase(&found.unset)
            ),
        )
    })
}

/// Restricted `seccompProfile_restricted` (1.25+): Windows pods are exempt.
pub fn seccomp_restricted_1_25(pod: &PodView) -> Option<Violation> {
    if pod.is_windows() {
        return None;
    }
    seccomp_restricted_1_19(pod)
}

/// Baseline `appArmorProfile` (1.0+): profiles (fields or beta annotations)
/// are the runtime default or localhost ones.
pub fn app_armor(pod: &PodView) -> Option<Violation> {
    let mut types = Vec::new();
    let mut pod_bad = false;
    if let Some(profile) = pod.security("/appArmorProfile") {
        let kind = text(profile.get("type"));
        if !allowed_profile_type(&kind) {
            pod_bad = true;
            types.push(kind);
        }
    }
    let mut bad = Vec::new();
    for container in pod.containers() {
        if let Some(profile) = security(container, "/appArmorProfile") {
            let kind = text(profile.get("type"));
            if !allowed_profile_type(&kind) {
                bad.push(name(container));
                types.push(kind);
            }
        }
    }
    let mut values = sorted_set(types);
    let mut setters_list = Vec::new();
    let who = setters(pod_bad, &bad);
    if !who.is_empty() {
        setters_list.push(who);
    }
    let allowed = |v: &str| v.is_empty() || v == "runtime/default" || v.starts_with("localhost/");
    let mut annotations: Vec<String> = pod
        .annotations()
        .filter(|(k, v)| k.starts_with(APPARMOR_CONTAINER_ANNOTATION) && !allowed(v))
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect();
    if !annotations.is_empty() {
        annotations.sort();
        setters_list.push(pluralize("annotation", "annotations", annotations.len()).to_owned());
        values.extend(annotations);
    }
    (!setters_list.is_empty()).then(|| {
        Violation::new(
            pluralize(
                "forbidden AppArmor profile",
                "forbidden AppArmor profiles",
                values.len(),
            ),
            format!(
                "{} must not set AppArmor profile type to {}",
                setters_list.join(" and "),
                join_quote(&values)
            ),
        )
    })
}

/// SELinux types allowed before 1.31.
const SELINUX_TYPES_1_0: [&str; 4] = ["", "container_t", "container_init_t", "container_kvm_t"];
/// SELinux types allowed from 1.31.
const SELINUX_TYPES_1_31: [&str; 5] = [
    "",
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
];

/// Baseline `seLinuxOptions` (1.0): the allowed types, no user, no role.
pub fn se_linux_1_0(pod: &PodView) -> Option<Violation> {
    se_linux(pod, &SELINUX_TYPES_1_0)
}

/// Baseline `seLinuxOptions` (1.31+): also `container_engine_t`.
pub fn se_linux_1_31(pod: &PodView) -> Option<Violation> {
    se_linux(pod, &SELINUX_TYPES_1_31)
}

fn se_linux(pod: &PodView, allowed: &[&str]) -> Option<Violation> {
    let mut types = Vec::new();
    let (mut user, mut role) = (false, false);
    let mut valid = |options: &Value| {
        let kind = text(options.get("type"));
        let mut ok = true;
        if !allowed.contains(&kind.as_str()) {
            ok = false;
            types.push(kind);
        }
        if !text(options.get("user")).is_empty() {
            ok = false;
            user = true;
        }
        if !text(options.get("role")).is_empty() {
            ok = false;
            role = true;
        }
        ok
    };
    let pod_bad = pod.security("/seLinuxOptions").is_some_and(|o| !valid(o));
    let bad: Vec<String> = pod
        .containers()
        .filter(|c| security(c, "/seLinuxOptions").is_some_and(|o| !valid(o)))
        .map(name)
        .collect();
    if !pod_bad && bad.is_empty() {
        return None;
    }
    let types = sorted_set(types);
    let mut data = Vec::new();
    if !types.is_empty() {
        data.push(format!(
            "{} {}",
            pluralize("type", "types", types.len()),
            join_quote(&types)
        ));
    }
    if user {
        data.push("user may not be set".to_owned());
    }
    if role {
        data.push("role may not be set".to_owned());
    }
    Some(Violation::new(
        "seLinuxOptions",
        format!(
            "{} set forbidden securityContext.seLinuxOptions: {}",
            setters(pod_bad, &bad),
            data.join("; ")
        ),
    ))
}

/// Safe sysctls of 1.0.
const SYSCTLS_1_0: [&str; 5] = [
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
];
/// Added as safe in 1.27.
const SYSCTLS_1_27: [&str; 1] = ["net.ipv4.ip_local_reserved_ports"];
/// Added as safe in 1.29.
const SYSCTLS_1_29: [&str; 4] = [
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];
/// Added as safe in 1.32.
const SYSCTLS_1_32: [&str; 2] = ["net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"];
/// Added as safe in 1.37.
const SYSCTLS_1_37: [&str; 2] = [
    "net.ipv4.tcp_slow_start_after_idle",
    "net.ipv4.tcp_notsent_lowat",
];

/// Baseline `sysctls` (1.0): only the safe set.
pub fn sysctls_1_0(pod: &PodView) -> Option<Violation> {
    sysctls(pod, &[&SYSCTLS_1_0])
}

/// Baseline `sysctls` (1.27).
pub fn sysctls_1_27(pod: &PodView) -> Option<Violation> {
    sysctls(pod, &[&SYSCTLS_1_0, &SYSCTLS_1_27])
}

/// Baseline `sysctls` (1.29).
pub fn sysctls_1_29(pod: &PodView) -> Option<Violation> {
    sysctls(pod, &[&SYSCTLS_1_0, &SYSCTLS_1_27, &SYSCTLS_1_29])
}

/// Baseline `sysctls` (1.32).
pub fn sysctls_1_32(pod: &PodView) -> Option<Violation> {
    sysctls(
        pod,
        &[&SYSCTLS_1_0, &SYSCTLS_1_27, &SYSCTLS_1_29, &SYSCTLS_1_32],
    )
}

/// Baseline `sysctls` (1.37+).
pub fn sysctls_1_37(pod: &PodView) -> Option<Violation> {
    sysctls(
        pod,
        &[
            &SYSCTLS_1_0,
            &SYSCTLS_1_27,
            &SYSCTLS_1_29,
            &SYSCTLS_1_32,
            &SYSCTLS_1_37,
        ],
    )
}

fn sysctls(pod: &PodView, allowed: &[&[&str]]) -> Option<Violation> {
    let forbidden: Vec<String> = list(pod.security("/sysctls"))
        .map(|s| text(s.get("name")))
        .filter(|n| !allowed.iter().any(|set| set.contains(&n.as_str())))
        .collect();
    (!forbidden.is_empty()).then(|| Violation::new("forbidden sysctls", forbidden.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::super::pod::run_check;
    use super::*;
    use serde_json::json;

    fn run(check: fn(&PodView) -> Option<Violation>, meta: Value, spec: Value) -> Option<String> {
        run_check(check, meta, spec)
    }

    #[test]
    fn restricted_seccomp_needs_a_profile_for_every_container() {
        let spec = json!({"containers": [{"name": "a"}, {"name": "b", "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}}]});
        assert_eq!(
            run(seccomp_restricted_1_25, json!({}), spec).as_deref(),
            Some("seccompProfile (pod or container \"a\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")")
        );
        let spec = json!({"securityContext": {"seccompProfile": {"type": "Unconfined"}}, "containers": [{"name": "a"}]});
        assert_eq!(
            run(seccomp_baseline_1_19, json!({}), spec).as_deref(),
            Some("seccompProfile (pod must not set securityContext.seccompProfile.type to \"Unconfined\")")
        );
    }

    #[test]
    fn old_seccomp_annotations_are_checked_before_1_19() {
        let meta =
            json!({"annotations": {"seccomp.security.alpha.kubernetes.io/pod": "unconfined"}});
        assert_eq!(
            run(seccomp_baseline_1_0, meta, json!({"containers": []})).as_deref(),
            Some("seccompProfile (forbidden annotation seccomp.security.alpha.kubernetes.io/pod=\"unconfined\")")
        );
    }

    #[test]
    fn app_armor_profiles_and_annotations_are_both_reported() {
        let meta = json!({"annotations": {"container.apparmor.security.beta.kubernetes.io/a": "unconfined"}});
        let spec = json!({"containers": [{"name": "a", "securityContext": {"appArmorProfile": {"type": "Unconfined"}}}]});
        assert_eq!(
            run(app_armor, meta, spec).as_deref(),
            Some("forbidden AppArmor profiles (container \"a\" and annotation must not set AppArmor profile type to \"Unconfined\", \"container.apparmor.security.beta.kubernetes.io/a=\"unconfined\"\")")
        );
    }

    #[test]
    fn se_linux_options_list_types_user_and_role() {
        let spec = json!({"securityContext": {"seLinuxOptions": {"user": "u"}},
            "containers": [{"name": "a", "securityContext": {"seLinuxOptions": {"type": "spc_t", "role": "r"}}}]});
        assert_eq!(
            run(se_linux_1_31, json!({}), spec).as_deref(),
            Some("seLinuxOptions (pod and container \"a\" set forbidden securityContext.seLinuxOptions: type \"spc_t\"; user may not be set; role may not be set)")
        );
        let engine = json!({"containers": [{"name": "a", "securityContext": {"seLinuxOptions": {"type": "container_engine_t"}}}]});
        assert!(run(se_linux_1_0, json!({}), engine.clone()).is_some());
        assert_eq!(run(se_linux_1_31, json!({}), engine), None);
    }

    #[test]
    fn sysctls_grow_with_the_version() {
        let spec = json!({"securityContext": {"sysctls": [{"name": "net.ipv4.tcp_rmem", "value": "1"}, {"name": "kernel.msgmax", "value": "1"}]}});
        assert_eq!(
            run(sysctls_1_29, json!({}), spec.clone()).as_deref(),
            Some("forbidden sysctls (net.ipv4.tcp_rmem, kernel.msgmax)")
        );
        assert_eq!(
            run(sysctls_1_32, json!({}), spec).as_deref(),
            Some("forbidden sysctls (kernel.msgmax)")
        );
    }
}
