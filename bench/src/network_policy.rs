//! NetworkPolicy table benchmark: the time an agent needs to turn 1,000 pods
//! and 100 policies into its nftables table (plan + script, pure) and to
//! load it into the kernel (`nft -f`), beside a floor measured in the same
//! run: loading a table with as many set elements and no rules. Pod
//! addresses come from 10.254.0.0/16, which nothing else uses; the table is
//! deleted after each round. Needs root and Debian's `nftables`.
//!
//! `cargo build --release -p berth-bench --bin netpol-bench && target/release/netpol-bench [--pods 1000 --policies 100 --nodes 1 --rounds 5]`

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::Context;
use berth_agent::network::network_policy::{cluster::Cluster, plan, script};
use berth_agent::network::nft;
use clap::Parser;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use serde_json::json;

/// The size of the cluster the table is computed for.
#[derive(Parser)]
#[command(
    name = "netpol-bench",
    about = "NetworkPolicy table compute and apply time beside an nft floor"
)]
struct Options {
    /// Pods in the cluster.
    #[arg(long, default_value_t = 1_000)]
    pods: usize,
    /// NetworkPolicies.
    #[arg(long, default_value_t = 100)]
    policies: usize,
    /// Nodes the pods spread over (the table is this node's: node 0).
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// Rounds; the median is printed.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
}

const NAMESPACES: usize = 10;

fn namespaces() -> Vec<Namespace> {
    (0..NAMESPACES)
        .map(|n| {
            serde_json::from_value(json!({
                "metadata": {"name": format!("ns-{n}"), "labels": {"team": format!("team-{}", n % 3)}}
            }))
            .unwrap()
        })
        .collect()
}

/// Pod `i`: namespace `i % 10`, one of 20 apps, a named port, 10.254.x.y,
/// nodes taking whole rows of namespaces so each holds every namespace.
fn pod(i: usize, nodes: usize) -> Pod {
    serde_json::from_value(json!({
        "metadata": {
            "name": format!("pod-{i}"),
            "namespace": format!("ns-{}", i % NAMESPACES),
            "labels": {"app": format!("app-{}", i % 20), "tier": if i.is_multiple_of(2) { "web" } else { "db" }}
        },
        "spec": {
            "nodeName": format!("node-{}", (i / NAMESPACES) % nodes),
            "containers": [{"name": "c", "image": "x", "ports": [{"name": "http", "containerPort": 8000 + (i % 7)}]}]
        },
        "status": {"phase": "Running", "podIP": format!("10.254.{}.{}", i / 250, 1 + i % 250)}
    }))
    .unwrap()
}

/// Policy `i`: a mix of default deny, pod- and namespace-selector peers,
/// both in one peer, ipBlock with except, numeric, ranged and named ports,
/// and egress rules.
fn policy(i: usize) -> NetworkPolicy {
    let namespace = format!("ns-{}", i % NAMESPACES);
    let app = format!("app-{}", i % 20);
    let spec = match i % 5 {
        0 => json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
        1 => json!({
            "podSelector": {"matchLabels": {"app": app}},
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"tier": "web"}}}], "ports": [{"port": 80}, {"port": "http"}]}]
        }),
        2 => json!({
            "podSelector": {"matchLabels": {"tier": "db"}},
            "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "team-1"}}, "podSelector": {"matchLabels": {"app": app}}}]}],
            "egress": [{"to": [{"namespaceSelector": {}}], "ports": [{"port": 5432, "endPort": 5440}]}]
        }),
        3 => json!({
            "podSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": [app, "app-1"]}]},
            "ingress": [{"from": [{"ipBlock": {"cidr": "10.254.0.0/16", "except": ["10.254.1.0/24", "10.254.2.128/25"]}}]}]
        }),
        _ => json!({
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [{"ports": [{"protocol": "UDP", "port": 53}]}, {"to": [{"namespaceSelector": {"matchLabels": {"team": "team-2"}}}]}]
        }),
    };
    serde_json::from_value(json!({
        "metadata": {"name": format!("policy-{i}"), "namespace": namespace},
        "spec": spec
    }))
    .unwrap()
}

/// Loads `script` the way the agent does.
fn apply(runtime: &tokio::runtime::Runtime, script: &str) -> anyhow::Result<()> {
    runtime
        .block_on(nft::apply(script))
        .context("loading the table (root needed)")
}

fn delete(table: &str) {
    let _ = std::process::Command::new("nft")
        .args(["delete", "table", "ip", table])
        .output();
}

/// The set elements a script loads.
fn elements(script: &str) -> usize {
    script
        .lines()
        .filter_map(|line| line.split_once("elements = { "))
        .map(|(_, rest)| rest.matches(", ").count() + 1)
        .sum()
}

/// A table of one set with `count` addresses and no rules: nft's own cost
/// of loading that many elements.
fn floor_script(table: &str, count: usize) -> String {
    let mut out = format!("table ip {table} {{}}\ndelete table ip {table}\ntable ip {table} {{\n  set s {{ type ipv4_addr; elements = {{ ");
    for i in 0..count.max(1) {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "10.254.{}.{}", i / 250 % 256, 1 + i % 250);
    }
    out.push_str(" } }\n}\n");
    out
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    anyhow::ensure!(
        options.nodes > 0 && options.rounds > 0,
        "--nodes and --rounds must be positive"
    );
    let pods: Vec<Pod> = (0..options.pods).map(|i| pod(i, options.nodes)).collect();
    let policies: Vec<NetworkPolicy> = (0..options.policies).map(policy).collect();
    let namespaces = namespaces();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let table = format!("berth_np_bench_{}", std::process::id());
    let floor_table = format!("{table}_floor");
    let (mut compute, mut load, mut floor) = (Vec::new(), Vec::new(), Vec::new());
    let mut size = (0, 0);
    for _ in 0..options.rounds {
        let started = Instant::now();
        let cluster = Cluster::new(&pods, &namespaces);
        let text = script::script(&table, &plan::plan(&policies, &cluster, "node-0"));
        compute.push(started.elapsed());
        size = (text.len(), elements(&text));
        let started = Instant::now();
        let applied = apply(&runtime, &text);
        load.push(started.elapsed());
        delete(&table);
        applied?;
        let text = floor_script(&floor_table, size.1);
        let started = Instant::now();
        let applied = apply(&runtime, &text);
        floor.push(started.elapsed());
        delete(&floor_table);
        applied?;
    }
    let (compute, load, floor) = (median(compute), median(load), median(floor));
    println!(
        "{} pods on {} node(s), {} policies: script {} KiB, {} set elements",
        options.pods,
        options.nodes,
        options.policies,
        size.0 / 1024,
        size.1
    );
    println!("compute (plan + script)  {compute:>10.2?}");
    println!("apply (nft -f)           {load:>10.2?}");
    println!("compute + apply          {:>10.2?}", compute + load);
    println!("floor: nft -f of one set with as many elements, no rules {floor:>10.2?}");
    println!(
        "ratio (compute + apply) / floor: {:.2}",
        (compute + load).as_secs_f64() / floor.as_secs_f64()
    );
    Ok(())
}
