//! The `apiextensions.k8s.io` group's kinds.

pub mod customresourcedefinition;
