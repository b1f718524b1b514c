//! The node's masquerade table, pure: pods keep their own addresses
//! towards every pod range of the cluster (no NAT between pods) and take
//! the node's address towards everything else, as the CNI bridge's `ipMasq`
//! would but without hiding pods from each other across nodes.

use std::fmt::Write as _;

use crate::runtime::ipam::Cidr;

/// The node's masquerade table name (`berth_net_` and a hash of the node name).
pub fn table_name(node: &str) -> String {
    format!("berth_net_{:08x}", crate::config::name_hash(node))
}

/// The nft script that replaces table `table`: traffic from `own` (this
/// node's podCIDR) to anything outside `pod_cidrs` is masqueraded.
pub fn script(table: &str, own: &Cidr, pod_cidrs: &[Cidr]) -> String {
    let mut ranges: Vec<String> = pod_cidrs.iter().map(Cidr::to_string).collect();
    ranges.push(own.to_string());
    ranges.sort();
    ranges.dedup();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "table ip {table} {{}}\ndelete table ip {table}\ntable ip {table} {{"
    );
    let _ = writeln!(
        out,
        "  set pod_cidrs {{\n    type ipv4_addr\n    flags interval\n    elements = {{ {} }}\n  }}",
        ranges.join(", ")
    );
    let _ = writeln!(
        out,
        "  chain postrouting {{\n    type nat hook postrouting priority 100; policy accept;\n    ip saddr {own} ip daddr != @pod_cidrs masquerade\n  }}"
    );
    let _ = writeln!(out, "}}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_are_masqueraded_only_outside_the_pod_ranges() {
        let own: Cidr = "10.42.0.0/24".parse().unwrap();
        let peers: Vec<Cidr> = vec!["10.42.1.0/24".parse().unwrap(), own];
        let text = script("berth_net_1", &own, &peers);
        assert!(
            text.contains("elements = { 10.42.0.0/24, 10.42.1.0/24 }"),
            "{text}"
        );
        assert!(
            text.contains("ip saddr 10.42.0.0/24 ip daddr != @pod_cidrs masquerade"),
            "{text}"
        );
    }

    #[test]
    fn nft_accepts_the_script() {
        let own: Cidr = "10.42.0.0/24".parse().unwrap();
        let checked = crate::network::nft::check(&script("berth_net_check", &own, &[]));
        assert!(checked.is_ok(), "{checked:?}");
    }
}
