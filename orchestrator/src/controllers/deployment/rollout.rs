//! The arithmetic of a Deployment rollout, as pure functions over numbers and
//! templates (upstream's `deployment/util` and `rolling.go`): resolving
//! maxSurge/maxUnavailable, the pod-template hash, revisions, and the next
//! rolling-update step. No I/O, so the invariants are tested with tables.

use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

/// The label (on ReplicaSets, their selectors and pods) carrying the template hash.
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";

/// Resolves an int-or-percent against `total`: percentages round up for the
/// surge and down for unavailability, as upstream's `GetScaledValueFromIntOrPercent`.
pub fn scaled_value(
    value: Option<&IntOrString>,
    total: i32,
    round_up: bool,
) -> Result<i32, String> {
    match value {
        None => Ok(0),
        Some(IntOrString::Int(i)) => Ok(*i),
        Some(IntOrString::String(s)) => {
            let percent: i64 = s
                .strip_suffix('%')
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| format!("invalid value for IntOrString: invalid value {s:?}"))?;
            let product = percent * i64::from(total);
            let value = if round_up {
                (product + 99).div_euclid(100)
            } else {
                product.div_euclid(100)
            };
            Ok(i32::try_from(value).unwrap_or(i32::MAX))
        }
    }
}

/// `(maxSurge, maxUnavailable)` in pods for `replicas`; both zero would stall a
/// rollout, so unavailability becomes 1 then (upstream's `ResolveFenceposts`).
pub fn resolve_fenceposts(
    max_surge: Option<&IntOrString>,
    max_unavailable: Option<&IntOrString>,
    replicas: i32,
) -> Result<(i32, i32), String> {
    let surge = scaled_value(max_surge, replicas, true)?;
    let unavailable = scaled_value(max_unavailable, replicas, false)?;
    if surge == 0 && unavailable == 0 {
        return Ok((0, 1));
    }
    Ok((surge, unavailable))
}

/// Writes `value` as JSON with object keys sorted, so equal templates hash equally
/// whatever order their fields arrived in.
fn canonical_json(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                canonical_json(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Upstream's `rand.SafeEncodeString`: digits mapped onto an alphabet without
/// vowels or look-alikes, so hashes never spell words.
fn safe_encode(text: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    text.bytes()
        .map(|b| ALPHABET[usize::from(b) % ALPHABET.len()] as char)
        .collect()
}

/// The `pod-template-hash` of a template: FNV-1a (32 bits) over its canonical
/// JSON and the collision count, encoded as upstream's `ComputeHash` does.
pub fn pod_template_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let mut text = String::new();
    canonical_json(
        &serde_json::to_value(template).unwrap_or(Value::Null),
        &mut text,
    );
    let mut hash: u32 = 0x811c_9dc5;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u32::from(*b);
            hash = hash.wrapping_mul(0x0100_0193);
        }
    };
    feed(text.as_bytes());
    if let Some(count) = collision_count {
        feed(&count.to_le_bytes());
    }
    safe_encode(&hash.to_string())
}

/// A template without the `pod-template-hash` label, to compare a ReplicaSet's
/// template with its Deployment's (upstream's `EqualIgnoreHash`).
pub fn without_hash(template: &PodTemplateSpec) -> PodTemplateSpec {
    let mut t = template.clone();
    if let Some(labels) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove(POD_TEMPLATE_HASH);
    }
    t
}

/// One ReplicaSet as the rolling update sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// `spec.replicas`.
    pub desired: i32,
    /// `status.replicas`: pods that exist and are not terminating.
    pub current: i32,
    /// `status.availableReplicas`.
    pub available: i32,
}

impl Counts {
    /// Pods this ReplicaSet may have now or soon: the larger of spec and status,
    /// so a scale-down not yet carried out still counts against the surge.
    fn upper(&self) -> i32 {
        self.desired.max(self.current)
    }
}

/// What one rolling-update pass does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Set the new ReplicaSet's replicas.
    ScaleNew(i32),
    /// Set old ReplicaSets' replicas (index into the old list, new value).
    ScaleOld(Vec<(usize, i32)>),
    /// Nothing to do until pods change.
    Wait,
}

/// The next rolling-update step (upstream's `rolloutRolling`: scale the new
/// ReplicaSet up within the surge, else scale old ones down within the
/// unavailability budget). `old` is ordered oldest first.
pub fn rolling_step(
    replicas: i32,
    max_surge: i32,
    max_unavailable: i32,
    new: Counts,
    old: &[Counts],
) -> Step {
    // reconcileNewReplicaSet.
    if new.desired > replicas {
        return Step::ScaleNew(replicas);
    }
    if new.desired < replicas {
        let all: i32 = new.upper() + old.iter().map(Counts::upper).sum::<i32>();
        let max_total = replicas + max_surge;
        if all < max_total {
            let up = (max_total - all).min(replicas - new.desired);
            return Step::ScaleNew(new.desired + up);
        }
    }
    // reconcileOldReplicaSets.
    let old_pods: i32 = old.iter().map(|c| c.desired).sum();
    if old_pods == 0 {
        return Step::Wait;
    }
    let all_pods: i32 = new.desired + old_pods;
    let min_available = replicas - max_unavailable;
    let new_unavailable = (new.desired - new.available).max(0);
    let max_scaled_down = all_pods - min_available - new_unavailable;
    if max_scaled_down <= 0 {
        return Step::Wait;
    }
    let mut scaled: Vec<i32> = old.iter().map(|c| c.desired).collect();
    // Clean up unhealthy old replicas first: they give no availability.
    let mut cleaned = 0;
    for (i, c) in old.iter().enumerate() {
        if cleaned >= max_scaled_down {
            break;
        }
        let unhealthy = (c.desired - c.available).max(0);
        if c.desired == 0 || unhealthy == 0 {
            continue;
        }
        let down = (max_scaled_down - cleaned).min(unhealthy);
        scaled[i] -= down;
        cleaned += down;
    }
    // Then scale healthy old replicas down while availability stays above the floor.
    let available: i32 = new.available + old.iter().map(|c| c.available).sum::<i32>();
    let mut budget = (available - min_available)
        .min(max_scaled_down - cleaned)
        .max(0);
    for value in scaled.iter_mut() {
        if budget == 0 {
            break;
        }
        let down = (*value).min(budget);
        *value -= down;
        budget -= down;
    }
    let changes: Vec<(usize, i32)> = scaled
        .into_iter()
        .enumerate()
        .filter(|(i, v)| *v != old[*i].desired)
        .collect();
    if changes.is_empty() {
        Step::Wait
    } else {
        Step::ScaleOld(changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn int(i: i32) -> IntOrString {
        IntOrString::Int(i)
    }
    fn pct(s: &str) -> IntOrString {
        IntOrString::String(s.into())
    }

    #[test]
    fn fenceposts_round_surge_up_and_unavailable_down() {
        let cases: &[(IntOrString, IntOrString, i32, (i32, i32))] = &[
            (pct("25%"), pct("25%"), 10, (3, 2)),
            (pct("25%"), pct("25%"), 3, (1, 0)),
            (pct("25%"), pct("25%"), 1, (1, 0)),
            (int(0), int(0), 5, (0, 1)),
            (int(2), int(1), 5, (2, 1)),
            (pct("0%"), pct("50%"), 5, (0, 2)),
            (pct("100%"), pct("0%"), 4, (4, 0)),
            (pct("25%"), pct("25%"), 0, (0, 1)),
        ];
        for (surge, unavailable, replicas, want) in cases {
            assert_eq!(
                resolve_fenceposts(Some(surge), Some(unavailable), *replicas).unwrap(),
                *want,
                "{surge:?} {unavailable:?} of {replicas}"
            );
        }
        assert!(scaled_value(Some(&pct("x%")), 3, true).is_err());
    }

    fn template(image: &str) -> PodTemplateSpec {
        PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some([("app".to_owned(), "web".to_owned())].into()),
                ..Default::default()
            }),
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "web".into(),
                    image: Some(image.into()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        }
    }

    #[test]
    fn template_hash_is_stable_distinct_and_safe() {
        let a = pod_template_hash(&template("nginx:1"), None);
        assert_eq!(a, pod_template_hash(&template("nginx:1"), None));
        assert_ne!(a, pod_template_hash(&template("nginx:2"), None));
        assert_ne!(a, pod_template_hash(&template("nginx:1"), Some(1)));
        assert!(a.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
        assert!(!a.is_empty() && a.len() <= 10);
        let mut labelled = template("nginx:1");
        labelled
            .metadata
            .as_mut()
            .unwrap()
            .labels
            .as_mut()
            .unwrap()
            .insert(POD_TEMPLATE_HASH.into(), a.clone());
        assert_eq!(without_hash(&labelled), template("nginx:1"));
    }

    /// Plays a rollout to the end: each tick existing pods become available,
    /// one step is applied, and every ReplicaSet's pods follow its spec
    /// (deleting unavailable pods first, new pods not yet available); checks
    /// upstream's two promises at every moment.
    fn simulate(replicas: i32, surge: i32, unavailable: i32) {
        let mut new = Counts {
            desired: 0,
            current: 0,
            available: 0,
        };
        let mut old = vec![Counts {
            desired: replicas,
            current: replicas,
            available: replicas,
        }];
        for tick in 0..200 {
            for c in old.iter_mut().chain(std::iter::once(&mut new)) {
                c.available = c.current;
            }
            if new.available == replicas && old.iter().all(|o| o.current == 0) {
                return;
            }
            match rolling_step(replicas, surge, unavailable, new, &old) {
                Step::ScaleNew(n) => new.desired = n,
                Step::ScaleOld(changes) => {
                    for (i, v) in changes {
                        old[i].desired = v;
                    }
                }
                Step::Wait => {}
            }
            for c in old.iter_mut().chain(std::iter::once(&mut new)) {
                c.available = c.available.min(c.desired);
                c.current = c.desired;
            }
            let total: i32 = new.current + old.iter().map(|o| o.current).sum::<i32>();
            let available: i32 = new.available + old.iter().map(|o| o.available).sum::<i32>();
            assert!(
                total <= replicas + surge,
                "tick {tick}: {total} pods > {replicas}+{surge}"
            );
            assert!(
                available >= replicas - unavailable,
                "tick {tick}: {available} available < {replicas}-{unavailable}"
            );
        }
        panic!("rollout of {replicas} (surge {surge}, unavailable {unavailable}) never finished");
    }

    #[test]
    fn rolling_update_never_exceeds_max_surge_or_max_unavailable() {
        let cases = [
            (3, pct("25%"), pct("25%")),
            (10, pct("25%"), pct("25%")),
            (10, int(0), int(1)),
            (10, int(1), int(0)),
            (10, int(3), int(2)),
            (5, pct("100%"), pct("0%")),
            (5, pct("0%"), pct("100%")),
            (1, pct("25%"), pct("25%")),
            (7, int(2), pct("50%")),
        ];
        for (replicas, surge, unavailable) in cases {
            let (s, u) = resolve_fenceposts(Some(&surge), Some(&unavailable), replicas).unwrap();
            simulate(replicas, s, u);
        }
    }

    #[test]
    fn new_replica_set_is_scaled_down_when_the_deployment_shrinks() {
        let new = Counts {
            desired: 10,
            current: 10,
            available: 10,
        };
        assert_eq!(rolling_step(0, 0, 1, new, &[]), Step::ScaleNew(0));
        assert_eq!(rolling_step(10, 3, 2, new, &[]), Step::Wait);
    }

    #[test]
    fn old_replica_sets_lose_unhealthy_pods_first() {
        let new = Counts {
            desired: 3,
            current: 3,
            available: 0,
        };
        let old = [
            Counts {
                desired: 2,
                current: 2,
                available: 0,
            },
            Counts {
                desired: 3,
                current: 3,
                available: 3,
            },
        ];
        // 8 pods, floor 3-1=2 available, new unavailable 3: may remove 8-2-3=3.
        assert_eq!(
            rolling_step(3, 1, 1, new, &old),
            Step::ScaleOld(vec![(0, 0), (1, 2)])
        );
    }
}
