//! The pool's status from its claims: counts, the `/scale` selector, summed
//! resources and the Ready condition. Pure.

use std::collections::BTreeMap;

use berth_api::nodeclaim::NodeClaim;
use berth_api::nodepool::{NodePool, NodePoolStatus, POOL_LABEL};
use berth_api::quantity::{Format, Quantity as Amount};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::claim::READY;
use crate::conditions;
use crate::plan::nano;

/// The status of `pool` whose live (not deleting) claims are `claims` and
/// whose size should be `desired`.
pub fn pool_status(
    pool: &NodePool,
    claims: &[&NodeClaim],
    desired: usize,
    now: jiff::Timestamp,
) -> NodePoolStatus {
    let mut status = pool.status.clone().unwrap_or_default();
    let name = pool.metadata.name.clone().unwrap_or_default();
    status.replicas = claims.len() as i32;
    status.ready_replicas = claims
        .iter()
        .filter(|c| {
            c.status
                .as_ref()
                .is_some_and(|s| conditions::is_true(&s.conditions, READY))
        })
        .count() as i32;
    status.selector = Some(format!("{POOL_LABEL}={name}"));
    status.observed_generation = pool.metadata.generation;
    status.resources = sum_resources(claims.iter().map(|c| {
        c.status
            .as_ref()
            .filter(|s| !s.capacity.is_empty())
            .map_or(&c.spec.resources, |s| &s.capacity)
    }));
    let ready = status.ready_replicas as usize == desired && claims.len() == desired;
    let message = format!("{} of {desired} nodes ready", status.ready_replicas);
    conditions::set(
        &mut status.conditions,
        "Ready",
        ready,
        if ready { "Ready" } else { "Scaling" },
        &message,
        now,
    );
    status
}

/// Adds resource maps up, in canonical quantity form.
fn sum_resources<'a>(
    maps: impl Iterator<Item = &'a BTreeMap<String, Quantity>>,
) -> BTreeMap<String, Quantity> {
    let mut totals: BTreeMap<String, i128> = BTreeMap::new();
    for map in maps {
        for (resource, amount) in map {
            *totals.entry(resource.clone()).or_default() += nano(amount).unwrap_or(0);
        }
    }
    totals
        .into_iter()
        .map(|(resource, nanos)| {
            let format = if resource == "memory" || resource.ends_with("storage") {
                Format::BinarySI
            } else {
                Format::DecimalSI
            };
            (
                resource,
                Quantity(Amount::from_nano(nanos, format).to_string()),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::nodeclaim::{NodeClaimSpec, NodeClaimStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn claim(ready: bool) -> NodeClaim {
        let mut status = NodeClaimStatus::default();
        conditions::set(
            &mut status.conditions,
            READY,
            ready,
            "",
            "",
            jiff::Timestamp::UNIX_EPOCH,
        );
        NodeClaim {
            spec: NodeClaimSpec {
                resources: BTreeMap::from([
                    ("cpu".to_owned(), Quantity("4".into())),
                    ("memory".to_owned(), Quantity("8Gi".into())),
                ]),
                ..NodeClaimSpec::default()
            },
            status: Some(status),
            ..NodeClaim::default()
        }
    }

    #[test]
    fn status_counts_ready_claims_and_sums_resources() {
        let pool = NodePool {
            metadata: ObjectMeta {
                name: Some("np-cpu".into()),
                generation: Some(4),
                ..ObjectMeta::default()
            },
            ..NodePool::default()
        };
        let (a, b) = (claim(true), claim(false));
        let now = jiff::Timestamp::UNIX_EPOCH;
        let status = pool_status(&pool, &[&a, &b], 2, now);
        assert_eq!((status.replicas, status.ready_replicas), (2, 1));
        assert_eq!(status.selector.as_deref(), Some("berth.dev/pool=np-cpu"));
        assert_eq!(status.observed_generation, Some(4));
        assert_eq!(status.resources["cpu"], Quantity("8".into()));
        assert_eq!(status.resources["memory"], Quantity("16Gi".into()));
        assert_eq!(status.conditions[0].status, "False");
        let status = pool_status(&pool, &[&a], 1, now);
        assert_eq!(status.conditions[0].status, "True");
    }
}
