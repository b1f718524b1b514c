use serde_json::json;

use super::*;
use crate::rbac::{aggregation::aggregate as aggregate_rules, bootstrap};

fn attrs(
    verb: &str,
    group: &str,
    resource: &str,
    sub: &str,
    name: &str,
    ns: &str,
) -> ResourceAttributes {
    let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    ResourceAttributes {
        verb: some(verb),
        group: some(group),
        resource: some(resource),
        subresource: some(sub),
        name: some(name),
        namespace: some(ns),
        ..Default::default()
    }
}

fn path(verb: &str, path: &str) -> NonResourceAttributes {
    NonResourceAttributes {
        verb: Some(verb.to_owned()),
        path: Some(path.to_owned()),
    }
}

#[test]
fn resource_rules() {
    let pods = json!({ "verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"] });
    let logs = json!({ "verbs": ["get"], "apiGroups": [""], "resources": ["pods/log"] });
    let scale = json!({ "verbs": ["get"], "apiGroups": ["*"], "resources": ["*/scale"] });
    let all = json!({ "verbs": ["*"], "apiGroups": ["*"], "resources": ["*"] });
    let named = json!({
        "verbs": ["get"], "apiGroups": ["apps"], "resources": ["deployments"],
        "resourceNames": ["web"],
    });
    let cases = [
        (&pods, attrs("get", "", "pods", "", "", "ns"), true),
        (&pods, attrs("list", "", "pods", "", "", ""), true),
        (&pods, attrs("delete", "", "pods", "", "", "ns"), false),
        (&pods, attrs("get", "apps", "pods", "", "", "ns"), false),
        (&pods, attrs("get", "", "pods", "log", "p", "ns"), false),
        (&logs, attrs("get", "", "pods", "log", "p", "ns"), true),
        (&logs, attrs("get", "", "pods", "", "p", "ns"), false),
        (&logs, attrs("get", "", "pods", "exec", "p", "ns"), false),
        (
            &scale,
            attrs("get", "apps", "deployments", "scale", "w", "ns"),
            true,
        ),
        (
            &scale,
            attrs("get", "apps", "deployments", "", "w", "ns"),
            false,
        ),
        (&scale, attrs("get", "", "scale", "", "", "ns"), false),
        (
            &all,
            attrs("escalate", "rbac.authorization.k8s.io", "roles", "", "", ""),
            true,
        ),
        (&all, attrs("get", "", "pods", "log", "p", "ns"), true),
        (
            &named,
            attrs("get", "apps", "deployments", "", "web", "ns"),
            true,
        ),
        (
            &named,
            attrs("get", "apps", "deployments", "", "db", "ns"),
            false,
        ),
        (
            &named,
            attrs("get", "apps", "deployments", "", "", "ns"),
            false,
        ),
        (
            &json!({ "verbs": ["get"] }),
            attrs("get", "", "pods", "", "", ""),
            false,
        ),
    ];
    for (rule, attributes, want) in cases {
        assert_eq!(
            rule_allows(rule, &attributes),
            want,
            "{rule} {attributes:?}"
        );
    }
}

#[test]
fn non_resource_rules() {
    let health = json!({ "verbs": ["get"], "nonResourceURLs": ["/healthz", "/healthz/*"] });
    let prefix = json!({ "verbs": ["get"], "nonResourceURLs": ["/api*"] });
    let all = json!({ "verbs": ["*"], "nonResourceURLs": ["*"] });
    let cases = [
        (&health, path("get", "/healthz"), true),
        (&health, path("get", "/healthz/etcd"), true),
        (&health, path("post", "/healthz"), false),
        (&health, path("get", "/healthzz"), false),
        (&health, path("get", "/livez"), false),
        (&prefix, path("get", "/apis/apps"), true),
        (&prefix, path("get", "/ap"), false),
        (&all, path("post", "/anything"), true),
        (
            &json!({ "verbs": ["get"], "apiGroups": [""], "resources": ["pods"] }),
            path("get", "/"),
            false,
        ),
    ];
    for (rule, attributes, want) in cases {
        assert_eq!(
            non_resource_rule_allows(rule, &attributes),
            want,
            "{rule} {attributes:?}"
        );
    }
}

/// The bootstrap policy with `admin`, `edit` and `view` aggregated.
fn bootstrap_policy() -> (Vec<Value>, Vec<Value>, Vec<Value>, Vec<Value>) {
    let mut cluster_roles = bootstrap::cluster_roles();
    for name in ["view", "edit", "admin"] {
        let index = cluster_roles
            .iter()
            .position(|r| r["metadata"]["name"] == name)
            .unwrap();
        let rules = aggregate_rules(&cluster_roles[index], &cluster_roles).unwrap();
        cluster_roles[index]["rules"] = Value::Array(rules);
    }
    (
        bootstrap::roles(),
        cluster_roles,
        bootstrap::role_bindings(),
        bootstrap::cluster_role_bindings(),
    )
}

fn groups(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

#[test]
fn bootstrap_decisions_and_reasons() {
    let (mut roles, cluster_roles, mut role_bindings, cluster_role_bindings) = bootstrap_policy();
    roles.push(json!({
        "metadata": { "name": "log-reader", "namespace": "dev" },
        "rules": [{ "verbs": ["get"], "apiGroups": [""], "resources": ["pods/log"] }],
    }));
    role_bindings.push(json!({
        "metadata": { "name": "logs", "namespace": "dev" },
        "subjects": [
            { "kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "other" },
            { "kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice" },
        ],
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "log-reader" },
    }));
    role_bindings.push(json!({
        "metadata": { "name": "viewers", "namespace": "dev" },
        "subjects": [{ "kind": "ServiceAccount", "name": "ci" }],
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view" },
    }));
    let policy = Policy {
        roles: &roles,
        cluster_roles: &cluster_roles,
        role_bindings: &role_bindings,
        cluster_role_bindings: &cluster_role_bindings,
    };
    let admin = groups(&["system:masters", "system:authenticated"]);
    let user = groups(&["system:authenticated"]);
    let anonymous = groups(&["system:unauthenticated"]);
    let ci = groups(&[
        "system:serviceaccounts",
        "system:serviceaccounts:dev",
        "system:authenticated",
    ]);
    let delete_nodes = attrs("delete", "", "nodes", "", "n1", "");
    let get_log = attrs("get", "", "pods", "log", "p", "dev");
    let get_log_elsewhere = attrs("get", "", "pods", "log", "p", "prod");
    let get_pod = attrs("get", "", "pods", "", "p", "dev");
    let list_secrets = attrs("list", "", "secrets", "", "", "dev");
    let ssar = attrs(
        "create",
        "authorization.k8s.io",
        "selfsubjectaccessreviews",
        "",
        "",
        "",
    );
    let healthz = path("get", "/healthz");
    let api = path("get", "/apis/apps/v1");
    let post_anything = path("post", "/anything/at/all");
    let escalate = attrs(
        "escalate",
        "rbac.authorization.k8s.io",
        "clusterroles",
        "",
        "x",
        "",
    );
    let watch_slices = attrs("watch", "discovery.k8s.io", "endpointslices", "", "", "");
    let create_pods = attrs("create", "", "pods", "", "", "dev");
    let crb = |binding: &str, role: &str, subject: &str| {
        format!("RBAC: allowed by ClusterRoleBinding \"{binding}\" of ClusterRole \"{role}\" to {subject}")
    };
    let cases: Vec<(&str, &[String], Request<'_>, bool, String)> = vec![
        (
            "root",
            &admin,
            Request::Resource(&delete_nodes),
            true,
            crb("cluster-admin", "cluster-admin", "Group \"system:masters\""),
        ),
        (
            "root",
            &admin,
            Request::NonResource(&post_anything),
            true,
            crb("cluster-admin", "cluster-admin", "Group \"system:masters\""),
        ),
        (
            "root",
            &admin,
            Request::Resource(&escalate),
            true,
            crb("cluster-admin", "cluster-admin", "Group \"system:masters\""),
        ),
        ("alice", &user, Request::Resource(&delete_nodes), false, String::new()),
        (
            "alice",
            &user,
            Request::Resource(&get_log),
            true,
            "RBAC: allowed by RoleBinding \"logs/dev\" of Role \"log-reader\" to User \"alice\"".into(),
        ),
        ("alice", &user, Request::Resource(&get_log_elsewhere), false, String::new()),
        ("alice", &user, Request::Resource(&get_pod), false, String::new()),
        (
            "system:serviceaccount:dev:ci",
            &ci,
            Request::Resource(&get_pod),
            true,
            "RBAC: allowed by RoleBinding \"viewers/dev\" of ClusterRole \"view\" to ServiceAccount \"ci/dev\"".into(),
        ),
        // view does not grant secrets.
        ("system:serviceaccount:dev:ci", &ci, Request::Resource(&list_secrets), false, String::new()),
        ("system:serviceaccount:prod:ci", &ci, Request::Resource(&get_pod), false, String::new()),
        (
            "alice",
            &user,
            Request::Resource(&ssar),
            true,
            crb("system:basic-user", "system:basic-user", "Group \"system:authenticated\""),
        ),
        (
            "system:anonymous",
            &anonymous,
            Request::NonResource(&healthz),
            true,
            crb(
                "system:public-info-viewer",
                "system:public-info-viewer",
                "Group \"system:unauthenticated\"",
            ),
        ),
        ("system:anonymous", &anonymous, Request::NonResource(&api), false, String::new()),
        (
            "alice",
            &user,
            Request::NonResource(&api),
            true,
            crb("system:discovery", "system:discovery", "Group \"system:authenticated\""),
        ),
        (
            "system:kube-proxy",
            &user,
            Request::Resource(&watch_slices),
            true,
            crb("system:node-proxier", "system:node-proxier", "User \"system:kube-proxy\""),
        ),
        (
            "system:serviceaccount:kube-system:job-controller",
            &ci,
            Request::Resource(&create_pods),
            true,
            crb(
                "system:controller:job-controller",
                "system:controller:job-controller",
                "ServiceAccount \"job-controller/kube-system\"",
            ),
        ),
    ];
    for (user, groups, request, want, reason) in cases {
        assert_eq!(
            allows(user, groups, request, &policy),
            (want, reason),
            "{user} {request:?}"
        );
    }
}

#[test]
fn missing_roles_are_reported_in_the_reason() {
    let cluster_role_bindings = vec![json!({
        "metadata": { "name": "broken" },
        "subjects": [{ "kind": "User", "name": "bob" }],
        "roleRef": { "kind": "ClusterRole", "name": "missing" },
    })];
    let role_bindings = vec![
        json!({
            "metadata": { "name": "broken", "namespace": "dev" },
            "subjects": [{ "kind": "User", "name": "bob" }],
            "roleRef": { "kind": "Role", "name": "gone" },
        }),
        json!({
            "metadata": { "name": "odd", "namespace": "dev" },
            "subjects": [{ "kind": "User", "name": "bob" }],
            "roleRef": { "kind": "Thing", "name": "x" },
        }),
    ];
    let policy = Policy {
        role_bindings: &role_bindings,
        cluster_role_bindings: &cluster_role_bindings,
        ..Default::default()
    };
    let get = attrs("get", "", "pods", "", "", "");
    assert_eq!(
        allows("bob", &[], Request::Resource(&get), &policy),
        (
            false,
            "RBAC: clusterrole.rbac.authorization.k8s.io \"missing\" not found".into()
        )
    );
    let get = attrs("get", "", "pods", "", "", "dev");
    assert_eq!(
        allows("bob", &[], Request::Resource(&get), &policy),
        (
            false,
            "RBAC: [clusterrole.rbac.authorization.k8s.io \"missing\" not found, \
             role.rbac.authorization.k8s.io \"gone\" not found, \
             unsupported role reference kind: \"Thing\"]"
                .into()
        )
    );
    assert!(allows("carol", &[], Request::Resource(&get), &policy)
        .1
        .is_empty());
    let review = rules_for("bob", &[], None, &policy);
    assert_eq!(
        review.evaluation_error.as_deref(),
        Some("clusterrole.rbac.authorization.k8s.io \"missing\" not found")
    );
}

#[test]
fn rules_review_lists_cluster_then_namespace_rules() {
    let cluster_roles = vec![
        json!({
            "metadata": { "name": "discovery" },
            "rules": [{ "verbs": ["get"], "nonResourceURLs": ["/api", "/api/*"] }],
        }),
        json!({
            "metadata": { "name": "reader" },
            "rules": [{
                "verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"],
                "resourceNames": ["a"],
            }],
        }),
    ];
    let roles = vec![json!({
        "metadata": { "name": "deployer", "namespace": "dev" },
        "rules": [{ "verbs": ["*"], "apiGroups": ["apps"], "resources": ["deployments"] }],
    })];
    let cluster_role_bindings = vec![json!({
        "metadata": { "name": "everyone" },
        "subjects": [{ "kind": "Group", "name": "system:authenticated" }],
        "roleRef": { "kind": "ClusterRole", "name": "discovery" },
    })];
    let role_bindings = vec![
        json!({
            "metadata": { "name": "deploy", "namespace": "dev" },
            "subjects": [{ "kind": "User", "name": "alice" }],
            "roleRef": { "kind": "Role", "name": "deployer" },
        }),
        json!({
            "metadata": { "name": "read", "namespace": "dev" },
            "subjects": [{ "kind": "User", "name": "alice" }],
            "roleRef": { "kind": "ClusterRole", "name": "reader" },
        }),
        json!({
            "metadata": { "name": "read", "namespace": "prod" },
            "subjects": [{ "kind": "User", "name": "alice" }],
            "roleRef": { "kind": "ClusterRole", "name": "reader" },
        }),
    ];
    let policy = Policy {
        roles: &roles,
        cluster_roles: &cluster_roles,
        role_bindings: &role_bindings,
        cluster_role_bindings: &cluster_role_bindings,
    };
    let strings = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let review = rules_for(
        "alice",
        &groups(&["system:authenticated"]),
        Some("dev"),
        &policy,
    );
    assert_eq!(review.evaluation_error, None);
    assert_eq!(
        review.non_resource_rules,
        vec![NonResourceRule {
            verbs: strings(&["get"]),
            non_resource_urls: Some(strings(&["/api", "/api/*"])),
        }]
    );
    assert_eq!(
        review.resource_rules,
        vec![
            ResourceRule {
                verbs: strings(&["*"]),
                api_groups: Some(strings(&["apps"])),
                resources: Some(strings(&["deployments"])),
                resource_names: None,
            },
            ResourceRule {
                verbs: strings(&["get", "list"]),
                api_groups: Some(strings(&[""])),
                resources: Some(strings(&["pods"])),
                resource_names: Some(strings(&["a"])),
            },
        ]
    );
    let cluster_only = rules_for("alice", &groups(&["system:authenticated"]), None, &policy);
    assert!(cluster_only.resource_rules.is_empty());
    assert_eq!(cluster_only.non_resource_rules.len(), 1);
    let stranger = rules_for("mallory", &[], Some("dev"), &policy);
    assert_eq!(stranger, RulesReview::default());
}
