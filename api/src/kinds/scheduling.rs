//! The `scheduling.k8s.io` group's kinds: PriorityClass.

pub mod priorityclass;
