//! The NodePool controller (issue 22): keeps each `berth.dev/v1` NodePool at
//! its size by creating and removing NodeClaims, launches and terminates
//! their machines through a [`provider::MachineProvider`], labels and taints
//! the Nodes they register as, and drains a node through the Eviction API
//! before its machine goes. A kube-rs client only: it never touches the store,
//! so it runs in `berth server` or alone against any cluster.

#![warn(missing_docs)]

pub mod capacity;
pub mod claim;
pub mod claim_controller;
pub mod conditions;
pub mod constraints;
pub mod controller;
pub mod disruption;
pub mod drain;
pub mod metrics;
pub mod plan;
pub mod pool_controller;
pub mod provider;
pub mod provisioning;
pub mod registration;
pub mod status;

pub use controller::{run, Config, Providers};
pub use provider::{Machine, MachineProvider, ProviderError};
