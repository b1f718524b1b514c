//! Pure functions over NodeClaims: building one from its pool, what its Node
//! still lacks (labels, taints), and its conditions given that Node.

use std::collections::BTreeMap;

use berth_api::nodeclaim::{NodeClaim, NodeClaimSpec, NodeClaimStatus, TERMINATION_FINALIZER};
use berth_api::nodepool::{NodePool, NODECLAIM_LABEL, POOL_LABEL};
use k8s_openapi::api::core::v1::{Node, Taint};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;
use serde_json::{json, Value};

use crate::conditions;

/// Condition types of a claim, in the order they become True.
pub const LAUNCHED: &str = "Launched";
/// The machine's Node exists.
pub const REGISTERED: &str = "Registered";
/// The Node is Ready and has dropped its startup taints.
pub const INITIALIZED: &str = "Initialized";
/// The Node is Ready.
pub const READY: &str = "Ready";

/// On a claim created to replace another (drift, expiry): the name of the
/// claim it replaces. Until that claim is being deleted, the pool loop
/// neither counts nor removes the replacement.
pub const REPLACES_ANNOTATION: &str = "berth.dev/replaces";

/// The claim `claim` was created to replace, if any.
pub fn replaces(claim: &NodeClaim) -> Option<&str> {
    claim
        .metadata
        .annotations
        .as_ref()?
        .get(REPLACES_ANNOTATION)
        .map(String::as_str)
}

/// A new claim for `pool` that replaces claim `old`.
pub fn replacement(pool: &NodePool, old: &str) -> NodeClaim {
    let mut claim = new_claim(pool);
    claim.metadata.annotations = Some(BTreeMap::from([(
        REPLACES_ANNOTATION.to_owned(),
        old.to_owned(),
    )]));
    claim
}

/// A new claim for one machine of `pool`: named after the pool with a random
/// suffix, owned by it, held by the termination finalizer, with a snapshot
/// of the pool's template, labels and taints.
pub fn new_claim(pool: &NodePool) -> NodeClaim {
    new_claim_with(pool, crate::capacity::template_capacity(pool))
}

/// A new claim of `pool` whose machine will have `resources`: what
/// [`crate::capacity::resolve`] found when the template names no capacity.
/// The template snapshot stays as the pool wrote it, so drift is not fooled.
pub fn new_claim_with(pool: &NodePool, resources: BTreeMap<String, Quantity>) -> NodeClaim {
    let name = pool.metadata.name.clone().unwrap_or_default();
    let spec = &pool.spec;
    let mut labels = spec.labels.clone();
    labels.insert(POOL_LABEL.to_owned(), name.clone());
    let template = spec.template.clone().unwrap_or_default();
    NodeClaim {
        api_version: "berth.dev/v1".into(),
        kind: "NodeClaim".into(),
        metadata: ObjectMeta {
            generate_name: Some(format!("{name}-")),
            labels: Some(BTreeMap::from([(POOL_LABEL.to_owned(), name.clone())])),
            owner_references: Some(vec![OwnerReference {
                api_version: NodePool::api_version(&()).into_owned(),
                kind: NodePool::kind(&()).into_owned(),
                name: name.clone(),
                uid: pool.metadata.uid.clone().unwrap_or_default(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            finalizers: Some(vec![TERMINATION_FINALIZER.to_owned()]),
            ..ObjectMeta::default()
        },
        spec: NodeClaimSpec {
            pool: name,
            provider: spec.provider_name().to_owned(),
            resources,
            template,
            labels,
            taints: spec.taints.clone(),
            startup_taints: spec.startup_taints.clone(),
        },
        status: None,
    }
}

/// The Node a claim's machine registered as, or will: the one its status
/// names, else the claim's own name (providers name machines after claims).
pub fn node_name(claim: &NodeClaim) -> String {
    claim
        .status
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .unwrap_or_else(|| claim.metadata.name.clone().unwrap_or_default())
}

/// The labels a claim's Node must carry: the pool's, `berth.dev/pool` and
/// `berth.dev/nodeclaim`.
pub fn node_labels(claim: &NodeClaim) -> BTreeMap<String, String> {
    let mut labels = claim.spec.labels.clone();
    labels.insert(POOL_LABEL.to_owned(), claim.spec.pool.clone());
    labels.insert(
        NODECLAIM_LABEL.to_owned(),
        claim.metadata.name.clone().unwrap_or_default(),
    );
    labels
}

/// A merge patch that gives `node` the labels and taints of `claim` it
/// lacks, or None when it has them all. Startup taints are not restored:
/// the node removes them itself once initialised.
pub fn node_patch(claim: &NodeClaim, node: &Node) -> Option<Value> {
    let current = node.metadata.labels.clone().unwrap_or_default();
    let missing_labels: BTreeMap<String, String> = node_labels(claim)
        .into_iter()
        .filter(|(k, v)| current.get(k) != Some(v))
        .collect();
    let taints: Vec<Taint> = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let missing_taints: Vec<&Taint> = claim
        .spec
        .taints
        .iter()
        .filter(|t| !taints.iter().any(|have| same_taint(have, t)))
        .collect();
    if missing_labels.is_empty() && missing_taints.is_empty() {
        return None;
    }
    let mut patch = json!({"metadata": {"labels": missing_labels}});
    if !missing_taints.is_empty() {
        let mut all = taints.clone();
        all.extend(missing_taints.into_iter().cloned());
        patch["spec"] = json!({ "taints": all });
    }
    Some(patch)
}

/// Taints are the same when key and effect match (as kubelet and
/// `kubectl taint` treat them).
fn same_taint(a: &Taint, b: &Taint) -> bool {
    a.key == b.key && a.effect == b.effect
}

/// Whether the Node reports `Ready=True`.
pub fn node_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The claim's status given its machine's provider id and its Node (if it
/// registered), and the conditions that became True on the way.
pub fn observe(
    claim: &NodeClaim,
    node: Option<&Node>,
    now: jiff::Timestamp,
) -> (NodeClaimStatus, Vec<&'static str>) {
    let mut status = claim.status.clone().unwrap_or_default();
    let mut became = Vec::new();
    let mut set = |status: &mut NodeClaimStatus, type_, value, reason: &str, message: &str| {
        if conditions::set(&mut status.conditions, type_, value, reason, message, now) && value {
            became.push(type_);
        }
    };
    let launched = status.provider_id.is_some();
    set(
        &mut status,
        LAUNCHED,
        launched,
        if launched { "Launched" } else { "Launching" },
        "",
    );
    match node {
        None => {
            set(
                &mut status,
                REGISTERED,
                false,
                "NodeNotFound",
                "Node not registered with cluster",
            );
            set(&mut status, INITIALIZED, false, "NotRegistered", "");
            set(&mut status, READY, false, "NotRegistered", "");
        }
        Some(node) => {
            status.node_name = node.metadata.name.clone();
            if let Some(node_status) = &node.status {
                status.capacity = node_status.capacity.clone().unwrap_or_default();
                status.allocatable = node_status.allocatable.clone().unwrap_or_default();
            }
            let ready = node_ready(node);
            let taints = node
                .spec
                .as_ref()
                .and_then(|s| s.taints.clone())
                .unwrap_or_default();
            let starting = claim
                .spec
                .startup_taints
                .iter()
                .any(|t| taints.iter().any(|have| same_taint(have, t)));
            let registered = resources_registered(claim, node);
            set(&mut status, REGISTERED, true, "Registered", "");
            let (initialized, reason) = match (ready, starting, registered) {
                (false, _, _) => (false, "NodeNotReady"),
                (true, true, _) => (false, "StartupTaintsExist"),
                (true, false, false) => (false, "ResourcesNotRegistered"),
                (true, false, true) => (true, "Initialized"),
            };
            set(&mut status, INITIALIZED, initialized, reason, "");
            set(
                &mut status,
                READY,
                ready,
                if ready { "Ready" } else { "NodeNotReady" },
                "",
            );
        }
    }
    (status, became)
}

/// Whether `node` advertises every extended resource (`nvidia.com/gpu`)
/// its claim asks for: a GPU node is Ready before its device plugin (or
/// driver) registers the GPUs, and until then it is not initialised, as
/// Karpenter's claims are not.
pub fn resources_registered(claim: &NodeClaim, node: &Node) -> bool {
    let allocatable = node.status.as_ref().and_then(|s| s.allocatable.as_ref());
    claim
        .spec
        .resources
        .iter()
        .filter(|(name, amount)| name.contains('/') && crate::plan::nano(amount).unwrap_or(0) > 0)
        .all(|(name, _)| {
            allocatable
                .and_then(|a| a.get(name))
                .and_then(crate::plan::nano)
                .unwrap_or(0)
                > 0
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::nodepool::NodePoolSpec;
    use k8s_openapi::api::core::v1::{NodeCondition, NodeSpec, NodeStatus};

    fn taint(key: &str, effect: &str) -> Taint {
        Taint {
            key: key.into(),
            effect: effect.into(),
            ..Taint::default()
        }
    }

    fn pool() -> NodePool {
        NodePool {
            metadata: ObjectMeta {
                name: Some("np-gpu".into()),
                uid: Some("u1".into()),
                ..ObjectMeta::default()
            },
            spec: NodePoolSpec {
                labels: BTreeMap::from([("tier".to_owned(), "gpu".to_owned())]),
                taints: vec![taint("nvidia.com/gpu", "NoSchedule")],
                startup_taints: vec![taint("berth.dev/initializing", "NoSchedule")],
                ..NodePoolSpec::default()
            },
            ..NodePool::default()
        }
    }

    fn node(labels: &[(&str, &str)], taints: Vec<Taint>, ready: bool) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some("np-gpu-abcde".into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| ((*k).into(), (*v).into()))
                        .collect(),
                ),
                ..ObjectMeta::default()
            },
            spec: Some(NodeSpec {
                taints: Some(taints),
                ..NodeSpec::default()
            }),
            status: Some(NodeStatus {
                conditions: Some(vec![NodeCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..NodeCondition::default()
                }]),
                ..NodeStatus::default()
            }),
        }
    }

    fn named_claim() -> NodeClaim {
        let mut claim = new_claim(&pool());
        claim.metadata.name = Some("np-gpu-abcde".into());
        claim
    }

    #[test]
    fn a_claim_snapshots_its_pool() {
        let claim = new_claim(&pool());
        assert_eq!(claim.metadata.generate_name.as_deref(), Some("np-gpu-"));
        assert_eq!(claim.spec.pool, "np-gpu");
        assert_eq!(claim.spec.provider, "sim");
        assert_eq!(claim.spec.labels["berth.dev/pool"], "np-gpu");
        let owner = &claim.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("NodePool", "u1")
        );
        assert_eq!(
            claim.metadata.finalizers.as_ref().unwrap(),
            &[TERMINATION_FINALIZER]
        );
        assert_eq!(replaces(&claim), None);
        let successor = replacement(&pool(), "np-gpu-old");
        assert_eq!(replaces(&successor), Some("np-gpu-old"));
        assert_eq!(successor.spec, claim.spec);
    }

    #[test]
    fn node_patch_adds_only_what_is_missing() {
        let claim = named_claim();
        let all = [
            ("tier", "gpu"),
            ("berth.dev/pool", "np-gpu"),
            ("berth.dev/nodeclaim", "np-gpu-abcde"),
        ];
        let gpu = taint("nvidia.com/gpu", "NoSchedule");
        let cases = [
            (node(&all, vec![gpu.clone()], true), None),
            (
                node(&all, vec![], true),
                Some(
                    json!({"metadata": {"labels": {}}, "spec": {"taints": [{"key": "nvidia.com/gpu", "effect": "NoSchedule"}]}}),
                ),
            ),
            (
                node(&[("tier", "cpu")], vec![gpu.clone()], true),
                Some(
                    json!({"metadata": {"labels": {"tier": "gpu", "berth.dev/pool": "np-gpu", "berth.dev/nodeclaim": "np-gpu-abcde"}}}),
                ),
            ),
        ];
        for (node, want) in cases {
            assert_eq!(node_patch(&claim, &node), want);
        }
    }

    #[test]
    fn conditions_follow_the_node() {
        let now = jiff::Timestamp::from_second(1000).unwrap();
        let mut claim = named_claim();
        let kinds = |s: &NodeClaimStatus| -> Vec<(String, String)> {
            s.conditions
                .iter()
                .map(|c| (c.type_.clone(), c.status.clone()))
                .collect()
        };
        let (status, became) = observe(&claim, None, now);
        assert_eq!(became, Vec::<&str>::new());
        assert!(status.conditions.iter().all(|c| c.status == "False"));

        claim.status = Some(NodeClaimStatus {
            provider_id: Some("sim:///np-gpu-abcde".into()),
            ..status
        });
        let starting = node(
            &[],
            vec![taint("berth.dev/initializing", "NoSchedule")],
            true,
        );
        let (status, became) = observe(&claim, Some(&starting), now);
        assert_eq!(became, [LAUNCHED, REGISTERED, READY]);
        assert_eq!(
            kinds(&status),
            [
                ("Launched", "True"),
                ("Registered", "True"),
                ("Initialized", "False"),
                ("Ready", "True")
            ]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
        );
        claim.status = Some(status);
        // A GPU claim whose node has not advertised its GPUs yet.
        let mut gpu_claim = claim.clone();
        gpu_claim.spec.resources = BTreeMap::from([(
            "nvidia.com/gpu".to_owned(),
            k8s_openapi::apimachinery::pkg::api::resource::Quantity("2".into()),
        )]);
        let (status, became) = observe(&gpu_claim, Some(&node(&[], vec![], true)), now);
        assert_eq!(became, Vec::<&str>::new());
        let initialized = status.conditions.iter().find(|c| c.type_ == INITIALIZED);
        assert_eq!(
            initialized.map(|c| c.reason.as_str()),
            Some("ResourcesNotRegistered")
        );
        let (status, became) = observe(&claim, Some(&node(&[], vec![], true)), now);
        assert_eq!(became, [INITIALIZED]);
        assert_eq!(status.node_name.as_deref(), Some("np-gpu-abcde"));
        claim.status = Some(NodeClaimStatus {
            node_name: Some("ip-10-0-0-7".into()),
            ..status
        });
        assert_eq!(node_name(&claim), "ip-10-0-0-7");
        assert_eq!(
            node_name(&named_claim()),
            "np-gpu-abcde",
            "named after the claim until registered"
        );
    }
}
