use serde_json::json;

use super::*;
use crate::rbac::bootstrap;

/// The causes as `field: message`, as `kubectl` prints them.
fn shown(causes: Vec<FieldCause>) -> Vec<String> {
    causes
        .into_iter()
        .map(|c| format!("{}: {}", c.field, c.message))
        .collect()
}

fn with_rules(rules: Value) -> Value {
    json!({ "metadata": { "name": "r", "namespace": "dev" }, "rules": rules })
}

#[test]
fn bootstrap_objects_are_valid() {
    for role in bootstrap::cluster_roles() {
        assert_eq!(
            shown(validate_cluster_role(&role)),
            Vec::<String>::new(),
            "{role}"
        );
        assert!(name_problems(role["metadata"]["name"].as_str().unwrap()).is_empty());
    }
    for role in bootstrap::roles() {
        assert_eq!(shown(validate_role(&role)), Vec::<String>::new(), "{role}");
    }
    for binding in bootstrap::cluster_role_bindings() {
        assert_eq!(
            shown(validate_cluster_role_binding(&binding)),
            Vec::<String>::new(),
            "{binding}"
        );
    }
    for binding in bootstrap::role_bindings() {
        assert_eq!(
            shown(validate_role_binding(&binding)),
            Vec::<String>::new(),
            "{binding}"
        );
    }
}

#[test]
fn names_are_path_segments() {
    let cases = [
        ("system:node", vec![]),
        ("system::leader-locking-kube-scheduler", vec![]),
        ("Mixed_Case name", vec![]),
        ("..", vec!["may not be '..'"]),
        ("a/b", vec!["may not contain '/'"]),
        ("a%b", vec!["may not contain '%'"]),
    ];
    for (name, want) in cases {
        assert_eq!(name_problems(name), want, "{name}");
    }
}

#[test]
fn policy_rules() {
    let cases = [
        (
            json!([{ "apiGroups": [""], "resources": ["pods"] }]),
            true,
            vec!["rules[0].verbs: Required value: verbs must contain at least one value"],
        ),
        (
            json!([{ "verbs": ["get"] }]),
            false,
            vec![
                "rules[0].apiGroups: Required value: resource rules must supply at least one api group",
                "rules[0].resources: Required value: resource rules must supply at least one resource",
            ],
        ),
        (
            json!([{ "verbs": ["get"], "nonResourceURLs": ["/healthz"] }]),
            true,
            vec![
                "rules[0].nonResourceURLs: Invalid value: []string{\"/healthz\"}: namespaced rules cannot apply to non-resource URLs",
            ],
        ),
        (json!([{ "verbs": ["get"], "nonResourceURLs": ["/healthz"] }]), false, vec![]),
        (
            json!([
                { "verbs": ["get"], "apiGroups": [""], "resources": ["pods"] },
                { "verbs": ["get"], "resources": ["pods"], "nonResourceURLs": ["/a", "/b"] },
            ]),
            false,
            vec![
                "rules[1].nonResourceURLs: Invalid value: []string{\"/a\", \"/b\"}: rules cannot apply to both regular resources and non-resource URLs",
            ],
        ),
        (json!([{ "verbs": ["*"], "apiGroups": ["*"], "resources": ["*"] }]), true, vec![]),
        (json!(null), true, vec![]),
    ];
    for (rules, namespaced, want) in cases {
        let role = with_rules(rules.clone());
        let got = if namespaced {
            validate_role(&role)
        } else {
            validate_cluster_role(&role)
        };
        assert_eq!(shown(got), want, "{rules}");
    }
}

#[test]
fn aggregation_rules() {
    let cases = [
        (json!({ "clusterRoleSelectors": [{ "matchLabels": { "a": "b" } }] }), vec![]),
        (
            json!({ "clusterRoleSelectors": [] }),
            vec!["aggregationRule.clusterRoleSelectors: Required value: at least one clusterRoleSelector required if aggregationRule is non-nil"],
        ),
        (
            json!({ "clusterRoleSelectors": [{ "matchExpressions": [
                { "key": "a", "operator": "In" },
                { "key": "b", "operator": "Exists", "values": ["x"] },
                { "key": "c", "operator": "Near" },
            ] }] }),
            vec![
                "aggregationRule.clusterRoleSelectors[0].matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
                "aggregationRule.clusterRoleSelectors[0].matchExpressions[1].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                "aggregationRule.clusterRoleSelectors[0].matchExpressions[2].operator: Invalid value: \"Near\": not a valid selector operator",
            ],
        ),
    ];
    for (aggregation, want) in cases {
        let role = json!({ "metadata": { "name": "agg" }, "aggregationRule": aggregation });
        assert_eq!(shown(validate_cluster_role(&role)), want, "{aggregation}");
    }
}

fn binding(role_ref: Value, subjects: Value) -> Value {
    json!({ "metadata": { "name": "b", "namespace": "dev" }, "roleRef": role_ref, "subjects": subjects })
}

#[test]
fn bindings() {
    let view =
        json!({ "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view" });
    let role = json!({ "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r" });
    let sa = json!([{ "kind": "ServiceAccount", "name": "ci" }]);
    let cases: Vec<(Value, bool, Vec<&str>)> = vec![
        (binding(view.clone(), sa.clone()), true, vec![]),
        (
            binding(view.clone(), sa.clone()),
            false,
            vec!["subjects[0].namespace: Required value"],
        ),
        (
            binding(role.clone(), json!([])),
            false,
            vec!["roleRef.kind: Unsupported value: \"Role\": supported values: \"ClusterRole\""],
        ),
        (binding(role, json!(null)), true, vec![]),
        (
            json!({ "metadata": { "name": "b" } }),
            true,
            vec![
                "roleRef.apiGroup: Unsupported value: \"\": supported values: \"rbac.authorization.k8s.io\"",
                "roleRef.kind: Unsupported value: \"\": supported values: \"Role\", \"ClusterRole\"",
                "roleRef.name: Required value",
            ],
        ),
        (
            binding(json!({ "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "a/b" }), json!([])),
            true,
            vec!["roleRef.name: Invalid value: \"a/b\": may not contain '/'"],
        ),
        (
            binding(
                view.clone(),
                json!([
                    { "kind": "User", "name": "alice" },
                    { "kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "devs" },
                    { "kind": "User", "apiGroup": "example.com", "name": "bob" },
                    { "kind": "ServiceAccount", "apiGroup": "rbac.authorization.k8s.io", "name": "Bad_Name", "namespace": "dev" },
                    { "kind": "Robot", "name": "r2" },
                    { "kind": "Group" },
                ]),
            ),
            false,
            vec![
                "subjects[2].apiGroup: Unsupported value: \"example.com\": supported values: \"rbac.authorization.k8s.io\"",
                "subjects[3].name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                "subjects[3].apiGroup: Unsupported value: \"rbac.authorization.k8s.io\": supported values: \"\"",
                "subjects[4].kind: Unsupported value: \"Robot\": supported values: \"ServiceAccount\", \"User\", \"Group\"",
                "subjects[5].name: Required value",
            ],
        ),
    ];
    for (object, namespaced, want) in cases {
        let got = if namespaced {
            validate_role_binding(&object)
        } else {
            validate_cluster_role_binding(&object)
        };
        assert_eq!(shown(got), want, "{object}");
    }
}

#[test]
fn role_ref_is_immutable() {
    let view =
        json!({ "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view" });
    let edit =
        json!({ "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit" });
    let old = binding(view.clone(), json!([{ "kind": "User", "name": "alice" }]));
    let same = binding(view, json!([{ "kind": "User", "name": "bob" }]));
    let changed = binding(edit, json!([]));
    assert!(validate_role_binding_update(&same, &old).is_empty());
    assert!(validate_cluster_role_binding_update(&same, &old).is_empty());
    let want = vec![
        "roleRef: Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"ClusterRole\", Name:\"edit\"}: cannot change roleRef",
    ];
    assert_eq!(shown(validate_role_binding_update(&changed, &old)), want);
    assert_eq!(
        shown(validate_cluster_role_binding_update(&changed, &old)),
        want
    );
    let role = with_rules(json!([{ "verbs": [] , "apiGroups": [""], "resources": ["pods"] }]));
    assert_eq!(validate_role_update(&role, &role).len(), 1);
    assert_eq!(validate_cluster_role_update(&role, &role).len(), 1);
}

#[test]
fn subjects_default_their_group() {
    let mut object = binding(
        json!({}),
        json!([
            { "kind": "User", "name": "alice" },
            { "kind": "Group", "apiGroup": "", "name": "devs" },
            { "kind": "ServiceAccount", "name": "ci" },
        ]),
    );
    default_subjects(&mut object);
    assert_eq!(object["subjects"][0]["apiGroup"], GROUP);
    assert_eq!(object["subjects"][1]["apiGroup"], GROUP);
    assert_eq!(object["subjects"][2].get("apiGroup"), None);
}
