//! Pure decisions of the pool controller: how many machines a pool should
//! have, and which claims to create or remove to get there. No I/O.

use std::collections::BTreeMap;

use berth_api::nodepool::NodePoolSpec;
use berth_api::quantity::Quantity as Amount;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// What the planner needs to know about one NodeClaim of a pool.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClaimView {
    /// The claim's name.
    pub name: String,
    /// Whether it is already being removed.
    pub deleting: bool,
    /// Whether it replaces a claim that is still live (drift, expiry): the
    /// pair counts as one machine until the old claim is being removed, so
    /// the replacement is neither counted nor removed.
    pub replacing: bool,
    /// Whether its node is registered and Ready.
    pub ready: bool,
    /// Pods on its node that a drain would evict.
    pub pods: usize,
    /// Creation time in seconds, to prefer removing the newest of equals.
    pub created: i64,
}

impl ClaimView {
    /// Whether the claim counts toward the pool's size: neither being
    /// removed nor a replacement in flight.
    pub fn counts(&self) -> bool {
        !self.deleting && !self.replacing
    }
}

/// What to do to a pool's claims.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    /// How many claims to create.
    pub create: usize,
    /// Which claims to remove, in order.
    pub remove: Vec<String>,
}

/// The number of machines a pool should have. A pool with `replicas` is
/// fixed at that size (`kubectl scale` writes it). A pool without is
/// autoscaled: the provisioner adds claims for pending pods and
/// consolidation removes them, so its `live` claims are the size, kept
/// within `minReplicas` (default 0) and `maxReplicas`. Both kinds stay
/// within what `limits` allow for machines of `per_machine`.
pub fn desired_replicas(
    spec: &NodePoolSpec,
    per_machine: &BTreeMap<String, Quantity>,
    live: usize,
) -> usize {
    let min = spec.min_replicas.unwrap_or(0).max(0) as usize;
    let mut desired = match spec.replicas {
        Some(replicas) => (replicas.max(0) as usize).max(min),
        None => live.max(min),
    };
    if let Some(max) = spec.max_replicas {
        desired = desired.min(max.max(0) as usize);
    }
    desired.min(machines_within_limits(&spec.limits, per_machine))
}

/// How many machines of `per_machine` fit inside `limits`; unbounded
/// (`usize::MAX`) for resources a machine does not have or a pool does not limit.
pub fn machines_within_limits(
    limits: &BTreeMap<String, Quantity>,
    per_machine: &BTreeMap<String, Quantity>,
) -> usize {
    limits
        .iter()
        .filter_map(|(resource, limit)| {
            let each = nano(per_machine.get(resource)?)?;
            let limit = nano(limit)?;
            (each > 0).then(|| (limit.max(0) / each) as usize)
        })
        .min()
        .unwrap_or(usize::MAX)
}

/// A quantity in nano units, None when it does not parse.
pub fn nano(quantity: &Quantity) -> Option<i128> {
    Amount::parse(&quantity.0).ok().map(|q| q.nano_value())
}

/// The claims to create or remove so `desired` remain. Removal takes the
/// cheapest first: claims whose node is not Ready (nothing runs there), then
/// the fewest pods to evict, then the newest; claims already being removed
/// count as gone, replacements in flight are left alone.
pub fn plan(desired: usize, claims: &[ClaimView]) -> Plan {
    let mut live: Vec<&ClaimView> = claims.iter().filter(|c| c.counts()).collect();
    if live.len() <= desired {
        return Plan {
            create: desired - live.len(),
            remove: Vec::new(),
        };
    }
    live.sort_by(|a, b| {
        a.ready
            .cmp(&b.ready)
            .then(a.pods.cmp(&b.pods))
            .then(b.created.cmp(&a.created))
            .then(a.name.cmp(&b.name))
    });
    let excess = live.len() - desired;
    Plan {
        create: 0,
        remove: live
            .into_iter()
            .take(excess)
            .map(|c| c.name.clone())
            .collect(),
    }
}

/// The pods a drain of `node` evicts: those bound to it that have not
/// finished, except DaemonSet pods and mirror pods (as `kubectl drain`).
pub fn evictable_pods<'a>(pods: &'a [Pod], node: &str) -> Vec<&'a Pod> {
    pods.iter()
        .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node))
        .filter(|p| {
            let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
            !matches!(phase, Some("Succeeded" | "Failed"))
        })
        .filter(|p| {
            !p.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.controller == Some(true) && o.kind == "DaemonSet")
        })
        .filter(|p| {
            !p.metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key("kubernetes.io/config.mirror"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    fn q(s: &str) -> Quantity {
        Quantity(s.to_owned())
    }

    fn claim(name: &str, ready: bool, pods: usize, created: i64) -> ClaimView {
        ClaimView {
            name: name.into(),
            deleting: false,
            replacing: false,
            ready,
            pods,
            created,
        }
    }

    #[test]
    fn desired_replicas_respects_bounds_and_limits() {
        let machine = BTreeMap::from([
            ("cpu".to_owned(), q("4")),
            ("nvidia.com/gpu".to_owned(), q("1")),
        ]);
        let spec = |replicas, min, max, limits: &[(&str, &str)]| NodePoolSpec {
            replicas,
            min_replicas: min,
            max_replicas: max,
            limits: limits
                .iter()
                .map(|(k, v)| ((*k).to_owned(), q(v)))
                .collect(),
            ..NodePoolSpec::default()
        };
        // (spec, live claims, desired)
        let cases = [
            (spec(Some(3), None, None, &[]), 0, 3),
            (spec(Some(3), None, None, &[]), 5, 3),
            (spec(None, None, None, &[]), 0, 0),
            (spec(None, Some(2), Some(5), &[]), 0, 2),
            (spec(Some(1), Some(2), None, &[]), 0, 2),
            (spec(Some(9), None, Some(4), &[]), 0, 4),
            (spec(Some(5), None, None, &[("cpu", "10")]), 0, 2),
            (spec(Some(5), None, None, &[("cpu", "12000m")]), 0, 3),
            (
                spec(
                    Some(5),
                    None,
                    None,
                    &[("nvidia.com/gpu", "4"), ("cpu", "100")],
                ),
                0,
                4,
            ),
            (spec(Some(5), None, None, &[("memory", "1Gi")]), 0, 5),
            (spec(Some(-2), None, None, &[]), 0, 0),
            // Autoscaled: the live claims are the size, within min, max and limits.
            (spec(None, Some(1), Some(5), &[]), 3, 3),
            (spec(None, Some(1), Some(5), &[]), 7, 5),
            (spec(None, None, None, &[("nvidia.com/gpu", "2")]), 3, 2),
        ];
        for (i, (spec, live, want)) in cases.into_iter().enumerate() {
            assert_eq!(desired_replicas(&spec, &machine, live), want, "case {i}");
        }
    }

    #[test]
    fn plan_creates_the_missing_and_removes_the_emptiest() {
        let three = [
            claim("a", true, 2, 1),
            claim("b", true, 0, 2),
            claim("c", true, 0, 3),
        ];
        let deleting = ClaimView {
            deleting: true,
            ..claim("d", true, 0, 4)
        };
        let replacing = ClaimView {
            replacing: true,
            ..claim("r", false, 0, 9)
        };
        let cases: Vec<(usize, Vec<ClaimView>, Plan)> = vec![
            (
                3,
                vec![],
                Plan {
                    create: 3,
                    remove: vec![],
                },
            ),
            (3, three.to_vec(), Plan::default()),
            (
                1,
                three.to_vec(),
                Plan {
                    create: 0,
                    remove: vec!["c".into(), "b".into()],
                },
            ),
            (
                0,
                three.to_vec(),
                Plan {
                    create: 0,
                    remove: vec!["c".into(), "b".into(), "a".into()],
                },
            ),
            (
                2,
                vec![
                    claim("busy", true, 1, 1),
                    claim("booting", false, 0, 1),
                    claim("idle", true, 0, 1),
                ],
                Plan {
                    create: 0,
                    remove: vec!["booting".into()],
                },
            ),
            (
                3,
                vec![three[0].clone(), three[1].clone(), deleting],
                Plan {
                    create: 1,
                    remove: vec![],
                },
            ),
            // A drifted claim being replaced: the pair is one machine, and
            // the (empty, newest) replacement is never the one removed.
            (
                3,
                vec![
                    three[0].clone(),
                    three[1].clone(),
                    three[2].clone(),
                    replacing.clone(),
                ],
                Plan::default(),
            ),
            (
                2,
                vec![
                    three[0].clone(),
                    three[1].clone(),
                    three[2].clone(),
                    replacing,
                ],
                Plan {
                    create: 0,
                    remove: vec!["c".into()],
                },
            ),
        ];
        for (desired, claims, want) in cases {
            assert_eq!(
                plan(desired, &claims),
                want,
                "desired {desired} of {claims:?}"
            );
        }
    }

    #[test]
    fn drains_skip_daemonset_mirror_and_finished_pods() {
        let pod = |name: &str, node: &str, phase: &str, owner: Option<&str>, mirror: bool| Pod {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some(name.into()),
                owner_references: owner.map(|kind| {
                    vec![OwnerReference {
                        kind: kind.into(),
                        controller: Some(true),
                        ..OwnerReference::default()
                    }]
                }),
                annotations: mirror.then(|| {
                    BTreeMap::from([("kubernetes.io/config.mirror".to_owned(), "x".to_owned())])
                }),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: Some(node.into()),
                ..PodSpec::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                ..PodStatus::default()
            }),
        };
        let pods = [
            pod("web", "n1", "Running", Some("ReplicaSet"), false),
            pod("bare", "n1", "Pending", None, false),
            pod("agent", "n1", "Running", Some("DaemonSet"), false),
            pod("static", "n1", "Running", None, true),
            pod("done", "n1", "Succeeded", Some("Job"), false),
            pod("elsewhere", "n2", "Running", None, false),
        ];
        let names: Vec<_> = evictable_pods(&pods, "n1")
            .into_iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names, ["web", "bare"]);
    }
}
