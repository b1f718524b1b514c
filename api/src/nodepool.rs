//! berth's own `berth.dev/v1` NodePool: a named group of machines of one shape
//! (CPU or GPU), kept at a size and grown for pending pods by the node-pool
//! controller. The shape follows Karpenter's NodePool (template, limits,
//! disruption, weight) with berth's `replicas`/`minReplicas`/`maxReplicas`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Taint;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta};
use serde::{Deserialize, Serialize};

/// The label every node of a pool carries, naming its pool.
pub const POOL_LABEL: &str = "berth.dev/pool";
/// The label every node launched for a NodeClaim carries, naming the claim.
pub const NODECLAIM_LABEL: &str = "berth.dev/nodeclaim";
/// The provider a pool uses when it names none.
pub const DEFAULT_PROVIDER: &str = "sim";

/// A pool of machines that become Nodes with the same labels and taints.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "dev.berth.v1.NodePool")]
#[serde(rename_all = "camelCase")]
pub struct NodePool {
    /// `berth.dev/v1`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    /// `NodePool`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Standard object metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// What the pool should look like.
    #[serde(default)]
    pub spec: NodePoolSpec,
    /// What the controller last observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<NodePoolStatus>,
}

/// The desired shape and size of a pool.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodePoolSpec {
    /// Desired number of nodes when autoscaling is off (`kubectl scale` writes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Lower bound for the autoscaler; the controller never keeps fewer nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_replicas: Option<i32>,
    /// Upper bound for the autoscaler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_replicas: Option<i32>,
    /// Provider-specific machine class (an EC2 instance type, an SSH host group).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_class: Option<String>,
    /// Which machine provider launches the pool's machines: `sim` (simulated
    /// nodes in the controller's process), `ssh` (a list of bare machines,
    /// `template.ssh`) or `aws` (EC2 instances, set up by `template.aws`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// What each machine of the pool looks like.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<MachineTemplate>,
    /// Labels every node of the pool carries (besides `berth.dev/pool`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Taints every node of the pool carries (GPU pools: `nvidia.com/gpu=present:NoSchedule`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub taints: Vec<Taint>,
    /// Taints a node starts with and removes itself once initialised (a GPU
    /// driver, a CNI); the controller sets them at launch and never again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub startup_taints: Vec<Taint>,
    /// Totals the pool's machines may not exceed (`cpu`, `memory`, `nvidia.com/gpu`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: BTreeMap<String, Quantity>,
    /// How long a machine lives before it is replaced (`720h`, `Never`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_after: Option<String>,
    /// How and how fast nodes may be taken away.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disruption: Option<Disruption>,
    /// Preference among pools that fit the same pods (higher first, 1–100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i32>,
}

/// What one machine of a pool looks like: a provider-neutral shape plus one
/// block per provider.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MachineTemplate {
    /// What the machine offers (`cpu`, `memory`, `pods`, `nvidia.com/gpu`);
    /// for real providers, what the chosen machine type must at least have.
    /// When empty, a provider that can tell fills it in (`aws`: its first
    /// instance type, from DescribeInstanceTypes); when written, it wins.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub capacity: BTreeMap<String, Quantity>,
    /// Settings of the `sim` provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sim: Option<SimTemplate>,
    /// Settings of the `ssh` provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<SshTemplate>,
    /// Settings of the `aws` provider (EC2 instances).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsTemplate>,
}

/// How an EC2 instance of a pool is launched (the `aws` provider); the
/// fields follow RunInstances' parameters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AwsTemplate {
    /// Instance types in order of preference (`m7i.xlarge`, `g5.xlarge`); the
    /// next is tried when EC2 has no capacity for one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instance_types: Vec<String>,
    /// The AMI the instances boot (`ami-…`).
    #[serde(default)]
    pub ami: String,
    /// Subnets instances are spread over, the least used first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subnet_ids: Vec<String>,
    /// Security groups of the instances' network interface.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_group_ids: Vec<String>,
    /// EC2 key pair for SSH access, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_name: Option<String>,
    /// `on-demand` (the default) or `spot`; spot falls back to on-demand when
    /// EC2 has no spot capacity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_type: Option<String>,
    /// The root EBS volume; the AMI's when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_volume: Option<RootVolume>,
    /// Name or ARN of the instance profile the instances run as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam_instance_profile: Option<String>,
    /// Extra shell run by cloud-init before the berth agent starts (drivers, mounts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_data: Option<String>,
}

/// The capacity types an [`AwsTemplate`] may ask for.
pub const CAPACITY_TYPES: &[&str] = &["on-demand", "spot"];
/// The EBS volume types a root volume may have.
pub const VOLUME_TYPES: &[&str] = &["gp2", "gp3", "io1", "io2", "st1", "sc1", "standard"];

impl AwsTemplate {
    /// Whether the pool asks for spot instances.
    pub fn wants_spot(&self) -> bool {
        self.capacity_type.as_deref() == Some("spot")
    }
}

/// The root EBS volume of an instance.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RootVolume {
    /// Size in GiB.
    #[serde(rename = "sizeGiB")]
    pub size_gib: i32,
    /// EBS volume type (`gp3` when left out).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
}

/// Settings of simulated machines.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SimTemplate {
    /// How long each simulated container takes to start (`0s`, `500ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_latency: Option<String>,
    /// How long after registering a simulated node advertises its extended
    /// resources (`nvidia.com/gpu`), as a real node's device plugin comes up
    /// after the kubelet (`10s`); at once when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_advertise_delay: Option<String>,
}

/// The bare machines of an `ssh` pool: its inventory, taken one machine per
/// NodeClaim, and how to log in to them. The SSH key, known_hosts policy and
/// the server the machines join are the controller's own settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SshTemplate {
    /// The machines: `ADDRESS`, `HOST:PORT` or `[IPV6]:PORT` (port 22 by default).
    #[serde(default)]
    pub hosts: Vec<String>,
    /// The user to log in as (default `root`); berth does not use sudo, so
    /// it must be root or own `dataDir` and be allowed to run its services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Where berth keeps its binary, agent state and machine marker on each
    /// host (default `/var/lib/berth/nodepool`); `{host}` is replaced by the
    /// host's address, for hosts that share one filesystem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<String>,
}

/// The SSH port of a host entry when it names none.
pub const DEFAULT_SSH_PORT: u16 = 22;
/// The user an `ssh` pool logs in as when it names none.
pub const DEFAULT_SSH_USER: &str = "root";
/// Where an `ssh` pool keeps berth on a host when it names no folder.
pub const DEFAULT_SSH_DATA_DIR: &str = "/var/lib/berth/nodepool";

impl SshTemplate {
    /// The login user, defaulted.
    pub fn user(&self) -> &str {
        self.user.as_deref().unwrap_or(DEFAULT_SSH_USER)
    }

    /// The data folder on `host` (an address from [`parse_ssh_host`]).
    pub fn data_dir(&self, host: &str) -> String {
        self.data_dir
            .as_deref()
            .unwrap_or(DEFAULT_SSH_DATA_DIR)
            .replace("{host}", host)
    }
}

/// Splits a host entry of `template.ssh.hosts` into address and port:
/// `10.0.0.5`, `node-1:2222`, `fd00::1`, `[fd00::1]:2222`.
pub fn parse_ssh_host(entry: &str) -> Result<(String, u16), String> {
    let bad = |why: &str| Err(format!("{why}; want ADDRESS, HOST:PORT or [IPV6]:PORT"));
    let (host, port) = if let Some(rest) = entry.strip_prefix('[') {
        let Some((host, after)) = rest.split_once(']') else {
            return bad("an unclosed [");
        };
        match after.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if after.is_empty() => (host, None),
            None => return bad("text after ]"),
        }
    } else if entry.matches(':').count() > 1 {
        (entry, None)
    } else {
        match entry.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (entry, None),
        }
    };
    let valid_host = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:_".contains(c));
    if !valid_host {
        return bad("not a host name or address");
    }
    let port = match port {
        None => DEFAULT_SSH_PORT,
        Some(port) => match port.parse::<u16>() {
            Ok(port) if port > 0 => port,
            _ => return bad("not a port from 1 to 65535"),
        },
    };
    Ok((host.to_owned(), port))
}

/// How and how fast a pool's nodes may be disrupted (Karpenter's `disruption`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Disruption {
    /// `WhenEmpty` or `WhenEmptyOrUnderutilized`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consolidation_policy: Option<String>,
    /// How long a node must be consolidatable before it is removed (`30s`, `Never`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consolidate_after: Option<String>,
    /// How many nodes may be disrupted at once, the strictest budget winning.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub budgets: Vec<Budget>,
}

/// A limit on nodes disrupted at once.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Budget {
    /// A count (`2`) or a percentage of the pool (`10%`).
    pub nodes: String,
    /// The disruption reasons it applies to (`Empty`, `Underutilized`, `Drifted`,
    /// `Expired`); all when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
}

/// Observed state of a pool.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodePoolStatus {
    /// Machines (NodeClaims) that exist for the pool.
    #[serde(default)]
    pub replicas: i32,
    /// Nodes of the pool that are Ready.
    #[serde(default)]
    pub ready_replicas: i32,
    /// The label selector of the pool's nodes, as `/scale` reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// What the pool's machines add up to.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resources: BTreeMap<String, Quantity>,
    /// Generation the controller last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Standard conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

impl NodePoolSpec {
    /// The provider's name, defaulted.
    pub fn provider_name(&self) -> &str {
        self.provider.as_deref().unwrap_or(DEFAULT_PROVIDER)
    }
}

/// How many of `pool_size` nodes a budget's `nodes` (`2` or `10%`) allows to
/// be disrupted at once; percentages round up, as Karpenter's do. None when
/// the text is neither a count nor a percentage from 0% to 100%.
pub fn budget_nodes(nodes: &str, pool_size: usize) -> Option<usize> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match nodes.strip_suffix('%') {
        Some(percent) if digits(percent) => {
            let percent: usize = percent.parse().ok().filter(|p| *p <= 100)?;
            Some((pool_size * percent).div_ceil(100))
        }
        Some(_) => None,
        None if digits(nodes) => nodes.parse().ok(),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_hosts_parse_with_default_ports() {
        let ok = [
            ("10.0.0.5", ("10.0.0.5", 22)),
            ("node-1:2222", ("node-1", 2222)),
            ("fd00::1", ("fd00::1", 22)),
            ("[fd00::1]:2200", ("fd00::1", 2200)),
            ("[fd00::1]", ("fd00::1", 22)),
        ];
        for (entry, (host, port)) in ok {
            assert_eq!(
                parse_ssh_host(entry),
                Ok((host.to_owned(), port)),
                "{entry}"
            );
        }
        for bad in [
            "",
            ":22",
            "a:0",
            "a:port",
            "[fd00::1",
            "[fd00::1]x",
            "a b",
            "a/b",
        ] {
            assert!(parse_ssh_host(bad).is_err(), "{bad}");
        }
        let template = SshTemplate {
            data_dir: Some("/srv/{host}/berth".into()),
            ..Default::default()
        };
        assert_eq!(template.data_dir("10.0.0.5"), "/srv/10.0.0.5/berth");
        assert_eq!(template.user(), "root");
        assert_eq!(SshTemplate::default().data_dir("h"), DEFAULT_SSH_DATA_DIR);
    }

    #[test]
    fn budgets_scale_with_the_pool() {
        let cases = [
            ("2", 10, Some(2)),
            ("0", 10, Some(0)),
            ("10%", 10, Some(1)),
            ("10%", 3, Some(1)),
            ("50%", 3, Some(2)),
            ("100%", 7, Some(7)),
            ("0%", 7, Some(0)),
            ("101%", 7, None),
            ("-1", 7, None),
            ("%", 7, None),
            ("two", 7, None),
        ];
        for (nodes, size, want) in cases {
            assert_eq!(budget_nodes(nodes, size), want, "{nodes} of {size}");
        }
    }
}
