//! The `coordination.k8s.io` group's kinds.

pub mod lease;
