//! Builds and keeps berth clusters on the machines a `cluster.toml` lists: the
//! cluster model, machine backends, bootstrapping and upgrades. The provisioner
//! never depends on the orchestrator; certificates come from `berth-pki`.

#![warn(missing_docs)]

pub mod admin;
pub mod aws;
pub mod certificates;
pub mod config;
pub mod create;
pub mod delete;
pub mod drain;
pub mod ec2_masters;
pub mod endpoint;
pub mod etcd;
pub mod join;
pub mod layout;
pub mod nodepools;
pub mod nodes;
pub mod pool_hosts;
pub mod remote;
pub mod renew;
pub mod restore;
pub mod service;
pub mod snapshot;
pub mod ssh;
pub mod status;
pub mod terraform;
pub mod upgrade;
