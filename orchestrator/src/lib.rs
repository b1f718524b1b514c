//! The berth control plane: the Kubernetes-compatible API server and the state
//! store behind it. Scheduler and controllers join here as API clients.
#![warn(missing_docs)]

pub mod apiserver;
pub mod controllers;
pub mod leader_election;
pub mod scheduler;
pub mod store;
