//! The default Roles and RoleBindings in `kube-system` and `kube-public`
//! (upstream's `namespace_policy.go`): delegated authentication, leader
//! election for the scheduler and controller manager, and the bootstrap-token
//! controllers.

use super::{events, r, role, Binding, Role};

const SYSTEM: &str = "kube-system";
const PUBLIC: &str = "kube-public";

/// The rules of a leader-locking role: the lock of `component` (as a
/// ConfigMap, from before leases), leases and lease candidates.
fn leader_locking(component: &str) -> Vec<super::Rule> {
    vec![
        r("watch", "-", "configmaps"),
        r("get update", "-", "configmaps").names(component),
        r(
            "get watch list create update",
            "coordination.k8s.io",
            "leases",
        ),
        r(
            "get watch list create update",
            "coordination.k8s.io",
            "leasecandidates",
        ),
    ]
}

pub(super) fn roles() -> Vec<(&'static str, Role)> {
    vec![
        (
            SYSTEM,
            role(
                "extension-apiserver-authentication-reader",
                vec![r("get list watch", "-", "configmaps")
                    .names("extension-apiserver-authentication")],
            ),
        ),
        (
            SYSTEM,
            role(
                "system:controller:bootstrap-signer",
                vec![r("get list watch", "-", "secrets")],
            ),
        ),
        (
            SYSTEM,
            role(
                "system:controller:cloud-provider",
                vec![r("create get list watch", "-", "configmaps")],
            ),
        ),
        (
            SYSTEM,
            role(
                "system:controller:token-cleaner",
                vec![r("get list watch delete", "-", "secrets"), events()],
            ),
        ),
        (
            SYSTEM,
            role(
                "system::leader-locking-kube-controller-manager",
                leader_locking("kube-controller-manager"),
            ),
        ),
        (
            SYSTEM,
            role(
                "system::leader-locking-kube-scheduler",
                leader_locking("kube-scheduler"),
            ),
        ),
        (
            PUBLIC,
            role(
                "system:controller:bootstrap-signer",
                vec![
                    r("get list watch", "-", "configmaps"),
                    r("update", "-", "configmaps").names("cluster-info"),
                    events(),
                ],
            ),
        ),
    ]
}

pub(super) fn role_bindings() -> Vec<(&'static str, Binding)> {
    vec![
        (
            SYSTEM,
            Binding::role("extension-apiserver-authentication-reader")
                .named("system::extension-apiserver-authentication-reader")
                .users(&["system:kube-controller-manager", "system:kube-scheduler"]),
        ),
        (
            SYSTEM,
            Binding::role("system::leader-locking-kube-controller-manager")
                .users(&["system:kube-controller-manager"])
                .service_account(SYSTEM, "kube-controller-manager")
                .service_account(SYSTEM, "leader-election-controller"),
        ),
        (
            SYSTEM,
            Binding::role("system::leader-locking-kube-scheduler")
                .users(&["system:kube-scheduler"])
                .service_account(SYSTEM, "kube-scheduler"),
        ),
        (
            SYSTEM,
            Binding::role("system:controller:bootstrap-signer")
                .service_account(SYSTEM, "bootstrap-signer"),
        ),
        (
            SYSTEM,
            Binding::role("system:controller:cloud-provider")
                .service_account(SYSTEM, "cloud-provider"),
        ),
        (
            SYSTEM,
            Binding::role("system:controller:token-cleaner")
                .service_account(SYSTEM, "token-cleaner"),
        ),
        (
            PUBLIC,
            Binding::role("system:controller:bootstrap-signer")
                .service_account(SYSTEM, "bootstrap-signer"),
        ),
    ]
}
