//! Load-balancer operation metrics: upstream's service controller names
//! (`service_controller_loadbalancer_sync_total`,
//! `service_controller_update_loadbalancer_host_latency_seconds`,
//! `service_controller_nodesync_error_total`), so its dashboards work, and
//! per-call duration and errors by provider in the spirit of
//! cloud-provider-aws' `cloudprovider_aws_api_request_duration_seconds`.
//! Counted where every provider (haproxy, aws) is called: [`Metered`]
//! wraps each configured [`LoadBalancerProvider`].

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use berth_observability::metrics::{
    exponential_buckets, Counter, EncodeLabelSet, Family, Histogram, MetricsRegistry,
};
use k8s_openapi::api::core::v1::{LoadBalancerStatus, Service};

use crate::nodes::TargetNode;
use crate::provider::{LoadBalancerProvider, ProviderError};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    request: &'static str,
    provider: &'static str,
}

fn request_duration() -> Histogram {
    // 10 ms doubling to about 5 min: an NLB is minutes, HAProxy milliseconds.
    Histogram::new(exponential_buckets(0.01, 2.0, 16))
}

fn host_latency() -> Histogram {
    // Upstream: 1 s doubling, 15 buckets (to about 4.5 h).
    Histogram::new(exponential_buckets(1.0, 2.0, 15))
}

/// The service controller's load-balancer metrics.
#[derive(Clone, Debug)]
pub struct LoadBalancerMetrics {
    syncs: Counter,
    host_latency: Histogram,
    nodesync_errors: Counter,
    durations: Family<RequestLabels, Histogram, fn() -> Histogram>,
    errors: Family<RequestLabels, Counter>,
}

impl LoadBalancerMetrics {
    /// The metrics of this process's service controller, registered in the
    /// control plane's registry on first use.
    pub fn global() -> &'static LoadBalancerMetrics {
        static METRICS: OnceLock<LoadBalancerMetrics> = OnceLock::new();
        METRICS.get_or_init(|| LoadBalancerMetrics::register(MetricsRegistry::control_plane()))
    }

    /// Registers the load-balancer metrics in `registry`.
    pub fn register(registry: &MetricsRegistry) -> Self {
        LoadBalancerMetrics {
            syncs: registry.register(
                "service_controller_loadbalancer_sync",
                "Load balancers created, brought up to date or deleted for Services (each attempt).",
                Counter::default(),
            ),
            host_latency: registry.register(
                "service_controller_update_loadbalancer_host_latency_seconds",
                "Seconds each update of a load balancer's target hosts took.",
                host_latency(),
            ),
            nodesync_errors: registry.register(
                "service_controller_nodesync_error",
                "Updates of a load balancer's target hosts that failed.",
                Counter::default(),
            ),
            durations: registry.register(
                "berth_cloudprovider_loadbalancer_request_duration_seconds",
                "Seconds each load-balancer provider call took, by request and provider.",
                Family::new_with_constructor(request_duration as fn() -> Histogram),
            ),
            errors: registry.register(
                "berth_cloudprovider_loadbalancer_request_errors",
                "Load-balancer provider calls that failed, by request and provider.",
                Family::default(),
            ),
        }
    }

    /// `provider` with its calls counted in these metrics.
    pub fn wrap(&self, provider: Arc<dyn LoadBalancerProvider>) -> Arc<dyn LoadBalancerProvider> {
        Arc::new(Metered {
            inner: provider,
            metrics: self.clone(),
        })
    }

    async fn time<T>(
        &self,
        request: &'static str,
        provider: &'static str,
        call: impl Future<Output = Result<T, ProviderError>>,
    ) -> Result<T, ProviderError> {
        let started = Instant::now();
        let result = call.await;
        let labels = RequestLabels { request, provider };
        self.durations
            .get_or_create(&labels)
            .observe(started.elapsed().as_secs_f64());
        if result.is_err() {
            self.errors.get_or_create(&labels).inc();
        }
        result
    }
}

/// A provider whose calls are timed and counted.
#[derive(Debug)]
pub struct Metered {
    inner: Arc<dyn LoadBalancerProvider>,
    metrics: LoadBalancerMetrics,
}

#[async_trait::async_trait]
impl LoadBalancerProvider for Metered {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn get(&self, service: &Service) -> Result<Option<LoadBalancerStatus>, ProviderError> {
        let provider = self.inner.name();
        self.metrics
            .time("get", provider, self.inner.get(service))
            .await
    }

    async fn ensure(
        &self,
        service: &Service,
        nodes: &[TargetNode],
    ) -> Result<LoadBalancerStatus, ProviderError> {
        self.metrics.syncs.inc();
        let provider = self.inner.name();
        self.metrics
            .time("ensure", provider, self.inner.ensure(service, nodes))
            .await
    }

    async fn update(&self, service: &Service, nodes: &[TargetNode]) -> Result<(), ProviderError> {
        let provider = self.inner.name();
        let started = Instant::now();
        let result = self
            .metrics
            .time("update", provider, self.inner.update(service, nodes))
            .await;
        self.metrics
            .host_latency
            .observe(started.elapsed().as_secs_f64());
        if result.is_err() {
            self.metrics.nodesync_errors.inc();
        }
        result
    }

    async fn delete(&self, service: &Service) -> Result<(), ProviderError> {
        self.metrics.syncs.inc();
        let provider = self.inner.name();
        self.metrics
            .time("delete", provider, self.inner.delete(service))
            .await
    }

    async fn adopt(&self, services: &[Service], nodes: &[TargetNode]) -> Result<(), ProviderError> {
        let provider = self.inner.name();
        self.metrics
            .time("adopt", provider, self.inner.adopt(services, nodes))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{lb_service, target};

    /// Ensures every balancer, fails every target update.
    #[derive(Debug)]
    struct Stubborn;

    #[async_trait::async_trait]
    impl LoadBalancerProvider for Stubborn {
        fn name(&self) -> &'static str {
            "stubborn"
        }
        async fn get(&self, _: &Service) -> Result<Option<LoadBalancerStatus>, ProviderError> {
            Ok(None)
        }
        async fn ensure(
            &self,
            _: &Service,
            _: &[TargetNode],
        ) -> Result<LoadBalancerStatus, ProviderError> {
            Ok(LoadBalancerStatus::default())
        }
        async fn update(&self, _: &Service, _: &[TargetNode]) -> Result<(), ProviderError> {
            Err(ProviderError::Transient {
                operation: "update",
                reason: "host unreachable".into(),
            })
        }
        async fn delete(&self, _: &Service) -> Result<(), ProviderError> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn syncs_host_updates_and_provider_calls_are_counted() {
        let registry = MetricsRegistry::default();
        let provider = LoadBalancerMetrics::register(&registry).wrap(Arc::new(Stubborn));
        let service = lb_service("web", &[(80, 30080)]);
        let nodes = [target("n1", "10.0.0.1")];
        provider.ensure(&service, &nodes).await.expect("ensured");
        provider
            .update(&service, &nodes)
            .await
            .expect_err("unreachable");
        provider.delete(&service).await.expect("deleted");
        let text = registry.encode();
        for expected in [
            "service_controller_loadbalancer_sync_total 2",
            "service_controller_nodesync_error_total 1",
            "service_controller_update_loadbalancer_host_latency_seconds_count 1",
            "berth_cloudprovider_loadbalancer_request_duration_seconds_count{request=\"ensure\",provider=\"stubborn\"} 1",
            "berth_cloudprovider_loadbalancer_request_duration_seconds_count{request=\"delete\",provider=\"stubborn\"} 1",
            "berth_cloudprovider_loadbalancer_request_errors_total{request=\"update\",provider=\"stubborn\"} 1",
        ] {
            assert!(text.contains(expected), "no {expected} in\n{text}");
        }
    }
}
