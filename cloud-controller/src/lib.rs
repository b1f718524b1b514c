//! The cloud-controller (issue 23): gives Services of `type: LoadBalancer` a
//! load balancer through a [`provider::LoadBalancerProvider`], keeps its
//! targets on the cluster's nodes and removes it with the Service. The
//! decisions are plain functions ([`service`], [`nodes`], [`plan`]); the
//! kube-rs loop in [`controller`] only carries them out. The `haproxy`
//! provider ([`haproxy`]) writes this host's HAProxy configuration; the
//! `aws` provider ([`aws`]) makes network load balancers. A
//! kube-rs client only: it never touches the store.

#![warn(missing_docs)]

pub mod aws;
pub mod controller;
pub mod haproxy;
pub mod metrics;
pub mod nodes;
pub mod plan;
pub mod provider;
pub mod service;
#[cfg(test)]
mod testing;

pub use aws::AwsProvider;
pub use controller::{run, Config, Providers};
pub use haproxy::HaproxyProvider;
pub use provider::{LoadBalancerProvider, ProviderError};
