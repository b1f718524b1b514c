//! The `policy` group's kinds: PodDisruptionBudgets.

pub mod poddisruptionbudget;
