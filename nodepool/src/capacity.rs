//! What a machine of a pool will have: the template's `capacity` when it
//! names one, else what the pool's provider says a machine of its template
//! has (the `aws` provider asks EC2 about the preferred instance type).
//! Resolved where pools are read for a decision; the template itself is
//! never rewritten, so drift still compares what the user wrote.

use std::collections::BTreeMap;

use berth_api::nodeclaim::NodeClaim;
use berth_api::nodepool::NodePool;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::ResourceExt;

use crate::conditions;
use crate::controller::Providers;
use crate::provider::{MachineProvider, ProviderError};

/// The pool condition saying whether its provider could tell what a machine
/// of a template without `capacity` has.
pub const CAPACITY_RESOLVED: &str = "CapacityResolved";

/// What one machine has, by resource name.
pub type Capacity = BTreeMap<String, Quantity>;

/// Where a pool's machine capacity came from.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolved {
    /// The template names it (it always wins).
    Template(Capacity),
    /// The provider told (the template names none).
    Provider(Capacity),
    /// Neither: the template names none and the provider cannot tell.
    Unknown,
}

impl Resolved {
    /// The capacity, empty when unknown.
    pub fn capacity(&self) -> Capacity {
        match self {
            Resolved::Template(c) | Resolved::Provider(c) => c.clone(),
            Resolved::Unknown => Capacity::new(),
        }
    }
}

/// `pool`'s machine capacity: its template's, else its provider's answer.
pub async fn resolve(
    provider: &dyn MachineProvider,
    pool: &NodePool,
) -> Result<Resolved, ProviderError> {
    let written = template_capacity(pool);
    if !written.is_empty() {
        return Ok(Resolved::Template(written));
    }
    Ok(match provider.template_capacity(pool).await? {
        Some(capacity) => Resolved::Provider(capacity),
        None => Resolved::Unknown,
    })
}

/// `pool` as the planner sees it: its template's capacity set to `capacity`.
/// Only for planning; claims are made from the pool itself.
pub fn with_capacity(pool: &NodePool, capacity: Capacity) -> NodePool {
    let mut planned = pool.clone();
    planned
        .spec
        .template
        .get_or_insert_with(Default::default)
        .capacity = capacity;
    planned
}

/// Every pool of `pools` with its capacity resolved, for one provisioning
/// decision. A pool whose provider fails to answer is left out of the
/// decision (the pool loop reports why on the pool); one whose provider is
/// not configured stays as written.
pub async fn resolve_all(providers: &Providers, pools: &[NodePool]) -> Vec<NodePool> {
    let mut planned = Vec::with_capacity(pools.len());
    for pool in pools {
        let Some(provider) = providers.get(pool.spec.provider_name()) else {
            planned.push(pool.clone());
            continue;
        };
        match resolve(provider.as_ref(), pool).await {
            Ok(resolved) => planned.push(with_capacity(pool, resolved.capacity())),
            Err(e) => {
                tracing::debug!(pool = %pool.name_any(), error = %e, "pool left out: its capacity is unknown")
            }
        }
    }
    planned
}

/// Sets the `CapacityResolved` condition when the provider was asked and
/// could tell: True with what it said, False with why it could not. A pool
/// whose template names its capacity (or whose provider cannot tell) has
/// no such condition, so one left from before is removed.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    resolved: &Result<Resolved, ProviderError>,
    now: jiff::Timestamp,
) {
    let (ok, reason, message) = match resolved {
        Ok(Resolved::Template(_) | Resolved::Unknown) => {
            conditions.retain(|c| c.type_ != CAPACITY_RESOLVED);
            return;
        }
        Ok(Resolved::Provider(capacity)) => {
            let said: Vec<String> = capacity
                .iter()
                .map(|(k, v)| format!("{k}={}", v.0))
                .collect();
            let message = format!("machine capacity from the provider: {}", said.join(", "));
            (true, "FromProvider", message)
        }
        Err(e @ ProviderError::Transient { .. }) => (false, "ProviderUnavailable", e.to_string()),
        Err(e) => (false, "InvalidTemplate", e.to_string()),
    };
    conditions::set(conditions, CAPACITY_RESOLVED, ok, reason, &message, now);
}

/// The capacity `pool`'s template names (empty when it names none).
pub fn template_capacity(pool: &NodePool) -> Capacity {
    pool.spec
        .template
        .as_ref()
        .map(|t| t.capacity.clone())
        .unwrap_or_default()
}

/// What `claim`'s machine has: the capacity resolved when the claim was
/// made (`spec.resources`, which a provider's answer fills when the template
/// names none), else its template's. Providers report this as the machine's.
pub fn claim_capacity(claim: &NodeClaim) -> Capacity {
    if claim.spec.resources.is_empty() {
        claim.spec.template.capacity.clone()
    } else {
        claim.spec.resources.clone()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use k8s_openapi::api::core::v1::Pod;
    use serde_json::json;

    use super::*;
    use crate::claim::new_claim_with;
    use crate::disruption::drift::drifted;
    use crate::provider::Machine;
    use crate::provisioning::binpack::{decide, PendingPod};
    use crate::provisioning::inflight::candidates;

    /// A provider that says every template's machine has `answer`, and
    /// records the pools it was asked about.
    #[derive(Debug)]
    struct Telling {
        answer: Result<Option<Capacity>, String>,
        asked: Mutex<Vec<String>>,
    }

    impl Telling {
        fn new(answer: Result<Option<Capacity>, String>) -> Self {
            Self {
                answer,
                asked: Mutex::default(),
            }
        }
    }

    #[async_trait::async_trait]
    impl MachineProvider for Telling {
        fn name(&self) -> &'static str {
            "telling"
        }
        async fn launch(&self, _: &NodeClaim) -> Result<Machine, ProviderError> {
            unreachable!("capacity never launches")
        }
        async fn describe(&self, _: &str) -> Result<Option<Machine>, ProviderError> {
            Ok(None)
        }
        async fn list(&self, _: &str) -> Result<Vec<Machine>, ProviderError> {
            Ok(Vec::new())
        }
        async fn terminate(&self, _: &str) -> Result<(), ProviderError> {
            Ok(())
        }
        async fn template_capacity(
            &self,
            pool: &NodePool,
        ) -> Result<Option<Capacity>, ProviderError> {
            self.asked.lock().unwrap().push(pool.name_any());
            self.answer
                .clone()
                .map_err(|reason| ProviderError::InvalidTemplate {
                    pool: pool.name_any(),
                    reason,
                })
        }
    }

    fn gpu_machine() -> Capacity {
        [("cpu", "4"), ("memory", "16Gi"), ("nvidia.com/gpu", "1")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Quantity(v.to_owned())))
            .collect()
    }

    fn pool(name: &str, capacity: serde_json::Value) -> NodePool {
        serde_json::from_value(json!({"metadata": {"name": name}, "spec": {
            "provider": "telling",
            "template": {"capacity": capacity, "aws": {"instanceTypes": ["g5.xlarge"]}}}}))
        .unwrap()
    }

    fn providers(provider: Telling) -> (Providers, Arc<Telling>) {
        let provider = Arc::new(provider);
        let as_dyn: Arc<dyn MachineProvider> = provider.clone();
        (Providers::from([("telling".to_owned(), as_dyn)]), provider)
    }

    #[tokio::test]
    async fn explicit_capacity_wins_over_the_provider() {
        let (_, provider) = providers(Telling::new(Ok(Some(gpu_machine()))));
        let written = pool("written", json!({"cpu": "2"}));
        let got = resolve(provider.as_ref(), &written).await.unwrap();
        assert_eq!(
            got,
            Resolved::Template(Capacity::from([("cpu".into(), Quantity("2".into()))]))
        );
        assert!(provider.asked.lock().unwrap().is_empty(), "not asked");

        let empty = pool("empty", json!({}));
        let got = resolve(provider.as_ref(), &empty).await.unwrap();
        assert_eq!(got, Resolved::Provider(gpu_machine()));
        assert_eq!(*provider.asked.lock().unwrap(), ["empty"]);

        let (_, silent) = providers(Telling::new(Ok(None)));
        assert_eq!(
            resolve(silent.as_ref(), &empty).await.unwrap(),
            Resolved::Unknown
        );
        let (_, failing) = providers(Telling::new(Err("unknown instance type g9.huge".into())));
        let error = resolve(failing.as_ref(), &empty).await.unwrap_err();
        assert!(error.to_string().contains("g9.huge"), "{error}");
    }

    #[test]
    fn the_condition_says_what_the_provider_said_or_why_not() {
        let now = jiff::Timestamp::from_second(1_000).unwrap();
        let said = |resolved: Result<Resolved, ProviderError>, conditions: &mut Vec<Condition>| {
            set_condition(conditions, &resolved, now);
            conditions
                .iter()
                .map(|c| format!("{} {} {}: {}", c.type_, c.status, c.reason, c.message))
                .collect::<Vec<_>>()
        };
        let mut conditions = Vec::new();
        let cpu = Capacity::from([("cpu".into(), Quantity("4".into()))]);
        assert_eq!(
            said(Ok(Resolved::Provider(cpu.clone())), &mut conditions),
            ["CapacityResolved True FromProvider: machine capacity from the provider: cpu=4"]
        );
        let invalid = ProviderError::InvalidTemplate {
            pool: "gpu".into(),
            reason: "unknown instance type x9.notatype".into(),
        };
        assert_eq!(
            said(Err(invalid), &mut conditions),
            ["CapacityResolved False InvalidTemplate: nodepool gpu: unknown instance type x9.notatype"]
        );
        let down = ProviderError::Transient {
            operation: "DescribeInstanceTypes",
            reason: "timed out".into(),
        };
        assert_eq!(
            said(Err(down), &mut conditions),
            ["CapacityResolved False ProviderUnavailable: DescribeInstanceTypes failed: timed out"]
        );
        assert!(
            said(Ok(Resolved::Template(cpu)), &mut conditions).is_empty(),
            "a written capacity removes it"
        );
        assert!(said(Ok(Resolved::Unknown), &mut conditions).is_empty());
    }

    #[tokio::test]
    async fn resolved_capacity_is_used_by_fit_and_claims_but_never_drifts() {
        let gpu_pod: Pod = serde_json::from_value(json!({"metadata": {"name": "train", "namespace": "ml"},
            "spec": {"containers": [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}}))
        .unwrap();
        let pods = [PendingPod::of(&gpu_pod)];
        let empty = pool("gpu", json!({}));

        let unresolved = decide(&pods, &[], &candidates(std::slice::from_ref(&empty), &[]));
        assert!(
            unresolved.launches.is_empty(),
            "an empty template has no GPU"
        );

        let (known, _) = providers(Telling::new(Ok(Some(gpu_machine()))));
        let planned = resolve_all(&known, std::slice::from_ref(&empty)).await;
        let decision = decide(&pods, &[], &candidates(&planned, &[]));
        assert_eq!(decision.launches.len(), 1, "{decision:?}");
        assert_eq!(decision.launches[0].pool, "gpu");

        let claim = new_claim_with(&empty, template_capacity(&planned[0]));
        assert_eq!(claim.spec.resources, gpu_machine());
        assert!(
            claim.spec.template.capacity.is_empty(),
            "the template stays as written"
        );
        assert!(!drifted(&claim, &empty), "resolving is not an edit");

        let (failing, _) = providers(Telling::new(Err("unknown instance type".into())));
        assert!(
            resolve_all(&failing, std::slice::from_ref(&empty))
                .await
                .is_empty(),
            "a pool whose capacity cannot be resolved is left out"
        );
        let unconfigured = resolve_all(&Providers::new(), std::slice::from_ref(&empty)).await;
        assert_eq!(unconfigured, [empty], "no provider: as written");
    }

    #[test]
    fn a_claim_reports_its_resolved_capacity_else_its_template() {
        let empty = pool("gpu", json!({}));
        let resolved = new_claim_with(&empty, gpu_machine());
        assert_eq!(claim_capacity(&resolved), gpu_machine());
        let written = pool("cpu", json!({"cpu": "2"}));
        let mut old = new_claim_with(&written, Capacity::new());
        assert_eq!(
            claim_capacity(&old),
            template_capacity(&written),
            "a claim made before resources were recorded"
        );
        old.spec.resources = gpu_machine();
        assert_eq!(claim_capacity(&old), gpu_machine(), "resources win");
    }
}
