//! The cluster-wide default roles and bindings (upstream's `policy.go`): the
//! user-facing roles, the aggregation sources behind them, and the roles of
//! the control-plane components, nodes and discovery.

use super::{r, role, u, Binding, Role};

const ADMIN: &str = "rbac.authorization.k8s.io/aggregate-to-admin";
const EDIT: &str = "rbac.authorization.k8s.io/aggregate-to-edit";
const VIEW: &str = "rbac.authorization.k8s.io/aggregate-to-view";

const READ: &str = "get list watch";
const WRITE: &str = "create delete deletecollection patch update";
const READ_WRITE: &str = "create delete deletecollection get list patch update watch";

/// Well-known groups the bindings below grant to.
const MASTERS: &str = "system:masters";
const AUTHENTICATED: &str = "system:authenticated";
const UNAUTHENTICATED: &str = "system:unauthenticated";

pub(super) fn cluster_roles() -> Vec<Role> {
    vec![
        role(
            "cluster-admin",
            vec![r("*", "*", "*"), u("*", "*")],
        ),
        role(
            "system:discovery",
            vec![u(
                "get",
                "/livez /readyz /healthz /version /version/ /openapi /openapi/* /api /api/* /apis /apis/*",
            )],
        ),
        role(
            "system:monitoring",
            vec![u(
                "get",
                "/metrics /metrics/slis /livez /readyz /healthz /livez/* /readyz/* /healthz/*",
            )],
        ),
        role(
            "system:basic-user",
            vec![
                r("create", "authorization.k8s.io", "selfsubjectaccessreviews selfsubjectrulesreviews"),
                r("create", "authentication.k8s.io", "selfsubjectreviews"),
            ],
        ),
        role(
            "system:public-info-viewer",
            vec![u("get", "/livez /readyz /healthz /version /version/")],
        ),
        role("admin", vec![]).aggregating(ADMIN),
        role("edit", vec![]).label(ADMIN).aggregating(EDIT),
        role("view", vec![]).label(EDIT).aggregating(VIEW),
        role(
            "system:aggregate-to-admin",
            vec![
                r("create", "authorization.k8s.io", "localsubjectaccessreviews"),
                r(READ_WRITE, "rbac.authorization.k8s.io", "roles rolebindings"),
            ],
        )
        .label(ADMIN),
        role("system:aggregate-to-edit", aggregate_to_edit()).label(EDIT),
        role("system:aggregate-to-view", aggregate_to_view()).label(VIEW),
        role(
            "system:heapster",
            vec![
                r(READ, "-", "events pods nodes namespaces"),
                r(READ, "extensions", "deployments"),
            ],
        ),
        role("system:node", node()),
        role(
            "system:node-problem-detector",
            vec![
                r("get", "-", "nodes"),
                r("patch", "-", "nodes/status"),
                super::events(),
            ],
        ),
        role(
            "system:kubelet-api-admin",
            vec![
                r(READ, "-", "nodes"),
                r("proxy", "-", "nodes"),
                // KubeletFineGrainedAuthz (beta, on in 1.33) adds pods,
                // healthz and configz.
                r(
                    "*",
                    "-",
                    "nodes/proxy nodes/metrics nodes/stats nodes/log nodes/pods nodes/healthz \
                     nodes/configz",
                ),
            ],
        ),
        role(
            "system:node-bootstrapper",
            vec![r("create get list watch", "certificates.k8s.io", "certificatesigningrequests")],
        ),
        role(
            "system:auth-delegator",
            vec![
                r("create", "authentication.k8s.io", "tokenreviews"),
                r("create", "authorization.k8s.io", "subjectaccessreviews"),
            ],
        ),
        role("system:kube-aggregator", vec![r(READ, "-", "services endpoints")]),
        role("system:kube-controller-manager", kube_controller_manager()),
        role("system:kube-dns", vec![r("list watch", "-", "endpoints services")]),
        role(
            "system:persistent-volume-provisioner",
            vec![
                r("get list watch create delete", "-", "persistentvolumes"),
                r("get list watch update", "-", "persistentvolumeclaims"),
                r(READ, "storage.k8s.io", "storageclasses"),
                r("watch", "-", "events"),
                super::events(),
            ],
        ),
        role(
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            vec![r("create", "certificates.k8s.io", "certificatesigningrequests/nodeclient")],
        ),
        role(
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            vec![r("create", "certificates.k8s.io", "certificatesigningrequests/selfnodeclient")],
        ),
        role(
            "system:volume-scheduler",
            vec![
                r("get list watch patch update", "-", "persistentvolumes"),
                r(READ, "storage.k8s.io", "storageclasses"),
                r("get list watch patch update", "-", "persistentvolumeclaims"),
            ],
        ),
        approver("legacy-unknown-approver", "kubernetes.io/legacy-unknown"),
        approver("kubelet-serving-approver", "kubernetes.io/kubelet-serving"),
        approver("kube-apiserver-client-approver", "kubernetes.io/kube-apiserver-client"),
        approver(
            "kube-apiserver-client-kubelet-approver",
            "kubernetes.io/kube-apiserver-client-kubelet",
        ),
        role(
            "system:service-account-issuer-discovery",
            vec![u("get", "/.well-known/openid-configuration /openid/v1/jwks")],
        ),
        role(
            "system:node-proxier",
            vec![
                r("list watch", "-", "services endpoints"),
                r(READ, "-", "nodes"),
                super::events(),
                r("list watch", "discovery.k8s.io", "endpointslices"),
            ],
        ),
        role("system:kube-scheduler", kube_scheduler()),
    ]
}

/// `system:certificates.k8s.io:<suffix>`: approving CSRs for one built-in
/// signer.
fn approver(suffix: &str, signer: &str) -> Role {
    let name = format!("system:certificates.k8s.io:{suffix}");
    role(
        name,
        vec![r("approve", "certificates.k8s.io", "signers").names(signer)],
    )
}

fn aggregate_to_edit() -> Vec<super::Rule> {
    vec![
        r(
            READ,
            "-",
            "pods/attach pods/proxy pods/exec pods/portforward secrets services/proxy",
        ),
        r("impersonate", "-", "serviceaccounts"),
        r(
            WRITE,
            "-",
            "pods pods/attach pods/proxy pods/exec pods/portforward",
        ),
        r("create", "-", "pods/eviction"),
        r(
            WRITE,
            "-",
            "replicationcontrollers replicationcontrollers/scale serviceaccounts services \
             services/proxy persistentvolumeclaims configmaps secrets events",
        ),
        r("create", "-", "serviceaccounts/token"),
        r(
            WRITE,
            "apps",
            "statefulsets statefulsets/scale daemonsets deployments deployments/scale \
             deployments/rollback replicasets replicasets/scale",
        ),
        r(WRITE, "autoscaling", "horizontalpodautoscalers"),
        r(WRITE, "batch", "jobs cronjobs"),
        r(
            WRITE,
            "extensions",
            "daemonsets deployments deployments/scale deployments/rollback ingresses \
             replicasets replicasets/scale replicationcontrollers/scale networkpolicies",
        ),
        r(WRITE, "policy", "poddisruptionbudgets"),
        r(WRITE, "networking.k8s.io", "ingresses networkpolicies"),
        r(READ_WRITE, "coordination.k8s.io", "leases"),
    ]
}

fn aggregate_to_view() -> Vec<super::Rule> {
    vec![
        r(
            READ,
            "-",
            "pods replicationcontrollers replicationcontrollers/scale serviceaccounts services \
             services/status endpoints persistentvolumeclaims persistentvolumeclaims/status configmaps",
        ),
        r(
            READ,
            "-",
            "limitranges resourcequotas bindings events pods/status resourcequotas/status \
             namespaces/status replicationcontrollers/status pods/log",
        ),
        r(READ, "-", "namespaces"),
        r(READ, "discovery.k8s.io", "endpointslices"),
        r(
            READ,
            "apps",
            "controllerrevisions statefulsets statefulsets/status statefulsets/scale daemonsets \
             daemonsets/status deployments deployments/status deployments/scale replicasets \
             replicasets/status replicasets/scale",
        ),
        r(READ, "autoscaling", "horizontalpodautoscalers horizontalpodautoscalers/status"),
        r(READ, "batch", "jobs cronjobs cronjobs/status jobs/status"),
        r(
            READ,
            "extensions",
            "daemonsets daemonsets/status deployments deployments/scale deployments/status \
             ingresses ingresses/status replicasets replicasets/scale replicasets/status \
             replicationcontrollers/scale networkpolicies",
        ),
        r(READ, "policy", "poddisruptionbudgets poddisruptionbudgets/status"),
        r(READ, "networking.k8s.io", "ingresses ingresses/status networkpolicies"),
    ]
}

fn node() -> Vec<super::Rule> {
    vec![
        r("create", "authentication.k8s.io", "tokenreviews"),
        r(
            "create",
            "authorization.k8s.io",
            "subjectaccessreviews localsubjectaccessreviews",
        ),
        r(READ, "-", "services"),
        r("create get list watch", "-", "nodes"),
        r("update patch", "-", "nodes/status"),
        r("update patch", "-", "nodes"),
        r("create update patch", "-", "events"),
        r(READ, "-", "pods"),
        r("create delete", "-", "pods"),
        r("update patch", "-", "pods/status"),
        r("create", "-", "pods/eviction"),
        r(READ, "-", "secrets configmaps"),
        r("get", "-", "persistentvolumeclaims persistentvolumes"),
        r("get", "-", "endpoints"),
        r(
            "create get list watch",
            "certificates.k8s.io",
            "certificatesigningrequests",
        ),
        r(
            "get create update patch delete",
            "coordination.k8s.io",
            "leases",
        ),
        r("get", "storage.k8s.io", "volumeattachments"),
        r("create", "-", "serviceaccounts/token"),
        r("get update patch", "-", "persistentvolumeclaims/status"),
        r(READ, "storage.k8s.io", "csidrivers"),
        r(
            "get create update patch delete",
            "storage.k8s.io",
            "csinodes",
        ),
        r(READ, "node.k8s.io", "runtimeclasses"),
    ]
}

fn kube_controller_manager() -> Vec<super::Rule> {
    vec![
        super::events(),
        r("create", "coordination.k8s.io", "leases"),
        r("get update", "coordination.k8s.io", "leases").names("kube-controller-manager"),
        r("create", "-", "secrets serviceaccounts"),
        r("delete", "-", "secrets"),
        r("get", "-", "namespaces configmaps secrets serviceaccounts"),
        r("update", "-", "secrets serviceaccounts"),
        r("create", "authentication.k8s.io", "tokenreviews"),
        r("create", "authorization.k8s.io", "subjectaccessreviews"),
        r("list watch", "*", "*"),
        r("create", "-", "serviceaccounts/token"),
    ]
}

fn kube_scheduler() -> Vec<super::Rule> {
    vec![
        super::events(),
        r("create", "coordination.k8s.io", "leases"),
        r("get update", "coordination.k8s.io", "leases").names("kube-scheduler"),
        r(READ, "-", "nodes"),
        r("get list watch delete", "-", "pods"),
        r("create", "-", "pods/binding bindings"),
        r("patch update", "-", "pods/status"),
        r(READ, "-", "replicationcontrollers services"),
        r(READ, "apps extensions", "replicasets"),
        r(READ, "apps", "statefulsets"),
        r(READ, "policy", "poddisruptionbudgets"),
        r(READ, "-", "persistentvolumeclaims persistentvolumes"),
        r("create", "authentication.k8s.io", "tokenreviews"),
        r("create", "authorization.k8s.io", "subjectaccessreviews"),
        r(READ, "storage.k8s.io", "csinodes"),
        r(READ, "-", "namespaces"),
        r(READ, "storage.k8s.io", "csidrivers"),
        r(READ, "storage.k8s.io", "csistoragecapacities"),
    ]
}

pub(super) fn cluster_role_bindings() -> Vec<Binding> {
    vec![
        Binding::cluster("cluster-admin").groups(&[MASTERS]),
        Binding::cluster("system:monitoring").groups(&["system:monitoring"]),
        Binding::cluster("system:discovery").groups(&[AUTHENTICATED]),
        Binding::cluster("system:basic-user").groups(&[AUTHENTICATED]),
        Binding::cluster("system:public-info-viewer").groups(&[AUTHENTICATED, UNAUTHENTICATED]),
        Binding::cluster("system:node-proxier").users(&["system:kube-proxy"]),
        Binding::cluster("system:kube-controller-manager")
            .users(&["system:kube-controller-manager"]),
        Binding::cluster("system:kube-dns").service_account("kube-system", "kube-dns"),
        Binding::cluster("system:kube-scheduler").users(&["system:kube-scheduler"]),
        Binding::cluster("system:volume-scheduler").users(&["system:kube-scheduler"]),
        // Kept without subjects since the Node authorizer took over (1.8), so
        // reconciliation can drop the old `system:nodes` subject.
        Binding::cluster("system:node"),
        Binding::cluster("system:service-account-issuer-discovery")
            .groups(&["system:serviceaccounts"]),
    ]
}
