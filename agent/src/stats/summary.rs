//! Kubelet's `/stats/summary` document (stats/v1alpha1 `Summary`): the node's
//! and each pod's and container's CPU and memory. Pure: renders a
//! [`Snapshot`]. Fields kubelet fills from sources berth does not measure
//! (filesystems, network, page faults) are left out, as kubelet omits
//! what cAdvisor lacks.

use jiff::Timestamp;
use serde_json::{json, Map, Value};

use super::{RateKey, Snapshot, Usage};

fn time(t: Timestamp) -> String {
    t.round(jiff::Unit::Second).unwrap_or(t).to_string()
}

/// `cpu` of a stats entry.
fn cpu(at: Timestamp, usage: &Usage, nano_cores: Option<u64>) -> Value {
    let mut cpu = Map::new();
    cpu.insert("time".into(), json!(time(at)));
    if let Some(rate) = nano_cores {
        cpu.insert("usageNanoCores".into(), json!(rate));
    }
    cpu.insert("usageCoreNanoSeconds".into(), json!(usage.cpu_usage_nanos));
    Value::Object(cpu)
}

/// `memory` of a stats entry.
fn memory(at: Timestamp, usage: &Usage, available: Option<u64>) -> Value {
    let mut memory = json!({
        "time": time(at),
        "usageBytes": usage.memory_usage_bytes,
        "workingSetBytes": usage.memory_working_set_bytes,
        "rssBytes": usage.memory_rss_bytes,
    });
    if let Some(available) = available {
        memory["availableBytes"] = json!(available);
    }
    memory
}

/// The Summary of `snapshot`.
pub fn render(snapshot: &Snapshot) -> Value {
    let at = snapshot.time;
    let node = &snapshot.node;
    let mut node_json = json!({
        "nodeName": snapshot.node_name,
        "cpu": cpu(at, &node.usage, snapshot.rate(&None)),
        "memory": memory(at, &node.usage, Some(node.memory_available_bytes)),
    });
    if let Some(boot) = node.boot_time {
        node_json["startTime"] = json!(time(boot));
    }
    let pods: Vec<Value> = snapshot
        .pods
        .iter()
        .map(|pod| {
            let containers: Vec<Value> = pod
                .containers
                .iter()
                .map(|c| {
                    let key: RateKey = Some((pod.uid.clone(), c.name.clone()));
                    json!({
                        "name": c.name,
                        "startTime": time(c.started_at),
                        "cpu": cpu(at, &c.usage, snapshot.rate(&key)),
                        "memory": memory(at, &c.usage, None),
                    })
                })
                .collect();
            json!({
                "podRef": {"name": pod.name, "namespace": pod.namespace, "uid": pod.uid},
                "startTime": time(pod.started_at),
                "containers": containers,
                "cpu": cpu(at, &pod.total(), snapshot.pod_rate(pod)),
                "memory": memory(at, &pod.total(), None),
            })
        })
        .collect();
    json!({"node": node_json, "pods": pods})
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::super::node::NodeUsage;
    use super::super::{ContainerUsage, PodUsage};
    use super::*;

    #[test]
    fn summary_has_kubelets_shape() {
        let at = Timestamp::from_second(1_700_000_100).unwrap();
        let usage = Usage {
            cpu_usage_nanos: 3_000_000_000,
            memory_usage_bytes: 8192,
            memory_working_set_bytes: 4096,
            memory_rss_bytes: 2048,
        };
        let snapshot = Snapshot {
            node_name: "met-a".into(),
            time: at,
            node: NodeUsage {
                usage,
                memory_available_bytes: 1 << 30,
                boot_time: Some(Timestamp::from_second(1_700_000_000).unwrap()),
            },
            pods: vec![PodUsage {
                uid: "u1".into(),
                namespace: "ns".into(),
                name: "busy".into(),
                started_at: at,
                containers: vec![ContainerUsage {
                    name: "spin".into(),
                    started_at: at,
                    usage,
                }],
            }],
            nano_cores: HashMap::from([(Some(("u1".into(), "spin".into())), 950_000_000)]),
        };
        let summary = render(&snapshot);
        assert_eq!(summary["node"]["nodeName"], "met-a");
        assert_eq!(summary["node"]["startTime"], "2023-11-14T22:13:20Z");
        assert_eq!(summary["node"]["memory"]["availableBytes"], 1u64 << 30);
        assert!(summary["node"]["cpu"].get("usageNanoCores").is_none());
        let pod = &summary["pods"][0];
        assert_eq!(pod["podRef"]["uid"], "u1");
        assert_eq!(pod["cpu"]["usageNanoCores"], 950_000_000);
        let container = &pod["containers"][0];
        assert_eq!(container["cpu"]["usageCoreNanoSeconds"], 3_000_000_000u64);
        assert_eq!(container["memory"]["workingSetBytes"], 4096);
        assert_eq!(container["memory"]["usageBytes"], 8192);
    }
}
