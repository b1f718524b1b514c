//! The node heartbeat: a Lease named after each node in `kube-node-lease`,
//! held by the node and renewed every heartbeat interval, as kubelet does.
//! Node lifecycle reads it to tell a live node from a lost one; this module
//! never touches the Node object itself.

use std::sync::Arc;

use futures::{stream, StreamExt};
use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::{node, AgentError, AgentOptions, NodeHandle, Nodes};

/// The namespace node Leases live in.
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

/// The Lease as first created: held by the node, owned by its Node (so it
/// goes when the Node is deleted), renewed now.
pub fn lease_object(node: &NodeHandle, duration_seconds: i32, now: Timestamp) -> Lease {
    let owner = node::uid(node).map(|uid| {
        vec![OwnerReference {
            api_version: "v1".into(),
            kind: "Node".into(),
            name: node.name().to_owned(),
            uid,
            ..OwnerReference::default()
        }]
    });
    Lease {
        metadata: ObjectMeta {
            name: Some(node.name().to_owned()),
            namespace: Some(NODE_LEASE_NAMESPACE.into()),
            owner_references: owner,
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(node.name().to_owned()),
            lease_duration_seconds: Some(duration_seconds),
            renew_time: Some(MicroTime(now)),
            ..LeaseSpec::default()
        }),
    }
}

/// Renews one node's Lease, creating it when missing.
pub async fn renew(
    api: &Api<Lease>,
    node: &NodeHandle,
    duration_seconds: i32,
) -> Result<(), AgentError> {
    let name = node.name();
    let now = Timestamp::now();
    let patch = json!({ "spec": {
        "holderIdentity": name,
        "leaseDurationSeconds": duration_seconds,
        "renewTime": MicroTime(now),
    }});
    match api
        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => {
            match api
                .create(
                    &PostParams::default(),
                    &lease_object(node, duration_seconds, now),
                )
                .await
            {
                // Created by a racing renewal: the next tick renews it.
                Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
                other => other
                    .map(|_| ())
                    .map_err(|e| AgentError::api(format!("creating the Lease of node {name}"), e)),
            }
        }
        Err(e) => Err(AgentError::api(
            format!("renewing the Lease of node {name}"),
            e,
        )),
    }
}

/// Renews every node's Lease each `heartbeat_interval` until `cancel` fires.
/// A failed renewal is logged and retried at the next tick: the Lease only
/// lapses after `lease_duration_seconds`, several ticks away.
pub async fn run(
    client: kube::Client,
    nodes: Arc<Nodes>,
    options: Arc<AgentOptions>,
    cancel: CancellationToken,
) -> Result<(), AgentError> {
    let api: Api<Lease> = Api::namespaced(client, NODE_LEASE_NAMESPACE);
    let mut ticker = tokio::time::interval(options.heartbeat_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            _ = ticker.tick() => {}
        }
        let api = &api;
        let duration = options.lease_duration_seconds;
        stream::iter(nodes.iter())
            .for_each_concurrent(options.api_concurrency.max(1), |node| async move {
                if let Err(e) = renew(api, node, duration).await {
                    tracing::warn!(error = %e, "heartbeat missed");
                }
            })
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NodeConfig;
    use crate::runtime::simulated::{SimulatedConfig, SimulatedRuntime};

    #[test]
    fn the_lease_is_held_by_the_node() {
        let runtime = SimulatedRuntime::new(SimulatedConfig::default()).unwrap();
        let node = NodeHandle::new(NodeConfig::new("n1", 0), Arc::new(runtime));
        let now = Timestamp::now();
        let lease = lease_object(&node, 40, now);
        assert_eq!(lease.metadata.name.as_deref(), Some("n1"));
        assert_eq!(lease.metadata.namespace.as_deref(), Some("kube-node-lease"));
        let spec = lease.spec.unwrap();
        assert_eq!(spec.holder_identity.as_deref(), Some("n1"));
        assert_eq!(spec.lease_duration_seconds, Some(40));
        assert_eq!(spec.renew_time, Some(MicroTime(now)));
        // No owner until the Node's UID is known.
        assert!(lease.metadata.owner_references.is_none());
    }
}
