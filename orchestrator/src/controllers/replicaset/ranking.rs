//! Which pods a ReplicaSet deletes first when it scales down, in upstream's
//! order (`controller.ActivePodsWithRanks`): unscheduled before scheduled,
//! Pending before Unknown before Running, not ready before ready, more
//! crowded nodes first, ready for less time first, more restarts first,
//! newer first. Pure: a sort key over pods.

use std::cmp::Ordering;
use std::collections::HashMap;

use k8s_openapi::api::core::v1::Pod;

use crate::controllers::workload::pod_ready_since;

fn phase_rank(pod: &Pod) -> u8 {
    match pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Pending") | None => 0,
        Some("Running") => 2,
        _ => 1,
    }
}

fn node_name(pod: &Pod) -> Option<&str> {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty())
}

fn restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| cs.iter().map(|c| c.restart_count).max().unwrap_or(0))
        .unwrap_or(0)
}

/// `Less` when `a` should be deleted before `b`. `colocated` counts the
/// owner's pods per node (more crowded nodes lose pods first).
fn delete_first(a: &Pod, b: &Pod, colocated: &HashMap<String, usize>) -> Ordering {
    let (na, nb) = (node_name(a), node_name(b));
    // 1. Unassigned before assigned.
    if na.is_none() != nb.is_none() {
        return if na.is_none() {
            Ordering::Less
        } else {
            Ordering::Greater
        };
    }
    // 2. Pending < Unknown < Running.
    let (pa, pb) = (phase_rank(a), phase_rank(b));
    if pa != pb {
        return pa.cmp(&pb);
    }
    // 3. Not ready before ready.
    let (ra, rb) = (pod_ready_since(a), pod_ready_since(b));
    if ra.is_some() != rb.is_some() {
        return if ra.is_none() {
            Ordering::Less
        } else {
            Ordering::Greater
        };
    }
    // 4. Pods on nodes with more of the owner's pods first.
    let rank = |n: Option<&str>| n.and_then(|n| colocated.get(n)).copied().unwrap_or(0);
    let (ka, kb) = (rank(na), rank(nb));
    if ka != kb {
        return kb.cmp(&ka);
    }
    // 5. Ready for less time first (the later transition goes first).
    if let (Some(Some(ta)), Some(Some(tb))) = (ra, rb) {
        if ta != tb {
            return tb.cmp(&ta);
        }
    }
    // 6. More restarts first.
    let (sa, sb) = (restarts(a), restarts(b));
    if sa != sb {
        return sb.cmp(&sa);
    }
    // 7. Newer before older.
    let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
    created(b).cmp(&created(a))
}

/// The `count` pods to delete, best candidates first.
pub fn pods_to_delete<'a>(pods: &[&'a Pod], count: usize) -> Vec<&'a Pod> {
    let mut colocated: HashMap<String, usize> = HashMap::new();
    for pod in pods {
        if let Some(n) = node_name(pod) {
            *colocated.entry(n.to_owned()).or_default() += 1;
        }
    }
    let mut sorted = pods.to_vec();
    sorted.sort_by(|a, b| delete_first(a, b, &colocated));
    sorted.truncate(count);
    sorted
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    fn pod(
        name: &str,
        node: Option<&str>,
        phase: &str,
        ready_at: Option<i64>,
        created: i64,
    ) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                creation_timestamp: Some(Time(jiff::Timestamp::from_second(created).unwrap())),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: node.map(Into::into),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                conditions: ready_at.map(|t| {
                    vec![PodCondition {
                        type_: "Ready".into(),
                        status: "True".into(),
                        last_transition_time: Some(Time(jiff::Timestamp::from_second(t).unwrap())),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }),
        }
    }

    fn names(pods: Vec<&Pod>) -> Vec<&str> {
        pods.iter()
            .map(|p| p.metadata.name.as_deref().unwrap())
            .collect()
    }

    #[test]
    fn scale_down_deletes_unscheduled_pending_and_unready_pods_first() {
        let running_ready_old = pod("ready-old", Some("n1"), "Running", Some(100), 10);
        let running_ready_new = pod("ready-new", Some("n2"), "Running", Some(200), 20);
        let running_unready = pod("unready", Some("n3"), "Running", None, 5);
        let pending_scheduled = pod("pending", Some("n4"), "Pending", None, 5);
        let unscheduled = pod("unscheduled", None, "Pending", None, 1);
        let all = [
            &running_ready_old,
            &running_ready_new,
            &running_unready,
            &pending_scheduled,
            &unscheduled,
        ];
        let cases: &[(usize, &[&str])] = &[
            (1, &["unscheduled"]),
            (2, &["unscheduled", "pending"]),
            (3, &["unscheduled", "pending", "unready"]),
            (4, &["unscheduled", "pending", "unready", "ready-new"]),
        ];
        for (count, want) in cases {
            assert_eq!(names(pods_to_delete(&all, *count)), *want, "count {count}");
        }
    }

    #[test]
    fn crowded_nodes_then_newer_pods_go_first() {
        let a = pod("a", Some("busy"), "Running", Some(100), 1);
        let b = pod("b", Some("busy"), "Running", Some(100), 2);
        let c = pod("c", Some("quiet"), "Running", Some(100), 3);
        assert_eq!(names(pods_to_delete(&[&c, &a, &b], 3)), ["b", "a", "c"]);
    }
}
