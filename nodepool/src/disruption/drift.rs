//! Whether a claim still matches its pool (drift) and whether it has lived
//! past `expireAfter` (expiry). Pure.

use berth_api::nodeclaim::NodeClaim;
use berth_api::nodepool::NodePool;
use jiff::{SignedDuration, Timestamp};

use crate::claim::new_claim;

/// Whether `claim`'s snapshot (provider, template, labels, taints, startup
/// taints) differs from what `pool` would give a new claim now: a template
/// edit drifts every existing machine, as in Karpenter.
pub fn drifted(claim: &NodeClaim, pool: &NodePool) -> bool {
    let fresh = new_claim(pool).spec;
    let spec = &claim.spec;
    spec.provider != fresh.provider
        || spec.template != fresh.template
        || spec.labels != fresh.labels
        || spec.taints != fresh.taints
        || spec.startup_taints != fresh.startup_taints
}

/// Whether `claim`, created at its creation timestamp, is older than
/// `expire_after` at `now` (None: it never expires).
pub fn expired(claim: &NodeClaim, expire_after: Option<SignedDuration>, now: Timestamp) -> bool {
    let (Some(after), Some(created)) = (expire_after, &claim.metadata.creation_timestamp) else {
        return false;
    };
    now.duration_since(created.0) >= after
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::nodepool::{MachineTemplate, NodePoolSpec};
    use k8s_openapi::api::core::v1::Taint;
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
    use std::collections::BTreeMap;

    fn pool() -> NodePool {
        NodePool {
            metadata: ObjectMeta {
                name: Some("np".into()),
                ..ObjectMeta::default()
            },
            spec: NodePoolSpec {
                labels: BTreeMap::from([("tier".to_owned(), "a".to_owned())]),
                template: Some(MachineTemplate {
                    capacity: BTreeMap::from([("cpu".to_owned(), Quantity("4".into()))]),
                    ..MachineTemplate::default()
                }),
                ..NodePoolSpec::default()
            },
            ..NodePool::default()
        }
    }

    #[test]
    fn template_label_and_taint_edits_drift_size_edits_do_not() {
        let claim = new_claim(&pool());
        assert!(!drifted(&claim, &pool()));
        let mut resized = pool();
        resized.spec.replicas = Some(7);
        resized.spec.min_replicas = Some(2);
        resized.spec.expire_after = Some("1h".into());
        assert!(
            !drifted(&claim, &resized),
            "size and lifetime are not the machine"
        );
        let edits: [fn(&mut NodePoolSpec); 4] = [
            |s| {
                s.labels.insert("tier".into(), "b".into());
            },
            |s| {
                s.template
                    .as_mut()
                    .unwrap()
                    .capacity
                    .insert("cpu".into(), Quantity("8".into()));
            },
            |s| {
                s.taints.push(Taint {
                    key: "k".into(),
                    effect: "NoSchedule".into(),
                    ..Taint::default()
                })
            },
            |s| {
                s.startup_taints.push(Taint {
                    key: "init".into(),
                    effect: "NoSchedule".into(),
                    ..Taint::default()
                })
            },
        ];
        for (i, edit) in edits.iter().enumerate() {
            let mut changed = pool();
            edit(&mut changed.spec);
            assert!(drifted(&claim, &changed), "edit {i}");
        }
    }

    #[test]
    fn expiry_counts_from_creation() {
        let mut claim = new_claim(&pool());
        let created = Timestamp::from_second(1_000).unwrap();
        let at = |s| Timestamp::from_second(s).unwrap();
        let hour = Some(SignedDuration::from_hours(1));
        assert!(!expired(&claim, hour, at(10_000)), "no creation time yet");
        claim.metadata.creation_timestamp = Some(Time(created));
        assert!(!expired(&claim, hour, at(4_599)));
        assert!(expired(&claim, hour, at(4_600)));
        assert!(!expired(&claim, None, at(1_000_000)));
    }
}
