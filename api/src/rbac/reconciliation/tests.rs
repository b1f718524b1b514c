use serde_json::json;

use super::*;
use crate::rbac::{aggregation::aggregate, bootstrap};

#[test]
fn missing_defaults_are_created_and_current_ones_left() {
    let roles = bootstrap::cluster_roles();
    for role in roles.iter().chain(&bootstrap::roles()) {
        assert_eq!(reconcile_role(None, role), Reconciled::Create(role.clone()));
        assert_eq!(
            reconcile_role(Some(role), role),
            Reconciled::Unchanged,
            "{role}"
        );
    }
    for binding in bootstrap::cluster_role_bindings()
        .iter()
        .chain(&bootstrap::role_bindings())
    {
        assert_eq!(
            reconcile_binding(Some(binding), binding),
            Reconciled::Unchanged
        );
    }
    // An aggregated role filled in by the controller is current too.
    let admin = roles
        .iter()
        .find(|r| r["metadata"]["name"] == "view")
        .unwrap();
    let mut stored = admin.clone();
    stored["rules"] = Value::Array(aggregate(admin, &roles).unwrap());
    assert_eq!(reconcile_role(Some(&stored), admin), Reconciled::Unchanged);
}

fn role(labels: Value, annotations: Value, rules: Value) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": { "name": "r", "labels": labels, "annotations": annotations },
        "rules": rules,
    })
}

#[test]
fn stored_roles_gain_what_they_lack_and_keep_the_rest() {
    let expected = role(
        json!({ "kubernetes.io/bootstrapping": "rbac-defaults" }),
        json!({ AUTOUPDATE: "true" }),
        json!([{ "verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"] }]),
    );
    let stored = role(
        json!({ "team": "a" }),
        json!({ AUTOUPDATE: "true" }),
        json!([
            { "verbs": ["get"], "apiGroups": [""], "resources": ["pods"] },
            { "verbs": ["delete"], "apiGroups": [""], "resources": ["secrets"] },
        ]),
    );
    let Reconciled::Update(updated) = reconcile_role(Some(&stored), &expected) else {
        panic!("expected an update");
    };
    assert_eq!(
        updated["metadata"]["labels"],
        json!({ "team": "a", "kubernetes.io/bootstrapping": "rbac-defaults" })
    );
    assert_eq!(
        updated["rules"],
        json!([
            { "verbs": ["get"], "apiGroups": [""], "resources": ["pods"] },
            { "verbs": ["delete"], "apiGroups": [""], "resources": ["secrets"] },
            { "verbs": ["list"], "apiGroups": [""], "resources": ["pods"] },
        ])
    );
    // A stored label value wins over the default's.
    let relabelled = role(
        json!({ "kubernetes.io/bootstrapping": "custom" }),
        json!({ AUTOUPDATE: "true" }),
        expected["rules"].clone(),
    );
    assert_eq!(
        reconcile_role(Some(&relabelled), &expected),
        Reconciled::Unchanged
    );
    let protected = role(json!({}), json!({ AUTOUPDATE: "false" }), json!([]));
    assert_eq!(
        reconcile_role(Some(&protected), &expected),
        Reconciled::Protected
    );
}

#[test]
fn aggregation_selectors_are_added_or_dropped() {
    let selector = json!({ "matchLabels": { "a": "true" } });
    let other = json!({ "matchLabels": { "b": "true" } });
    let mut expected = role(json!({}), json!({}), json!([]));
    expected["aggregationRule"] = json!({ "clusterRoleSelectors": [selector] });
    let mut stored = expected.clone();
    stored["aggregationRule"] = json!({ "clusterRoleSelectors": [other] });
    let Reconciled::Update(updated) = reconcile_role(Some(&stored), &expected) else {
        panic!("expected an update");
    };
    assert_eq!(
        updated["aggregationRule"]["clusterRoleSelectors"],
        json!([other, selector])
    );
    let plain = role(json!({}), json!({}), json!([]));
    let Reconciled::Update(updated) = reconcile_role(Some(&stored), &plain) else {
        panic!("expected an update");
    };
    assert_eq!(updated.get("aggregationRule"), None);
}

#[test]
fn bindings_gain_subjects_and_are_recreated_for_a_new_role() {
    let bindings = bootstrap::cluster_role_bindings();
    let expected = bindings
        .iter()
        .find(|b| b["metadata"]["name"] == "system:public-info-viewer")
        .unwrap();
    let mut stored = expected.clone();
    stored["subjects"] = json!([
        { "kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "system:authenticated" },
        { "kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "extra" },
    ]);
    let Reconciled::Update(updated) = reconcile_binding(Some(&stored), expected) else {
        panic!("expected an update");
    };
    let names: Vec<&str> = updated["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["system:authenticated", "extra", "system:unauthenticated"]
    );

    let mut moved = expected.clone();
    moved["roleRef"]["name"] = json!("view");
    assert_eq!(
        reconcile_binding(Some(&moved), expected),
        Reconciled::Recreate(expected.clone())
    );
    moved["metadata"]["annotations"][AUTOUPDATE] = json!("false");
    assert_eq!(
        reconcile_binding(Some(&moved), expected),
        Reconciled::Protected
    );
    assert_eq!(
        reconcile_binding(None, expected),
        Reconciled::Create(expected.clone())
    );
}
