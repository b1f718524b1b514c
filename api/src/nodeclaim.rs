//! berth's own `berth.dev/v1` NodeClaim: one machine of a NodePool, created
//! before the machine is launched so a crash between launch and join loses
//! nothing (Karpenter's NodeClaim). Owned by its pool; a finalizer keeps it
//! until its machine is terminated.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Taint;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta};
use serde::{Deserialize, Serialize};

use crate::nodepool::MachineTemplate;

/// The finalizer that holds a NodeClaim until its machine is gone.
pub const TERMINATION_FINALIZER: &str = "berth.dev/termination";

/// One machine requested for a pool.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "dev.berth.v1.NodeClaim")]
#[serde(rename_all = "camelCase")]
pub struct NodeClaim {
    /// `berth.dev/v1`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    /// `NodeClaim`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Standard object metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The machine asked for: a snapshot of the pool's template.
    #[serde(default)]
    pub spec: NodeClaimSpec,
    /// What the provider and the node reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<NodeClaimStatus>,
}

/// The machine a claim asks for, copied from its pool when the claim is made
/// (so a later template change shows as drift).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeClaimSpec {
    /// The pool the claim belongs to.
    #[serde(default)]
    pub pool: String,
    /// The provider that launches it.
    #[serde(default)]
    pub provider: String,
    /// The machine's shape.
    #[serde(default)]
    pub template: MachineTemplate,
    /// Labels the node gets (the pool's, plus `berth.dev/pool` and `berth.dev/nodeclaim`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Taints the node keeps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub taints: Vec<Taint>,
    /// Taints the node starts with and removes itself.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub startup_taints: Vec<Taint>,
    /// The resources the machine must at least offer.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resources: BTreeMap<String, Quantity>,
}

/// What is known about a claim's machine and node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeClaimStatus {
    /// The provider's id of the machine (`sim:///NAME`, `aws:///ZONE/i-…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_id: Option<String>,
    /// The Node the machine registered as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    /// The image the machine booted (an AMI); empty for simulated machines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    /// What the machine has.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub capacity: BTreeMap<String, Quantity>,
    /// What pods may use of it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub allocatable: BTreeMap<String, Quantity>,
    /// `Launched`, `Registered`, `Initialized`, `Ready`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
