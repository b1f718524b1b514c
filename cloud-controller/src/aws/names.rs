//! The names and tags of a Service's AWS resources. Names are derived from
//! the cluster and the Service UID alone (at most 32 characters, ELBv2's
//! limit, as upstream), so any controller computes the same ones; the tags
//! are how resources are found again, after any restart.

use std::collections::BTreeMap;

/// The tag every resource of the cluster carries, as upstream
/// (`kubernetes.io/cluster/<cluster>=owned`).
pub fn cluster_tag(cluster: &str) -> String {
    format!("kubernetes.io/cluster/{cluster}")
}

/// The value of [`cluster_tag`] on resources the cluster made.
pub const OWNED: &str = "owned";

/// The upstream tag naming the Service, as `namespace/name`.
pub const SERVICE_NAME_TAG: &str = "kubernetes.io/service-name";

/// The Service's UID: the key resources are found by (a Service deleted and
/// re-created under the same name is another one).
pub const SERVICE_UID_TAG: &str = "berth.dev/service-uid";

/// The tags of every load balancer and target group of the Service.
pub fn tags(cluster: &str, service_key: &str, uid: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (cluster_tag(cluster), OWNED.to_owned()),
        (SERVICE_NAME_TAG.to_owned(), service_key.to_owned()),
        (SERVICE_UID_TAG.to_owned(), uid.to_owned()),
    ])
}

/// The network load balancer's name: `a`, a hash of cluster and UID, then
/// the UID's first hex digits (32 characters).
pub fn load_balancer(cluster: &str, uid: &str) -> String {
    let plain: String = uid.chars().filter(char::is_ascii_alphanumeric).collect();
    let head: String = plain.chars().take(15).collect();
    format!("a{:016x}{head}", fnv1a(&[cluster, uid]))
}

/// The target group of one Service port. Its port (the NodePort) cannot
/// change, so the NodePort is in the name: a moved NodePort is a new group.
pub fn target_group(cluster: &str, uid: &str, port: i32, node_port: i32) -> String {
    let hash = format!("{:016x}", fnv1a(&[cluster, uid]));
    format!("k8s-{}-{port}-{node_port}", &hash[..12])
}

/// FNV-1a, 64 bits: stable across releases and platforms (std's hasher is
/// not), which names that outlive the process need.
fn fnv1a(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain([0]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "6f1c2b0e-7d7a-4c1e-9a55-0b3d2f9e8a11";

    #[test]
    fn names_fit_elbv2_and_depend_on_cluster_and_uid() {
        let name = load_balancer("prod", UID);
        assert_eq!(name.len(), 32);
        assert!(name.starts_with('a') && name.ends_with("6f1c2b0e7d7a4c1"));
        assert_eq!(name, load_balancer("prod", UID), "deterministic");
        assert_ne!(name, load_balancer("staging", UID));
        let group = target_group("prod", UID, 65535, 32767);
        assert!(group.len() <= 32, "{group}");
        assert_ne!(group, target_group("prod", UID, 65535, 32766));
        assert!(group.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    }

    #[test]
    fn tags_name_cluster_service_and_uid() {
        let tags = tags("prod", "shop/web", UID);
        assert_eq!(tags["kubernetes.io/cluster/prod"], "owned");
        assert_eq!(tags[SERVICE_NAME_TAG], "shop/web");
        assert_eq!(tags[SERVICE_UID_TAG], UID);
    }
}
