//! `metrics.k8s.io/v1beta1` NodeMetrics and PodMetrics: the read-only usage
//! metrics-server serves (and `kubectl top` reads), with its `kubectl get`
//! columns. The API server computes them from the nodes' resource metrics;
//! they are never stored. Pure types and table cells.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::kinds::KindRules;
use crate::table::print::array_at;
use crate::table::{col, Column, NAME};

/// The group these kinds are served under.
pub const GROUP: &str = "metrics.k8s.io";
/// Its one version.
pub const VERSION: &str = "v1beta1";

/// A node's CPU and memory usage over a window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "io.k8s.metrics.pkg.apis.metrics.v1beta1.NodeMetrics")]
#[serde(rename_all = "camelCase")]
pub struct NodeMetrics {
    /// Standard object metadata (the node's name and labels).
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The end of the window the usage was measured over.
    #[serde(default)]
    pub timestamp: String,
    /// The window's length (`15s`).
    #[serde(default)]
    pub window: String,
    /// `cpu` and `memory`.
    #[serde(default)]
    pub usage: BTreeMap<String, Quantity>,
}

/// One container's usage in a [`PodMetrics`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ContainerMetrics {
    /// The container's name.
    #[serde(default)]
    pub name: String,
    /// `cpu` and `memory`.
    #[serde(default)]
    pub usage: BTreeMap<String, Quantity>,
}

/// A pod's containers' CPU and memory usage over a window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "io.k8s.metrics.pkg.apis.metrics.v1beta1.PodMetrics")]
#[serde(rename_all = "camelCase")]
pub struct PodMetrics {
    /// Standard object metadata (the pod's name, namespace and labels).
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The end of the window the usage was measured over.
    #[serde(default)]
    pub timestamp: String,
    /// The window's length.
    #[serde(default)]
    pub window: String,
    /// Each container's usage.
    #[serde(default)]
    pub containers: Vec<ContainerMetrics>,
}

fn columns() -> Vec<Column> {
    vec![
        NAME,
        col("CPU", "string", 0, "CPU usage"),
        col("Memory", "string", 0, "Memory usage"),
        col(
            "Window",
            "string",
            0,
            "Interval the usage was measured over",
        ),
    ]
}

fn usage_cells(obj: &Value, cpu: String, memory: String) -> Vec<Value> {
    vec![
        crate::table::name_cell(obj),
        json!(cpu),
        json!(memory),
        json!(obj
            .get("window")
            .and_then(Value::as_str)
            .unwrap_or_default()),
    ]
}

fn text(usage: Option<&Value>, resource: &str) -> String {
    usage
        .and_then(|u| u.get(resource))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The rules of NodeMetrics (columns only: never written).
#[derive(Debug, Clone, Copy, Default)]
pub struct NodeMetricsRules;

impl KindRules for NodeMetricsRules {
    fn columns(&self) -> Vec<Column> {
        columns()
    }

    fn cells(&self, obj: &Value, _now: jiff::Timestamp) -> Vec<Value> {
        let usage = obj.get("usage");
        usage_cells(obj, text(usage, "cpu"), text(usage, "memory"))
    }
}

/// The rules of PodMetrics (columns only: never written).
#[derive(Debug, Clone, Copy, Default)]
pub struct PodMetricsRules;

impl KindRules for PodMetricsRules {
    fn columns(&self) -> Vec<Column> {
        columns()
    }

    fn cells(&self, obj: &Value, _now: jiff::Timestamp) -> Vec<Value> {
        let sum = |resource: &str| {
            let total: Option<crate::quantity::Quantity> = array_at(obj, &["containers"])
                .iter()
                .map(|c| {
                    text(c.get("usage"), resource)
                        .parse::<crate::quantity::Quantity>()
                        .ok()
                })
                .sum();
            total.map(|q| q.to_string()).unwrap_or_default()
        };
        usage_cells(obj, sum("cpu"), sum("memory"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_rows_sum_their_containers() {
        let pod = json!({"metadata": {"name": "web"}, "window": "15s", "containers": [
            {"name": "a", "usage": {"cpu": "250m", "memory": "1Mi"}},
            {"name": "b", "usage": {"cpu": "500000000n", "memory": "1Mi"}},
        ]});
        let cells = PodMetricsRules.cells(&pod, jiff::Timestamp::now());
        assert_eq!(
            cells,
            vec![json!("web"), json!("750m"), json!("2Mi"), json!("15s")]
        );
        let node = json!({"metadata": {"name": "n"}, "window": "15s", "usage": {"cpu": "1", "memory": "2Gi"}});
        assert_eq!(
            NodeMetricsRules.cells(&node, jiff::Timestamp::now()),
            vec![json!("n"), json!("1"), json!("2Gi"), json!("15s")]
        );
    }
}
