//! berth's own `berth.dev/v1` NodePool: a named group of machines of one shape
//! (CPU or GPU), kept at a size and grown for pending pods by the node-pool controller.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Taint;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta};
use serde::{Deserialize, Serialize};

/// A pool of machines that become Nodes with the same labels and taints.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "dev.berth.v1.NodePool")]
#[serde(rename_all = "camelCase")]
pub struct NodePool {
    /// `berth.dev/v1`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    /// `NodePool`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Standard object metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// What the pool should look like.
    #[serde(default)]
    pub spec: NodePoolSpec,
    /// What the controller last observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<NodePoolStatus>,
}

/// The desired shape and size of a pool.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodePoolSpec {
    /// Desired number of nodes when autoscaling is off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Lower bound for the autoscaler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_replicas: Option<i32>,
    /// Upper bound for the autoscaler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_replicas: Option<i32>,
    /// Provider-specific machine class (an EC2 instance type, an SSH host group).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_class: Option<String>,
    /// Labels every node of the pool carries (besides `berth.dev/pool`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Taints every node of the pool carries (GPU pools: `nvidia.com/gpu=present:NoSchedule`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub taints: Vec<Taint>,
}

/// Observed state of a pool.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodePoolStatus {
    /// Nodes that exist for the pool.
    #[serde(default)]
    pub replicas: i32,
    /// Nodes of the pool that are Ready.
    #[serde(default)]
    pub ready_replicas: i32,
    /// Generation the controller last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Standard conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
