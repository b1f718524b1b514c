//! The `policy` group's kinds: PodDisruptionBudgets, and the budget rules the
//! disruption controller and the Eviction subresource share.

pub mod disruption;
pub mod poddisruptionbudget;
