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
    // The keys of an `aws` pool (an `ssh` pool refuses them), inline
    // because serde cannot flatten into a struct that denies unknown fields.
    pub instance_types: Option<Spanned<Vec<Spanned<String>>>>,
    pub ami: Option<Spanned<String>>,
    pub subnet_ids: Option<Spanned<Vec<Spanned<String>>>>,
    pub security_group_ids: Option<Spanned<Vec<Spanned<String>>>>,
    pub key_name: Option<Spanned<String>>,
    pub spot: Option<Spanned<bool>>,
    pub capacity_type: Option<Spanned<String>>,
    pub root_volume_gib: Option<Spanned<i64>>,
    pub root_volume_type: Option<Spanned<String>>,
    pub iam_instance_profile: Option<Spanned<String>>,
    pub user_data: Option<Spanned<String>>,
    pub replicas: Option<Spanned<i64>>,
    pub min_replicas: Option<Spanned<i64>>,
    pub max_replicas: Option<Spanned<i64>>,
    pub capacity: Option<Spanned<BTreeMap<Spanned<String>, Spanned<String>>>>,
    pub limits: Option<Spanned<BTreeMap<Spanned<String>, Spanned<String>>>>,
    pub expire_after: Option<Spanned<String>>,
    pub consolidate_after: Option<Spanned<String>>,
}

impl RawPool {
    /// The `aws`-only keys this pool sets, with where each is, in file order.
    pub fn aws_keys(&self) -> Vec<(&'static str, std::ops::Range<usize>)> {
        fn at<T>(
            key: &'static str,
            value: &Option<Spanned<T>>,
        ) -> Option<(&'static str, std::ops::Range<usize>)> {
            value.as_ref().map(|v| (key, v.span()))
        }
        let mut keys: Vec<_> = [
            at("instance_types", &self.instance_types),
            at("ami", &self.ami),
            at("subnet_ids", &self.subnet_ids),
            at("security_group_ids", &self.security_group_ids),
            at("key_name", &self.key_name),
            at("spot", &self.spot),
            at("capacity_type", &self.capacity_type),
            at("root_volume_gib", &self.root_volume_gib),
            at("root_volume_type", &self.root_volume_type),
            at("iam_instance_profile", &self.iam_instance_profile),
            at("user_data", &self.user_data),
            at("replicas", &self.replicas),
            at("min_replicas", &self.min_replicas),
            at("max_replicas", &self.max_replicas),
            at("capacity", &self.capacity),
            at("limits", &self.limits),
            at("expire_after", &self.expire_after),
            at("consolidate_after", &self.consolidate_after),
        ]
        .into_iter()
        .flatten()
        .collect();
        keys.sort_by_key(|(_, span)| span.start);
        keys
    }
}
