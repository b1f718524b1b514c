//! The seam between the controller and whatever makes machines: simulated
//! nodes (`sim`, in the berth binary), EC2 or SSH hosts later. Every call is
//! idempotent, and listing by pool lets the controller find machines without
//! a claim and claims without a machine after a crash.

use std::collections::BTreeMap;

use berth_api::nodeclaim::NodeClaim;
use berth_api::nodepool::NodePool;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// One machine a provider launched, as it describes it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Machine {
    /// The provider's id (`sim:///NAME`), recorded in the claim's status.
    pub provider_id: String,
    /// The pool it was launched for (its pool tag).
    pub pool: String,
    /// The NodeClaim it was launched for (its claim tag).
    pub claim: String,
    /// The Node name it registers as.
    pub node_name: String,
    /// The image it booted, when the provider has one.
    pub image_id: Option<String>,
    /// What it has.
    pub capacity: BTreeMap<String, Quantity>,
}

/// What a provider could not do, so the controller can tell a retry from a
/// configuration problem.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The claim asks for something the provider cannot make; retrying the
    /// same claim will not help (an unknown machine type, a bad template).
    #[error("cannot launch {claim}: {reason}")]
    Invalid {
        /// The claim.
        claim: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The pool's template cannot work as written (an instance type the
    /// cloud does not know); every claim of it would fail the same way.
    #[error("nodepool {pool}: {reason}")]
    InvalidTemplate {
        /// The pool.
        pool: String,
        /// What is wrong with its template.
        reason: String,
    },
    /// A transient failure (throttling, no capacity right now): try again later.
    #[error("{operation} failed: {reason}")]
    Transient {
        /// What was being done.
        operation: &'static str,
        /// Why it failed.
        reason: String,
    },
}

/// A backend that launches and terminates machines for NodeClaims.
#[async_trait::async_trait]
pub trait MachineProvider: Send + Sync + std::fmt::Debug {
    /// The name pools use in `spec.provider`.
    fn name(&self) -> &'static str;

    /// Launches the machine of `claim`, tagged with its pool and claim name;
    /// a second call for the same claim returns the machine already launched.
    async fn launch(&self, claim: &NodeClaim) -> Result<Machine, ProviderError>;

    /// The machine with this provider id, or None when it is gone.
    async fn describe(&self, provider_id: &str) -> Result<Option<Machine>, ProviderError>;

    /// Every machine tagged with `pool`.
    async fn list(&self, pool: &str) -> Result<Vec<Machine>, ProviderError>;

    /// Terminates the machine; Ok when it is already gone.
    async fn terminate(&self, provider_id: &str) -> Result<(), ProviderError>;

    /// What a machine of `pool`'s template will have, when the provider can
    /// tell without launching one (the `aws` provider asks EC2 about the
    /// preferred instance type), so a template need not spell out its
    /// `capacity`; None when it cannot tell.
    async fn template_capacity(
        &self,
        pool: &NodePool,
    ) -> Result<Option<BTreeMap<String, Quantity>>, ProviderError> {
        let _ = pool;
        Ok(None)
    }
}
