//! The predicates a pod puts on the other pods around it: required pod
//! anti-affinity (no matching pod in the same topology domain, either way
//! round) and `DoNotSchedule` topology spread (the domain it joins stays
//! within `maxSkew` of the emptiest eligible one), over any topology key,
//! `kubernetes.io/hostname` and `topology.kubernetes.io/zone` alike.

use std::collections::{BTreeMap, BTreeSet};

use berth_api::selector::LabelSelector;
use k8s_openapi::api::core::v1::{Pod, PodAffinityTerm};
use kube::ResourceExt;

use super::Constraints;

/// The topology key whose domains are single nodes.
pub const HOSTNAME: &str = "kubernetes.io/hostname";

/// The pods a rule counts.
#[derive(Debug, Clone, PartialEq)]
pub struct Scope {
    /// Their labels match this.
    pub selector: LabelSelector,
    /// They are in one of these namespaces; None for every namespace.
    pub namespaces: Option<BTreeSet<String>>,
}

impl Scope {
    /// Whether the rule counts `pod`.
    pub fn counts(&self, pod: &Member) -> bool {
        self.namespaces
            .as_ref()
            .is_none_or(|n| n.contains(&pod.namespace))
            && self.selector.matches(&pod.labels)
    }
}

/// A required anti-affinity term: no pod of `scope` in the same `key` domain.
#[derive(Debug, Clone, PartialEq)]
pub struct Apart {
    /// The topology key.
    pub key: String,
    /// The pods it keeps away.
    pub scope: Scope,
}

/// A `DoNotSchedule` topology spread constraint.
#[derive(Debug, Clone, PartialEq)]
pub struct SpreadRule {
    /// The topology key.
    pub key: String,
    /// The most one domain may hold above the emptiest one.
    pub max_skew: usize,
    /// The pods it counts.
    pub scope: Scope,
}

/// A pod as the topology rules see it: what others match against, and its
/// own anti-affinity (which binds pods placed after it, too).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Member {
    /// Its namespace.
    pub namespace: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its required anti-affinity terms.
    pub apart: Vec<Apart>,
}

impl Member {
    /// `pod` as a member.
    pub fn of(pod: &Pod) -> Self {
        Self {
            namespace: pod.namespace().unwrap_or_default(),
            labels: pod.labels().clone(),
            apart: apart_of(pod),
        }
    }
}

/// `pod`'s required anti-affinity terms. A term without a label selector
/// selects nothing (upstream); a namespace selector is taken as every
/// namespace, which keeps more pods apart, never fewer.
pub fn apart_of(pod: &Pod) -> Vec<Apart> {
    let own = pod.namespace().unwrap_or_default();
    let terms = pod
        .spec
        .as_ref()
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.pod_anti_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    terms
        .into_iter()
        .flatten()
        .filter_map(|t| {
            Some(Apart {
                key: t.topology_key.clone(),
                scope: Scope {
                    selector: selector(t.label_selector.as_ref()?)?,
                    namespaces: namespaces(t, &own),
                },
            })
        })
        .collect()
}

fn namespaces(term: &PodAffinityTerm, own: &str) -> Option<BTreeSet<String>> {
    if term.namespace_selector.is_some() {
        return None;
    }
    let listed: BTreeSet<String> = term.namespaces.iter().flatten().cloned().collect();
    Some(if listed.is_empty() {
        BTreeSet::from([own.to_owned()])
    } else {
        listed
    })
}

/// `pod`'s `DoNotSchedule` topology spread constraints (`ScheduleAnyway`
/// only scores, so it never keeps a pod off a node). They count pods of the
/// pod's own namespace.
pub fn spread_of(pod: &Pod) -> Vec<SpreadRule> {
    let own = pod.namespace().unwrap_or_default();
    let constraints = pod
        .spec
        .as_ref()
        .and_then(|s| s.topology_spread_constraints.as_ref());
    constraints
        .into_iter()
        .flatten()
        .filter(|c| c.when_unsatisfiable == "DoNotSchedule")
        .filter_map(|c| {
            Some(SpreadRule {
                key: c.topology_key.clone(),
                max_skew: usize::try_from(c.max_skew.max(1)).ok()?,
                scope: Scope {
                    selector: selector(c.label_selector.as_ref()?)?,
                    namespaces: Some(BTreeSet::from([own.clone()])),
                },
            })
        })
        .collect()
}

fn selector(
    selector: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
) -> Option<LabelSelector> {
    LabelSelector::from_label_selector(selector).ok()
}

/// One node as the topology rules see it.
#[derive(Debug, Clone, Copy)]
pub struct Site<'a> {
    /// The node's name (its hostname domain when it has no hostname label).
    pub name: &'a str,
    /// The node's labels.
    pub labels: &'a BTreeMap<String, String>,
    /// The pods on it.
    pub members: &'a [Member],
}

impl Site<'_> {
    fn domain(&self, key: &str) -> Option<&str> {
        match self.labels.get(key) {
            Some(value) => Some(value),
            None => (key == HOSTNAME).then_some(self.name),
        }
    }
}

/// A pod on its way to a node: who it is, where it may go and its spread.
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming {
    /// The pod itself.
    pub member: Member,
    /// Its node constraints (spread only counts nodes they select).
    pub constraints: Constraints,
    /// Its `DoNotSchedule` spread.
    pub spread: Vec<SpreadRule>,
}

impl Incoming {
    /// `pod` on its way.
    pub fn of(pod: &Pod) -> Self {
        Self {
            member: Member::of(pod),
            constraints: Constraints::of(pod),
            spread: spread_of(pod),
        }
    }

    /// Whether joining `sites[target]` keeps every anti-affinity term (the
    /// pod's and those of the pods there) and every spread constraint.
    pub fn allowed(&self, sites: &[Site], target: usize) -> bool {
        let Some(there) = sites.get(target) else {
            return false;
        };
        let near = |site: &Site, key: &str| {
            there
                .domain(key)
                .is_some_and(|d| site.domain(key) == Some(d))
        };
        let own_terms_hold = self.member.apart.iter().all(|term| {
            !sites
                .iter()
                .filter(|s| near(s, &term.key))
                .any(|s| s.members.iter().any(|m| term.scope.counts(m)))
        });
        let theirs_hold = sites.iter().all(|s| {
            s.members.iter().all(|m| {
                m.apart
                    .iter()
                    .all(|term| !(near(s, &term.key) && term.scope.counts(&self.member)))
            })
        });
        own_terms_hold && theirs_hold && self.spread.iter().all(|r| self.spreads(r, sites, there))
    }

    /// Upstream's skew check: the domain's matching pods, plus this one if
    /// it matches, less the fewest in any domain of a node the pod selects,
    /// is at most `maxSkew`. A node without the key takes no such pod.
    fn spreads(&self, rule: &SpreadRule, sites: &[Site], there: &Site) -> bool {
        let Some(domain) = there.domain(&rule.key) else {
            return false;
        };
        let mut counts: BTreeMap<&str, usize> = BTreeMap::from([(domain, 0)]);
        for site in sites
            .iter()
            .filter(|s| self.constraints.select(s.labels).is_ok())
        {
            if let Some(d) = site.domain(&rule.key) {
                *counts.entry(d).or_default() +=
                    site.members.iter().filter(|m| rule.scope.counts(m)).count();
            }
        }
        let fewest = counts.values().copied().min().unwrap_or(0);
        let own = usize::from(rule.scope.counts(&self.member));
        counts[domain] + own <= fewest + rule.max_skew
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(namespace: &str, spec: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": namespace, "labels": {"app": "w"}},
            "spec": spec
        }))
        .unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn spread_counts_only_nodes_the_pod_selects_and_skips_nodes_without_the_key() {
        let spec = json!({"containers": [],
            "nodeSelector": {"tier": "web"},
            "topologySpreadConstraints": [{"topologyKey": "zone", "maxSkew": 1,
                "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "w"}}}]});
        let incoming = Incoming::of(&pod("ns", spec));
        let one = [Member::of(&pod("ns", json!({"containers": []})))];
        let (web_a, web_b, db_c, bare) = (
            labels(&[("tier", "web"), ("zone", "a")]),
            labels(&[("tier", "web"), ("zone", "b")]),
            labels(&[("tier", "db"), ("zone", "c")]),
            labels(&[("tier", "web")]),
        );
        let sites = [
            Site {
                name: "a",
                labels: &web_a,
                members: &one,
            },
            Site {
                name: "b",
                labels: &web_b,
                members: &[],
            },
            Site {
                name: "c",
                labels: &db_c,
                members: &[],
            },
            Site {
                name: "d",
                labels: &bare,
                members: &[],
            },
        ];
        assert!(!incoming.allowed(&sites, 0), "a would hold 2 against b's 0");
        assert!(incoming.allowed(&sites, 1));
        assert!(!incoming.allowed(&sites, 3), "d has no zone");
        let without_b = [sites[0], sites[2]];
        assert!(
            incoming.allowed(&without_b, 0),
            "c is not a domain: the pod does not select it"
        );
        let elsewhere = [Member::of(&pod("other", json!({"containers": []})))];
        let other_ns = [
            Site {
                name: "a",
                labels: &web_a,
                members: &elsewhere,
            },
            sites[1],
        ];
        assert!(
            incoming.allowed(&other_ns, 0),
            "spread counts its own namespace"
        );
    }

    #[test]
    fn anti_affinity_scopes_namespaces_as_upstream() {
        let term = |extra: serde_json::Value| {
            let mut t =
                json!({"topologyKey": HOSTNAME, "labelSelector": {"matchLabels": {"app": "w"}}});
            if let (Some(t), serde_json::Value::Object(extra)) = (t.as_object_mut(), extra) {
                t.extend(extra);
            }
            pod(
                "ns",
                json!({"containers": [], "affinity": {"podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [t]}}}),
            )
        };
        let in_ns = |ns: &str| Member::of(&pod(ns, json!({"containers": []})));
        let cases = [
            (json!({}), "ns", false),
            (json!({}), "other", true),
            (json!({"namespaces": ["other"]}), "other", false),
            (json!({"namespaces": ["other"]}), "ns", true),
            (json!({"namespaceSelector": {}}), "other", false),
        ];
        let node = labels(&[]);
        for (extra, there, allowed) in cases {
            let members = [in_ns(there)];
            let sites = [Site {
                name: "n",
                labels: &node,
                members: &members,
            }];
            let incoming = Incoming::of(&term(extra.clone()));
            assert_eq!(incoming.allowed(&sites, 0), allowed, "{extra} vs {there}");
        }
    }
}
