use super::*;
use crate::network::network_policy::cluster::NamedPort;
use serde_json::{json, Value};

fn pod(namespace: &str, name: &str, node: &str, ip: &str, app: &str) -> PodView {
    PodView {
        namespace: namespace.into(),
        name: name.into(),
        node: Some(node.into()),
        ip: ip.parse().unwrap(),
        labels: [("app".to_owned(), app.to_owned())].into(),
        ports: Vec::new(),
    }
}

/// Node n1 holds prod/web, prod/db and dev/client; n2 the rest.
fn cluster() -> Cluster {
    let mut web = pod("prod", "web", "n1", "10.1.0.2", "web");
    web.ports = vec![
        NamedPort {
            name: "http".into(),
            protocol: Protocol::Tcp,
            port: 8080,
        },
        NamedPort {
            name: "dns".into(),
            protocol: Protocol::Udp,
            port: 53,
        },
    ];
    let mut remote_web = pod("prod", "web-2", "n2", "10.2.0.2", "web");
    remote_web.ports = vec![NamedPort {
        name: "http".into(),
        protocol: Protocol::Tcp,
        port: 9090,
    }];
    Cluster {
        pods: vec![
            web,
            pod("prod", "db", "n1", "10.1.0.3", "db"),
            remote_web,
            pod("dev", "client", "n1", "10.1.0.4", "client"),
            pod("dev", "other", "n2", "10.2.0.5", "other"),
            pod("ops", "client", "n2", "10.2.0.6", "client"),
        ],
        namespaces: [
            (
                "prod".to_owned(),
                [("team".to_owned(), "prod".to_owned())].into(),
            ),
            (
                "dev".to_owned(),
                [("team".to_owned(), "dev".to_owned())].into(),
            ),
            (
                "ops".to_owned(),
                [("team".to_owned(), "ops".to_owned())].into(),
            ),
        ]
        .into(),
    }
}

fn policy(namespace: &str, spec: Value) -> NetworkPolicy {
    serde_json::from_value(json!({
        "metadata": {"name": "p", "namespace": namespace},
        "spec": spec
    }))
    .unwrap()
}

fn ips(list: &[&str]) -> Vec<Ipv4Addr> {
    list.iter().map(|ip| ip.parse().unwrap()).collect()
}

fn ranges(list: &[(&str, &str)]) -> Vec<Range> {
    list.iter()
        .map(|(first, last)| Range {
            first: first.parse::<Ipv4Addr>().unwrap().into(),
            last: last.parse::<Ipv4Addr>().unwrap().into(),
        })
        .collect()
}

fn one(ip: &str) -> (&str, &str) {
    (ip, ip)
}

#[test]
fn policies_isolate_the_local_pods_they_select_in_the_directions_they_name() {
    let cases = [
        ("no policy selects a pod", None, vec![], vec![]),
        (
            "an empty pod selector selects every local pod of the namespace",
            Some(("prod", json!({"podSelector": {}}))),
            vec!["10.1.0.2", "10.1.0.3"],
            vec![],
        ),
        (
            "a label selector selects matching pods only",
            Some((
                "prod",
                json!({"podSelector": {"matchLabels": {"app": "web"}}}),
            )),
            vec!["10.1.0.2"],
            vec![],
        ),
        (
            "egress rules without policyTypes add Egress",
            Some((
                "prod",
                json!({"podSelector": {"matchLabels": {"app": "db"}}, "egress": [{}]}),
            )),
            vec!["10.1.0.3"],
            vec!["10.1.0.3"],
        ),
        (
            "policyTypes Egress alone leaves ingress open",
            Some(("dev", json!({"podSelector": {}, "policyTypes": ["Egress"]}))),
            vec![],
            vec!["10.1.0.4"],
        ),
        (
            "policyTypes Ingress ignores egress rules",
            Some((
                "prod",
                json!({"podSelector": {}, "policyTypes": ["Ingress"], "egress": [{}]}),
            )),
            vec!["10.1.0.2", "10.1.0.3"],
            vec![],
        ),
        (
            "a namespace with no local pods isolates nothing here",
            Some((
                "ops",
                json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
            )),
            vec![],
            vec![],
        ),
        (
            "matchExpressions select too",
            Some((
                "prod",
                json!({"podSelector": {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]}}),
            )),
            vec!["10.1.0.3"],
            vec![],
        ),
    ];
    for (name, policy_spec, ingress, egress) in cases {
        let policies: Vec<NetworkPolicy> = policy_spec
            .into_iter()
            .map(|(ns, spec)| policy(ns, spec))
            .collect();
        let plan = plan(&policies, &cluster(), "n1");
        assert_eq!(
            plan.isolated(Direction::Ingress),
            ips(&ingress),
            "{name}: ingress"
        );
        assert_eq!(
            plan.isolated(Direction::Egress),
            ips(&egress),
            "{name}: egress"
        );
    }
}

#[test]
fn an_empty_rule_list_denies_and_an_empty_rule_allows_everything() {
    let deny = plan(
        &[policy("prod", json!({"podSelector": {}}))],
        &cluster(),
        "n1",
    );
    assert!(deny.ingress[0].rules.is_empty());
    let allow = plan(
        &[policy("prod", json!({"podSelector": {}, "ingress": [{}]}))],
        &cluster(),
        "n1",
    );
    assert_eq!(
        allow.ingress[0].rules,
        vec![Rule {
            peers: None,
            ports: None
        }]
    );
}

#[test]
fn peers_match_pods_namespaces_both_and_ip_blocks() {
    let cases = [
        (
            "a pod selector looks in the policy's namespace",
            json!([{"podSelector": {"matchLabels": {"app": "db"}}}]),
            Some(ranges(&[one("10.1.0.3")])),
        ),
        (
            "an empty pod selector is every pod of the namespace, on any node",
            json!([{"podSelector": {}}]),
            Some(ranges(&[("10.1.0.2", "10.1.0.3"), one("10.2.0.2")])),
        ),
        (
            "a namespace selector alone is every pod of those namespaces",
            json!([{"namespaceSelector": {"matchLabels": {"team": "dev"}}}]),
            Some(ranges(&[one("10.1.0.4"), one("10.2.0.5")])),
        ),
        (
            "both in one peer must both match",
            json!([{"namespaceSelector": {"matchLabels": {"team": "dev"}}, "podSelector": {"matchLabels": {"app": "client"}}}]),
            Some(ranges(&[one("10.1.0.4")])),
        ),
        (
            "an empty namespace selector with a pod selector spans namespaces",
            json!([{"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "client"}}}]),
            Some(ranges(&[one("10.1.0.4"), one("10.2.0.6")])),
        ),
        (
            "the namespace name label always exists",
            json!([{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ops"}}}]),
            Some(ranges(&[one("10.2.0.6")])),
        ),
        (
            "two peers add up",
            json!([
                {"podSelector": {"matchLabels": {"app": "db"}}},
                {"namespaceSelector": {"matchLabels": {"team": "ops"}}}
            ]),
            Some(ranges(&[one("10.1.0.3"), one("10.2.0.6")])),
        ),
        (
            "an ipBlock less its except blocks",
            json!([{"ipBlock": {"cidr": "10.2.0.0/16", "except": ["10.2.0.4/30"]}}]),
            Some(ranges(&[
                ("10.2.0.0", "10.2.0.3"),
                ("10.2.0.8", "10.2.255.255"),
            ])),
        ),
        (
            "an IPv6 ipBlock matches no IPv4 address",
            json!([{"ipBlock": {"cidr": "fd00::/8"}}]),
            None,
        ),
        (
            "a selector matching no pod leaves a rule allowing nothing",
            json!([{"podSelector": {"matchLabels": {"app": "client"}}}]),
            None,
        ),
        ("an empty from is every address", json!([]), Some(vec![])),
    ];
    for (name, from, want) in cases {
        let plan = plan(
            &[policy(
                "prod",
                json!({"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [{"from": from}]}),
            )],
            &cluster(),
            "n1",
        );
        let rules = &plan.ingress[0].rules;
        match want {
            None => assert!(rules.is_empty(), "{name}: {rules:?}"),
            // An empty list stands for "no peer restriction".
            Some(want) if want.is_empty() => assert_eq!(rules[0].peers, None, "{name}"),
            Some(want) => assert_eq!(rules[0].peers.as_ref(), Some(&want), "{name}"),
        }
    }
}

#[test]
fn ports_numeric_ranges_protocols_and_named_per_destination() {
    let tcp = |first, last| PortRange {
        protocol: Protocol::Tcp,
        first,
        last,
    };
    let named = |ip: &str, protocol, port| NamedTarget {
        ip: ip.parse().unwrap(),
        protocol,
        port,
    };
    let cases = [
        ("no ports is every port", Value::Null, Some(None)),
        (
            "a port defaults to TCP",
            json!([{"port": 80}]),
            Some(Some((vec![tcp(80, 80)], vec![]))),
        ),
        (
            "UDP",
            json!([{"protocol": "UDP", "port": 53}]),
            Some(Some((
                vec![PortRange {
                    protocol: Protocol::Udp,
                    first: 53,
                    last: 53,
                }],
                vec![],
            ))),
        ),
        (
            "endPort makes a range",
            json!([{"port": 8000, "endPort": 9000}]),
            Some(Some((vec![tcp(8000, 9000)], vec![]))),
        ),
        (
            "a protocol without a port is all its ports",
            json!([{"protocol": "SCTP"}]),
            Some(Some((
                vec![PortRange {
                    protocol: Protocol::Sctp,
                    first: 0,
                    last: u16::MAX,
                }],
                vec![],
            ))),
        ),
        (
            "a named port resolves on the selected (destination) pod",
            json!([{"port": "http"}]),
            Some(Some((vec![], vec![named("10.1.0.2", Protocol::Tcp, 8080)]))),
        ),
        (
            "a named port needs the protocol to match",
            json!([{"port": "dns", "protocol": "UDP"}, {"port": "dns"}]),
            Some(Some((vec![], vec![named("10.1.0.2", Protocol::Udp, 53)]))),
        ),
        (
            "a name no destination has allows nothing",
            json!([{"port": "metrics"}]),
            None,
        ),
    ];
    for (name, ports, want) in cases {
        let plan = plan(
            &[policy(
                "prod",
                json!({"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [{"ports": ports}]}),
            )],
            &cluster(),
            "n1",
        );
        let rules = &plan.ingress[0].rules;
        match want {
            None => assert!(rules.is_empty(), "{name}: {rules:?}"),
            Some(None) => assert_eq!(rules[0].ports, None, "{name}"),
            Some(Some((numeric, named))) => {
                assert_eq!(rules[0].ports, Some(Ports { numeric, named }), "{name}")
            }
        }
    }
}

#[test]
fn egress_named_ports_resolve_on_every_destination_pod() {
    let plan = plan(
        &[policy(
            "dev",
            json!({"podSelector": {}, "egress": [{"ports": [{"port": "http"}]}]}),
        )],
        &cluster(),
        "n1",
    );
    let ports = plan.egress[0].rules[0].ports.clone().unwrap();
    let ips: Vec<String> = ports
        .named
        .iter()
        .map(|n| format!("{}:{}", n.ip, n.port))
        .collect();
    assert_eq!(ips, ["10.1.0.2:8080", "10.2.0.2:9090"]);
}

#[test]
fn policies_add_up_per_pod() {
    let policies = [
        policy("prod", json!({"podSelector": {}})),
        serde_json::from_value(json!({
            "metadata": {"name": "allow-web", "namespace": "prod"},
            "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [{"from": [{"namespaceSelector": {}}]}]}
        }))
        .unwrap(),
    ];
    let plan = plan(&policies, &cluster(), "n1");
    assert_eq!(plan.ingress.len(), 2);
    let allowing: Vec<&str> = plan
        .ingress
        .iter()
        .filter(|p| !p.rules.is_empty())
        .map(|p| p.id.as_str())
        .collect();
    assert_eq!(allowing, ["prod/allow-web"]);
    assert_eq!(plan.ingress[0].targets, ips(&["10.1.0.2"]));
}
