//! The `discovery.k8s.io` group's kinds.

pub mod endpointslice;
