//! The rules of the cluster model, applied to the raw file: names, CIDRs, the
//! master count per datastore, unique pools, hosts and node names. Each broken
//! rule becomes one error pointing at the offending value.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Display;
use std::net::IpAddr;
use std::ops::Range;
use std::path::PathBuf;

use berth_api::validation::ip::{is_valid_cidr, parse_cidr};
use berth_api::validation::{is_dns1123_label, is_dns1123_subdomain};
use toml::Spanned;

use super::aws;
use super::error::{key_segment, Location};
use super::model::{
    Binary, Cidr, Cluster, Datastore, Machine, Provider, DEFAULT_CLUSTER_CIDR, DEFAULT_DATA_DIR,
    DEFAULT_SERVICE_CIDR,
};
use super::pool::pool;
use super::raw::{RawCluster, RawMachine, RawSsh};
use super::{ssh, ConfigError};

/// Most host bits a service CIDR may have (upstream's limit, 2²⁰ addresses).
const MAX_SERVICE_CIDR_BITS: u8 = 20;
/// Prefix of each node's pod subnet (the controller's `--node-cidr-mask-size`).
const NODE_CIDR_MASK_V4: u8 = 24;
const NODE_CIDR_MASK_V6: u8 = 64;

/// Which master counts a file may have: what a new cluster needs, or also
/// what `remove-node` may leave of a running one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MasterRule {
    /// 1 on sqlite, 3 or 5 on etcd (`check`, `create`).
    New,
    /// Also any count from 1 on etcd: a cluster whose masters
    /// `remove-node` removed (`status`, `delete`, `add-node`, `remove-node`).
    Existing,
}

/// Builds errors that point into one file.
pub(crate) struct Checker<'a> {
    file: &'a str,
    text: &'a str,
}

impl<'a> Checker<'a> {
    pub fn new(file: &'a str, text: &'a str) -> Self {
        Self { file, text }
    }

    /// An error at `span` for `field`.
    pub fn error(&self, span: Range<usize>, field: &str, message: impl Display) -> ConfigError {
        ConfigError::Invalid {
            at: Location::at(self.file, self.text, span.start),
            field: field.to_owned(),
            message: message.to_string(),
        }
    }

    /// `result`, or its error placed at `value`.
    pub fn require<T, U, E: Display>(
        &self,
        value: &Spanned<T>,
        field: &str,
        result: Result<U, E>,
    ) -> Result<U, ConfigError> {
        result.map_err(|e| self.error(value.span(), field, e))
    }

    /// Problems from a Kubernetes validator, joined as upstream joins them.
    pub fn problems<T>(
        &self,
        value: &Spanned<T>,
        field: &str,
        problems: Vec<String>,
    ) -> Result<(), ConfigError> {
        if problems.is_empty() {
            Ok(())
        } else {
            Err(self.error(value.span(), field, problems.join("; ")))
        }
    }
}

/// Checks the raw file and builds the model.
pub(crate) fn cluster(
    checker: &Checker<'_>,
    raw: RawCluster,
    rule: MasterRule,
) -> Result<Cluster, ConfigError> {
    checker.problems(&raw.name, "name", is_dns1123_label(raw.name.get_ref()))?;
    let binary = match &raw.binary {
        None => Binary::SelfExe,
        Some(binary) if binary.get_ref() == "self" => Binary::SelfExe,
        Some(binary) if binary.get_ref().trim().is_empty() => {
            return Err(checker.error(
                binary.span(),
                "binary",
                "must be \"self\" (this berth executable) or the path of a berth executable",
            ));
        }
        Some(binary) => Binary::Path(PathBuf::from(binary.get_ref())),
    };
    let service_cidr = cidr(
        checker,
        raw.service_cidr.as_ref(),
        "service_cidr",
        DEFAULT_SERVICE_CIDR,
    )?;
    if let Some(value) = &raw.service_cidr {
        let bits = if service_cidr.address.is_ipv4() {
            32
        } else {
            128
        };
        if bits - service_cidr.prefix > MAX_SERVICE_CIDR_BITS {
            return Err(checker.error(value.span(), "service_cidr", format!(
                "specified service_cidr is too large; for {bits}-bit addresses, the mask must be >= {}",
                bits - MAX_SERVICE_CIDR_BITS
            )));
        }
    }
    let cluster_cidr = cidr(
        checker,
        raw.cluster_cidr.as_ref(),
        "cluster_cidr",
        DEFAULT_CLUSTER_CIDR,
    )?;
    if service_cidr.overlaps(&cluster_cidr) {
        let (span, field) = match (&raw.cluster_cidr, &raw.service_cidr) {
            (Some(value), _) => (value.span(), "cluster_cidr"),
            (None, Some(value)) => (value.span(), "service_cidr"),
            (None, None) => (0..0, "cluster_cidr"),
        };
        return Err(checker.error(span, field, format!(
            "cluster_cidr {cluster_cidr} overlaps service_cidr {service_cidr}; pods and Services need separate ranges"
        )));
    }
    let datastore = raw
        .datastore
        .as_ref()
        .map(|d| *d.get_ref())
        .unwrap_or_default();
    let defaults = Defaults {
        ssh: &raw.ssh,
        data_dir: data_dir(checker, raw.data_dir.as_ref(), "data_dir")?
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
    };
    let insecure_registries = raw
        .insecure_registries
        .iter()
        .enumerate()
        .map(|(index, registry)| {
            let valid = registry
                .get_ref()
                .rsplit_once(':')
                .is_some_and(|(host, port)| {
                    !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
                });
            if valid {
                Ok(registry.get_ref().clone())
            } else {
                Err(checker.error(
                    registry.span(),
                    &format!("insecure_registries[{index}]"),
                    format!("{:?} is not host:port", registry.get_ref()),
                ))
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let api_endpoint = raw
        .api_endpoint
        .as_ref()
        .map(|endpoint| api_endpoint(checker, endpoint))
        .transpose()?;
    let raw_masters = master_count(checker, &raw, datastore, rule)?;
    let masters = raw_masters
        .iter()
        .enumerate()
        .map(|(index, machine)| {
            self::machine(
                checker,
                &defaults,
                machine,
                &format!("masters.machines[{index}]"),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut pools = Vec::new();
    let mut pool_names: HashMap<String, usize> = HashMap::new();
    for (index, raw_pool) in raw.pools.iter().enumerate() {
        let field = format!("pools[{index}]");
        let name = &raw_pool.get_ref().name;
        if let Some(first) = pool_names.insert(name.get_ref().clone(), index) {
            return Err(checker.error(
                name.span(),
                &format!("{field}.name"),
                format!(
                    "pool name {:?} is already used by pools[{first}]; pool names must be unique",
                    name.get_ref()
                ),
            ));
        }
        pools.push(pool(checker, &defaults, raw_pool, &field)?);
    }
    aws_block_present(checker, &raw)?;
    let has_aws_pools = pools.iter().any(|pool| pool.aws.is_some());
    let aws = aws::aws(checker, &defaults, raw.aws.as_ref(), has_aws_pools)?;
    let cluster = Cluster {
        name: raw.name.get_ref().clone(),
        binary,
        service_cidr,
        cluster_cidr,
        network_mode: raw.network_mode,
        datastore,
        api_endpoint,
        masters,
        pools,
        insecure_registries,
        aws,
    };
    unique_machines(
        checker,
        &raw_machines_in_order(raw_masters, &raw.pools),
        &cluster,
    )?;
    enough_node_subnets(checker, raw.cluster_cidr.as_ref(), &cluster)?;
    Ok(cluster)
}

/// An `aws` pool needs `[aws]` (the region and endpoint the controller's EC2 calls use).
fn aws_block_present(checker: &Checker<'_>, raw: &RawCluster) -> Result<(), ConfigError> {
    if raw.aws.is_some() {
        return Ok(());
    }
    let aws = raw.pools.iter().enumerate().find_map(|(index, pool)| {
        let provider = pool.get_ref().provider.as_ref()?;
        (*provider.get_ref() == Provider::Aws).then(|| (index, provider.span()))
    });
    match aws {
        None => Ok(()),
        Some((index, span)) => Err(checker.error(
            span,
            &format!("pools[{index}].provider"),
            "a pool with provider \"aws\" needs an [aws] block (region, endpoint_url) saying where its EC2 calls go",
        )),
    }
}

/// What a machine takes from the file's top level unless it sets its own.
pub(crate) struct Defaults<'r> {
    /// `[ssh]`.
    pub ssh: &'r RawSsh,
    /// `data_dir`, or berth's default.
    pub data_dir: PathBuf,
}

/// A `data_dir` value: an absolute path.
fn data_dir(
    checker: &Checker<'_>,
    raw: Option<&Spanned<String>>,
    field: &str,
) -> Result<Option<PathBuf>, ConfigError> {
    let Some(raw) = raw else { return Ok(None) };
    let path = PathBuf::from(raw.get_ref());
    if path.is_absolute() && path.parent().is_some() {
        Ok(Some(path))
    } else {
        Err(checker.error(
            raw.span(),
            field,
            format!(
                "{:?} must be an absolute path below / (like \"/var/lib/berth\")",
                raw.get_ref()
            ),
        ))
    }
}

/// One machine with its SSH settings and data directory resolved.
pub(crate) fn machine(
    checker: &Checker<'_>,
    defaults: &Defaults<'_>,
    raw: &Spanned<RawMachine>,
    field: &str,
) -> Result<Machine, ConfigError> {
    let raw = raw.get_ref();
    let host = raw.host.get_ref();
    let host_field = format!("{field}.host");
    if host.parse::<std::net::IpAddr>().is_err() {
        let problems = is_dns1123_subdomain(&host.to_ascii_lowercase());
        if !problems.is_empty() {
            return Err(checker.error(
                raw.host.span(),
                &host_field,
                format!(
                    "must be an IP address or a DNS name: {}",
                    problems.join("; ")
                ),
            ));
        }
    }
    let name = match &raw.name {
        Some(name) => {
            checker.problems(
                name,
                &format!("{field}.name"),
                is_dns1123_subdomain(name.get_ref()),
            )?;
            name.get_ref().clone()
        }
        None => {
            let name = host.to_ascii_lowercase();
            let problems = is_dns1123_subdomain(&name);
            if !problems.is_empty() {
                return Err(checker.error(raw.host.span(), &host_field, format!(
                    "{name:?} cannot be a Node name ({}); set name = \"NODE-NAME\" for this machine", problems.join("; ")
                )));
            }
            name
        }
    };
    let ssh = ssh::resolve(checker, defaults.ssh, &raw.ssh_overrides(), field)?;
    let data_dir = data_dir(checker, raw.data_dir.as_ref(), &format!("{field}.data_dir"))?
        .unwrap_or_else(|| defaults.data_dir.clone());
    Ok(Machine {
        host: host.clone(),
        name,
        data_dir,
        ssh,
    })
}

fn cidr(
    checker: &Checker<'_>,
    value: Option<&Spanned<String>>,
    field: &str,
    default: &str,
) -> Result<Cidr, ConfigError> {
    let text = value.map_or(default, |v| v.get_ref().as_str());
    if let Some(value) = value {
        checker.problems(value, field, is_valid_cidr(text))?;
    }
    let (address, prefix) = parse_cidr(text).unwrap_or((std::net::Ipv4Addr::UNSPECIFIED.into(), 0));
    Ok(Cidr { address, prefix })
}

fn master_count<'r>(
    checker: &Checker<'_>,
    raw: &'r RawCluster,
    datastore: Datastore,
    rule: MasterRule,
) -> Result<&'r [Spanned<RawMachine>], ConfigError> {
    let launched = raw
        .aws
        .as_ref()
        .and_then(|aws| aws.get_ref().masters.as_ref());
    let (count, span, field) = match (&raw.masters, launched) {
        (Some(listed), Some(_)) => {
            return Err(checker.error(
                listed.get_ref().machines.span(),
                "masters.machines",
                "cannot be used with [aws.masters], which launches the masters on EC2; keep one of the two",
            ));
        }
        (None, None) => {
            return Err(checker.error(
                0..0,
                "masters.machines",
                "missing: list the masters under [masters] machines, or launch them on EC2 with [aws.masters]",
            ));
        }
        (Some(listed), None) => {
            let machines = &listed.get_ref().machines;
            (
                machines.get_ref().len(),
                machines.span(),
                "masters.machines",
            )
        }
        (None, Some(aws)) => (
            *aws.count.get_ref() as usize,
            aws.count.span(),
            "aws.masters.count",
        ),
    };
    let machines = raw
        .masters
        .as_ref()
        .map_or(&[][..], |m| m.get_ref().machines.get_ref().as_slice());
    let shrunk = rule == MasterRule::Existing && datastore == Datastore::Etcd && count >= 1;
    if shrunk || datastore.allowed_masters().contains(&count) {
        return Ok(machines);
    }
    let message = match datastore {
        Datastore::Sqlite => format!(
            "datastore \"sqlite\"{} needs exactly 1 master, found {count}; for high availability use datastore = \"etcd\" with 3 or 5 masters",
            if raw.datastore.is_none() { " (the default)" } else { "" }
        ),
        Datastore::Etcd => format!(
            "datastore \"etcd\" needs 3 or 5 masters (an odd number, so a majority survives a failure), found {count}"
        ),
    };
    Err(checker.error(span, field, message))
}

/// Every raw machine with its field path, masters first, in file order.
fn raw_machines_in_order<'r>(
    masters: &'r [Spanned<RawMachine>],
    pools: &'r [Spanned<super::raw::RawPool>],
) -> Vec<(String, &'r Spanned<RawMachine>)> {
    let masters = masters
        .iter()
        .enumerate()
        .map(|(i, m)| (format!("masters.machines[{i}]"), m));
    let nodes = pools.iter().enumerate().flat_map(|(p, pool)| {
        pool.get_ref()
            .machines
            .iter()
            .enumerate()
            .map(move |(i, m)| (format!("pools[{p}].machines[{i}]"), m))
    });
    masters.chain(nodes).collect()
}

/// No two machines share a host (and port) or a Node name.
fn unique_machines(
    checker: &Checker<'_>,
    raw: &[(String, &Spanned<RawMachine>)],
    cluster: &Cluster,
) -> Result<(), ConfigError> {
    let mut hosts: HashMap<(String, u16), &str> = HashMap::new();
    let mut names: HashMap<&str, &str> = HashMap::new();
    for ((field, raw), (_, machine)) in raw.iter().zip(cluster.machines()) {
        let key = (machine.host.to_ascii_lowercase(), machine.ssh.port);
        if let Some(first) = hosts.insert(key, field) {
            return Err(checker.error(
                raw.get_ref().host.span(),
                &format!("{field}.host"),
                format!(
                    "host {:?} is already used by {first}; each machine may appear once",
                    machine.host
                ),
            ));
        }
        if let Some(first) = names.insert(&machine.name, field) {
            let (span, at) = match &raw.get_ref().name {
                Some(name) => (name.span(), format!("{field}.name")),
                None => (raw.get_ref().host.span(), format!("{field}.host")),
            };
            return Err(checker.error(
                span,
                &at,
                format!(
                    "Node name {:?} is already used by {first}; set a unique name",
                    machine.name
                ),
            ));
        }
    }
    Ok(())
}

/// The cluster CIDR holds one pod subnet per machine.
fn enough_node_subnets(
    checker: &Checker<'_>,
    value: Option<&Spanned<String>>,
    cluster: &Cluster,
) -> Result<(), ConfigError> {
    let cidr = cluster.cluster_cidr;
    let mask = if cidr.address.is_ipv4() {
        NODE_CIDR_MASK_V4
    } else {
        NODE_CIDR_MASK_V6
    };
    let launched = cluster
        .aws
        .as_ref()
        .and_then(|aws| aws.masters())
        .map_or(0, |masters| *masters.count.get_ref() as usize);
    let machines = cluster.machines().count() + launched;
    let subnets = if cidr.prefix > mask {
        0
    } else {
        1u128
            .checked_shl(u32::from(mask - cidr.prefix))
            .unwrap_or(u128::MAX)
    };
    if subnets >= machines as u128 {
        return Ok(());
    }
    let span = value.map_or(0..0, |v| v.span());
    Err(checker.error(span, "cluster_cidr", format!(
        "{cidr} holds {subnets} node subnet(s) of /{mask} but the cluster has {machines} machines; use a larger range (e.g. /16)"
    )))
}

/// Labels by key, for the pool module.
pub(crate) type Labels = BTreeMap<String, String>;

/// A field path for a map key (`labels."example.com/tier"`).
pub(crate) fn key_field(parent: &str, key: &str) -> String {
    format!("{parent}.{}", key_segment(key))
}

/// `api_endpoint`: a host name or address, with an optional port.
fn api_endpoint(checker: &Checker<'_>, endpoint: &Spanned<String>) -> Result<String, ConfigError> {
    let text = endpoint.get_ref();
    let (host, port) = split_host_port(text);
    let host_ok = host.parse::<IpAddr>().is_ok()
        || (!host.is_empty() && is_dns1123_subdomain(&host.to_ascii_lowercase()).is_empty());
    let port_ok = port.is_none_or(|port| port.parse::<u16>().is_ok_and(|p| p > 0));
    if host_ok && port_ok {
        Ok(text.clone())
    } else {
        Err(checker.error(
            endpoint.span(),
            "api_endpoint",
            format!("{text:?} is not HOST or HOST:PORT (a DNS name with one address per master, or a load balancer's address)"),
        ))
    }
}

/// `HOST[:PORT]`, `[V6][:PORT]` or a bare IPv6 address, split.
fn split_host_port(text: &str) -> (&str, Option<&str>) {
    if let Some(rest) = text.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((host, "")) => (host, None),
            Some((host, port)) => (host, Some(port.strip_prefix(':').unwrap_or(port))),
            None => ("", None),
        };
    }
    if text.parse::<std::net::Ipv6Addr>().is_ok() {
        return (text, None);
    }
    match text.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (text, None),
    }
}
