//! Kubelet's `/metrics/resource`: the Prometheus text metrics-server scrapes,
//! with kubelet's metric names and labels and each sample stamped with the
//! time it was measured (milliseconds), so a scraper computes CPU rates over
//! the real interval. Pure: renders a [`Snapshot`].

use std::fmt::Write;

use super::Snapshot;

/// The Prometheus text format's content type.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One metric family: name, help, type, and its samples (labels, value).
struct Family<'a> {
    name: &'a str,
    help: &'a str,
    kind: &'a str,
    samples: Vec<(Vec<(&'a str, &'a str)>, f64)>,
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn write_family(out: &mut String, family: &Family<'_>, millis: i64, stamped: bool) {
    let _ = writeln!(out, "# HELP {} [STABLE] {}", family.name, family.help);
    let _ = writeln!(out, "# TYPE {} {}", family.name, family.kind);
    for (labels, value) in &family.samples {
        out.push_str(family.name);
        if !labels.is_empty() {
            let rendered: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            let _ = write!(out, "{{{}}}", rendered.join(","));
        }
        if stamped {
            let _ = writeln!(out, " {value} {millis}");
        } else {
            let _ = writeln!(out, " {value}");
        }
    }
}

fn seconds(nanos: u64) -> f64 {
    nanos as f64 / 1e9
}

/// The metrics text of `snapshot`; `scrape_error` says whether measuring
/// the containers failed (then only the node's and the error are shown).
pub fn render(snapshot: &Snapshot, scrape_error: bool) -> String {
    let millis = snapshot.time.as_millisecond();
    let node = &snapshot.node.usage;
    let mut container_cpu = Vec::new();
    let mut container_memory = Vec::new();
    let mut container_start = Vec::new();
    let mut pod_cpu = Vec::new();
    let mut pod_memory = Vec::new();
    for pod in &snapshot.pods {
        let labels = vec![
            ("namespace", pod.namespace.as_str()),
            ("pod", pod.name.as_str()),
        ];
        for c in &pod.containers {
            let mut labels = labels.clone();
            labels.insert(0, ("container", c.name.as_str()));
            container_cpu.push((labels.clone(), seconds(c.usage.cpu_usage_nanos)));
            container_memory.push((labels.clone(), c.usage.memory_working_set_bytes as f64));
            container_start.push((labels, c.started_at.as_millisecond() as f64 / 1e3));
        }
        let total = pod.total();
        pod_cpu.push((labels.clone(), seconds(total.cpu_usage_nanos)));
        pod_memory.push((labels, total.memory_working_set_bytes as f64));
    }
    let families = [
        Family {
            name: "container_cpu_usage_seconds_total",
            help: "Cumulative CPU time the container used, in core-seconds",
            kind: "counter",
            samples: container_cpu,
        },
        Family {
            name: "container_memory_working_set_bytes",
            help: "The container's current working set, in bytes",
            kind: "gauge",
            samples: container_memory,
        },
        Family {
            name: "container_start_time_seconds",
            help: "When the container started, in seconds since the Unix epoch",
            kind: "gauge",
            samples: container_start,
        },
        Family {
            name: "node_cpu_usage_seconds_total",
            help: "Cumulative CPU time the node used, in core-seconds",
            kind: "counter",
            samples: vec![(Vec::new(), seconds(node.cpu_usage_nanos))],
        },
        Family {
            name: "node_memory_working_set_bytes",
            help: "The node's current working set, in bytes",
            kind: "gauge",
            samples: vec![(Vec::new(), node.memory_working_set_bytes as f64)],
        },
        Family {
            name: "pod_cpu_usage_seconds_total",
            help: "Cumulative CPU time the pod used, in core-seconds",
            kind: "counter",
            samples: pod_cpu,
        },
        Family {
            name: "pod_memory_working_set_bytes",
            help: "The pod's current working set, in bytes",
            kind: "gauge",
            samples: pod_memory,
        },
    ];
    let mut out = String::new();
    for family in &families {
        if !family.samples.is_empty() {
            write_family(
                &mut out,
                family,
                millis,
                family.name != "container_start_time_seconds",
            );
        }
    }
    write_family(
        &mut out,
        &Family {
            name: "resource_scrape_error",
            help: "1 when reading the containers' metrics failed, else 0",
            kind: "gauge",
            samples: vec![(Vec::new(), if scrape_error { 1.0 } else { 0.0 })],
        },
        millis,
        false,
    );
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use jiff::Timestamp;

    use super::super::node::NodeUsage;
    use super::super::{ContainerUsage, PodUsage, Usage};
    use super::*;

    #[test]
    fn metrics_carry_kubelets_names_labels_and_timestamps() {
        let at = Timestamp::from_millisecond(1_700_000_000_123).unwrap();
        let usage = Usage {
            cpu_usage_nanos: 1_500_000_000,
            memory_working_set_bytes: 4096,
            ..Usage::default()
        };
        let snapshot = Snapshot {
            node_name: "met-a".into(),
            time: at,
            node: NodeUsage {
                usage,
                ..NodeUsage::default()
            },
            pods: vec![PodUsage {
                uid: "u".into(),
                namespace: "ns".into(),
                name: "we\"b".into(),
                started_at: at,
                containers: vec![ContainerUsage {
                    name: "app".into(),
                    started_at: Timestamp::from_second(1_700_000_000).unwrap(),
                    usage,
                }],
            }],
            nano_cores: HashMap::new(),
        };
        let text = render(&snapshot, false);
        for line in [
            "# TYPE container_cpu_usage_seconds_total counter",
            "container_cpu_usage_seconds_total{container=\"app\",namespace=\"ns\",pod=\"we\\\"b\"} 1.5 1700000000123",
            "container_memory_working_set_bytes{container=\"app\",namespace=\"ns\",pod=\"we\\\"b\"} 4096 1700000000123",
            "container_start_time_seconds{container=\"app\",namespace=\"ns\",pod=\"we\\\"b\"} 1700000000",
            "node_cpu_usage_seconds_total 1.5 1700000000123",
            "node_memory_working_set_bytes 4096 1700000000123",
            "pod_cpu_usage_seconds_total{namespace=\"ns\",pod=\"we\\\"b\"} 1.5 1700000000123",
            "pod_memory_working_set_bytes{namespace=\"ns\",pod=\"we\\\"b\"} 4096 1700000000123",
            "resource_scrape_error 0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        assert!(render(&snapshot, true).contains("resource_scrape_error 1\n"));
    }
}
