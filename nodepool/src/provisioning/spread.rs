//! How many of a set of pods one new node may hold, from the pod's required
//! anti-affinity and topology spread on `kubernetes.io/hostname`: such pods
//! need a node each (anti-affinity) or at most `maxSkew` per node (spread;
//! new nodes start empty, so packing more would break the skew). The rules
//! themselves are read by [`crate::constraints::topology`].

use std::collections::BTreeMap;

use berth_api::selector::LabelSelector;
use k8s_openapi::api::core::v1::Pod;

pub use crate::constraints::topology::HOSTNAME;
use crate::constraints::topology::{self, Member};

/// A cap on pods matching `selector` per node.
#[derive(Debug, Clone)]
pub struct Spread {
    /// The pods the cap counts.
    pub selector: LabelSelector,
    /// How many of them one node may hold.
    pub max: usize,
}

impl Spread {
    /// Whether one more pod fits beside `placed` (the labels of the pods a
    /// node already holds).
    pub fn allows<'a>(
        &self,
        placed: impl IntoIterator<Item = &'a BTreeMap<String, String>>,
    ) -> bool {
        placed
            .into_iter()
            .filter(|labels| self.selector.matches(*labels))
            .count()
            < self.max
    }
}

/// The strictest per-node cap `pod` asks for, if any: anti-affinity terms
/// that select the pod itself cap at 1, `DoNotSchedule` spread at `maxSkew`.
pub fn spread_of(pod: &Pod) -> Option<Spread> {
    let own = Member::of(pod);
    let spread = topology::spread_of(pod);
    let anti = own.apart.iter().map(|t| (&t.key, &t.scope, 1));
    let spread = spread.iter().map(|r| (&r.key, &r.scope, r.max_skew));
    anti.chain(spread)
        .filter(|(key, scope, _)| *key == HOSTNAME && scope.counts(&own))
        .map(|(_, scope, max)| Spread {
            selector: scope.selector.clone(),
            max,
        })
        .min_by_key(|s| s.max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hostname_anti_affinity_and_spread_cap_pods_per_node() {
        let pod = |spec: serde_json::Value| -> Pod {
            serde_json::from_value(
                json!({"metadata": {"name": "p", "labels": {"app": "w"}}, "spec": spec}),
            )
            .unwrap()
        };
        let sel = json!({"matchLabels": {"app": "w"}});
        let cases = [
            (json!({"containers": []}), None),
            (
                json!({"containers": [], "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                    {"topologyKey": "kubernetes.io/hostname", "labelSelector": sel}]}}}),
                Some(1),
            ),
            (
                json!({"containers": [], "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                    {"topologyKey": "topology.kubernetes.io/zone", "labelSelector": sel}]}}}),
                None,
            ),
            (
                json!({"containers": [], "topologySpreadConstraints": [
                    {"topologyKey": "kubernetes.io/hostname", "maxSkew": 2, "whenUnsatisfiable": "DoNotSchedule", "labelSelector": sel},
                    {"topologyKey": "kubernetes.io/hostname", "maxSkew": 1, "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": sel}]}),
                Some(2),
            ),
            (
                json!({"containers": [], "topologySpreadConstraints": [
                    {"topologyKey": "kubernetes.io/hostname", "maxSkew": 1, "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "other"}}}]}),
                None,
            ),
        ];
        for (spec, want) in cases {
            assert_eq!(spread_of(&pod(spec.clone())).map(|s| s.max), want, "{spec}");
        }
        let one = spread_of(&pod(cases_anti())).unwrap();
        let w = BTreeMap::from([("app".to_owned(), "w".to_owned())]);
        let other = BTreeMap::from([("app".to_owned(), "x".to_owned())]);
        assert!(one.allows([&other]));
        assert!(!one.allows([&other, &w]));
    }

    fn cases_anti() -> serde_json::Value {
        json!({"containers": [], "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "w"}}}]}}})
    }
}
