//! Scaling a Deployment outside a rollout step (upstream's `sync.go` `scale()`
//! with `GetProportion`): when it was resized or is paused, the change is
//! spread over its active ReplicaSets in proportion to their sizes, so a
//! resize never hastens (or reverses) a rollout. Pure: numbers in, sizes out.

/// One ReplicaSet as proportional scaling sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sized {
    /// `spec.replicas`.
    pub replicas: i32,
    /// `status.availableReplicas`.
    pub available: i32,
    /// The `desired-replicas` annotation: the Deployment's replicas when this
    /// ReplicaSet was last scaled, if it parses.
    pub desired_annotation: Option<i32>,
    /// The `max-replicas` annotation: replicas plus surge at that time, if it parses.
    pub max_annotation: Option<i32>,
}

/// The Deployment as proportional scaling sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// `spec.replicas`.
    pub replicas: i32,
    /// maxSurge in pods for `replicas` (0 for Recreate).
    pub max_surge: i32,
    /// Whether the strategy is RollingUpdate (only then is scaling proportional).
    pub rolling: bool,
    /// `status.replicas`, the estimate of the size before scaling when a
    /// ReplicaSet lacks its `max-replicas` annotation.
    pub status_replicas: i32,
}

/// Whether the Deployment was resized since its active ReplicaSets were last
/// scaled (upstream's `isScalingEvent`): an active ReplicaSet's
/// `desired-replicas` annotation disagrees with `replicas`.
pub fn is_scaling_event(replicas: i32, all: &[Sized]) -> bool {
    all.iter()
        .filter(|rs| rs.replicas > 0)
        .filter_map(|rs| rs.desired_annotation)
        .any(|desired| desired != replicas)
}

/// Rounds half away from zero, as upstream's `integer.RoundToInt32`.
fn round(value: f64) -> i32 {
    let rounded = if value < 0.0 {
        value - 0.5
    } else {
        value + 0.5
    };
    rounded
        .trunc()
        .clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32
}

/// How many replicas `rs` would gain (or lose, negative) if it kept its share
/// of the Deployment across the resize (upstream's `getReplicaSetFraction`).
fn fraction(rs: &Sized, target: &Target) -> i32 {
    if target.replicas == 0 {
        return -rs.replicas;
    }
    let max_now = i64::from(target.replicas) + i64::from(target.max_surge);
    let max_before = rs
        .max_annotation
        .filter(|m| *m > 0)
        .unwrap_or(target.status_replicas);
    if max_before <= 0 {
        // No estimate of the old size: no share; the leftover goes to the largest.
        return 0;
    }
    let size = i64::from(rs.replicas) as f64 * max_now as f64 / f64::from(max_before);
    round(size).saturating_sub(rs.replicas)
}

/// `rs`'s part of `to_add`, never beyond what is left to add (or remove)
/// once `added` is handed out (upstream's `GetProportion`).
fn proportion(rs: &Sized, target: &Target, to_add: i32, added: i32) -> i32 {
    if rs.replicas == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let share = fraction(rs, target);
    let allowed = to_add - added;
    if to_add > 0 {
        share.min(allowed)
    } else {
        share.max(allowed)
    }
}

/// The sizes to give the Deployment's ReplicaSets on a resize or while paused,
/// as `(index into all, replicas)`; each listed ReplicaSet is also stamped
/// with the current desired/max annotations. `all` is ordered oldest first
/// (creation time, then name) and `new` indexes the ReplicaSet running the
/// current template, if any.
///
/// As upstream: a single active ReplicaSet (or, with none active, the newest)
/// takes the whole size; a saturated new ReplicaSet has the old ones scaled
/// to zero; otherwise, for RollingUpdate, the difference between replicas plus
/// surge and the pods asked for is spread in proportion to the active sizes,
/// largest first, the leftover going to the largest (newest first on ties when
/// growing, oldest first when shrinking). Empty when nothing applies
/// (Recreate with several active ReplicaSets): the rollout takes over.
pub fn proportional_sizes(target: &Target, all: &[Sized], new: Option<usize>) -> Vec<(usize, i32)> {
    let active: Vec<usize> = (0..all.len()).filter(|&i| all[i].replicas > 0).collect();
    match active.as_slice() {
        [] if all.is_empty() => return Vec::new(),
        [] => {
            let latest = new.unwrap_or(all.len() - 1);
            return vec![(latest, target.replicas)];
        }
        [only] => return vec![(*only, target.replicas)],
        _ => {}
    }
    if let Some(n) = new {
        let rs = &all[n];
        let saturated = rs.replicas == target.replicas
            && rs.desired_annotation == Some(target.replicas)
            && rs.available == target.replicas;
        if saturated {
            return active
                .into_iter()
                .filter(|&i| i != n)
                .map(|i| (i, 0))
                .collect();
        }
    }
    if !target.rolling {
        return Vec::new();
    }
    let total: i32 = active.iter().map(|&i| all[i].replicas).sum();
    let allowed = if target.replicas > 0 {
        target.replicas + target.max_surge
    } else {
        0
    };
    let to_add = allowed - total;
    let mut order = active;
    if to_add > 0 {
        // Larger first; on a tie the newer grows first.
        order.sort_by(|&a, &b| all[b].replicas.cmp(&all[a].replicas).then(b.cmp(&a)));
    } else if to_add < 0 {
        // Larger first; on a tie the older shrinks first.
        order.sort_by(|&a, &b| all[b].replicas.cmp(&all[a].replicas).then(a.cmp(&b)));
    }
    let mut added = 0;
    let mut sizes: Vec<(usize, i32)> = order
        .iter()
        .map(|&i| {
            let part = proportion(&all[i], target, to_add, added);
            added += part;
            (i, all[i].replicas + part)
        })
        .collect();
    if let Some(largest) = sizes.first_mut().filter(|_| to_add != 0) {
        largest.1 = (largest.1 + to_add - added).max(0);
    }
    sizes
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ReplicaSet of `replicas` last scaled when the Deployment had
    /// `desired` replicas and `max` replicas plus surge.
    fn rs(replicas: i32, desired: i32, max: i32) -> Sized {
        Sized {
            replicas,
            available: replicas,
            desired_annotation: Some(desired),
            max_annotation: Some(max),
        }
    }

    fn rolling(replicas: i32, max_surge: i32) -> Target {
        Target {
            replicas,
            max_surge,
            rolling: true,
            status_replicas: 0,
        }
    }

    /// Final sizes in `all` order after applying the plan.
    fn sizes(target: &Target, all: &[Sized], new: Option<usize>) -> Vec<i32> {
        let mut out: Vec<i32> = all.iter().map(|rs| rs.replicas).collect();
        for (i, n) in proportional_sizes(target, all, new) {
            out[i] = n;
        }
        out
    }

    /// Name, Deployment, ReplicaSets (oldest first), the new one, final sizes.
    type Case<'a> = (&'a str, Target, &'a [Sized], Option<usize>, &'a [i32]);

    /// Upstream's `TestScale` cases, ReplicaSets listed oldest first and the
    /// new one (when there is one) last; without surge unless stated.
    #[test]
    fn resizes_are_spread_in_proportion_to_replica_set_sizes() {
        let cases: &[Case] = &[
            (
                "single 10 -> 12",
                rolling(12, 0),
                &[rs(10, 10, 10)],
                Some(0),
                &[12],
            ),
            (
                "single 10 -> 5",
                rolling(5, 0),
                &[rs(10, 10, 10)],
                Some(0),
                &[5],
            ),
            (
                "5 -> 10",
                rolling(10, 0),
                &[rs(3, 5, 5), rs(2, 5, 5)],
                Some(1),
                &[6, 4],
            ),
            (
                "5 -> 3",
                rolling(3, 0),
                &[rs(3, 5, 5), rs(2, 5, 5)],
                Some(1),
                &[2, 1],
            ),
            (
                "9 -> 4",
                rolling(4, 0),
                &[rs(1, 9, 9), rs(8, 9, 9)],
                Some(1),
                &[0, 4],
            ),
            (
                "7 -> 10",
                rolling(10, 0),
                &[rs(2, 7, 7), rs(3, 7, 7), rs(2, 7, 7)],
                Some(2),
                &[3, 4, 3],
            ),
            (
                "13 -> 8",
                rolling(8, 0),
                &[rs(3, 13, 13), rs(8, 13, 13), rs(2, 13, 13)],
                Some(2),
                &[2, 5, 1],
            ),
            (
                "leftover up goes to the newest of equals: 3 -> 4",
                rolling(4, 0),
                &[rs(1, 3, 3), rs(1, 3, 3), rs(1, 3, 3)],
                Some(2),
                &[1, 1, 2],
            ),
            (
                "leftover down comes from the oldest of equals: 3 -> 2",
                rolling(2, 0),
                &[rs(1, 3, 3), rs(1, 3, 3), rs(1, 3, 3)],
                Some(2),
                &[0, 1, 1],
            ),
            (
                "no new replica set: the newest grows first, 4 -> 5",
                rolling(5, 0),
                &[rs(2, 4, 4), rs(2, 4, 4)],
                None,
                &[2, 3],
            ),
            (
                "to zero",
                rolling(0, 0),
                &[rs(1, 6, 6), rs(2, 6, 6), rs(3, 6, 6)],
                Some(2),
                &[0, 0, 0],
            ),
            (
                "from zero the new replica set takes everything",
                rolling(6, 0),
                &[rs(0, 6, 6), rs(0, 6, 6), rs(0, 6, 6)],
                Some(2),
                &[0, 0, 6],
            ),
            (
                "one replica set scaled under another size",
                rolling(5, 0),
                &[rs(1, 5, 5), rs(1, 3, 3), rs(2, 5, 5)],
                Some(2),
                &[1, 2, 2],
            ),
            (
                "with surge 10 -> 20",
                rolling(20, 2),
                &[rs(6, 10, 12), rs(6, 10, 12)],
                Some(1),
                &[11, 11],
            ),
            (
                "size and surge both change",
                rolling(50, 6),
                &[rs(8, 10, 13), rs(5, 10, 13)],
                Some(1),
                &[34, 22],
            ),
            (
                "size and template both change",
                rolling(14, 0),
                &[rs(3, 10, 10), rs(7, 10, 10)],
                None,
                &[4, 10],
            ),
        ];
        for (name, target, all, new, want) in cases {
            assert_eq!(sizes(target, all, *new), *want, "{name}");
            let total: i32 = want.iter().sum();
            let allowed = if target.replicas > 0 {
                target.replicas + target.max_surge
            } else {
                0
            };
            let was: i32 = all.iter().map(|rs| rs.replicas).sum();
            if was > 0 {
                assert_eq!(
                    total, allowed,
                    "{name}: all of the difference is handed out"
                );
            }
        }
    }

    #[test]
    fn a_saturated_new_replica_set_has_the_old_ones_scaled_to_zero() {
        let all = [rs(2, 3, 4), rs(3, 3, 4)];
        assert_eq!(proportional_sizes(&rolling(3, 1), &all, Some(1)), [(0, 0)]);
        // Not saturated while the new pods are unavailable: sizes stay within
        // replicas plus surge (upstream's "saturated but broken" case).
        let mut broken = rs(2, 2, 3);
        broken.available = 0;
        let all = [rs(1, 2, 3), broken];
        assert_eq!(sizes(&rolling(2, 1), &all, Some(1)), [1, 2]);
    }

    #[test]
    fn recreate_with_several_active_replica_sets_is_left_to_the_rollout() {
        let target = Target {
            rolling: false,
            ..rolling(10, 0)
        };
        assert!(proportional_sizes(&target, &[rs(3, 5, 5), rs(2, 5, 5)], Some(1)).is_empty());
        assert_eq!(
            proportional_sizes(&target, &[rs(0, 5, 5), rs(5, 5, 5)], Some(1)),
            [(1, 10)]
        );
    }

    #[test]
    fn a_missing_max_annotation_falls_back_to_the_current_size() {
        let bare = |replicas| Sized {
            replicas,
            available: replicas,
            desired_annotation: None,
            max_annotation: None,
        };
        let target = Target {
            status_replicas: 5,
            ..rolling(10, 0)
        };
        assert_eq!(sizes(&target, &[bare(3), bare(2)], Some(1)), [6, 4]);
        // Nothing to estimate from: everything goes to the largest.
        let unknown = rolling(10, 0);
        assert_eq!(sizes(&unknown, &[bare(3), bare(2)], Some(1)), [8, 2]);
    }

    #[test]
    fn a_resize_is_seen_on_active_replica_sets_only() {
        assert!(!is_scaling_event(5, &[rs(5, 5, 6), rs(0, 3, 4)]));
        assert!(is_scaling_event(5, &[rs(2, 5, 6), rs(1, 3, 4)]));
        let adopted = Sized {
            replicas: 4,
            ..Sized::default()
        };
        assert!(!is_scaling_event(5, &[adopted]));
        assert!(!is_scaling_event(5, &[]));
    }

    #[test]
    fn rounding_is_half_away_from_zero() {
        assert_eq!(round(2.5), 3);
        assert_eq!(round(-2.5), -3);
        assert_eq!(round(1.49), 1);
        assert_eq!(round(-1.49), -1);
    }
}
