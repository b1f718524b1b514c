//! The shape of `cluster.toml` as serde reads it: every key known, unknown keys
//! refused, values kept with their spans so the checks that follow can point at
//! them. Nothing here is checked beyond its type.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::model::{Datastore, HostKeyPolicy, NetworkMode, Provider};

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCluster {
    pub name: Spanned<String>,
    pub binary: Option<Spanned<String>>,
    pub service_cidr: Option<Spanned<String>>,
    pub cluster_cidr: Option<Spanned<String>>,
    #[serde(default)]
    pub network_mode: NetworkMode,
    pub datastore: Option<Spanned<Datastore>>,
    pub api_endpoint: Option<Spanned<String>>,
    pub data_dir: Option<Spanned<String>>,
    #[serde(default)]
    pub insecure_registries: Vec<Spanned<String>>,
    #[serde(default)]
    pub ssh: RawSsh,
    /// Left out when `[aws.masters]` launches the masters.
    pub masters: Option<Spanned<RawMasters>>,
    #[serde(default)]
    pub pools: Vec<Spanned<RawPool>>,
    /// `[aws]`: where the cluster's EC2 calls go, and its masters there.
    pub aws: Option<Spanned<crate::aws::AwsClusterConfig>>,
}

/// SSH settings: the `[ssh]` defaults, and each machine's overrides.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSsh {
    pub user: Option<Spanned<String>>,
    pub port: Option<Spanned<i64>>,
    pub key_file: Option<Spanned<String>>,
    pub agent: Option<Spanned<bool>>,
    pub known_hosts: Option<Spanned<String>>,
    pub host_key_policy: Option<HostKeyPolicy>,
    pub jump_host: Option<Spanned<String>>,
}

/// `[masters]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMasters {
    pub machines: Spanned<Vec<Spanned<RawMachine>>>,
}

/// One machine: its address, an optional node name and SSH overrides. The
/// overrides repeat [`RawSsh`]'s keys because serde cannot flatten a struct
/// into one that denies unknown fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMachine {
    pub host: Spanned<String>,
    pub name: Option<Spanned<String>>,
    pub data_dir: Option<Spanned<String>>,
    pub user: Option<Spanned<String>>,
    pub port: Option<Spanned<i64>>,
    pub key_file: Option<Spanned<String>>,
    pub agent: Option<Spanned<bool>>,
    pub known_hosts: Option<Spanned<String>>,
    pub host_key_policy: Option<HostKeyPolicy>,
    pub jump_host: Option<Spanned<String>>,
}

impl RawMachine {
    /// The SSH keys this machine sets, in the `[ssh]` shape.
    pub fn ssh_overrides(&self) -> RawSsh {
        RawSsh {
            user: self.user.clone(),
            port: self.port.clone(),
            key_file: self.key_file.clone(),
            agent: self.agent.clone(),
            known_hosts: self.known_hosts.clone(),
            host_key_policy: self.host_key_policy,
            jump_host: self.jump_host.clone(),
        }
    }
}

/// One `[[pools]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPool {
    pub name: Spanned<String>,
    pub provider: Option<Spanned<Provider>>,
    #[serde(default)]
    pub machines: Vec<Spanned<RawMachine>>,
    #[serde(default)]
    pub labels: BTreeMap<Spanned<String>, Spanned<String>>,
    #[serde(default)]
    pub taints: Vec<Spanned<String>>,
    #[serde(default)]
    pub gpu: bool,
    pub max_pods: Option<Spanned<i64>>,
    pub reserved_cpu: Option<Spanned<String>>,
    pub reserved_memory: Option<Spanned<String>>,
}
