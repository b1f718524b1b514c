//! Which nodes a load balancer sends traffic to. Upstream's service
//! controller (KEP-3458, the stable node set, GA in 1.30) keeps every node
//! that is not being deleted, not labelled out and not tainted for removal by
//! an autoscaler; readiness is left to the load balancer's own health checks,
//! so a flapping node never churns the target list or cuts its connections.
//! Unschedulable nodes stay targets (upstream dropped that rule in 1.19).

use std::net::IpAddr;

use k8s_openapi::api::core::v1::Node;

/// The label that takes a node out of every load balancer.
pub const EXCLUDE_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";

/// The taint the cluster autoscaler puts on a node it is about to remove.
pub const TO_BE_DELETED_TAINT: &str = "ToBeDeletedByClusterAutoscaler";

/// A node as a provider needs it: where to send traffic and how to name it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TargetNode {
    /// The Node's name (HAProxy's server name, the log's key).
    pub name: String,
    /// The address its NodePorts answer on (InternalIP, else ExternalIP).
    pub address: IpAddr,
    /// `spec.providerID`, how cloud providers find the instance.
    pub provider_id: Option<String>,
}

/// Whether `node` belongs in the target set of load balancers (the stable
/// node-set predicates: not deleted, not excluded, not tainted for removal).
pub fn is_target(node: &Node) -> bool {
    let deleting = node.metadata.deletion_timestamp.is_some();
    let excluded = node
        .metadata
        .labels
        .as_ref()
        .is_some_and(|labels| labels.contains_key(EXCLUDE_LABEL));
    let tainted = node
        .spec
        .as_ref()
        .and_then(|spec| spec.taints.as_ref())
        .is_some_and(|taints| taints.iter().any(|t| t.key == TO_BE_DELETED_TAINT));
    !deleting && !excluded && !tainted
}

/// The address a load balancer reaches `node` on: the first InternalIP, else
/// the first ExternalIP; None when it has published neither (yet).
pub fn node_address(node: &Node) -> Option<IpAddr> {
    let addresses = node.status.as_ref()?.addresses.as_ref()?;
    ["InternalIP", "ExternalIP"].iter().find_map(|kind| {
        addresses
            .iter()
            .filter(|a| a.type_ == *kind)
            .find_map(|a| a.address.parse().ok())
    })
}

/// The targets among `nodes`, sorted by name so equal sets compare equal.
pub fn targets<'a>(nodes: impl IntoIterator<Item = &'a Node>) -> Vec<TargetNode> {
    let mut targets: Vec<TargetNode> = nodes
        .into_iter()
        .filter(|node| is_target(node))
        .filter_map(|node| {
            Some(TargetNode {
                name: node.metadata.name.clone()?,
                address: node_address(node)?,
                provider_id: node.spec.as_ref().and_then(|s| s.provider_id.clone()),
            })
        })
        .collect();
    targets.sort();
    targets
}

/// Whether a change from `old` to `new` can change any load balancer's
/// targets, so the controller re-syncs them (upstream's
/// `shouldSyncUpdatedNode`); a readiness flap alone does not.
pub fn node_change_matters(old: &Node, new: &Node) -> bool {
    is_target(old) != is_target(new)
        || node_address(old) != node_address(new)
        || old.spec.as_ref().and_then(|s| s.provider_id.as_ref())
            != new.spec.as_ref().and_then(|s| s.provider_id.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeAddress, NodeCondition, NodeStatus, Taint};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn node(name: &str, ip: &str) -> Node {
        let mut node = Node::default();
        node.metadata.name = Some(name.into());
        node.status = Some(NodeStatus {
            addresses: Some(vec![
                NodeAddress {
                    type_: "Hostname".into(),
                    address: name.into(),
                },
                NodeAddress {
                    type_: "InternalIP".into(),
                    address: ip.into(),
                },
            ]),
            conditions: Some(vec![NodeCondition {
                type_: "Ready".into(),
                status: "True".into(),
                ..Default::default()
            }]),
            ..Default::default()
        });
        node
    }

    fn with_label(mut node: Node, key: &str) -> Node {
        node.metadata
            .labels
            .get_or_insert_default()
            .insert(key.into(), String::new());
        node
    }

    fn with_taint(mut node: Node, key: &str) -> Node {
        let spec = node.spec.get_or_insert_default();
        spec.taints.get_or_insert_default().push(Taint {
            key: key.into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        });
        node
    }

    fn not_ready(mut node: Node) -> Node {
        let status = node.status.as_mut().unwrap();
        status.conditions.as_mut().unwrap()[0].status = "False".into();
        node
    }

    #[test]
    fn target_predicates_follow_the_stable_node_set() {
        let deleting = {
            let mut n = node("d", "10.0.0.4");
            n.metadata.deletion_timestamp = Some(Time(Default::default()));
            n
        };
        let unschedulable = {
            let mut n = node("u", "10.0.0.5");
            n.spec.get_or_insert_default().unschedulable = Some(true);
            n
        };
        let cases = [
            ("plain node", node("a", "10.0.0.1"), true),
            (
                "excluded by label",
                with_label(node("b", "10.0.0.2"), EXCLUDE_LABEL),
                false,
            ),
            (
                "other label",
                with_label(node("b", "10.0.0.2"), "team"),
                true,
            ),
            (
                "autoscaler removing it",
                with_taint(node("c", "10.0.0.3"), TO_BE_DELETED_TAINT),
                false,
            ),
            (
                "other taint",
                with_taint(node("c", "10.0.0.3"), "dedicated"),
                true,
            ),
            ("being deleted", deleting, false),
            ("unschedulable stays", unschedulable, true),
            (
                "not ready stays (health checks decide)",
                not_ready(node("r", "10.0.0.6")),
                true,
            ),
        ];
        for (case, node, want) in cases {
            assert_eq!(is_target(&node), want, "{case}");
        }
    }

    #[test]
    fn address_prefers_internal_then_external_and_skips_nodes_without_one() {
        let mut external = node("e", "10.0.0.9");
        external.status.as_mut().unwrap().addresses = Some(vec![NodeAddress {
            type_: "ExternalIP".into(),
            address: "203.0.113.7".into(),
        }]);
        assert_eq!(
            node_address(&external),
            Some("203.0.113.7".parse().unwrap())
        );
        assert_eq!(
            node_address(&node("i", "10.0.0.9")),
            Some("10.0.0.9".parse().unwrap())
        );
        let mut bare = node("x", "10.0.0.1");
        bare.status = None;
        let got = targets([&node("b", "10.0.0.2"), &bare, &node("a", "10.0.0.1")]);
        let names: Vec<_> = got.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            ["a", "b"],
            "sorted, the node without an address left out"
        );
    }

    #[test]
    fn only_target_relevant_node_changes_trigger_a_sync() {
        let a = node("a", "10.0.0.1");
        assert!(
            !node_change_matters(&a, &not_ready(a.clone())),
            "readiness flap"
        );
        assert!(!node_change_matters(&a, &with_label(a.clone(), "team")));
        assert!(node_change_matters(
            &a,
            &with_label(a.clone(), EXCLUDE_LABEL)
        ));
        assert!(
            node_change_matters(&a, &node("a", "10.0.0.2")),
            "address moved"
        );
        let mut with_id = a.clone();
        with_id.spec.get_or_insert_default().provider_id = Some("aws:///i-1".into());
        assert!(node_change_matters(&a, &with_id));
    }
}
