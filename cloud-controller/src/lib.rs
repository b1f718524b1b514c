//! The cloud-controller (issue 23): gives Services of `type: LoadBalancer` a
//! load balancer through a [`provider::LoadBalancerProvider`], keeps its
//! targets on the cluster's nodes and removes it with the Service. This first
//! slice holds the pure decisions of the service controller ([`service`],
//! [`nodes`]) and the pure parts of the `haproxy` provider ([`haproxy`]); the
//! kube-rs loop that drives them comes next. It never touches the store.

#![warn(missing_docs)]

pub mod haproxy;
pub mod nodes;
pub mod provider;
pub mod service;

pub use provider::{LoadBalancerProvider, ProviderError};
