//! A StatefulSet's status as upstream's `computeReplicaStatus` and
//! `completeRollingUpdate` count it: pods created, ready, available, at the
//! current and at the update revision; once every pod is updated and ready
//! under RollingUpdate, the update revision becomes the current one.

use k8s_openapi::api::apps::v1::StatefulSetStatus;

use super::plan::PodFacts;

/// What the status is computed from besides the pods.
#[derive(Debug, Clone, Copy)]
pub struct Revisions<'a> {
    /// The revision current pods have.
    pub current: &'a str,
    /// The revision of the current template.
    pub update: &'a str,
    /// Whether the strategy is RollingUpdate.
    pub rolling: bool,
}

/// The status of a set with `pods`, at `generation`, keeping `collision_count`.
pub fn compute<'a>(
    pods: impl IntoIterator<Item = &'a PodFacts>,
    revisions: Revisions<'_>,
    generation: Option<i64>,
    collision_count: Option<i32>,
) -> StatefulSetStatus {
    let mut status = StatefulSetStatus {
        observed_generation: generation,
        collision_count: Some(collision_count.unwrap_or(0)),
        current_revision: Some(revisions.current.to_owned()),
        update_revision: Some(revisions.update.to_owned()),
        ..Default::default()
    };
    let (mut ready, mut available, mut current, mut updated) = (0, 0, 0, 0);
    for pod in pods {
        status.replicas += 1;
        if pod.ready {
            ready += 1;
            if pod.healthy {
                available += 1;
            }
        }
        if !pod.terminating {
            if pod.revision == revisions.current {
                current += 1;
            }
            if pod.revision == revisions.update {
                updated += 1;
            }
        }
    }
    if revisions.rolling && updated == status.replicas && ready == status.replicas {
        current = updated;
        status.current_revision = Some(revisions.update.to_owned());
    }
    status.ready_replicas = Some(ready);
    status.available_replicas = Some(available);
    status.current_replicas = Some(current);
    status.updated_replicas = Some(updated);
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(revision: &str, ready: bool, terminating: bool) -> PodFacts {
        PodFacts {
            name: "p".into(),
            revision: revision.into(),
            finished: false,
            terminating,
            ready,
            healthy: ready,
        }
    }

    #[test]
    fn counts_and_completes_rolling_updates() {
        let revisions = Revisions {
            current: "a",
            update: "b",
            rolling: true,
        };
        let cases = [
            (
                vec![pod("a", true, false), pod("b", true, false)],
                (2, 2, 1, 1, "a"),
            ),
            (
                vec![pod("b", true, false), pod("b", true, false)],
                (2, 2, 2, 2, "b"),
            ),
            (
                vec![pod("b", false, false), pod("b", true, false)],
                (2, 1, 0, 2, "a"),
            ),
            (
                vec![pod("a", true, true), pod("b", true, false)],
                (2, 2, 0, 1, "a"),
            ),
        ];
        for (pods, (replicas, ready, current, updated, revision)) in cases {
            let s = compute(&pods, revisions, Some(3), None);
            assert_eq!(
                (
                    s.replicas,
                    s.ready_replicas.unwrap(),
                    s.current_replicas.unwrap(),
                    s.updated_replicas.unwrap(),
                    s.current_revision.as_deref().unwrap()
                ),
                (replicas, ready, current, updated, revision)
            );
            assert_eq!(
                (s.observed_generation, s.collision_count),
                (Some(3), Some(0))
            );
        }
    }
}
