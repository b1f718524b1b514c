//! One pass of upstream's `updateStatefulSet`, as plain data: which pod to
//! create (and at which revision) or delete next. OrderedReady creates in
//! ordinal order, each after the previous one is Running and Ready, and
//! scales down from the highest ordinal one at a time; Parallel does all of
//! it at once (and rolls updates without waiting for the other pods). Failed (and Succeeded) pods are deleted to be recreated. A
//! RollingUpdate then replaces, highest ordinal first and one at a time, the
//! pods at or above the partition that are not at the update revision; OnDelete
//! leaves that to the user.

use std::collections::BTreeMap;

/// What the plan needs to know of one existing pod.
#[derive(Debug, Clone, PartialEq)]
pub struct PodFacts {
    /// The pod's name.
    pub name: String,
    /// Its `controller-revision-hash`.
    pub revision: String,
    /// Phase Failed or Succeeded: it must be replaced.
    pub finished: bool,
    /// Being deleted.
    pub terminating: bool,
    /// Running and Ready.
    pub ready: bool,
    /// Running, Ready, and available for minReadySeconds.
    pub healthy: bool,
}

/// How updates roll out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Strategy {
    /// Replace pods whose index is at or above the partition.
    RollingUpdate {
        /// Pods below this index keep the current revision.
        partition: i32,
    },
    /// Only recreate pods the user deleted.
    OnDelete,
}

/// The inputs of one pass.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    /// Existing pods by ordinal.
    pub pods: &'a BTreeMap<i32, PodFacts>,
    /// The first ordinal.
    pub start: i32,
    /// The desired number of replicas.
    pub replicas: i32,
    /// Parallel pod management.
    pub parallel: bool,
    /// The update strategy.
    pub strategy: Strategy,
    /// The revision current pods have.
    pub current_revision: &'a str,
    /// The revision of the current template.
    pub update_revision: &'a str,
}

/// One step of the plan.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Create the pod of this ordinal at this revision.
    Create {
        /// The ordinal.
        ordinal: i32,
        /// The revision hash to build it from.
        revision: String,
    },
    /// Delete a finished pod so it is recreated.
    Replace(String),
    /// Delete a pod whose ordinal is beyond the replicas (scale down).
    Condemn(String),
    /// Delete a pod at an old revision (rolling update).
    Update(String),
}

impl Inputs<'_> {
    /// The revision a new pod at `index` gets (upstream's `newVersionedStatefulSetPod`).
    fn revision_for(&self, index: i32) -> &str {
        match self.strategy {
            Strategy::RollingUpdate { partition } if index < partition => self.current_revision,
            Strategy::OnDelete => self.update_revision,
            _ => self.update_revision,
        }
    }

    /// The actions of this pass, in the order they are to be carried out.
    pub fn plan(&self) -> Vec<Action> {
        let monotonic = !self.parallel;
        let mut actions = Vec::new();
        let end = self.start + self.replicas.max(0);
        for (index, ordinal) in (self.start..end).enumerate() {
            let Some(pod) = self.pods.get(&ordinal) else {
                actions.push(Action::Create {
                    ordinal,
                    revision: self.revision_for(index as i32).to_owned(),
                });
                if monotonic {
                    return actions;
                }
                continue;
            };
            if pod.finished && !pod.terminating {
                actions.push(Action::Replace(pod.name.clone()));
                if monotonic {
                    return actions;
                }
                continue;
            }
            if monotonic && (!pod.healthy || pod.terminating) {
                return actions;
            }
        }
        let condemned = self
            .pods
            .iter()
            .rev()
            .filter(|(ordinal, _)| **ordinal < self.start || **ordinal >= end);
        for (_, pod) in condemned {
            if pod.terminating {
                if monotonic {
                    return actions;
                }
                continue;
            }
            actions.push(Action::Condemn(pod.name.clone()));
            if monotonic {
                return actions;
            }
        }
        let Strategy::RollingUpdate { partition } = self.strategy else {
            return actions;
        };
        let updatable = (self.start..end)
            .enumerate()
            .rev()
            .filter(|(index, _)| *index as i32 >= partition);
        for (_, ordinal) in updatable {
            let Some(pod) = self.pods.get(&ordinal) else {
                return actions;
            };
            if pod.revision != self.update_revision {
                if !pod.terminating {
                    actions.push(Action::Update(pod.name.clone()));
                }
                return actions;
            }
            if !pod.healthy {
                return actions;
            }
        }
        actions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `spec` is one char per ordinal from 0: `H` healthy at update revision,
    /// `o` healthy at the old revision, `u` unhealthy, `f` failed, `t`
    /// terminating, `.` missing.
    fn pods(spec: &str) -> BTreeMap<i32, PodFacts> {
        spec.chars()
            .enumerate()
            .filter(|(_, c)| *c != '.')
            .map(|(i, c)| {
                let facts = PodFacts {
                    name: format!("web-{i}"),
                    revision: if c == 'o' { "old" } else { "new" }.into(),
                    finished: c == 'f',
                    terminating: c == 't',
                    ready: matches!(c, 'H' | 'o'),
                    healthy: matches!(c, 'H' | 'o'),
                };
                (i as i32, facts)
            })
            .collect()
    }

    fn create(ordinal: i32, revision: &str) -> Action {
        Action::Create {
            ordinal,
            revision: revision.into(),
        }
    }

    #[test]
    fn passes_follow_upstream() {
        use Action::*;
        let rolling = Strategy::RollingUpdate { partition: 0 };
        let cases: Vec<(&str, i32, bool, Strategy, Vec<Action>)> = vec![
            ("", 3, false, rolling, vec![create(0, "new")]),
            ("u", 3, false, rolling, vec![]),
            ("H", 3, false, rolling, vec![create(1, "new")]),
            (
                "",
                3,
                true,
                rolling,
                vec![create(0, "new"), create(1, "new"), create(2, "new")],
            ),
            ("HfH", 3, false, rolling, vec![Replace("web-1".into())]),
            ("HHH", 2, false, rolling, vec![Condemn("web-2".into())]),
            ("HHHH", 2, false, rolling, vec![Condemn("web-3".into())]),
            (
                "HHHH",
                2,
                true,
                rolling,
                vec![Condemn("web-3".into()), Condemn("web-2".into())],
            ),
            ("HHt", 2, false, rolling, vec![]),
            ("uHH", 2, false, rolling, vec![]),
            ("ooo", 3, false, rolling, vec![Update("web-2".into())]),
            ("ooH", 3, false, rolling, vec![Update("web-1".into())]),
            (
                "oHH",
                3,
                false,
                Strategy::RollingUpdate { partition: 1 },
                vec![],
            ),
            (
                "ooo",
                3,
                false,
                Strategy::RollingUpdate { partition: 2 },
                vec![Update("web-2".into())],
            ),
            (
                "o.H",
                3,
                false,
                Strategy::RollingUpdate { partition: 2 },
                vec![create(1, "old")],
            ),
            ("ooo", 3, false, Strategy::OnDelete, vec![]),
            // Parallel does not wait for the others before rolling the last one.
            ("uoo", 3, true, rolling, vec![Update("web-2".into())]),
            // …but does wait for the updated pod above to become healthy.
            ("oou", 3, true, rolling, vec![]),
            ("ooH", 3, true, rolling, vec![Update("web-1".into())]),
            ("o.o", 3, false, Strategy::OnDelete, vec![create(1, "new")]),
        ];
        for (spec, replicas, parallel, strategy, expected) in cases {
            let pods = pods(spec);
            let inputs = Inputs {
                pods: &pods,
                start: 0,
                replicas,
                parallel,
                strategy,
                current_revision: "old",
                update_revision: "new",
            };
            assert_eq!(
                inputs.plan(),
                expected,
                "{spec} {replicas} {parallel} {strategy:?}"
            );
        }
    }

    #[test]
    fn ordinals_start_where_the_spec_says() {
        let pods = BTreeMap::new();
        let inputs = Inputs {
            pods: &pods,
            start: 5,
            replicas: 2,
            parallel: false,
            strategy: Strategy::OnDelete,
            current_revision: "a",
            update_revision: "a",
        };
        assert_eq!(inputs.plan(), vec![create(5, "a")]);
    }
}
