//! Node-pool operation metrics in the spirit of Karpenter's
//! (`karpenter_nodeclaims_launched_total`, `karpenter_cloudprovider_duration_seconds`,
//! `karpenter_cloudprovider_errors_total`), counted where every provider
//! (aws, ssh, sim) is called: [`Metered`] wraps each configured
//! [`MachineProvider`], so no provider has to count for itself.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use berth_api::nodeclaim::NodeClaim;
use berth_api::nodepool::NodePool;
use berth_observability::metrics::{
    exponential_buckets, Counter, EncodeLabelSet, Family, Histogram, MetricsRegistry,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::provider::{Machine, MachineProvider, ProviderError};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    method: &'static str,
    provider: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    method: &'static str,
    provider: &'static str,
    error: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClaimLabels {
    nodepool: String,
    provider: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabel {
    provider: &'static str,
}

fn call_duration() -> Histogram {
    // 10 ms doubling to about 5 min: an EC2 launch takes seconds, an SSH
    // bootstrap minutes.
    Histogram::new(exponential_buckets(0.01, 2.0, 16))
}

/// The node-pool controller's provider metrics.
#[derive(Clone, Debug)]
pub struct NodePoolMetrics {
    durations: Family<CallLabels, Histogram, fn() -> Histogram>,
    errors: Family<ErrorLabels, Counter>,
    launched: Family<ClaimLabels, Counter>,
    terminated: Family<ProviderLabel, Counter>,
}

impl NodePoolMetrics {
    /// The metrics of this process's node-pool controller, registered in
    /// the control plane's registry on first use.
    pub fn global() -> &'static NodePoolMetrics {
        static METRICS: OnceLock<NodePoolMetrics> = OnceLock::new();
        METRICS.get_or_init(|| NodePoolMetrics::register(MetricsRegistry::control_plane()))
    }

    /// Registers the node-pool metrics in `registry`.
    pub fn register(registry: &MetricsRegistry) -> Self {
        NodePoolMetrics {
            durations: registry.register(
                "berth_nodepool_cloudprovider_duration_seconds",
                "Seconds each machine provider call took, by method and provider.",
                Family::new_with_constructor(call_duration as fn() -> Histogram),
            ),
            errors: registry.register(
                "berth_nodepool_cloudprovider_errors",
                "Machine provider calls that failed, by method, provider and error kind.",
                Family::default(),
            ),
            launched: registry.register(
                "berth_nodepool_nodeclaims_launched",
                "Machines launched for NodeClaims, by node pool and provider.",
                Family::default(),
            ),
            terminated: registry.register(
                "berth_nodepool_nodeclaims_terminated",
                "Machines of NodeClaims terminated, by provider.",
                Family::default(),
            ),
        }
    }

    /// `provider` with its calls counted in these metrics.
    pub fn wrap(&self, provider: Arc<dyn MachineProvider>) -> Arc<dyn MachineProvider> {
        Arc::new(Metered {
            inner: provider,
            metrics: self.clone(),
        })
    }

    async fn time<T>(
        &self,
        method: &'static str,
        provider: &'static str,
        call: impl Future<Output = Result<T, ProviderError>>,
    ) -> Result<T, ProviderError> {
        let started = Instant::now();
        let result = call.await;
        self.durations
            .get_or_create(&CallLabels { method, provider })
            .observe(started.elapsed().as_secs_f64());
        if let Err(error) = &result {
            let error = match error {
                ProviderError::Invalid { .. } => "invalid",
                ProviderError::InvalidTemplate { .. } => "invalid_template",
                ProviderError::Transient { .. } => "transient",
            };
            self.errors
                .get_or_create(&ErrorLabels {
                    method,
                    provider,
                    error,
                })
                .inc();
        }
        result
    }
}

/// A provider whose calls are timed and counted.
#[derive(Debug)]
pub struct Metered {
    inner: Arc<dyn MachineProvider>,
    metrics: NodePoolMetrics,
}

#[async_trait::async_trait]
impl MachineProvider for Metered {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn launch(&self, claim: &NodeClaim) -> Result<Machine, ProviderError> {
        let provider = self.inner.name();
        let machine = self
            .metrics
            .time("launch", provider, self.inner.launch(claim))
            .await?;
        let nodepool = claim.spec.pool.clone();
        self.metrics
            .launched
            .get_or_create(&ClaimLabels { nodepool, provider })
            .inc();
        Ok(machine)
    }

    async fn describe(&self, provider_id: &str) -> Result<Option<Machine>, ProviderError> {
        let provider = self.inner.name();
        self.metrics
            .time("describe", provider, self.inner.describe(provider_id))
            .await
    }

    async fn list(&self, pool: &str) -> Result<Vec<Machine>, ProviderError> {
        let provider = self.inner.name();
        self.metrics
            .time("list", provider, self.inner.list(pool))
            .await
    }

    async fn terminate(&self, provider_id: &str) -> Result<(), ProviderError> {
        let provider = self.inner.name();
        self.metrics
            .time("terminate", provider, self.inner.terminate(provider_id))
            .await?;
        self.metrics
            .terminated
            .get_or_create(&ProviderLabel { provider })
            .inc();
        Ok(())
    }

    async fn template_capacity(
        &self,
        pool: &NodePool,
    ) -> Result<Option<BTreeMap<String, Quantity>>, ProviderError> {
        let provider = self.inner.name();
        self.metrics
            .time(
                "template_capacity",
                provider,
                self.inner.template_capacity(pool),
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::ResourceExt;

    /// Launches every claim, fails every terminate.
    #[derive(Debug)]
    struct Flaky;

    #[async_trait::async_trait]
    impl MachineProvider for Flaky {
        fn name(&self) -> &'static str {
            "flaky"
        }
        async fn launch(&self, claim: &NodeClaim) -> Result<Machine, ProviderError> {
            Ok(Machine {
                provider_id: format!("flaky:///{}", claim.name_any()),
                ..Machine::default()
            })
        }
        async fn describe(&self, _: &str) -> Result<Option<Machine>, ProviderError> {
            Ok(None)
        }
        async fn list(&self, _: &str) -> Result<Vec<Machine>, ProviderError> {
            Ok(Vec::new())
        }
        async fn terminate(&self, _: &str) -> Result<(), ProviderError> {
            Err(ProviderError::Transient {
                operation: "terminate",
                reason: "throttled".into(),
            })
        }
    }

    #[tokio::test]
    async fn every_provider_call_is_timed_and_launches_and_errors_counted() {
        let registry = MetricsRegistry::default();
        let provider = NodePoolMetrics::register(&registry).wrap(Arc::new(Flaky));
        let claim: NodeClaim = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "gpu-abc12"},
            "spec": {"pool": "gpu", "provider": "flaky"}
        }))
        .expect("a claim");
        provider.launch(&claim).await.expect("launched");
        provider.list("gpu").await.expect("listed");
        provider
            .terminate("flaky:///gpu-abc12")
            .await
            .expect_err("throttled");
        let text = registry.encode();
        for expected in [
            "berth_nodepool_nodeclaims_launched_total{nodepool=\"gpu\",provider=\"flaky\"} 1",
            "berth_nodepool_cloudprovider_duration_seconds_count{method=\"launch\",provider=\"flaky\"} 1",
            "berth_nodepool_cloudprovider_duration_seconds_count{method=\"list\",provider=\"flaky\"} 1",
            "berth_nodepool_cloudprovider_duration_seconds_count{method=\"terminate\",provider=\"flaky\"} 1",
            "berth_nodepool_cloudprovider_errors_total{method=\"terminate\",provider=\"flaky\",error=\"transient\"} 1",
        ] {
            assert!(text.contains(expected), "no {expected} in\n{text}");
        }
        assert!(
            !text.contains("berth_nodepool_nodeclaims_terminated_total{"),
            "a failed terminate is not a termination:\n{text}"
        );
    }
}
