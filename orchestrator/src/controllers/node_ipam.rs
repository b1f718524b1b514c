//! Node IPAM (upstream's `nodeipam` controller with the range allocator):
//! every Node without `spec.podCIDR` gets the next free subnet of the cluster
//! CIDR, written to `spec.podCIDR` and `spec.podCIDRs`. The set of used
//! subnets is always derived from the node list (a deleted node's subnet is
//! free again), never remembered, and it never changes a CIDR once set.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use berth_observability::workqueue::RunWithWorkqueue;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Config, Controller};
use kube::runtime::watcher;
use kube::ResourceExt;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::ControllerError;

/// Why a CIDR or mask size is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    /// Not `A.B.C.D/N`.
    #[error("{0:?} is not an IPv4 CIDR (want A.B.C.D/N)")]
    Syntax(String),
    /// The per-node mask is not inside the cluster CIDR.
    #[error("node mask /{mask} must be between the cluster prefix /{prefix} and /30")]
    Mask {
        /// The per-node mask size asked for.
        mask: u8,
        /// The cluster CIDR's prefix length.
        prefix: u8,
    },
}

/// An IPv4 network such as `10.42.0.0/16` (the address is masked on parse).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ipv4Cidr {
    base: u32,
    prefix: u8,
}

impl std::str::FromStr for Ipv4Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let syntax = || CidrError::Syntax(s.to_owned());
        let (addr, prefix) = s.split_once('/').ok_or_else(syntax)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| syntax())?;
        let prefix: u8 = prefix.parse().map_err(|_| syntax())?;
        if prefix > 32 {
            return Err(syntax());
        }
        Ok(Self {
            base: u32::from(addr) & mask(prefix),
            prefix,
        })
    }
}

impl std::fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.base), self.prefix)
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    }
}

/// Hands out `/mask` subnets of a cluster CIDR in address order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeCidrAllocator {
    cluster: Ipv4Cidr,
    node_mask: u8,
}

impl NodeCidrAllocator {
    /// Subnets of `/node_mask` inside `cluster` (upstream's `--node-cidr-mask-size`).
    pub fn new(cluster: Ipv4Cidr, node_mask: u8) -> Result<Self, CidrError> {
        if node_mask < cluster.prefix || node_mask > 30 {
            return Err(CidrError::Mask {
                mask: node_mask,
                prefix: cluster.prefix,
            });
        }
        Ok(Self { cluster, node_mask })
    }

    /// The cluster CIDR.
    pub fn cluster(&self) -> Ipv4Cidr {
        self.cluster
    }

    /// The first subnet not in `used`, or None when the range is exhausted.
    /// Entries of `used` outside the cluster CIDR are ignored.
    pub fn next_free(&self, used: &BTreeSet<Ipv4Cidr>) -> Option<Ipv4Cidr> {
        let count = 1u64 << (self.node_mask - self.cluster.prefix);
        let step = 1u64 << (32 - self.node_mask);
        (0..count)
            .map(|i| Ipv4Cidr {
                base: (u64::from(self.cluster.base) + i * step) as u32,
                prefix: self.node_mask,
            })
            .find(|candidate| !used.iter().any(|u| overlaps(u, candidate)))
    }
}

/// Whether two networks share an address (one contains the other).
fn overlaps(a: &Ipv4Cidr, b: &Ipv4Cidr) -> bool {
    let shorter = a.prefix.min(b.prefix);
    a.base & mask(shorter) == b.base & mask(shorter)
}

/// The podCIDRs every node in `nodes` already holds (those that parse).
pub fn used_cidrs<'a>(nodes: impl IntoIterator<Item = &'a Node>) -> BTreeSet<Ipv4Cidr> {
    nodes
        .into_iter()
        .filter_map(|n| n.spec.as_ref())
        .flat_map(|s| {
            s.pod_cidr
                .iter()
                .chain(s.pod_cidrs.iter().flatten())
                .cloned()
                .collect::<Vec<_>>()
        })
        .filter_map(|c| c.parse().ok())
        .collect()
}

fn has_pod_cidr(node: &Node) -> bool {
    node.spec
        .as_ref()
        .and_then(|s| s.pod_cidr.as_deref())
        .is_some_and(|c| !c.is_empty())
}

struct Context {
    client: kube::Client,
    allocator: NodeCidrAllocator,
}

#[derive(Debug, thiserror::Error)]
enum ReconcileError {
    #[error("{0}")]
    Api(#[from] kube::Error),
}

async fn reconcile(node: Arc<Node>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    if has_pod_cidr(&node) || node.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let name = node.name_any();
    let api: Api<Node> = Api::all(ctx.client.clone());
    // A fresh list, not a cache: with one worker (concurrency 1) every
    // allocation sees all earlier ones, so two nodes never get the same subnet.
    let nodes = api.list(&ListParams::default()).await?;
    let used = used_cidrs(&nodes.items);
    let Some(cidr) = ctx.allocator.next_free(&used) else {
        tracing::warn!(node = %name, cluster_cidr = %ctx.allocator.cluster(), "no free podCIDR left");
        return Ok(Action::requeue(Duration::from_secs(30)));
    };
    // Guarded by the node's resourceVersion: if it changed (perhaps another
    // allocator set a CIDR), the write fails with 409 and the next pass re-reads.
    let patch = json!({
        "metadata": { "resourceVersion": node.resource_version() },
        "spec": { "podCIDR": cidr.to_string(), "podCIDRs": [cidr.to_string()] },
    });
    match api
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => {
            tracing::info!(node = %name, pod_cidr = %cidr, "podCIDR allocated");
            Ok(Action::await_change())
        }
        Err(kube::Error::Api(s)) if s.code == 409 => {
            Ok(Action::requeue(Duration::from_millis(200)))
        }
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(Action::await_change()),
        Err(e) => Err(e.into()),
    }
}

fn error_policy(_node: Arc<Node>, error: &ReconcileError, _ctx: Arc<Context>) -> Action {
    tracing::warn!(%error, "node IPAM reconcile failed");
    Action::requeue(Duration::from_secs(2))
}

/// Runs the node IPAM controller until `cancel` fires.
pub async fn run(
    client: kube::Client,
    allocator: NodeCidrAllocator,
    cancel: CancellationToken,
) -> Result<(), ControllerError> {
    let nodes: Api<Node> = Api::all(client.clone());
    let context = Arc::new(Context { client, allocator });
    Controller::new(nodes, watcher::Config::default())
        .with_config(Config::default().concurrency(1))
        .graceful_shutdown_on(async move { cancel.cancelled().await })
        .run_with_workqueue("cidrallocator_node", reconcile, error_policy, context)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "node IPAM controller event");
            }
        })
        .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::NodeSpec;

    fn cidr(s: &str) -> Ipv4Cidr {
        s.parse().unwrap()
    }

    fn node(pod_cidr: Option<&str>) -> Node {
        Node {
            spec: Some(NodeSpec {
                pod_cidr: pod_cidr.map(str::to_owned),
                pod_cidrs: pod_cidr.map(|c| vec![c.to_owned()]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn next_free_subnet_skips_used_ones() {
        // (cluster, mask, used, expected)
        let cases: &[(&str, u8, &[&str], Option<&str>)] = &[
            ("10.42.0.0/16", 24, &[], Some("10.42.0.0/24")),
            ("10.42.0.0/16", 24, &["10.42.0.0/24"], Some("10.42.1.0/24")),
            (
                "10.42.0.0/16",
                24,
                &["10.42.0.0/24", "10.42.2.0/24"],
                Some("10.42.1.0/24"),
            ),
            ("10.42.0.0/16", 24, &["10.99.0.0/24"], Some("10.42.0.0/24")),
            (
                "10.42.0.0/16",
                25,
                &["10.42.0.0/25"],
                Some("10.42.0.128/25"),
            ),
            ("10.42.0.0/23", 24, &["10.42.0.0/24", "10.42.1.0/24"], None),
            ("10.42.7.9/16", 24, &[], Some("10.42.0.0/24")),
        ];
        for (cluster, mask, used, expected) in cases {
            let allocator = NodeCidrAllocator::new(cidr(cluster), *mask).unwrap();
            let used: BTreeSet<_> = used.iter().map(|c| cidr(c)).collect();
            assert_eq!(
                allocator.next_free(&used),
                expected.map(cidr),
                "{cluster} /{mask} used {used:?}"
            );
        }
    }

    #[test]
    fn allocating_for_many_nodes_never_repeats_and_deletion_frees() {
        let allocator = NodeCidrAllocator::new(cidr("10.42.0.0/16"), 24).unwrap();
        let mut nodes = Vec::new();
        for _ in 0..5 {
            let next = allocator.next_free(&used_cidrs(&nodes)).unwrap();
            nodes.push(node(Some(&next.to_string())));
        }
        let used = used_cidrs(&nodes);
        assert_eq!(used.len(), 5);
        nodes.remove(2);
        nodes.push(node(None));
        assert_eq!(
            allocator.next_free(&used_cidrs(&nodes)),
            Some(cidr("10.42.2.0/24"))
        );
    }

    #[test]
    fn bad_cidrs_and_masks_are_rejected() {
        assert!("10.42.0.0".parse::<Ipv4Cidr>().is_err());
        assert!("10.42.0.0/33".parse::<Ipv4Cidr>().is_err());
        assert!("nope/16".parse::<Ipv4Cidr>().is_err());
        assert!(NodeCidrAllocator::new(cidr("10.42.0.0/16"), 15).is_err());
        assert!(NodeCidrAllocator::new(cidr("10.42.0.0/16"), 31).is_err());
        assert_eq!(cidr("10.42.3.4/16").to_string(), "10.42.0.0/16");
    }
}
