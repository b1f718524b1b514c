//! What an authenticated user may do: `system:masters` everything (and may
//! impersonate, checked as the impersonated user); every other user what RBAC
//! grants it. Nodes get their rights through the bindings below, which
//! `berth server` keeps at each start — kubeadm's bootstrap bindings plus a
//! stand-in for the Node authorizer (group `system:nodes` bound to the
//! `system:node` role, to kube-proxy's, and to reading namespaces,
//! NetworkPolicies and Ingresses, as the agent does all those jobs), with NodeRestriction's
//! rule that a node changes only its own Node and Lease.

use berth_api::bootstrap_token::DEFAULT_GROUP;
use http::HeaderMap;
use serde_json::{json, Value};

use super::authn;
use super::errors::ApiError;
use super::objects::{target, Objects};
use super::request::{ResourceRequest, Verb};
use super::reviews::{self, UserInfo};

/// The group node client certificates carry.
pub const NODES_GROUP: &str = "system:nodes";

/// Lets `user` make `req`, or answers 403 Forbidden with upstream's text.
pub async fn authorize(
    objects: &Objects,
    req: &ResourceRequest,
    headers: &HeaderMap,
    user: &UserInfo,
) -> Result<(), ApiError> {
    if authn::is_superuser(user) {
        return reviews::authorize_impersonated(objects, req, headers).await;
    }
    if let Some(target) = headers
        .get("impersonate-user")
        .and_then(|v| v.to_str().ok())
    {
        return Err(ApiError::Forbidden(format!(
            "users \"{target}\" is forbidden: User \"{}\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope",
            user.username
        )));
    }
    reviews::authorize_user(objects, req, user).await?;
    let Some(node) = node_name(user) else {
        return Ok(());
    };
    let r = &req.resource;
    match node_restriction(
        node,
        &r.group,
        &r.plural,
        req.namespace.as_deref(),
        req.name.as_deref(),
        req.verb.name(),
    ) {
        Some(why) => Err(ApiError::forbidden(
            &target(r, req.name.as_deref().unwrap_or_default()),
            why,
        )),
        None => Ok(()),
    }
}

/// The node a credential belongs to: `NAME` of user `system:node:NAME` in
/// group `system:nodes`.
pub fn node_name(user: &UserInfo) -> Option<&str> {
    let name = user.username.strip_prefix("system:node:")?;
    (!name.is_empty() && user.groups.iter().any(|g| g == NODES_GROUP)).then_some(name)
}

/// Upstream's NodeRestriction for what a node changes by name: only its own
/// Node and its own Lease in `kube-node-lease`; the reason to refuse, if any.
pub fn node_restriction(
    node: &str,
    group: &str,
    plural: &str,
    namespace: Option<&str>,
    name: Option<&str>,
    verb: &str,
) -> Option<String> {
    let name = name.filter(|n| !n.is_empty())?;
    if !matches!(verb, "update" | "patch" | "delete") || name == node {
        return None;
    }
    match (group, plural, namespace) {
        ("", "nodes", _) => Some(format!(
            "node \"{node}\" is not allowed to modify node \"{name}\""
        )),
        ("coordination.k8s.io", "leases", Some("kube-node-lease")) => {
            Some("can only access node lease with the same name as the requesting node".into())
        }
        _ => None,
    }
}

/// Whether `req` creates a CertificateSigningRequest (whose requestor the
/// server then records).
pub fn is_csr_create(req: &ResourceRequest) -> bool {
    req.verb == Verb::Create
        && req.subresource.is_none()
        && req.resource.group == "certificates.k8s.io"
        && req.resource.plural == "certificatesigningrequests"
}

fn group_binding(name: &str, role: &str, group: &str) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {
            "name": name,
            "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
        },
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}],
    })
}

/// The ClusterRoles with what the agent does beyond kubelet's and
/// kube-proxy's roles: it reads namespaces and NetworkPolicies (it enforces
/// them) and Ingresses and IngressClasses (its ingress proxy routes them),
/// and it is the deleter of the `local-path` volumes on its disk, so
/// it follows PersistentVolumes and deletes the released ones it emptied.
pub fn node_roles() -> Vec<Value> {
    vec![
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {
                "name": "berth:node-network",
                "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
            },
            "rules": [
                {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies", "ingresses", "ingressclasses"], "verbs": ["get", "list", "watch"]},
            ],
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {
                "name": "berth:node-local-path",
                "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
            },
            "rules": [
                {"apiGroups": [""], "resources": ["persistentvolumes"], "verbs": ["get", "list", "watch", "delete"]},
            ],
        }),
    ]
}

/// The ClusterRoleBindings that let bootstrap tokens ask for node
/// certificates (auto-approved) and nodes renew theirs and do their work.
pub fn node_bindings() -> Vec<Value> {
    vec![
        group_binding(
            "berth:kubelet-bootstrap",
            "system:node-bootstrapper",
            DEFAULT_GROUP,
        ),
        group_binding(
            "berth:node-autoapprove-bootstrap",
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            DEFAULT_GROUP,
        ),
        group_binding(
            "berth:node-autoapprove-certificate-rotation",
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            NODES_GROUP,
        ),
        group_binding("berth:nodes", "system:node", NODES_GROUP),
        group_binding("berth:node-proxier", "system:node-proxier", NODES_GROUP),
        group_binding("berth:node-network", "berth:node-network", NODES_GROUP),
        group_binding(
            "berth:node-local-path",
            "berth:node-local-path",
            NODES_GROUP,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_change_only_their_own_node_and_lease() {
        let lease = Some("kube-node-lease");
        let cases = [
            ("", "nodes", None, Some("n1"), "patch", None),
            (
                "",
                "nodes",
                None,
                Some("n2"),
                "patch",
                Some("node \"n1\" is not allowed to modify node \"n2\""),
            ),
            (
                "",
                "nodes",
                None,
                Some("n2"),
                "delete",
                Some("node \"n1\" is not allowed to modify node \"n2\""),
            ),
            ("", "nodes", None, Some("n2"), "get", None),
            (
                "coordination.k8s.io",
                "leases",
                lease,
                Some("n1"),
                "update",
                None,
            ),
            (
                "coordination.k8s.io",
                "leases",
                lease,
                Some("n2"),
                "update",
                Some("can only access node lease with the same name as the requesting node"),
            ),
            (
                "coordination.k8s.io",
                "leases",
                Some("kube-system"),
                Some("x"),
                "update",
                None,
            ),
            ("", "pods", Some("default"), Some("web"), "delete", None),
        ];
        for (group, plural, namespace, name, verb, want) in cases {
            assert_eq!(
                node_restriction("n1", group, plural, namespace, name, verb).as_deref(),
                want,
                "{verb} {group}/{plural} {name:?}"
            );
        }
    }

    #[test]
    fn node_names_come_from_node_credentials_only() {
        let user = |name: &str, groups: &[&str]| UserInfo {
            username: name.into(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        };
        assert_eq!(
            node_name(&user("system:node:n1", &[NODES_GROUP])),
            Some("n1")
        );
        assert_eq!(
            node_name(&user("system:node:n1", &["system:authenticated"])),
            None
        );
        assert_eq!(node_name(&user("system:node:", &[NODES_GROUP])), None);
        assert_eq!(node_name(&user("admin", &[NODES_GROUP])), None);
    }
    use berth_api::rbac::evaluate::{self, Policy, Request};
    use k8s_openapi::api::authorization::v1::ResourceAttributes;

    fn allows(user: &str, groups: &[&str], verb: &str, group: &str, resource: &str) -> bool {
        let mut cluster_roles = berth_api::rbac::bootstrap::cluster_roles();
        cluster_roles.extend(node_roles());
        let bindings = node_bindings();
        let (resource, subresource) = match resource.split_once('/') {
            Some((r, s)) => (r, Some(s.to_owned())),
            None => (resource, None),
        };
        let attributes = ResourceAttributes {
            verb: Some(verb.into()),
            group: Some(group.into()),
            resource: Some(resource.into()),
            subresource,
            ..ResourceAttributes::default()
        };
        let groups: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
        let policy = Policy {
            roles: &[],
            cluster_roles: &cluster_roles,
            role_bindings: &[],
            cluster_role_bindings: &bindings,
        };
        evaluate::allows(user, &groups, Request::Resource(&attributes), &policy).0
    }

    #[test]
    fn bootstrappers_and_nodes_get_what_joining_needs() {
        let boot = [
            "system:bootstrappers",
            DEFAULT_GROUP,
            "system:authenticated",
        ];
        let node = [NODES_GROUP, "system:authenticated"];
        let cases = [
            (
                &boot[..],
                "create",
                "certificates.k8s.io",
                "certificatesigningrequests",
                true,
            ),
            (
                &boot[..],
                "get",
                "certificates.k8s.io",
                "certificatesigningrequests",
                true,
            ),
            (
                &boot[..],
                "create",
                "certificates.k8s.io",
                "certificatesigningrequests/nodeclient",
                true,
            ),
            (&boot[..], "list", "", "pods", false),
            (&boot[..], "create", "", "nodes", false),
            (
                &node[..],
                "create",
                "certificates.k8s.io",
                "certificatesigningrequests/selfnodeclient",
                true,
            ),
            (
                &node[..],
                "create",
                "certificates.k8s.io",
                "certificatesigningrequests/nodeclient",
                false,
            ),
            (&node[..], "patch", "", "nodes/status", true),
            (
                &node[..],
                "list",
                "discovery.k8s.io",
                "endpointslices",
                true,
            ),
            (&node[..], "delete", "", "namespaces", false),
            (&node[..], "create", "apps", "deployments", false),
        ];
        for (groups, verb, group, resource, want) in cases {
            assert_eq!(
                allows("someone", groups, verb, group, resource),
                want,
                "{groups:?} {verb} {group}/{resource}"
            );
        }
    }
}
