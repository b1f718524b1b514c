//! One ClusterRole per kube-controller-manager controller (upstream's
//! `controller_policy.go`), each bound to the controller's service account in
//! `kube-system`. The set is what 1.33 creates with default feature gates:
//! roles behind gates that are off by default there (dynamic resource
//! allocation, volume attributes classes, cluster trust bundles, storage
//! version APIs) are left out.

use super::{events, r, role, Role};

/// The prefix of every controller role; the rest is the service account name.
pub(super) const PREFIX: &str = "system:controller:";

const READ: &str = "get list watch";
const EVERYTHING_ON_REVISIONS: &str = "create delete get list patch update watch";

pub(super) fn controller_roles() -> Vec<Role> {
    vec![
        role(
            "system:controller:attachdetach-controller",
            vec![
                r(
                    "list watch",
                    "-",
                    "persistentvolumes persistentvolumeclaims",
                ),
                r(READ, "-", "nodes"),
                r("patch update", "-", "nodes/status"),
                r("list watch", "-", "pods"),
                events(),
                r(
                    "get create delete list watch",
                    "storage.k8s.io",
                    "volumeattachments",
                ),
                r(READ, "storage.k8s.io", "csidrivers"),
                r(READ, "storage.k8s.io", "csinodes"),
            ],
        ),
        role(
            "system:controller:clusterrole-aggregation-controller",
            vec![r(
                "escalate get list watch update patch",
                "rbac.authorization.k8s.io",
                "clusterroles",
            )],
        ),
        role(
            "system:controller:cronjob-controller",
            vec![
                r("get list watch update", "batch", "cronjobs"),
                r("get list watch create update delete patch", "batch", "jobs"),
                r("update", "batch", "cronjobs/status"),
                r("update", "batch", "cronjobs/finalizers"),
                r("list watch delete", "-", "pods"),
                events(),
            ],
        ),
        role(
            "system:controller:daemon-set-controller",
            vec![
                r(READ, "extensions apps", "daemonsets"),
                r("update", "extensions apps", "daemonsets/status"),
                r("update", "extensions apps", "daemonsets/finalizers"),
                r("list watch", "-", "nodes"),
                r("list watch create delete patch", "-", "pods"),
                r("create", "-", "pods/binding"),
                r(EVERYTHING_ON_REVISIONS, "apps", "controllerrevisions"),
                events(),
            ],
        ),
        role(
            "system:controller:deployment-controller",
            vec![
                r("get list watch update", "extensions apps", "deployments"),
                r("update", "extensions apps", "deployments/status"),
                r("update", "extensions apps", "deployments/finalizers"),
                r(
                    "get list watch create update patch delete",
                    "apps extensions",
                    "replicasets",
                ),
                r("get list watch update", "-", "pods"),
                events(),
            ],
        ),
        role(
            "system:controller:disruption-controller",
            vec![
                r(READ, "extensions apps", "deployments"),
                r(READ, "apps extensions", "replicasets"),
                r(READ, "-", "replicationcontrollers"),
                r(READ, "policy", "poddisruptionbudgets"),
                r(READ, "apps", "statefulsets"),
                r("update", "policy", "poddisruptionbudgets/status"),
                r("patch update", "-", "pods/status"),
                r("get", "*", "*/scale"),
                events(),
            ],
        ),
        role(
            "system:controller:endpoint-controller",
            vec![
                r(READ, "-", "services pods"),
                r("get list watch create update delete", "-", "endpoints"),
                r("create", "-", "endpoints/restricted"),
                events(),
            ],
        ),
        role(
            "system:controller:endpointslice-controller",
            vec![
                r(READ, "-", "services pods nodes"),
                r("update", "-", "services/finalizers"),
                r(
                    "get list watch create update delete",
                    "discovery.k8s.io",
                    "endpointslices",
                ),
                events(),
            ],
        ),
        role(
            "system:controller:endpointslicemirroring-controller",
            vec![
                r(READ, "-", "services endpoints"),
                r("update", "-", "services/finalizers"),
                r("update", "-", "endpoints/finalizers"),
                r(
                    "get list watch create update delete",
                    "discovery.k8s.io",
                    "endpointslices",
                ),
                events(),
            ],
        ),
        role(
            "system:controller:expand-controller",
            vec![
                r("get list watch update patch", "-", "persistentvolumes"),
                r("update patch", "-", "persistentvolumeclaims/status"),
                r(READ, "-", "persistentvolumeclaims"),
                events(),
                // the in-tree portworx volume plugin
                r("get", "-", "services"),
            ],
        ),
        role(
            "system:controller:ephemeral-volume-controller",
            vec![
                r(READ, "-", "pods"),
                r("update", "-", "pods/finalizers"),
                r("get list watch create", "-", "persistentvolumeclaims"),
                events(),
            ],
        ),
        role(
            "system:controller:generic-garbage-collector",
            vec![r("get list watch patch update delete", "*", "*"), events()],
        ),
        role(
            "system:controller:horizontal-pod-autoscaler",
            vec![
                r(READ, "autoscaling", "horizontalpodautoscalers"),
                r("update", "autoscaling", "horizontalpodautoscalers/status"),
                r("get update", "*", "*/scale"),
                r("list watch", "-", "pods"),
                r("list watch", "metrics.k8s.io", "pods"),
                r(READ, "custom.metrics.k8s.io", "*"),
                r(READ, "external.metrics.k8s.io", "*"),
                events(),
            ],
        ),
        role(
            "system:controller:job-controller",
            vec![
                r("get list watch update patch", "batch", "jobs"),
                r("update", "batch", "jobs/status"),
                r("update", "batch", "jobs/finalizers"),
                r("list watch create delete patch", "-", "pods"),
                events(),
            ],
        ),
        role(
            "system:controller:namespace-controller",
            vec![
                r("get list watch delete", "-", "namespaces"),
                r("update", "-", "namespaces/finalize namespaces/status"),
                r("get list watch delete deletecollection", "*", "*"),
            ],
        ),
        role(
            "system:controller:node-controller",
            vec![
                r("get list watch update delete patch", "-", "nodes"),
                r("patch update", "-", "nodes/status"),
                r("patch update", "-", "pods/status"),
                r("list watch get delete", "-", "pods"),
                events(),
            ],
        ),
        role(
            "system:controller:persistent-volume-binder",
            vec![
                r(
                    "get list watch update create delete",
                    "-",
                    "persistentvolumes",
                ),
                r("update", "-", "persistentvolumes/status"),
                r("get list watch update", "-", "persistentvolumeclaims"),
                r("update", "-", "persistentvolumeclaims/status"),
                r("list watch get create delete", "-", "pods"),
                r(READ, "storage.k8s.io", "storageclasses"),
                r("list watch", "-", "nodes"),
                events(),
                // the recycler watches its pod's events
                r("watch", "-", "events"),
                // the in-tree portworx volume plugin
                r("get", "-", "services"),
            ],
        ),
        role(
            "system:controller:pod-garbage-collector",
            vec![
                r("list watch delete", "-", "pods"),
                r(READ, "-", "nodes"),
                r("patch", "-", "pods/status"),
            ],
        ),
        role(
            "system:controller:replicaset-controller",
            vec![
                r("get list watch update", "apps extensions", "replicasets"),
                r("update", "apps extensions", "replicasets/status"),
                r("update", "apps extensions", "replicasets/finalizers"),
                r("list watch patch create delete", "-", "pods"),
                events(),
            ],
        ),
        role(
            "system:controller:replication-controller",
            vec![
                r("get list watch update", "-", "replicationcontrollers"),
                r("update", "-", "replicationcontrollers/status"),
                r("update", "-", "replicationcontrollers/finalizers"),
                r("list watch patch create delete", "-", "pods"),
                events(),
            ],
        ),
        role(
            "system:controller:resourcequota-controller",
            vec![
                r("list watch", "*", "*"),
                r("update", "-", "resourcequotas/status"),
                events(),
            ],
        ),
        role(
            "system:controller:route-controller",
            vec![
                r("list watch", "-", "nodes"),
                r("patch", "-", "nodes/status"),
                events(),
            ],
        ),
        role(
            "system:controller:service-account-controller",
            vec![r("create", "-", "serviceaccounts"), events()],
        ),
        role(
            "system:controller:service-controller",
            vec![
                r(READ, "-", "services"),
                r("patch update", "-", "services/status"),
                r("list watch", "-", "nodes"),
                events(),
            ],
        ),
        // MultiCIDRServiceAllocator is GA (on) in 1.33.
        role(
            "system:controller:service-cidrs-controller",
            vec![
                r(
                    "get list watch patch update",
                    "networking.k8s.io",
                    "servicecidrs",
                ),
                r(
                    "patch update",
                    "networking.k8s.io",
                    "servicecidrs/finalizers",
                ),
                r("patch update", "networking.k8s.io", "servicecidrs/status"),
                r(READ, "networking.k8s.io", "ipaddresses"),
                events(),
            ],
        ),
        role(
            "system:controller:statefulset-controller",
            vec![
                r("list watch", "-", "pods"),
                r(READ, "apps", "statefulsets"),
                r("update", "apps", "statefulsets/status"),
                r("update", "apps", "statefulsets/finalizers"),
                r("get create delete update patch", "-", "pods"),
                r(EVERYTHING_ON_REVISIONS, "apps", "controllerrevisions"),
                r("get create list watch", "-", "persistentvolumeclaims"),
                r("update delete", "-", "persistentvolumeclaims"),
                r("update", "-", "pods/finalizers"),
                events(),
            ],
        ),
        role(
            "system:controller:ttl-controller",
            vec![r("update patch list watch", "-", "nodes"), events()],
        ),
        role(
            "system:controller:certificate-controller",
            vec![
                r(
                    "get list watch delete",
                    "certificates.k8s.io",
                    "certificatesigningrequests",
                ),
                r(
                    "update",
                    "certificates.k8s.io",
                    "certificatesigningrequests/status certificatesigningrequests/approval",
                ),
                r("approve", "certificates.k8s.io", "signers")
                    .names("kubernetes.io/kube-apiserver-client-kubelet"),
                r("sign", "certificates.k8s.io", "signers").names(
                    "kubernetes.io/legacy-unknown kubernetes.io/kube-apiserver-client \
                     kubernetes.io/kube-apiserver-client-kubelet kubernetes.io/kubelet-serving",
                ),
                r("create", "authorization.k8s.io", "subjectaccessreviews"),
                events(),
            ],
        ),
        role(
            "system:controller:pvc-protection-controller",
            vec![
                r("get list watch update", "-", "persistentvolumeclaims"),
                r("list watch get", "-", "pods"),
                events(),
            ],
        ),
        role(
            "system:controller:pv-protection-controller",
            vec![
                r("get list watch update", "-", "persistentvolumes"),
                events(),
            ],
        ),
        role(
            "system:controller:ttl-after-finished-controller",
            vec![r("get list watch delete", "batch", "jobs"), events()],
        ),
        role(
            "system:controller:root-ca-cert-publisher",
            vec![r("create update", "-", "configmaps"), events()],
        ),
        role(
            "system:controller:validatingadmissionpolicy-status-controller",
            vec![
                r(
                    READ,
                    "admissionregistration.k8s.io",
                    "validatingadmissionpolicies",
                ),
                r(
                    "get patch update",
                    "admissionregistration.k8s.io",
                    "validatingadmissionpolicies/status",
                ),
                events(),
            ],
        ),
        role(
            "system:controller:legacy-service-account-token-cleaner",
            vec![
                r("get", "-", "configmaps")
                    .names("kube-apiserver-legacy-service-account-token-tracking"),
                r("patch delete", "-", "secrets"),
            ],
        ),
        // SELinuxChangePolicy is beta (on) in 1.33.
        role(
            "system:controller:selinux-warning-controller",
            vec![
                events(),
                r(READ, "-", "persistentvolumes"),
                r(READ, "-", "persistentvolumeclaims"),
                r(READ, "-", "pods"),
                r(READ, "storage.k8s.io", "csidrivers"),
            ],
        ),
    ]
}
