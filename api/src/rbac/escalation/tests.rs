use serde_json::json;

use super::*;

fn rule(verbs: &[&str], groups: &[&str], resources: &[&str]) -> Value {
    json!({ "verbs": verbs, "apiGroups": groups, "resources": resources })
}

#[test]
fn breakdown_is_atomic() {
    let named = json!({
        "verbs": ["get", "update"], "apiGroups": [""], "resources": ["configmaps"],
        "resourceNames": ["a", "b"],
    });
    assert_eq!(breakdown_rule(&named).len(), 4);
    assert_eq!(
        breakdown_rule(&named)[1],
        json!({ "verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["b"] })
    );
    let urls = json!({ "verbs": ["get", "post"], "nonResourceURLs": ["/a", "/b"] });
    assert_eq!(
        breakdown_rule(&urls),
        vec![
            json!({ "verbs": ["get"], "nonResourceURLs": ["/a"] }),
            json!({ "verbs": ["post"], "nonResourceURLs": ["/a"] }),
            json!({ "verbs": ["get"], "nonResourceURLs": ["/b"] }),
            json!({ "verbs": ["post"], "nonResourceURLs": ["/b"] }),
        ]
    );
    let both = rule(&["get", "list"], &["", "apps"], &["pods", "deployments"]);
    assert_eq!(breakdown_rule(&both).len(), 8);
}

#[test]
fn coverage_cases() {
    let pods_read = rule(&["get", "list", "watch"], &[""], &["pods"]);
    let star = rule(&["*"], &["*"], &["*"]);
    let scale = rule(&["get"], &["apps"], &["*/scale"]);
    let named = json!({
        "verbs": ["get"], "apiGroups": [""], "resources": ["secrets"], "resourceNames": ["a"],
    });
    let urls = json!({ "verbs": ["get"], "nonResourceURLs": ["/healthz/*"] });
    let cases = [
        (
            vec![star.clone()],
            vec![pods_read.clone(), named.clone()],
            true,
        ),
        (
            vec![pods_read.clone()],
            vec![rule(&["get"], &[""], &["pods"])],
            true,
        ),
        (
            vec![pods_read.clone()],
            vec![rule(&["delete"], &[""], &["pods"])],
            false,
        ),
        (
            vec![pods_read.clone()],
            vec![rule(&["get"], &[""], &["pods/log"])],
            false,
        ),
        (
            vec![scale.clone()],
            vec![rule(&["get"], &["apps"], &["deployments/scale"])],
            true,
        ),
        (
            vec![scale],
            vec![rule(&["get"], &["apps"], &["deployments"])],
            false,
        ),
        // A named grant does not cover an unnamed one, and vice versa is fine.
        (
            vec![named.clone()],
            vec![rule(&["get"], &[""], &["secrets"])],
            false,
        ),
        (
            vec![rule(&["get"], &[""], &["secrets"])],
            vec![named.clone()],
            true,
        ),
        (
            vec![urls.clone()],
            vec![json!({ "verbs": ["get"], "nonResourceURLs": ["/healthz/etcd"] })],
            true,
        ),
        (
            vec![urls.clone()],
            vec![json!({ "verbs": ["get"], "nonResourceURLs": ["/healthz"] })],
            false,
        ),
        // Resource rules never cover URLs, and the other way round.
        (
            vec![star],
            vec![json!({ "verbs": ["get"], "nonResourceURLs": ["/x"] })],
            false,
        ),
        (vec![urls], vec![pods_read], false),
        (vec![], vec![], true),
    ];
    for (owner, servant, want) in cases {
        let (got, missing) = covers(&owner, &servant);
        assert_eq!(got, want, "{owner:?} vs {servant:?}");
        assert_eq!(missing.is_empty(), want);
    }
}

#[test]
fn compacting_and_printing() {
    let missing = vec![
        rule(&["get"], &["apps"], &["deployments"]),
        json!({ "verbs": ["get"], "nonResourceURLs": ["/x"] }),
        rule(&["list"], &["apps"], &["deployments"]),
    ];
    let compacted = compact_rules(&missing);
    assert_eq!(
        compacted,
        vec![
            json!({ "verbs": ["get"], "nonResourceURLs": ["/x"] }),
            rule(&["get", "list"], &["apps"], &["deployments"]),
        ]
    );
    assert_eq!(
        compact_string(&compacted[1]),
        "{APIGroups:[\"apps\"], Resources:[\"deployments\"], Verbs:[\"get\" \"list\"]}"
    );
    assert_eq!(
        compact_string(&compacted[0]),
        "{NonResourceURLs:[\"/x\"], Verbs:[\"get\"]}"
    );
}

#[test]
fn escalation_is_refused_with_upstreams_message() {
    let cluster_roles = vec![json!({
        "metadata": { "name": "pod-reader" },
        "rules": [{ "verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"] }],
    })];
    let role_bindings = vec![json!({
        "metadata": { "name": "read", "namespace": "dev" },
        "subjects": [{ "kind": "User", "name": "bob" }],
        "roleRef": { "kind": "ClusterRole", "name": "pod-reader" },
    })];
    let policy = Policy {
        cluster_roles: &cluster_roles,
        role_bindings: &role_bindings,
        ..Default::default()
    };
    let groups = vec!["system:authenticated".to_owned()];
    let wanted = vec![rule(&["get"], &[""], &["pods"])];
    assert_eq!(
        confirm_no_escalation("bob", &groups, Some("dev"), &wanted, &policy),
        Ok(())
    );
    let err = confirm_no_escalation("bob", &groups, Some("prod"), &wanted, &policy).unwrap_err();
    assert_eq!(
        err,
        "user \"bob\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n\
         {APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"get\"]}"
    );
    let more = vec![rule(
        &["get", "delete", "create"],
        &[""],
        &["pods", "secrets"],
    )];
    let err = confirm_no_escalation("bob", &groups, Some("dev"), &more, &policy).unwrap_err();
    assert!(
        err.ends_with(
            "held:\n{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"delete\" \"create\"]}\n\
             {APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\" \"delete\" \"create\"]}"
        ),
        "{err}"
    );
    let masters = vec!["system:masters".to_owned()];
    assert_eq!(
        confirm_no_escalation("root", &masters, None, &more, &policy),
        Ok(())
    );
}
