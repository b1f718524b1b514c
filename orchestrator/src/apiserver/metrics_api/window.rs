//! Usage over the window between two scrapes of a node, as metrics-server
//! computes it (CPU: the cumulative counter's rise over the samples' own
//! timestamps; memory: the latest working set), and the NodeMetrics and
//! PodMetrics objects that report it. Pure.

use std::collections::HashMap;

use berth_api::kinds::metrics::{GROUP, VERSION};
use berth_api::quantity::{Format, Quantity};
use serde_json::{json, Value};

use super::scrape::{ContainerKey, NodeScrape, Point};

/// CPU and memory over one window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// CPU in nanocores.
    pub cpu_nanocores: u64,
    /// Working set in bytes.
    pub memory_bytes: u64,
    /// The window's end, in milliseconds since the epoch.
    pub end_millis: i64,
    /// The window's length, in milliseconds.
    pub window_millis: i64,
}

/// What a node's last two scrapes say.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NodeUsage {
    /// The node's own usage.
    pub node: Option<Usage>,
    /// Each container's.
    pub containers: HashMap<ContainerKey, Usage>,
}

/// The usage between `previous` and `current` CPU samples, with `memory`;
/// `None` when no time passed or the counter went back (a restart).
fn usage(previous: Point, current: Point, memory: Point) -> Option<Usage> {
    let window_millis = current.millis - previous.millis;
    let used = current.value - previous.value;
    if window_millis <= 0 || used < 0.0 || memory.value < 0.0 {
        return None;
    }
    Some(Usage {
        cpu_nanocores: (used * 1e12 / window_millis as f64).round() as u64,
        memory_bytes: memory.value.round() as u64,
        end_millis: current.millis,
        window_millis,
    })
}

/// The usage a node's `previous` and `current` scrapes show.
pub fn node_usage(previous: &NodeScrape, current: &NodeScrape) -> NodeUsage {
    let node = match (previous.cpu, current.cpu, current.memory) {
        (Some(p), Some(c), Some(m)) => usage(p, c, m),
        _ => None,
    };
    let containers = current
        .containers
        .iter()
        .filter_map(|(key, now)| {
            let before = previous.containers.get(key)?;
            if before.start.is_some() && now.start.is_some() && before.start != now.start {
                return None;
            }
            Some((key.clone(), usage(before.cpu?, now.cpu?, now.memory?)?))
        })
        .collect();
    NodeUsage { node, containers }
}

/// `15s` or `15.012s`, as Go prints a duration of whole milliseconds.
fn go_duration(millis: i64) -> String {
    if millis % 1000 == 0 {
        format!("{}s", millis / 1000)
    } else {
        let text = format!("{:.3}", millis as f64 / 1000.0);
        format!("{}s", text.trim_end_matches('0'))
    }
}

fn rfc3339(millis: i64) -> String {
    jiff::Timestamp::from_millisecond(millis)
        .map(|t| t.round(jiff::Unit::Second).unwrap_or(t).to_string())
        .unwrap_or_default()
}

/// `cpu` in nanocores and `memory` in bytes, as metrics-server words them.
fn resources(usage: &Usage) -> Value {
    json!({
        "cpu": Quantity::from_nano(i128::from(usage.cpu_nanocores), Format::DecimalSI).to_string(),
        "memory": Quantity::new(i64::try_from(usage.memory_bytes).unwrap_or(i64::MAX), Format::BinarySI).to_string(),
    })
}

/// Copies the source object's name, namespace, labels and creation time.
fn metadata(source: &Value) -> Value {
    let mut metadata = json!({
        "name": source.pointer("/metadata/name").cloned().unwrap_or(Value::Null),
        "creationTimestamp": source.pointer("/metadata/creationTimestamp").cloned().unwrap_or(Value::Null),
    });
    if let Some(ns) = source.pointer("/metadata/namespace") {
        metadata["namespace"] = ns.clone();
    }
    if let Some(labels) = source.pointer("/metadata/labels") {
        metadata["labels"] = labels.clone();
    }
    metadata
}

/// The NodeMetrics of `node` (the Node object) with `usage`.
pub fn node_metrics(node: &Value, usage: &Usage) -> Value {
    json!({
        "kind": "NodeMetrics",
        "apiVersion": format!("{GROUP}/{VERSION}"),
        "metadata": metadata(node),
        "timestamp": rfc3339(usage.end_millis),
        "window": go_duration(usage.window_millis),
        "usage": resources(usage),
    })
}

/// The PodMetrics of `pod` (the Pod object) from its containers' usage, or
/// `None` when none of its containers has any yet.
pub fn pod_metrics(pod: &Value, containers: &[(String, Usage)]) -> Option<Value> {
    let last = containers
        .iter()
        .map(|(_, u)| u)
        .max_by_key(|u| u.end_millis)?;
    let list: Vec<Value> = containers
        .iter()
        .map(|(name, usage)| json!({"name": name, "usage": resources(usage)}))
        .collect();
    Some(json!({
        "kind": "PodMetrics",
        "apiVersion": format!("{GROUP}/{VERSION}"),
        "metadata": metadata(pod),
        "timestamp": rfc3339(last.end_millis),
        "window": go_duration(last.window_millis),
        "containers": list,
    }))
}

#[cfg(test)]
mod tests {
    use super::super::scrape::ContainerSamples;
    use super::*;

    fn point(value: f64, millis: i64) -> Point {
        Point { value, millis }
    }

    fn scrape(cpu: f64, millis: i64, start: f64) -> NodeScrape {
        let mut scrape = NodeScrape {
            cpu: Some(point(cpu * 4.0, millis)),
            memory: Some(point(1e9, millis)),
            ..NodeScrape::default()
        };
        scrape.containers.insert(
            ("ns".into(), "p".into(), "c".into()),
            ContainerSamples {
                cpu: Some(point(cpu, millis)),
                memory: Some(point(4096.0, millis)),
                start: Some(start),
            },
        );
        scrape
    }

    #[test]
    fn cpu_is_the_counters_rise_over_the_samples_window() {
        let key = ("ns".to_owned(), "p".to_owned(), "c".to_owned());
        let usage = node_usage(&scrape(10.0, 1_000_000, 5.0), &scrape(13.0, 1_015_000, 5.0));
        assert_eq!(
            usage.containers[&key],
            Usage {
                cpu_nanocores: 200_000_000,
                memory_bytes: 4096,
                end_millis: 1_015_000,
                window_millis: 15_000
            }
        );
        assert_eq!(usage.node.unwrap().cpu_nanocores, 800_000_000);
        // A restarted container (new start time) has no rate yet.
        let restarted = node_usage(&scrape(10.0, 1_000_000, 5.0), &scrape(1.0, 1_015_000, 9.0));
        assert!(restarted.containers.is_empty());
        // The same sample twice measures nothing.
        let same = node_usage(&scrape(10.0, 1_000_000, 5.0), &scrape(10.0, 1_000_000, 5.0));
        assert!(same.node.is_none() && same.containers.is_empty());
    }

    #[test]
    fn objects_carry_metrics_servers_fields() {
        let usage = Usage {
            cpu_nanocores: 250_000_000,
            memory_bytes: 4 * 1024 * 1024,
            end_millis: 1_700_000_000_000,
            window_millis: 15_012,
        };
        let node = json!({"metadata": {"name": "met-a", "labels": {"a": "b"}, "creationTimestamp": "2023-01-01T00:00:00Z"}});
        let metrics = node_metrics(&node, &usage);
        assert_eq!(metrics["apiVersion"], "metrics.k8s.io/v1beta1");
        assert_eq!(metrics["metadata"]["labels"]["a"], "b");
        assert_eq!(metrics["usage"], json!({"cpu": "250m", "memory": "4Mi"}));
        assert_eq!(metrics["window"], "15.012s");
        assert_eq!(metrics["timestamp"], "2023-11-14T22:13:20Z");
        let pod = json!({"metadata": {"name": "web", "namespace": "ns"}});
        let metrics = pod_metrics(&pod, &[("c".into(), usage)]).unwrap();
        assert_eq!(metrics["metadata"]["namespace"], "ns");
        assert_eq!(metrics["containers"][0]["usage"]["cpu"], "250m");
        assert!(pod_metrics(&pod, &[]).is_none());
    }
}
