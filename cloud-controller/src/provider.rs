//! The seam between the service controller and whatever makes load
//! balancers (HAProxy on a bare-metal host, AWS network load balancers).
//! Like upstream's cloud-provider `LoadBalancer` interface every call is
//! idempotent and keyed by the Service alone, so a restarted controller can
//! finish or undo anything a crashed one began.

use k8s_openapi::api::core::v1::{LoadBalancerStatus, Service};

use crate::nodes::TargetNode;

/// What a provider could not do, so the controller can tell a retry from a
/// problem only the Service's owner can fix.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The Service asks for something this provider cannot give (an address
    /// outside its pool, a protocol it does not balance); retrying the same
    /// spec will not help, so the controller reports it and waits for a change.
    #[error("service {service}: {reason}")]
    Invalid {
        /// The Service, as `namespace/name`.
        service: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Every address of the pool is taken: retry when a Service lets one go.
    #[error("service {service}: no free address in pool {pool}")]
    PoolExhausted {
        /// The Service, as `namespace/name`.
        service: String,
        /// The pool that ran out.
        pool: String,
    },
    /// A transient failure (the load-balancer host unreachable, throttling):
    /// try again with back-off.
    #[error("{operation} failed: {reason}")]
    Transient {
        /// What was being done.
        operation: &'static str,
        /// Why it failed.
        reason: String,
    },
}

/// A backend that makes, updates and removes the load balancer of a Service.
///
/// Upstream's `GetLoadBalancer`, `EnsureLoadBalancer`, `UpdateLoadBalancer`
/// and `EnsureLoadBalancerDeleted`, with the cluster name held by the provider.
#[async_trait::async_trait]
pub trait LoadBalancerProvider: Send + Sync + std::fmt::Debug {
    /// The name Services pick through `spec.loadBalancerClass` (after the
    /// `berth.dev/` prefix) and that the controller logs.
    fn name(&self) -> &'static str;

    /// The status of the Service's load balancer when one exists, so the
    /// controller can tell "nothing to delete" from "delete it".
    async fn get(&self, service: &Service) -> Result<Option<LoadBalancerStatus>, ProviderError>;

    /// Creates or brings up to date the Service's load balancer with `nodes`
    /// as its targets, returning the addresses for `status.loadBalancer`.
    async fn ensure(
        &self,
        service: &Service,
        nodes: &[TargetNode],
    ) -> Result<LoadBalancerStatus, ProviderError>;

    /// Moves the targets of an existing load balancer to `nodes` without
    /// touching its addresses or listeners (the node-set path, run often).
    async fn update(&self, service: &Service, nodes: &[TargetNode]) -> Result<(), ProviderError>;

    /// Removes everything made for the Service; Ok when nothing is left.
    async fn delete(&self, service: &Service) -> Result<(), ProviderError>;

    /// Called once, before the first reconcile, with every Service of this
    /// provider that already has a load balancer (the finalizer and an
    /// address in its status) and the current targets. A provider whose
    /// state lives only in what it writes (HAProxy's file) takes its
    /// addresses back here, so a new Service reconciled first after a
    /// restart cannot take an older one's address, and its first write
    /// holds every Service. Cloud providers keep their state and need not.
    async fn adopt(&self, services: &[Service], nodes: &[TargetNode]) -> Result<(), ProviderError> {
        let _ = (services, nodes);
        Ok(())
    }
}
