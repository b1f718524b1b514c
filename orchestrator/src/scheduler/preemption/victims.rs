//! Victim selection on one node (upstream's `SelectVictimsOnNode`): remove
//! every pod of lower priority than the preemptor; if the preemptor then
//! passes the filters, add pods back, most important first (those whose
//! removal would violate a PodDisruptionBudget before the others), keeping
//! each one that still lets it fit. What could not be added back are the
//! victims: the fewest and least important pods that make room. Pure.

use std::cmp::Ordering;
use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;

use super::budgets::{split_by_violation, Budget};
use super::priority;
use crate::scheduler::cache::{NodeInfo, PodEntry};
use crate::scheduler::framework::{run_filters, CycleState, Profile, Status};
use crate::scheduler::message::NO_PREEMPTION_VICTIMS;

/// When a pod started (`status.startTime`); `None` (not started yet) counts
/// as now, later than any start, as upstream's `GetPodStartTime`.
pub fn start_time(pod: &Pod) -> Option<Timestamp> {
    pod.status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .map(|t| t.0)
}

/// Compares start times where `None` means "now" (the latest).
fn compare_start(a: Option<Timestamp>, b: Option<Timestamp>) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => a.cmp(&b),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// Upstream's `MoreImportantPod` as an ordering, most important first:
/// higher priority, then the earlier start.
pub fn more_important_first(a: &Pod, b: &Pod) -> Ordering {
    priority(b)
        .cmp(&priority(a))
        .then_with(|| compare_start(start_time(a), start_time(b)))
}

/// The victims chosen on one node.
#[derive(Debug, Clone)]
pub struct Victims {
    /// The pods to delete, most important first.
    pub pods: Vec<Arc<PodEntry>>,
    /// How many of them violate a PodDisruptionBudget.
    pub num_pdb_violations: usize,
}

/// Chooses the victims on `node` for the pod of `state`, with `claims`
/// (pods nominated there of equal or higher priority) counted as placed.
/// `Err` carries why preemption cannot help on this node: no lower-priority
/// pods, or the filters' rejection with all of them gone.
pub fn select_victims_on_node(
    profile: &Profile,
    state: &CycleState,
    node: &NodeInfo,
    claims: &[Arc<PodEntry>],
    budgets: &[Budget],
) -> Result<Victims, Status> {
    let preemptor = priority(state.pod);
    let mut info = node.clone();
    for claim in claims {
        info.add_pod(crate::scheduler::cache::pod_key(&claim.pod), claim.clone());
    }
    let mut potential: Vec<(String, Arc<PodEntry>)> = info
        .pods
        .iter()
        .filter(|(_, entry)| priority(&entry.pod) < preemptor)
        .map(|(key, entry)| (key.clone(), entry.clone()))
        .collect();
    if potential.is_empty() {
        return Err(Status::unresolvable(NO_PREEMPTION_VICTIMS));
    }
    for (key, _) in &potential {
        info.remove_pod(key);
    }
    let status = run_filters(profile, state, &info);
    if !status.is_success() {
        return Err(status);
    }
    potential.sort_by(|a, b| more_important_first(&a.1.pod, &b.1.pod).then(a.0.cmp(&b.0)));
    let entries = potential.into_iter().map(|(_, entry)| entry).collect();
    let (violating, non_violating) = split_by_violation(entries, budgets);
    let mut victims = Victims {
        pods: Vec::new(),
        num_pdb_violations: 0,
    };
    let mut reprieve = |entry: Arc<PodEntry>, violates: bool| {
        let key = crate::scheduler::cache::pod_key(&entry.pod);
        info.add_pod(key.clone(), entry.clone());
        if !run_filters(profile, state, &info).is_success() {
            info.remove_pod(&key);
            victims.pods.push(entry);
            if violates {
                victims.num_pdb_violations += 1;
            }
        }
    };
    for entry in violating {
        reprieve(entry, true);
    }
    for entry in non_violating {
        reprieve(entry, false);
    }
    victims
        .pods
        .sort_by(|a, b| more_important_first(&a.pod, &b.pod));
    Ok(victims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::cache::Snapshot;
    use crate::scheduler::framework::Code;
    use crate::scheduler::testing::{node, pod_with};
    use serde_json::{json, Value};

    /// A pod bound to `n` with `cpu`, `priority`, labels and a start time.
    pub(crate) fn running(name: &str, cpu: &str, prio: i32, started: &str, labels: Value) -> Pod {
        let mut p = pod_with(
            name,
            json!({"cpu": cpu}),
            json!({"priority": prio, "nodeName": "n"}),
            labels,
        );
        p.status = Some(serde_json::from_value(json!({"startTime": started})).unwrap());
        p
    }

    fn names(victims: &Victims) -> Vec<String> {
        victims
            .pods
            .iter()
            .map(|e| e.pod.metadata.name.clone().unwrap())
            .collect()
    }

    fn snapshot_with(pods: Vec<Pod>) -> Snapshot {
        let mut s = Snapshot::default();
        s.apply_node(node("n", json!({"cpu": "4", "memory": "8Gi"}), json!({})));
        for p in pods {
            s.apply_pod(&Arc::new(p));
        }
        s
    }

    /// Victim selection on node `n` of `snapshot` for `preemptor`.
    fn select(
        snapshot: &Snapshot,
        preemptor: &Pod,
        claims: &[Arc<PodEntry>],
        budgets: &[Budget],
    ) -> Result<Victims, Status> {
        let state = CycleState::new(preemptor, snapshot);
        let node = snapshot.node("n").unwrap();
        select_victims_on_node(&Profile::default(), &state, node, claims, budgets)
    }

    fn preemptor(cpu: &str, prio: i32) -> Pod {
        pod_with(
            "pre",
            json!({"cpu": cpu}),
            json!({"priority": prio}),
            json!({}),
        )
    }

    const T1: &str = "2026-01-01T00:00:01Z";
    const T2: &str = "2026-01-01T00:00:02Z";

    /// Pods on the node from `name/cpu/priority/start-second[/app]` words.
    fn placed(spec: &str) -> Vec<Pod> {
        spec.split_whitespace()
            .map(|word| {
                let f: Vec<&str> = word.split('/').collect();
                let labels = f.get(4).map_or(json!({}), |app| json!({"app": app}));
                let started = format!("2026-01-01T00:00:{:0>2}Z", f[3]);
                running(f[0], f[1], f[2].parse().unwrap(), &started, labels)
            })
            .collect()
    }

    #[test]
    fn the_fewest_least_important_pods_are_chosen() {
        let pdb = |allowed: i32| {
            vec![Budget::from_pdb(
                &serde_json::from_value(json!({
                    "metadata": {"name": "b", "namespace": "default"},
                    "spec": {"selector": {"matchLabels": {"app": "web"}}},
                    "status": {"disruptionsAllowed": allowed, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0},
                }))
                .unwrap(),
            )]
        };
        // (case, pods on the 4-cpu node, preemptor cpu and priority, budgets, victims, violations)
        type Case<'a> = (
            &'a str,
            &'a str,
            (&'a str, i32),
            Vec<Budget>,
            &'a str,
            usize,
        );
        let cases: Vec<Case> = vec![
            (
                "one lowest-priority pod is enough",
                "a/1/1/1 b/1/2/1 c/2/3/1",
                ("1", 10),
                vec![],
                "a",
                0,
            ),
            (
                "a big low pod goes before two small higher ones",
                "big/2/1/1 s1/1/5/1 s2/1/5/1",
                ("2", 10),
                vec![],
                "big",
                0,
            ),
            (
                "reprieved most important first: b fits back, c and a do not",
                "a/1/1/1 b/1/2/1 c/2/3/1",
                ("3", 10),
                vec![],
                "c a",
                0,
            ),
            (
                "equal priority: the later start is the victim",
                "old/2/1/1 new/2/1/2",
                ("2", 10),
                vec![],
                "new",
                0,
            ),
            (
                "pods of equal or higher priority are never victims",
                "same/2/10/1 low/2/1/1",
                ("2", 10),
                vec![],
                "low",
                0,
            ),
            (
                "a budget-protected pod is reprieved before others",
                "guarded/2/1/1/web free/2/1/2",
                ("2", 10),
                pdb(0),
                "free",
                0,
            ),
            (
                "a violation is counted when nothing else makes room",
                "guarded/2/1/1/web high/2/50/1",
                ("2", 10),
                pdb(0),
                "guarded",
                1,
            ),
            (
                "a budget with room is no violation",
                "guarded/2/1/1/web high/2/50/1",
                ("2", 10),
                pdb(1),
                "guarded",
                0,
            ),
        ];
        for (name, pods, (cpu, prio), budgets, want, violations) in cases {
            let snapshot = snapshot_with(placed(pods));
            let victims = select(&snapshot, &preemptor(cpu, prio), &[], &budgets)
                .unwrap_or_else(|s| panic!("{name}: {s:?}"));
            assert_eq!(names(&victims).join(" "), want, "{name}");
            assert_eq!(victims.num_pdb_violations, violations, "{name}");
        }
    }

    #[test]
    fn nodes_where_preemption_cannot_help_say_why() {
        let none = json!({});
        let snapshot = snapshot_with(vec![
            running("high", "3", 50, T1, none.clone()),
            running("low", "1", 1, T1, none.clone()),
        ]);
        let status = select(&snapshot, &preemptor("2", 10), &[], &[]).unwrap_err();
        assert_eq!(status.code, Code::Unschedulable);
        assert_eq!(status.reasons, ["Insufficient cpu"]);
        let status = select(&snapshot, &preemptor("2", 1), &[], &[]).unwrap_err();
        assert_eq!(status.reasons, [NO_PREEMPTION_VICTIMS]);
    }

    #[test]
    fn nominated_pods_keep_their_room() {
        let none = json!({});
        let snapshot = snapshot_with(vec![
            running("a", "2", 1, T1, none.clone()),
            running("b", "2", 1, T2, none.clone()),
        ]);
        let claim = pod_with(
            "claim",
            json!({"cpu": "2"}),
            json!({"priority": 20}),
            json!({}),
        );
        let claims = [PodEntry::of(Arc::new(claim))];
        let victims = select(&snapshot, &preemptor("2", 10), &claims, &[]).unwrap();
        assert_eq!(
            names(&victims),
            ["a", "b"],
            "both go: the claim keeps 2 cpu"
        );
    }

    #[test]
    fn importance_is_priority_then_earlier_start() {
        let none = json!({});
        let a = running("a", "1", 5, T1, none.clone());
        let b = running("b", "1", 5, T2, none.clone());
        let c = running("c", "1", 6, T2, none.clone());
        let unstarted = pod_with("u", json!({}), json!({"priority": 5}), json!({}));
        assert_eq!(more_important_first(&a, &b), Ordering::Less);
        assert_eq!(more_important_first(&c, &a), Ordering::Less);
        assert_eq!(more_important_first(&unstarted, &b), Ordering::Greater);
    }
}
