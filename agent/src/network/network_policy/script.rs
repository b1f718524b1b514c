//! A [`Plan`] → the nft script that replaces this node's NetworkPolicy
//! table in one transaction. Addresses live in named sets, so a rule costs
//! one hash or interval lookup however many pods it names. In the `forward`
//! and `input` hooks (bridged IPv4 traffic passes the `ip` family hooks via
//! br_netfilter; routed and ClusterIP traffic after DNAT): replies of allowed
//! connections pass, an egress-isolated source must be allowed by an egress
//! rule, then an ingress-isolated destination by an ingress rule; traffic
//! from the node itself to its pods (and a pod's hairpin through a Service
//! back to itself) always passes, as upstream requires.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use super::addresses::Range;
use super::plan::{Direction, Plan, Policy};

/// The nft script that makes table `table` enforce `plan`. Declaring the
/// table, deleting it and defining it again in one script makes the change
/// atomic (nft applies a file as one transaction). A plan isolating no pod
/// leaves an empty table: no hook, no cost.
pub fn script(table: &str, plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "table ip {table} {{}}\ndelete table ip {table}\ntable ip {table} {{"
    );
    let ingress = plan.isolated(Direction::Ingress);
    let egress = plan.isolated(Direction::Egress);
    if !ingress.is_empty() || !egress.is_empty() {
        address_set(
            &mut out,
            "ingress_isolated",
            false,
            ingress.iter().map(Ipv4Addr::to_string),
        );
        address_set(
            &mut out,
            "egress_isolated",
            false,
            egress.iter().map(Ipv4Addr::to_string),
        );
        // A pod reaching itself through a Service comes back over the
        // bridge; upstream's proxy masquerades that hairpin as the node, so
        // it is allowed like the node is.
        let hairpin: Vec<String> = ingress.iter().map(|ip| format!("{ip} . {ip}")).collect();
        if !hairpin.is_empty() {
            let _ = writeln!(
                out,
                "  set hairpin {{ type ipv4_addr . ipv4_addr; elements = {{ {} }} }}",
                hairpin.join(", ")
            );
        }
        direction_chain(&mut out, "ingress", Direction::Ingress, &plan.ingress);
        direction_chain(&mut out, "egress", Direction::Egress, &plan.egress);
        out.push_str(concat!(
            "  chain forward {\n",
            "    type filter hook forward priority filter; policy accept;\n",
            "    ct state established,related accept\n",
            "    ip saddr @egress_isolated jump egress\n",
            "    ip daddr @ingress_isolated jump ingress\n",
            "  }\n",
            "  chain input {\n",
            "    type filter hook input priority filter; policy accept;\n",
            "    ct state established,related accept\n",
            "    ip saddr @egress_isolated jump egress\n",
            "  }\n",
        ));
    }
    out.push_str("}\n");
    out
}

/// A named set of IPv4 addresses (or ranges, with `interval`).
fn address_set(
    out: &mut String,
    name: &str,
    interval: bool,
    elements: impl Iterator<Item = String>,
) {
    let flags = if interval { " flags interval;" } else { "" };
    let elements: Vec<String> = elements.collect();
    if elements.is_empty() {
        let _ = writeln!(out, "  set {name} {{ type ipv4_addr;{flags} }}");
    } else {
        let _ = writeln!(
            out,
            "  set {name} {{ type ipv4_addr;{flags} elements = {{ {} }} }}",
            elements.join(", ")
        );
    }
}

/// The chain that returns for allowed traffic of isolated pods in
/// `direction` and drops the rest; its sets go before it.
fn direction_chain(out: &mut String, chain: &str, direction: Direction, policies: &[Policy]) {
    let (target, peer) = match direction {
        Direction::Ingress => ("daddr", "saddr"),
        Direction::Egress => ("saddr", "daddr"),
    };
    let short = &chain[..2];
    let mut rules = Vec::new();
    if direction == Direction::Ingress {
        // The pod's own node (kubelet probes, host-network pods) always gets in.
        rules.push("fib saddr type local return".to_owned());
        if !policies.is_empty() {
            rules.push("ip saddr . ip daddr @hairpin return".to_owned());
        }
    }
    for (p, policy) in policies.iter().enumerate() {
        if policy.rules.is_empty() {
            continue;
        }
        let targets = format!("{short}{p}_targets");
        address_set(
            out,
            &targets,
            false,
            policy.targets.iter().map(Ipv4Addr::to_string),
        );
        for (r, rule) in policy.rules.iter().enumerate() {
            let mut matches = format!("ip {target} @{targets}");
            if let Some(peers) = &rule.peers {
                let set = format!("{short}{p}_{r}_peers");
                address_set(out, &set, true, peers.iter().map(Range::nft));
                let _ = write!(matches, " ip {peer} @{set}");
            }
            let Some(ports) = &rule.ports else {
                rules.push(format!("{matches} return"));
                continue;
            };
            if !ports.numeric.is_empty() {
                let elements: Vec<String> = ports
                    .numeric
                    .iter()
                    .map(|p| {
                        if p.first == p.last {
                            format!("{} . {}", p.protocol.nft(), p.first)
                        } else {
                            format!("{} . {}-{}", p.protocol.nft(), p.first, p.last)
                        }
                    })
                    .collect();
                rules.push(format!(
                    "{matches} meta l4proto . th dport {{ {} }} return",
                    elements.join(", ")
                ));
            }
            if !ports.named.is_empty() {
                let set = format!("{short}{p}_{r}_named");
                let elements: Vec<String> = ports
                    .named
                    .iter()
                    .map(|n| format!("{} . {} . {}", n.ip, n.protocol.nft(), n.port))
                    .collect();
                let _ = writeln!(
                    out,
                    "  set {set} {{ type ipv4_addr . inet_proto . inet_service; elements = {{ {} }} }}",
                    elements.join(", ")
                );
                rules.push(format!(
                    "{matches} ip daddr . meta l4proto . th dport @{set} return"
                ));
            }
        }
    }
    let _ = writeln!(out, "  chain {chain} {{");
    for rule in rules {
        let _ = writeln!(out, "    {rule}");
    }
    let _ = writeln!(out, "    drop\n  }}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::network_policy::cluster::Protocol;
    use crate::network::network_policy::plan::{NamedTarget, PortRange, Ports, Rule};

    fn ip(text: &str) -> Ipv4Addr {
        text.parse().unwrap()
    }

    /// Every kind of rule: default deny, all peers, ipBlock ranges, numeric
    /// and named ports, egress.
    fn plan() -> Plan {
        let peers = Some(vec![
            Range::single(ip("10.1.0.4")),
            Range::cidr("10.9.0.0/24").unwrap(),
        ]);
        Plan {
            ingress: vec![
                Policy {
                    id: "prod/deny".into(),
                    targets: vec![ip("10.1.0.2"), ip("10.1.0.3")],
                    rules: vec![],
                },
                Policy {
                    id: "prod/web".into(),
                    targets: vec![ip("10.1.0.2")],
                    rules: vec![
                        Rule {
                            peers: peers.clone(),
                            ports: Some(Ports {
                                numeric: vec![
                                    PortRange {
                                        protocol: Protocol::Tcp,
                                        first: 80,
                                        last: 80,
                                    },
                                    PortRange {
                                        protocol: Protocol::Udp,
                                        first: 8000,
                                        last: 9000,
                                    },
                                ],
                                named: vec![NamedTarget {
                                    ip: ip("10.1.0.2"),
                                    protocol: Protocol::Tcp,
                                    port: 8080,
                                }],
                            }),
                        },
                        Rule {
                            peers: None,
                            ports: None,
                        },
                    ],
                },
            ],
            egress: vec![Policy {
                id: "dev/dns".into(),
                targets: vec![ip("10.1.0.4")],
                rules: vec![Rule {
                    peers: None,
                    ports: Some(Ports {
                        numeric: vec![PortRange {
                            protocol: Protocol::Udp,
                            first: 53,
                            last: 53,
                        }],
                        named: vec![],
                    }),
                }],
            }],
        }
    }

    #[test]
    fn rules_match_targets_peers_and_ports_and_everything_else_drops() {
        let text = script("berth_np_t", &plan());
        assert!(
            text.starts_with("table ip berth_np_t {}\ndelete table ip berth_np_t\n"),
            "{text}"
        );
        for expected in [
            "set ingress_isolated { type ipv4_addr; elements = { 10.1.0.2, 10.1.0.3 } }",
            "set egress_isolated { type ipv4_addr; elements = { 10.1.0.4 } }",
            "set in1_0_peers { type ipv4_addr; flags interval; elements = { 10.1.0.4, 10.9.0.0-10.9.0.255 } }",
            "ip daddr @in1_targets ip saddr @in1_0_peers meta l4proto . th dport { tcp . 80, udp . 8000-9000 } return",
            "ip daddr @in1_targets ip saddr @in1_0_peers ip daddr . meta l4proto . th dport @in1_0_named return",
            "set in1_0_named { type ipv4_addr . inet_proto . inet_service; elements = { 10.1.0.2 . tcp . 8080 } }",
            "    ip daddr @in1_targets return\n",
            "ip saddr @eg0_targets meta l4proto . th dport { udp . 53 } return",
            "fib saddr type local return",
            "set hairpin { type ipv4_addr . ipv4_addr; elements = { 10.1.0.2 . 10.1.0.2, 10.1.0.3 . 10.1.0.3 } }",
            "ip saddr . ip daddr @hairpin return",
        ] {
            assert!(text.contains(expected), "{expected:?} missing from:\n{text}");
        }
        assert!(
            !text.contains("in0_targets"),
            "a policy allowing nothing needs no rule:\n{text}"
        );
        assert_eq!(text.matches("    drop\n").count(), 2, "{text}");
    }

    #[test]
    fn a_plan_isolating_nothing_leaves_an_empty_table() {
        assert_eq!(
            script("t", &Plan::default()),
            "table ip t {}\ndelete table ip t\ntable ip t {\n}\n"
        );
    }

    #[test]
    fn nft_accepts_the_script() {
        let mut text = script("berth_np_check", &plan());
        text.push_str(&script("berth_np_check_empty", &Plan::default()));
        if let Err(e) = crate::network::nft::check(&text) {
            panic!("{e}\n{text}");
        }
    }
}
