//! RBAC and the review APIs driven by the real kubectl 1.33 (protobuf from its
//! generators): the default roles and bindings, each RBAC kind's upstream
//! documented example through apply/get/describe/explain/edit/delete, refusals
//! with upstream's messages, ClusterRole aggregation, and `kubectl auth`.

mod support;

use std::process::Command;
use std::time::Duration;

use support::{eventually, manifest, Kubectl, Server, KUBECTL_1_33};

/// `kubectl edit ARGS` with a `sed -i SCRIPT` as the editor.
fn edit(server: &Server, args: &[&str], script: &str) -> std::process::Output {
    Command::new(KUBECTL_1_33)
        .arg("--kubeconfig")
        .arg(server.kubeconfig())
        .arg("--cache-dir")
        .arg(server.dir.path().join("kubectl-edit-cache"))
        .arg("edit")
        .args(args)
        .env("KUBE_EDITOR", format!("sed -i '{script}'"))
        .output()
        .expect("running kubectl edit")
}

/// `kubectl auth can-i ARGS`: its `yes`/`no` (it exits 1 on `no`).
fn can_i(kubectl: &Kubectl, args: &[&str]) -> String {
    let mut all = vec!["auth", "can-i"];
    all.extend(args);
    let out = kubectl.run(&all);
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn assert_has(text: &str, wanted: &[&str]) {
    for w in wanted {
        assert!(text.contains(w), "{w:?} missing from:\n{text}");
    }
}

#[test]
fn rbac_kinds_aggregation_and_kubectl_auth() {
    let server = Server::start();
    let k = server.kubectl(KUBECTL_1_33);
    defaults_are_created_and_aggregated(&k);
    every_kind_through_kubectl(&server, &k);
    invalid_objects_get_upstream_messages(&k);
    aggregation_follows_new_roles(&k);
    kubectl_auth_answers_from_the_stored_policy(&k);
    reviews_answer_and_are_never_stored(&server, &k);
    for (kind, name) in [
        ("rolebinding", "read-pods"),
        ("role", "pod-reader"),
        ("clusterrolebinding", "read-secrets-global"),
        ("clusterrole", "secret-reader"),
    ] {
        let deleted = k.ok(&["delete", kind, name]);
        assert_has(&deleted, &[&format!("\"{name}\" deleted")]);
        let gone = k.fails(&["get", kind, name]);
        assert_has(&gone, &["NotFound", &format!("\"{name}\" not found")]);
    }
}

fn defaults_are_created_and_aggregated(k: &Kubectl) {
    let roles = k.ok(&["get", "clusterroles"]);
    let header = roles.lines().next().unwrap_or_default();
    assert_has(header, &["NAME", "CREATED AT"]);
    for name in [
        "cluster-admin ",
        "admin ",
        "edit ",
        "view ",
        "system:basic-user",
        "system:discovery",
        "system:controller:deployment-controller",
    ] {
        assert!(
            roles.lines().any(|l| l.starts_with(name)),
            "{name} missing:\n{roles}"
        );
    }
    let bindings = k.ok(&["get", "clusterrolebindings", "-o", "wide"]);
    assert_has(
        bindings.lines().next().unwrap_or_default(),
        &["NAME", "ROLE", "AGE", "USERS", "GROUPS", "SERVICEACCOUNTS"],
    );
    let admin = bindings
        .lines()
        .find(|l| l.starts_with("cluster-admin "))
        .expect("cluster-admin binding");
    assert_has(admin, &["ClusterRole/cluster-admin", "system:masters"]);
    let roles = k.ok(&["get", "roles", "-n", "kube-system"]);
    assert_has(&roles, &["extension-apiserver-authentication-reader"]);
    // `edit` gathers the rules of the system:aggregate-to-edit role.
    let edit = eventually(Duration::from_secs(20), || {
        let out = k.ok(&["describe", "clusterrole", "edit"]);
        out.contains("deployments.apps").then_some(out)
    });
    assert_has(&edit, &["PolicyRule:", "Resources", "Verbs", "pods"]);
}

fn every_kind_through_kubectl(server: &Server, k: &Kubectl) {
    // Role
    let applied = k.ok(&["apply", "-f", &manifest("kinds/role.yaml")]);
    assert_has(
        &applied,
        &["role.rbac.authorization.k8s.io/pod-reader created"],
    );
    let table = k.ok(&["get", "role", "pod-reader"]);
    assert_has(&table, &["NAME", "CREATED AT", "pod-reader"]);
    let yaml = k.ok(&["get", "role", "pod-reader", "-o", "yaml"]);
    assert_has(
        &yaml,
        &["kind: Role", "namespace: default", "- pods", "- watch"],
    );
    let described = k.ok(&["describe", "role", "pod-reader"]);
    assert_has(
        &described,
        &["Name:", "pod-reader", "PolicyRule:", "[get watch list]"],
    );
    let explained = k.ok(&["explain", "role.rules"]);
    assert_has(&explained, &["KIND:       Role", "verbs"]);
    let out = edit(server, &["role", "pod-reader"], "s/- watch$/- patch/");
    assert!(out.status.success(), "{out:?}");
    let verbs = k.jsonpath(&["get", "role", "pod-reader"], "{.rules[0].verbs}");
    assert_eq!(verbs, r#"["get","patch","list"]"#);
    // `auth reconcile` adds back what the file has and the stored role lacks.
    let reconciled = k.ok(&["auth", "reconcile", "-f", &manifest("kinds/role.yaml")]);
    assert_has(
        &reconciled,
        &["role.rbac.authorization.k8s.io/pod-reader reconciled"],
    );
    let verbs = k.jsonpath(&["get", "role", "pod-reader"], "{.rules[*].verbs}");
    assert_has(&verbs, &["watch", "patch"]);

    // ClusterRole
    k.ok(&["apply", "-f", &manifest("kinds/clusterrole.yaml")]);
    let table = k.ok(&["get", "clusterrole", "secret-reader"]);
    assert_has(&table, &["NAME", "CREATED AT", "secret-reader"]);
    let yaml = k.ok(&["get", "clusterrole", "secret-reader", "-o", "yaml"]);
    assert_has(&yaml, &["kind: ClusterRole", "- secrets"]);
    let described = k.ok(&["describe", "clusterrole", "secret-reader"]);
    assert_has(
        &described,
        &["secret-reader", "secrets", "[get watch list]"],
    );
    let explained = k.ok(&["explain", "clusterrole.aggregationRule"]);
    assert_has(
        &explained,
        &["KIND:       ClusterRole", "clusterRoleSelectors"],
    );
    k.ok(&[
        "patch",
        "clusterrole",
        "secret-reader",
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/rules/0/verbs/-","value":"update"}]"#,
    ]);
    let verbs = k.jsonpath(
        &["get", "clusterrole", "secret-reader"],
        "{.rules[0].verbs}",
    );
    assert_eq!(verbs, r#"["get","watch","list","update"]"#);

    // RoleBinding
    k.ok(&["apply", "-f", &manifest("kinds/rolebinding.yaml")]);
    let table = k.ok(&["get", "rolebinding", "read-pods"]);
    assert_has(
        &table,
        &["NAME", "ROLE", "AGE", "read-pods", "Role/pod-reader"],
    );
    let wide = k.ok(&["get", "rolebinding", "read-pods", "-o", "wide"]);
    assert_has(&wide, &["USERS", "GROUPS", "SERVICEACCOUNTS", "jane"]);
    let yaml = k.ok(&["get", "rolebinding", "read-pods", "-o", "yaml"]);
    assert_has(&yaml, &["kind: RoleBinding", "roleRef:", "name: jane"]);
    let described = k.ok(&["describe", "rolebinding", "read-pods"]);
    assert_has(
        &described,
        &["Role:", "Kind:  Role", "Name:  pod-reader", "User", "jane"],
    );
    let explained = k.ok(&["explain", "rolebinding.roleRef"]);
    assert_has(&explained, &["KIND:       RoleBinding", "apiGroup"]);
    let out = edit(
        server,
        &["rolebinding", "read-pods"],
        "s/name: jane$/name: joe/",
    );
    assert!(out.status.success(), "{out:?}");
    let subject = k.jsonpath(&["get", "rolebinding", "read-pods"], "{.subjects[0].name}");
    assert_eq!(subject, "joe");
    k.ok(&["apply", "-f", &manifest("kinds/rolebinding.yaml")]);

    // ClusterRoleBinding
    k.ok(&["apply", "-f", &manifest("kinds/clusterrolebinding.yaml")]);
    let wide = k.ok(&[
        "get",
        "clusterrolebinding",
        "read-secrets-global",
        "-o",
        "wide",
    ]);
    assert_has(
        &wide,
        &["ROLE", "GROUPS", "ClusterRole/secret-reader", "manager"],
    );
    let yaml = k.ok(&[
        "get",
        "clusterrolebinding",
        "read-secrets-global",
        "-o",
        "yaml",
    ]);
    assert_has(
        &yaml,
        &["kind: ClusterRoleBinding", "kind: Group", "name: manager"],
    );
    let described = k.ok(&["describe", "clusterrolebinding", "read-secrets-global"]);
    assert_has(
        &described,
        &[
            "Kind:  ClusterRole",
            "Name:  secret-reader",
            "Group",
            "manager",
        ],
    );
    let explained = k.ok(&["explain", "clusterrolebinding.subjects"]);
    assert_has(&explained, &["KIND:       ClusterRoleBinding", "namespace"]);
    k.ok(&[
        "patch",
        "clusterrolebinding",
        "read-secrets-global",
        "--type=merge",
        "-p",
        r#"{"metadata":{"labels":{"team":"security"}}}"#,
    ]);
    let labels = k.jsonpath(
        &["get", "clusterrolebinding", "read-secrets-global"],
        "{.metadata.labels.team}",
    );
    assert_eq!(labels, "security");

    // kubectl's generators (protobuf bodies from 1.33).
    let created = k.ok(&[
        "create",
        "role",
        "gen-role",
        "--verb=get,list",
        "--resource=pods",
    ]);
    assert_has(
        &created,
        &["role.rbac.authorization.k8s.io/gen-role created"],
    );
    k.ok(&[
        "create",
        "clusterrole",
        "gen-cr",
        "--verb=get",
        "--resource=nodes",
    ]);
    k.ok(&[
        "create",
        "rolebinding",
        "gen-rb",
        "--role=gen-role",
        "--user=amy",
    ]);
    k.ok(&[
        "create",
        "clusterrolebinding",
        "gen-crb",
        "--clusterrole=gen-cr",
        "--group=ops",
    ]);
    let table = k.ok(&["get", "rolebinding", "gen-rb", "-o", "wide"]);
    assert_has(&table, &["Role/gen-role", "amy"]);
    for (kind, name) in [
        ("rolebinding", "gen-rb"),
        ("role", "gen-role"),
        ("clusterrolebinding", "gen-crb"),
        ("clusterrole", "gen-cr"),
    ] {
        k.ok(&["delete", kind, name]);
    }
}

fn invalid_objects_get_upstream_messages(k: &Kubectl) {
    let cases = [
        (
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: bad-role, namespace: default}\nrules:\n- apiGroups: [\"\"]\n  resources: [pods]\n",
            r#"The Role "bad-role" is invalid: rules[0].verbs: Required value: verbs must contain at least one value"#,
        ),
        (
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: bad-agg}\naggregationRule:\n  clusterRoleSelectors: []\n",
            r#"The ClusterRole "bad-agg" is invalid: aggregationRule.clusterRoleSelectors: Required value: at least one clusterRoleSelector required if aggregationRule is non-nil"#,
        ),
        (
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: bad-rb, namespace: default}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: Secret, name: x}\n",
            r#"The RoleBinding "bad-rb" is invalid: roleRef.kind: Unsupported value: "Secret": supported values: "Role", "ClusterRole""#,
        ),
        (
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: bad-crb}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: x}\n",
            r#"The ClusterRoleBinding "bad-crb" is invalid: roleRef.kind: Unsupported value: "Role": supported values: "ClusterRole""#,
        ),
    ];
    for (object, message) in cases {
        let err = k.fails_stdin(&["apply", "-f", "-"], object);
        assert_has(&err, &[message]);
    }
    // A binding's roleRef is fixed once created.
    let err = k.fails(&[
        "patch",
        "rolebinding",
        "read-pods",
        "--type=merge",
        "-p",
        r#"{"roleRef":{"name":"other"}}"#,
    ]);
    assert_has(
        &err,
        &[
            r#"The RoleBinding "read-pods" is invalid: roleRef: Invalid value: rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io", Kind:"Role", Name:"other"}: cannot change roleRef"#,
        ],
    );
    let err = k.fails(&[
        "patch",
        "clusterrolebinding",
        "read-secrets-global",
        "--type=merge",
        "-p",
        r#"{"roleRef":{"name":"view"}}"#,
    ]);
    assert_has(&err, &["cannot change roleRef"]);
}

fn aggregation_follows_new_roles(k: &Kubectl) {
    let before = k.ok(&["describe", "clusterrole", "view"]);
    assert!(!before.contains("crontabs"), "{before}");
    // Server-side apply (Helm 4's default) creates it.
    let applied = k.ok(&[
        "apply",
        "--server-side",
        "-f",
        &manifest("kinds/clusterrole-aggregate.yaml"),
    ]);
    assert_has(
        &applied,
        &["clusterrole.rbac.authorization.k8s.io/aggregate-cron-tabs-view serverside-applied"],
    );
    eventually(Duration::from_secs(20), || {
        let view = k.ok(&["describe", "clusterrole", "view"]);
        view.contains("crontabs.stable.example.com").then_some(())
    });
    // …and through view, edit and admin (which aggregate view's labels too).
    eventually(Duration::from_secs(20), || {
        let rules = k.jsonpath(&["get", "clusterrole", "admin"], "{.rules[*].resources}");
        rules.contains("crontabs").then_some(())
    });
    k.ok(&["delete", "clusterrole", "aggregate-cron-tabs-view"]);
    eventually(Duration::from_secs(20), || {
        let view = k.ok(&["describe", "clusterrole", "view"]);
        (!view.contains("crontabs")).then_some(())
    });
}

fn kubectl_auth_answers_from_the_stored_policy(k: &Kubectl) {
    assert_eq!(can_i(k, &["list", "pods"]), "yes");
    assert_eq!(can_i(k, &["delete", "nodes"]), "yes");
    assert_eq!(can_i(k, &["get", "/healthz"]), "yes");
    let list = k.ok(&["auth", "can-i", "--list"]);
    assert_has(&list, &["Resources", "Verbs", "*.*", "[*]"]);
    let whoami = k.ok(&["auth", "whoami"]);
    assert_has(&whoami, &["Username", "kubernetes-admin", "system:masters"]);

    let sa = "--as=system:serviceaccount:default:default";
    assert_eq!(can_i(k, &["list", "pods", sa]), "no");
    let list = k.ok(&["auth", "can-i", "--list", sa]);
    assert_has(&list, &["selfsubjectaccessreviews.authorization.k8s.io"]);
    assert!(!list.contains("*.*"), "{list}");
    k.ok(&[
        "create",
        "rolebinding",
        "sa-view",
        "--clusterrole=view",
        "--serviceaccount=default:default",
    ]);
    assert_eq!(can_i(k, &["list", "pods", sa]), "yes");
    assert_eq!(can_i(k, &["list", "pods", sa, "-n", "kube-system"]), "no");
    assert_eq!(can_i(k, &["delete", "pods", sa]), "no");
    k.ok(&["delete", "rolebinding", "sa-view"]);
    assert_eq!(can_i(k, &["list", "pods", sa]), "no");

    // Nodes delete the released local-path volumes they emptied, and nothing
    // else that users own.
    let node = ["--as=system:node:n1", "--as-group=system:nodes"];
    assert_eq!(
        can_i(k, &[&["watch", "persistentvolumes"][..], &node].concat()),
        "yes"
    );
    assert_eq!(
        can_i(k, &[&["delete", "persistentvolumes"][..], &node].concat()),
        "yes"
    );
    assert_eq!(
        can_i(
            k,
            &[&["delete", "persistentvolumeclaims"][..], &node].concat()
        ),
        "no"
    );

    // The documented examples: jane reads pods in default, managers read secrets.
    assert_eq!(can_i(k, &["get", "pods", "--as=jane"]), "yes");
    assert_eq!(can_i(k, &["get", "secrets", "--as=jane"]), "no");
    assert_eq!(
        can_i(
            k,
            &["get", "secrets", "-A", "--as=bob", "--as-group=manager"]
        ),
        "yes"
    );

    // Impersonated requests are authorized as that user.
    k.ok(&["get", "pods", "--as=jane"]);
    let err = k.fails(&["get", "secrets", "--as=jane"]);
    assert_has(
        &err,
        &[
            r#"Error from server (Forbidden): secrets is forbidden: User "jane" cannot list resource "secrets" in API group "" in the namespace "default""#,
        ],
    );
    let err = k.fails(&["delete", "role", "pod-reader", "--as=jane"]);
    assert_has(
        &err,
        &[
            r#"roles.rbac.authorization.k8s.io "pod-reader" is forbidden: User "jane" cannot delete resource "roles" in API group "rbac.authorization.k8s.io" in the namespace "default""#,
        ],
    );
    k.ok(&["get", "secrets", "-A", "--as=bob", "--as-group=manager"]);
}

fn reviews_answer_and_are_never_stored(server: &Server, k: &Kubectl) {
    let sar = "apiVersion: authorization.k8s.io/v1\nkind: SubjectAccessReview\nspec:\n  user: jane\n  resourceAttributes: {namespace: default, verb: get, resource: pods}\n";
    let answer = k.ok_stdin(
        &[
            "create",
            "-f",
            "-",
            "-o",
            "jsonpath={.status.allowed} {.status.reason}",
        ],
        sar,
    );
    assert_eq!(
        answer,
        r#"true RBAC: allowed by RoleBinding "read-pods/default" of Role "pod-reader" to User "jane""#
    );
    let lsar = "apiVersion: authorization.k8s.io/v1\nkind: LocalSubjectAccessReview\nmetadata: {namespace: kube-system}\nspec:\n  user: jane\n  resourceAttributes: {namespace: default, verb: get, resource: pods}\n";
    let err = k.fails_stdin(&["create", "-f", "-"], lsar);
    assert_has(
        &err,
        &["spec.resourceAttributes.namespace must match namespace: kube-system"],
    );
    let bad = "apiVersion: authorization.k8s.io/v1\nkind: SubjectAccessReview\nspec:\n  resourceAttributes: {verb: get, resource: pods}\n";
    let err = k.fails_stdin(&["create", "-f", "-"], bad);
    assert_has(
        &err,
        &[
            r#"The SubjectAccessReview "" is invalid: spec.user: Invalid value: "": at least one of user or group must be specified"#,
        ],
    );

    let kubeconfig = std::fs::read_to_string(server.kubeconfig()).unwrap();
    let token = kubeconfig
        .lines()
        .find_map(|l| l.trim().strip_prefix("token: "))
        .expect("a token in admin.kubeconfig")
        .trim_matches('"');
    for (token, authenticated, user) in
        [(token, "true", "kubernetes-admin"), ("bogus", "false", "")]
    {
        let review = format!(
            "apiVersion: authentication.k8s.io/v1\nkind: TokenReview\nspec:\n  token: {token}\n"
        );
        let answer = k.ok_stdin(
            &[
                "create",
                "-f",
                "-",
                "-o",
                "jsonpath={.status.authenticated} {.status.user.username}",
            ],
            &review,
        );
        assert_eq!(answer.trim(), format!("{authenticated} {user}").trim());
    }
    let err = k.fails(&["get", "selfsubjectaccessreviews"]);
    assert_has(
        &err,
        &["(MethodNotAllowed): the server does not allow this method on the requested resource"],
    );
    let unknown = "apiVersion: authorization.k8s.io/v1\nkind: SubjectAccessReview\nspec:\n  bogus: 1\n  user: jane\n  resourceAttributes: {verb: get, resource: pods}\n";
    let err = k.fails_stdin(&["create", "-f", "-"], unknown);
    assert_has(
        &err,
        &[r#"strict decoding error: unknown field "spec.bogus""#],
    );
    let resources = k.ok(&[
        "api-resources",
        "--api-group=authorization.k8s.io",
        "-o",
        "wide",
    ]);
    assert_has(
        &resources,
        &[
            "selfsubjectaccessreviews",
            "localsubjectaccessreviews",
            "LocalSubjectAccessReview   create",
        ],
    );
}
