//! Tests of the policy labels, the message assembly and the namespace
//! warnings; each check family tests its own checks beside it.

use serde_json::json;

use super::*;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn lv(level: Level, version: Version) -> LevelVersion {
    LevelVersion { level, version }
}

#[test]
fn labels_choose_each_mode_and_warn_follows_a_stricter_enforce() {
    let (policy, causes) = policy_from_labels(
        &labels(&[
            (ENFORCE_LABEL, "baseline"),
            (ENFORCE_VERSION_LABEL, "v1.30"),
        ]),
        Policy::default(),
    );
    assert!(causes.is_empty());
    assert_eq!(policy.enforce, lv(Level::Baseline, Version::Minor(30)));
    assert_eq!(policy.warn, lv(Level::Baseline, Version::Minor(30)));
    assert_eq!(policy.audit, LevelVersion::PRIVILEGED);
    let (policy, _) = policy_from_labels(
        &labels(&[(ENFORCE_LABEL, "restricted"), (WARN_LABEL, "baseline")]),
        Policy::default(),
    );
    assert_eq!(policy.warn, lv(Level::Baseline, Version::Latest));
    assert!(Policy::default().fully_privileged());
}

#[test]
fn bad_labels_fail_closed_for_enforce_and_open_for_audit_and_warn() {
    let (policy, causes) = policy_from_labels(
        &labels(&[
            (ENFORCE_LABEL, "strict"),
            (WARN_LABEL, "nope"),
            (AUDIT_VERSION_LABEL, "1.30"),
        ]),
        Policy::default(),
    );
    assert_eq!(policy.enforce.level, Level::Restricted);
    assert_eq!(policy.warn.level, Level::Privileged);
    let messages: Vec<String> = causes
        .iter()
        .map(|c| format!("{}: {}", c.field, c.message))
        .collect();
    assert_eq!(
        messages,
        [
            "metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: \"strict\": must be one of privileged, baseline, restricted",
            "metadata.labels[pod-security.kubernetes.io/audit-version]: Invalid value: \"1.30\": must be \"latest\" or \"v1.x\"",
            "metadata.labels[pod-security.kubernetes.io/warn]: Invalid value: \"nope\": must be one of privileged, baseline, restricted",
        ]
    );
}

#[test]
fn versions_parse_like_upstream() {
    assert_eq!(Version::parse("latest"), Ok(Version::Latest));
    assert_eq!(Version::parse("v1.0"), Ok(Version::Minor(0)));
    assert_eq!(Version::parse("v1.33"), Ok(Version::Minor(33)));
    for bad in ["v1.05", "v2.1", "v1.", "1.3", "v1.x"] {
        assert_eq!(Version::parse(bad), Err(Version::Latest), "{bad}");
    }
}

fn privileged_pod() -> Value {
    json!({"metadata": {"name": "p"}, "spec": {"containers": [
        {"name": "c", "image": "busybox", "securityContext": {"privileged": true}}]}})
}

#[test]
fn restricted_refuses_a_privileged_pod_with_every_reason_in_order() {
    let policy = policy_from_labels(&labels(&[(ENFORCE_LABEL, "restricted")]), Policy::default()).0;
    let pod = privileged_pod();
    let decision = decide(&policy, &view(&pod), true);
    assert_eq!(
        decision.forbidden.as_deref(),
        Some("violates PodSecurity \"restricted:latest\": privileged (container \"c\" must not set securityContext.privileged=true), allowPrivilegeEscalation != false (container \"c\" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container \"c\" must set securityContext.capabilities.drop=[\"ALL\"]), runAsNonRoot != true (pod or container \"c\" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container \"c\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")")
    );
    assert!(decision.warnings.is_empty(), "no warnings once refused");
}

#[test]
fn templates_are_only_warned_about_and_audit_is_recorded() {
    let policy = Policy {
        enforce: lv(Level::Restricted, Version::Latest),
        audit: lv(Level::Baseline, Version::Minor(30)),
        warn: lv(Level::Baseline, Version::Latest),
    };
    let pod = privileged_pod();
    let decision = decide(&policy, &view(&pod), false);
    assert_eq!(decision.forbidden, None);
    assert_eq!(
        decision.warnings,
        ["would violate PodSecurity \"baseline:latest\": privileged (container \"c\" must not set securityContext.privileged=true)"]
    );
    assert_eq!(
        decision.audit.as_deref(),
        Some("would violate PodSecurity \"baseline:v1.30\": privileged (container \"c\" must not set securityContext.privileged=true)")
    );
}

#[test]
fn workload_templates_are_found_per_resource() {
    let deployment = json!({"spec": {"template": {"spec": {"containers": []}}}});
    assert!(pod_template("apps", "deployments", &deployment).is_some());
    let cronjob = json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {}}}}}});
    assert!(pod_template("batch", "cronjobs", &cronjob).is_some());
    assert!(pod_template("", "configmaps", &deployment).is_none());
    assert!(pod_template("apps", "deployments", &json!({})).is_none());
}

#[test]
fn only_image_and_container_changes_are_significant_updates() {
    let old = privileged_pod();
    let mut labelled = old.clone();
    labelled["metadata"]["labels"] = json!({"a": "b"});
    assert!(!significant_pod_update(&old, &labelled));
    let mut image = old.clone();
    image["spec"]["containers"][0]["image"] = json!("nginx");
    assert!(significant_pod_update(&old, &image));
    let mut ephemeral = old.clone();
    ephemeral["spec"]["ephemeralContainers"] = json!([{"name": "debug", "image": "busybox"}]);
    assert!(significant_pod_update(&old, &ephemeral));
}

#[test]
fn enforce_changes_check_pods_only_when_stricter_or_another_version() {
    let at = |level| Policy {
        enforce: lv(level, Version::Latest),
        ..Policy::default()
    };
    assert!(enforce_tightened(
        &at(Level::Privileged),
        &at(Level::Restricted)
    ));
    assert!(!enforce_tightened(
        &at(Level::Restricted),
        &at(Level::Baseline)
    ));
    assert!(!enforce_tightened(
        &at(Level::Baseline),
        &at(Level::Privileged)
    ));
    let mut versioned = at(Level::Baseline);
    versioned.enforce.version = Version::Minor(30);
    assert!(enforce_tightened(&at(Level::Restricted), &versioned));
}

#[test]
fn namespace_warnings_group_pods_by_reasons() {
    let pod = |name: &str, owner: Option<&str>| {
        let mut p = privileged_pod();
        p["metadata"]["name"] = json!(name);
        if let Some(uid) = owner {
            p["metadata"]["ownerReferences"] = json!([{"uid": uid, "controller": true}]);
        }
        p
    };
    let mut host = pod("h", None);
    host["spec"] = json!({"hostNetwork": true, "containers": [{"name": "c"}]});
    let pods = vec![
        pod("web-b", Some("rs")),
        pod("web-a", Some("rs")),
        pod("z", None),
        host,
        json!({"metadata": {"name": "ok"}, "spec": {"containers": [{"name": "c"}]}}),
    ];
    let warnings = namespace_pod_warnings("team", lv(Level::Baseline, Version::Latest), &pods);
    assert_eq!(
        warnings,
        [
            "existing pods in namespace \"team\" violate the new PodSecurity enforce level \"baseline:latest\"",
            "h: host namespaces",
            "web-a (and 2 other pods): privileged",
        ]
    );
    assert!(
        namespace_pod_warnings("team", lv(Level::Baseline, Version::Latest), &pods[4..]).is_empty()
    );
}

/// Runs upstream's fixtures (`test/testdata/<level>/<version>/{pass,fail}`)
/// from the read-only mirror through `git show`: pass files must pass their
/// level, fail files must fail it. `cargo test -p berth-api -- --ignored pod_security`.
#[test]
#[ignore = "needs the upstream mirror at /work/.mirror/kubernetes+pod-security-admission/repo"]
fn upstream_fixtures_pass_and_fail_as_upstream() {
    let mirror = std::env::var("PSA_MIRROR")
        .unwrap_or_else(|_| "/work/.mirror/kubernetes+pod-security-admission/repo".into());
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(&mirror)
            .args(args)
            .output()
            .expect("git runs");
        assert!(out.status.success(), "git {args:?}");
        String::from_utf8(out.stdout).expect("utf-8")
    };
    let only = std::env::var("PSA_VERSIONS").ok();
    let (mut passed, mut failed, mut wrong) = (0, 0, Vec::new());
    for path in git(&["ls-tree", "-r", "--name-only", "HEAD", "test/testdata"]).lines() {
        let parts: Vec<&str> = path.split('/').collect();
        let [_, _, level, version, expect, _file] = parts[..] else {
            continue;
        };
        if only
            .as_deref()
            .is_some_and(|o| !o.split(',').any(|v| v == version))
        {
            continue;
        }
        let (Ok(level), Ok(version)) = (Level::parse(level), Version::parse(version)) else {
            continue;
        };
        let text = git(&["show", &format!("HEAD:{path}")]);
        let pod: Value = serde_yaml::from_str(&text).expect("fixture parses");
        let violations = evaluate(lv(level, version), &view(&pod));
        match (expect, violations.is_empty()) {
            ("pass", true) => passed += 1,
            ("fail", false) => failed += 1,
            _ => wrong.push(format!("{path}: {}", forbidden_detail(&violations))),
        }
    }
    eprintln!(
        "upstream fixtures: {passed} pass as expected, {failed} fail as expected, {} wrong",
        wrong.len()
    );
    assert!(wrong.is_empty(), "{wrong:#?}");
    assert!(passed + failed > 0);
}

#[test]
fn exempt_namespaces_are_told_their_labels_are_ignored() {
    let given = labels(&[(ENFORCE_LABEL, "restricted")]);
    let (policy, _) = policy_from_labels(&given, Policy::default());
    assert_eq!(
        exempt_namespace_warning("kube-system", &policy, &given, &Policy::default()).as_deref(),
        Some("namespace \"kube-system\" is exempt from Pod Security, and the policy (enforce=restricted:latest) will be ignored")
    );
    assert_eq!(
        exempt_namespace_warning(
            "kube-system",
            &Policy::default(),
            &BTreeMap::new(),
            &Policy::default()
        ),
        None
    );
}
