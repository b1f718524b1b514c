//! The provisioning decision: which pending pods the capacity already coming
//! (claims not yet Ready, room on Ready nodes the scheduler has not used)
//! will take, and for the rest which pool and how few new machines hold them.
//!
//! Pods are taken largest first by their dominant resource (the resource
//! they need the largest share of, shares against the largest machine
//! offered), then packed first-fit-decreasing. Pods that fit the same pools
//! form a group; for each group the pools of the highest `weight` with room
//! left are each tried, and the one that places the most pods on the fewest
//! machines with the least left unused wins (the cheapest fitting pool);
//! what it cannot hold (its `maxReplicas` or `limits`) goes to the next.
//! New machines are not shared between groups: simple, and exact for the
//! usual case of one workload per pool. Pure; no I/O.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

use super::fit::{fits, fits_within, pod_requests, subtract, Resources, Shape, PODS};
use super::spread::{spread_of, Spread};
use crate::constraints::Constraints;

/// A pod the scheduler found no room for.
#[derive(Debug, Clone)]
pub struct PendingPod {
    /// `namespace/name`.
    pub key: String,
    /// Its labels (for spread caps).
    pub labels: BTreeMap<String, String>,
    /// What it needs of a node.
    pub requests: Resources,
    /// Where it may go.
    pub constraints: Constraints,
    /// Its per-node cap, if any.
    pub spread: Option<Spread>,
}

impl PendingPod {
    /// What the decision needs of `pod`.
    pub fn of(pod: &Pod) -> Self {
        Self {
            key: format!("{}/{}", pod.namespace().unwrap_or_default(), pod.name_any()),
            labels: pod.labels().clone(),
            requests: pod.spec.as_ref().map(pod_requests).unwrap_or_default(),
            constraints: Constraints::of(pod),
            spread: spread_of(pod),
        }
    }
}

/// A pool new machines may come from.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The pool's name.
    pub pool: String,
    /// One machine of it.
    pub shape: Shape,
    /// Its `weight` (higher preferred).
    pub weight: i32,
    /// How many machines it may still add under `maxReplicas` and `limits`.
    pub room: usize,
    /// The limit that bounds `room`, for the event when it is 0
    /// (`maxReplicas=2`, `nvidia.com/gpu=2`).
    pub limit: String,
}

/// A machine that exists or is coming: a claim, with what its node has left.
#[derive(Debug, Clone)]
pub struct Existing {
    /// The claim's name.
    pub claim: String,
    /// Its machine.
    pub shape: Shape,
    /// What pods bound to it leave free.
    pub free: Resources,
    /// The labels of the pods bound to it.
    pub pods: Vec<BTreeMap<String, String>>,
}

/// One new machine of a pool and the pods it is for.
#[derive(Debug, Clone, PartialEq)]
pub struct Launch {
    /// The pool.
    pub pool: String,
    /// The pods (`namespace/name`) it is for.
    pub pods: Vec<String>,
}

/// What to do about the pending pods.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decision {
    /// Pods the capacity already coming will take: (pod, claim).
    pub nominated: Vec<(String, String)>,
    /// New machines.
    pub launches: Vec<Launch>,
    /// Pods no pool can take now: (pod, why).
    pub failed: Vec<(String, String)>,
}

/// A machine being filled: what it has left and the labels of its pods.
struct Bin<'a> {
    free: Resources,
    placed: Vec<&'a BTreeMap<String, String>>,
    pods: Vec<usize>,
}

impl<'a> Bin<'a> {
    fn admits(&self, pod: &PendingPod) -> bool {
        fits_within(&pod.requests, &self.free)
            && pod
                .spread
                .as_ref()
                .is_none_or(|s| s.allows(self.placed.iter().copied()))
    }

    fn place(&mut self, index: usize, pod: &'a PendingPod) {
        subtract(&mut self.free, &pod.requests);
        self.placed.push(&pod.labels);
        self.pods.push(index);
    }
}

/// Decides for `pods` given the machines `existing` and the pools `candidates`.
pub fn decide(pods: &[PendingPod], existing: &[Existing], candidates: &[Candidate]) -> Decision {
    let reference = reference(candidates, existing);
    let order = largest_first(pods, &reference);
    let mut decision = Decision::default();

    let mut bins: Vec<Bin> = existing
        .iter()
        .map(|e| Bin {
            free: e.free.clone(),
            placed: e.pods.iter().collect(),
            pods: Vec::new(),
        })
        .collect();
    let mut left = Vec::new();
    for &i in &order {
        let pod = &pods[i];
        let found = existing.iter().zip(bins.iter_mut()).find(|(e, bin)| {
            bin.admits(pod) && fits(&pod.constraints, &pod.requests, &e.shape).is_ok()
        });
        match found {
            Some((e, bin)) => {
                bin.place(i, pod);
                decision.nominated.push((pod.key.clone(), e.claim.clone()));
            }
            None => left.push(i),
        }
    }

    // Group the rest by the pools they fit, keeping the largest-first order.
    let mut groups: BTreeMap<Vec<usize>, Vec<usize>> = BTreeMap::new();
    for i in left {
        let pod = &pods[i];
        let fitting: Vec<usize> = candidates
            .iter()
            .enumerate()
            .filter(|(_, c)| fits(&pod.constraints, &pod.requests, &c.shape).is_ok())
            .map(|(n, _)| n)
            .collect();
        if fitting.is_empty() {
            decision
                .failed
                .push((pod.key.clone(), no_fit(pod, candidates)));
            continue;
        }
        groups.entry(fitting).or_default().push(i);
    }
    let mut room: Vec<usize> = candidates.iter().map(|c| c.room).collect();
    for (fitting, mut group) in groups {
        let mut tried: Vec<usize> = Vec::new();
        while !group.is_empty() {
            let open: Vec<usize> = fitting
                .iter()
                .copied()
                .filter(|n| room[*n] > 0 && !tried.contains(n))
                .collect();
            let Some(top) = open.iter().map(|n| candidates[*n].weight).max() else {
                break;
            };
            let best = open
                .iter()
                .filter(|n| candidates[**n].weight == top)
                .map(|&n| {
                    (
                        n,
                        pack(pods, &group, room[n], &candidates[n].shape, &reference),
                    )
                })
                .min_by(|(_, a), (_, b)| {
                    b.placed
                        .cmp(&a.placed)
                        .then(a.bins.len().cmp(&b.bins.len()))
                        .then(a.waste.total_cmp(&b.waste))
                });
            let Some((n, packing)) = best else { break };
            tried.push(n);
            room[n] -= packing.bins.len();
            let placed: Vec<usize> = packing.bins.iter().flatten().copied().collect();
            group.retain(|i| !placed.contains(i));
            decision
                .launches
                .extend(packing.bins.into_iter().map(|bin| Launch {
                    pool: candidates[n].pool.clone(),
                    pods: bin.into_iter().map(|i| pods[i].key.clone()).collect(),
                }));
        }
        for i in group {
            let why = fitting
                .iter()
                .map(|n| {
                    let c = &candidates[*n];
                    format!("nodepool {:?} is at its limit {}", c.pool, c.limit)
                })
                .collect::<Vec<_>>()
                .join("; ");
            decision.failed.push((pods[i].key.clone(), why));
        }
    }
    decision
}

/// The baseline the bench compares with: one new machine per pod, from the
/// first pool it fits that has room.
pub fn one_machine_per_pod(pods: &[PendingPod], candidates: &[Candidate]) -> Vec<Launch> {
    let mut room: Vec<usize> = candidates.iter().map(|c| c.room).collect();
    let mut launches = Vec::new();
    for pod in pods {
        let first = candidates
            .iter()
            .enumerate()
            .find(|(n, c)| room[*n] > 0 && fits(&pod.constraints, &pod.requests, &c.shape).is_ok());
        if let Some((n, c)) = first {
            room[n] -= 1;
            launches.push(Launch {
                pool: c.pool.clone(),
                pods: vec![pod.key.clone()],
            });
        }
    }
    launches
}

/// Why `pod` fits none of `candidates`: each pool's first objection.
fn no_fit(pod: &PendingPod, candidates: &[Candidate]) -> String {
    if candidates.is_empty() {
        return "no autoscaled nodepool exists".to_owned();
    }
    let reasons: Vec<String> = candidates
        .iter()
        .filter_map(|c| {
            let misfit = fits(&pod.constraints, &pod.requests, &c.shape).err()?;
            Some(format!("{}: {misfit}", c.pool))
        })
        .collect();
    format!("no nodepool fits the pod ({})", reasons.join("; "))
}

/// The result of packing a group into new machines of one pool.
struct Packing {
    placed: usize,
    bins: Vec<Vec<usize>>,
    waste: f64,
}

/// First-fit-decreasing of `group` (already largest first) into at most
/// `room` new machines of `shape`.
fn pack(
    pods: &[PendingPod],
    group: &[usize],
    room: usize,
    shape: &Shape,
    reference: &BTreeMap<String, f64>,
) -> Packing {
    let mut bins: Vec<Bin> = Vec::new();
    let mut placed = 0;
    for &i in group {
        let pod = &pods[i];
        if let Some(bin) = bins.iter_mut().find(|b| b.admits(pod)) {
            bin.place(i, pod);
            placed += 1;
        } else if bins.len() < room {
            let mut bin = Bin {
                free: shape.capacity.clone(),
                placed: Vec::new(),
                pods: Vec::new(),
            };
            if bin.admits(pod) {
                bin.place(i, pod);
                placed += 1;
                bins.push(bin);
            }
        }
    }
    let waste = bins
        .iter()
        .flat_map(|b| b.free.iter())
        .filter(|(k, _)| k.as_str() != PODS)
        .map(|(k, v)| *v as f64 / reference.get(k).copied().unwrap_or(1.0))
        .sum();
    Packing {
        placed,
        bins: bins.into_iter().map(|b| b.pods).collect(),
        waste,
    }
}

/// The largest amount of each resource any machine offers: what shares are
/// taken against.
fn reference(candidates: &[Candidate], existing: &[Existing]) -> BTreeMap<String, f64> {
    let mut reference: BTreeMap<String, f64> = BTreeMap::new();
    let shapes = candidates
        .iter()
        .map(|c| &c.shape)
        .chain(existing.iter().map(|e| &e.shape));
    for shape in shapes {
        for (k, v) in &shape.capacity {
            let have = reference.entry(k.clone()).or_insert(1.0);
            *have = have.max(*v as f64);
        }
    }
    reference
}

/// The pods' indices, largest dominant share first (ties by name, so the
/// decision is the same for the same input).
fn largest_first(pods: &[PendingPod], reference: &BTreeMap<String, f64>) -> Vec<usize> {
    let share = |pod: &PendingPod| {
        pod.requests
            .iter()
            .filter(|(k, _)| k.as_str() != PODS)
            .map(|(k, v)| *v as f64 / reference.get(k).copied().unwrap_or(1.0))
            .fold(0.0, f64::max)
    };
    let shares: Vec<f64> = pods.iter().map(share).collect();
    let mut order: Vec<usize> = (0..pods.len()).collect();
    order.sort_by(|a, b| {
        shares[*b]
            .total_cmp(&shares[*a])
            .then_with(|| pods[*a].key.cmp(&pods[*b].key))
    });
    order
}

#[cfg(test)]
mod tests;
