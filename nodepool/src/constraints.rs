//! The scheduling predicates a pod puts on the node it runs on, shared by
//! provisioning (will a new machine of this shape take the pod?) and
//! disruption (will a remaining node take the pod once its node is gone?),
//! so both decide exactly as the scheduler will: nodeSelector, required node
//! affinity and taints here, pod anti-affinity and topology spread in
//! [`topology`]. Pure.

pub mod topology;

use std::collections::BTreeMap;
use std::fmt;

use berth_api::kinds::core::pod::tolerations::tolerated;
use k8s_openapi::api::core::v1::{
    NodeSelectorRequirement, NodeSelectorTerm, Pod, Taint, Toleration,
};

/// Where a pod may go, apart from room and other pods: the parts of its
/// spec that decide which nodes it fits.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Constraints {
    /// `spec.nodeSelector`.
    pub node_selector: BTreeMap<String, String>,
    /// Required node affinity terms (any one must match); None when unset.
    pub terms: Option<Vec<NodeSelectorTerm>>,
    /// `spec.tolerations`.
    pub tolerations: Vec<Toleration>,
}

impl Constraints {
    /// The constraints of `pod`.
    pub fn of(pod: &Pod) -> Self {
        let spec = pod.spec.clone().unwrap_or_default();
        Self {
            node_selector: spec.node_selector.unwrap_or_default(),
            terms: spec
                .affinity
                .and_then(|a| a.node_affinity)
                .and_then(|a| a.required_during_scheduling_ignored_during_execution)
                .map(|r| r.node_selector_terms),
            tolerations: spec.tolerations.unwrap_or_default(),
        }
    }

    /// Whether the pod may go to a node with `labels` and `taints` as far as
    /// its nodeSelector, required node affinity and tolerations go.
    pub fn admit(&self, labels: &BTreeMap<String, String>, taints: &[Taint]) -> Result<(), Misfit> {
        self.select(labels)?;
        if let Some(taint) = taints.iter().find(|t| {
            matches!(t.effect.as_str(), "NoSchedule" | "NoExecute")
                && !tolerated(&self.tolerations, t)
        }) {
            let value = taint.value.as_deref().unwrap_or_default();
            return Err(Misfit::Taint(format!(
                "{}={value}:{}",
                taint.key, taint.effect
            )));
        }
        Ok(())
    }

    /// Whether a node with `labels` is one the pod selects (nodeSelector and
    /// required node affinity); topology spread counts only such nodes.
    pub fn select(&self, labels: &BTreeMap<String, String>) -> Result<(), Misfit> {
        if let Some((k, v)) = self
            .node_selector
            .iter()
            .find(|(k, v)| labels.get(*k) != Some(*v))
        {
            return Err(Misfit::Selector(format!("{k}={v}")));
        }
        if let Some(terms) = &self.terms {
            if !terms.iter().any(|t| term_matches(t, labels)) {
                return Err(Misfit::Affinity);
            }
        }
        Ok(())
    }
}

/// Why a pod does not fit a node or shape, for the event that says so.
#[derive(Debug, Clone, PartialEq)]
pub enum Misfit {
    /// It asks for more of a resource than a whole machine has.
    Resource(String),
    /// A nodeSelector label the machine lacks.
    Selector(String),
    /// No required node affinity term matches.
    Affinity,
    /// A taint it does not tolerate.
    Taint(String),
}

impl fmt::Display for Misfit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Misfit::Resource(r) => write!(f, "insufficient {r}"),
            Misfit::Selector(l) => write!(f, "nodeSelector {l} does not match"),
            Misfit::Affinity => write!(f, "required node affinity does not match"),
            Misfit::Taint(t) => write!(f, "taint {t} is not tolerated"),
        }
    }
}

/// A node selector term matches when all its expressions do; a term with
/// nothing in it, or with `matchFields` (a node name a new machine does not
/// have yet), matches nothing, as upstream.
fn term_matches(term: &NodeSelectorTerm, labels: &BTreeMap<String, String>) -> bool {
    let expressions = term.match_expressions.as_deref().unwrap_or_default();
    if expressions.is_empty() || term.match_fields.as_ref().is_some_and(|f| !f.is_empty()) {
        return false;
    }
    expressions.iter().all(|e| requirement_matches(e, labels))
}

fn requirement_matches(r: &NodeSelectorRequirement, labels: &BTreeMap<String, String>) -> bool {
    let value = labels.get(&r.key);
    let values = r.values.as_deref().unwrap_or_default();
    let number = |s: &str| s.parse::<i64>().ok();
    let compare = |ordering: std::cmp::Ordering| match (
        value.and_then(|v| number(v)),
        values.first().and_then(|v| number(v)),
    ) {
        (Some(have), Some(bound)) => have.cmp(&bound) == ordering,
        _ => false,
    };
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.contains(v)),
        "NotIn" => value.is_none_or(|v| !values.contains(v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" => compare(std::cmp::Ordering::Greater),
        "Lt" => compare(std::cmp::Ordering::Less),
        _ => false,
    }
}
