//! The `node.k8s.io` group's kinds: RuntimeClass.

pub mod runtimeclass;
