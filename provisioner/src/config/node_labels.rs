//! Which labels a node may give itself: kubelet refuses `--node-labels` in the
//! `kubernetes.io` and `k8s.io` namespaces except a known set and the
//! `kubelet.kubernetes.io` / `node.kubernetes.io` prefixes, so a pool asking
//! for another would never come up.

/// Keys in the reserved namespaces a kubelet may still set.
pub const ALLOWED_KEYS: [&str; 11] = [
    "beta.kubernetes.io/arch",
    "beta.kubernetes.io/instance-type",
    "beta.kubernetes.io/os",
    "failure-domain.beta.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "kubernetes.io/arch",
    "kubernetes.io/hostname",
    "kubernetes.io/os",
    "node.kubernetes.io/instance-type",
    "topology.kubernetes.io/region",
    "topology.kubernetes.io/zone",
];

/// Namespaces (and their subdomains) a kubelet may set any key in.
pub const ALLOWED_NAMESPACES: [&str; 2] = ["kubelet.kubernetes.io", "node.kubernetes.io"];

fn in_namespace(namespace: &str, domain: &str) -> bool {
    namespace == domain || namespace.ends_with(&format!(".{domain}"))
}

/// Whether a node may register with label `key`; the reason when it may not.
pub fn check_node_label(key: &str) -> Result<(), String> {
    let namespace = key.split_once('/').map_or("", |(prefix, _)| prefix);
    let reserved = in_namespace(namespace, "kubernetes.io") || in_namespace(namespace, "k8s.io");
    let allowed = ALLOWED_KEYS.contains(&key)
        || ALLOWED_NAMESPACES
            .iter()
            .any(|domain| in_namespace(namespace, domain));
    if !reserved || allowed {
        return Ok(());
    }
    Err(format!(
        "unknown 'kubernetes.io' or 'k8s.io' label: node labels in the 'kubernetes.io' namespace must begin with an allowed prefix ({}) or be in the specifically allowed set ({})",
        ALLOWED_NAMESPACES.join(", "),
        ALLOWED_KEYS.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_may_only_set_some_kubernetes_io_labels() {
        let cases = [
            ("tier", true),
            ("example.com/tier", true),
            ("topology.kubernetes.io/zone", true),
            ("node.kubernetes.io/instance-type", true),
            ("node.kubernetes.io/anything", true),
            ("team.node.kubernetes.io/x", true),
            ("kubelet.kubernetes.io/x", true),
            ("node-role.kubernetes.io/worker", false),
            ("kubernetes.io/role", false),
            ("node-restriction.kubernetes.io/x", false),
            ("example.k8s.io/x", false),
            ("k8s.io/x", false),
            ("notkubernetes.io/x", true),
        ];
        for (key, allowed) in cases {
            assert_eq!(check_node_label(key).is_ok(), allowed, "{key}");
        }
    }
}
