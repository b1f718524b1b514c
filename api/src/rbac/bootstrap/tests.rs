use super::*;

fn find<'a>(objects: &'a [Value], name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{name} missing"))
}

#[test]
fn every_object_is_labelled_and_annotated_for_the_reconciler() {
    for object in cluster_roles()
        .iter()
        .chain(&cluster_role_bindings())
        .chain(&roles())
        .chain(&role_bindings())
    {
        let meta = &object["metadata"];
        assert_eq!(
            meta["labels"]["kubernetes.io/bootstrapping"], "rbac-defaults",
            "{meta}"
        );
        assert_eq!(
            meta["annotations"]["rbac.authorization.kubernetes.io/autoupdate"], "true",
            "{meta}"
        );
        assert_eq!(object["apiVersion"], API_VERSION);
    }
}

#[test]
fn the_expected_cluster_roles_exist_once_each() {
    let roles = cluster_roles();
    let mut names: Vec<&str> = roles
        .iter()
        .map(|r| r["metadata"]["name"].as_str().unwrap())
        .collect();
    let count = names.len();
    names.dedup();
    assert_eq!(names.len(), count, "duplicate names");
    for name in [
        "cluster-admin",
        "admin",
        "edit",
        "view",
        "system:aggregate-to-admin",
        "system:aggregate-to-edit",
        "system:aggregate-to-view",
        "system:discovery",
        "system:basic-user",
        "system:public-info-viewer",
        "system:monitoring",
        "system:node",
        "system:node-proxier",
        "system:node-problem-detector",
        "system:kubelet-api-admin",
        "system:kube-scheduler",
        "system:kube-controller-manager",
        "system:volume-scheduler",
        "system:auth-delegator",
        "system:heapster",
        "system:kube-aggregator",
        "system:kube-dns",
        "system:node-bootstrapper",
        "system:persistent-volume-provisioner",
        "system:service-account-issuer-discovery",
        "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
        "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
        "system:certificates.k8s.io:legacy-unknown-approver",
        "system:certificates.k8s.io:kubelet-serving-approver",
        "system:certificates.k8s.io:kube-apiserver-client-approver",
        "system:certificates.k8s.io:kube-apiserver-client-kubelet-approver",
        "system:controller:namespace-controller",
        "system:controller:service-cidrs-controller",
        "system:controller:selinux-warning-controller",
    ] {
        assert!(names.contains(&name), "{name} missing");
    }
    // 31 policy roles + 35 controller roles, with 1.33's default gates.
    assert_eq!(count, 66);
    for gated in [
        "system:controller:resource-claim-controller",
        "system:controller:volumeattributesclass-protection-controller",
    ] {
        assert!(!names.contains(&gated), "{gated} is off by default in 1.33");
    }
}

#[test]
fn rules_are_sorted_like_upstreams_builder() {
    let roles = cluster_roles();
    let edit = find(&roles, "system:aggregate-to-edit");
    assert_eq!(
        edit["rules"][0],
        json!({
            "verbs": ["get", "list", "watch"],
            "apiGroups": [""],
            "resources": [
                "pods/attach", "pods/exec", "pods/portforward", "pods/proxy",
                "secrets", "services/proxy"
            ],
        })
    );
    let admin = find(&roles, "cluster-admin");
    assert_eq!(
        admin["rules"],
        json!([
            { "verbs": ["*"], "apiGroups": ["*"], "resources": ["*"] },
            { "verbs": ["*"], "nonResourceURLs": ["*"] },
        ])
    );
    let approver = find(
        &roles,
        "system:certificates.k8s.io:kubelet-serving-approver",
    );
    assert_eq!(
        approver["rules"][0]["resourceNames"],
        json!(["kubernetes.io/kubelet-serving"])
    );
}

#[test]
fn aggregated_roles_carry_their_selectors_and_labels() {
    let roles = cluster_roles();
    let cases = [
        ("admin", "aggregate-to-admin", None),
        ("edit", "aggregate-to-edit", Some("aggregate-to-admin")),
        ("view", "aggregate-to-view", Some("aggregate-to-edit")),
    ];
    for (name, selects, labelled) in cases {
        let role = find(&roles, name);
        let key = format!("rbac.authorization.k8s.io/{selects}");
        assert_eq!(
            role["aggregationRule"]["clusterRoleSelectors"][0]["matchLabels"][&key], "true",
            "{name}"
        );
        assert_eq!(role["rules"], json!([]));
        if let Some(label) = labelled {
            let key = format!("rbac.authorization.k8s.io/{label}");
            assert_eq!(role["metadata"]["labels"][&key], "true", "{name}");
        }
    }
}

#[test]
fn cluster_role_bindings_grant_upstreams_subjects() {
    let bindings = cluster_role_bindings();
    let subjects = |name: &str| -> Vec<(String, String)> {
        find(&bindings, name)["subjects"]
            .as_array()
            .map(|subjects| {
                subjects
                    .iter()
                    .map(|s| {
                        (
                            s["kind"].as_str().unwrap().to_owned(),
                            s["name"].as_str().unwrap().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let pair = |kind: &str, name: &str| (kind.to_owned(), name.to_owned());
    assert_eq!(subjects("cluster-admin"), [pair("Group", "system:masters")]);
    assert_eq!(
        subjects("system:discovery"),
        [pair("Group", "system:authenticated")]
    );
    assert_eq!(
        subjects("system:basic-user"),
        [pair("Group", "system:authenticated")]
    );
    assert_eq!(
        subjects("system:public-info-viewer"),
        [
            pair("Group", "system:authenticated"),
            pair("Group", "system:unauthenticated")
        ]
    );
    assert_eq!(
        subjects("system:node-proxier"),
        [pair("User", "system:kube-proxy")]
    );
    assert_eq!(
        subjects("system:kube-dns"),
        [pair("ServiceAccount", "kube-dns")]
    );
    assert_eq!(subjects("system:node"), []);
    assert_eq!(
        subjects("system:controller:job-controller"),
        [pair("ServiceAccount", "job-controller")]
    );
    let job = find(&bindings, "system:controller:job-controller");
    assert_eq!(job["subjects"][0]["namespace"], "kube-system");
    assert_eq!(job["roleRef"]["name"], "system:controller:job-controller");
    // Every binding's ClusterRole exists.
    let roles = cluster_roles();
    for binding in &bindings {
        find(&roles, binding["roleRef"]["name"].as_str().unwrap());
    }
}

#[test]
fn namespaced_objects_live_in_kube_system_and_kube_public() {
    let roles = roles();
    let bindings = role_bindings();
    assert_eq!(roles.len(), 7);
    assert_eq!(bindings.len(), 7);
    for binding in &bindings {
        let namespace = &binding["metadata"]["namespace"];
        let role = roles.iter().find(|r| {
            r["metadata"]["namespace"] == *namespace
                && r["metadata"]["name"] == binding["roleRef"]["name"]
        });
        assert!(role.is_some(), "{binding}");
    }
    let reader = find(
        &bindings,
        "system::extension-apiserver-authentication-reader",
    );
    assert_eq!(
        reader["roleRef"]["name"],
        "extension-apiserver-authentication-reader"
    );
    assert_eq!(reader["roleRef"]["kind"], "Role");
    let public: Vec<&Value> = roles
        .iter()
        .filter(|r| r["metadata"]["namespace"] == "kube-public")
        .collect();
    assert_eq!(public.len(), 1);
    assert_eq!(
        public[0]["metadata"]["name"],
        "system:controller:bootstrap-signer"
    );
}

#[test]
fn leader_locking_roles_cover_configmap_and_lease_locks() {
    let roles = roles();
    let role = find(&roles, "system::leader-locking-kube-scheduler");
    assert_eq!(
        role["rules"][1],
        json!({
            "verbs": ["get", "update"],
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": ["kube-scheduler"],
        })
    );
    assert_eq!(role["rules"][3]["resources"], json!(["leasecandidates"]));
}

#[test]
fn kubelet_api_admin_has_the_fine_grained_subresources() {
    let roles = cluster_roles();
    let role = find(&roles, "system:kubelet-api-admin");
    assert_eq!(
        role["rules"][2]["resources"],
        json!([
            "nodes/configz",
            "nodes/healthz",
            "nodes/log",
            "nodes/metrics",
            "nodes/pods",
            "nodes/proxy",
            "nodes/stats"
        ])
    );
}
