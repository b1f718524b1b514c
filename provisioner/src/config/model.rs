//! The checked cluster model a `cluster.toml` becomes: what to build, on which
//! machines, with which SSH settings. Every value here has passed the rules in
//! `validate`; later steps trust it and never re-read the file.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use berth_api::nodepool::AwsTemplate;
use berth_api::quantity::Quantity;
use serde::Deserialize;

/// Service CIDR when the file names none (k3s' default, as berth's single-node server uses).
pub const DEFAULT_SERVICE_CIDR: &str = "10.43.0.0/16";
/// Pod (cluster) CIDR when the file names none.
pub const DEFAULT_CLUSTER_CIDR: &str = "10.42.0.0/16";
/// SSH user when neither `[ssh]` nor the machine names one.
pub const DEFAULT_SSH_USER: &str = "root";
/// SSH port when neither `[ssh]` nor the machine names one.
pub const DEFAULT_SSH_PORT: u16 = 22;
/// Where berth keeps its binary, state and logs on a machine, unless set.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/berth";
/// known_hosts file when neither `[ssh]` nor the machine names one.
pub const DEFAULT_KNOWN_HOSTS: &str = "~/.ssh/known_hosts";
/// The label every node of a pool carries, valued with the pool's name.
pub const POOL_LABEL: &str = "berth.dev/pool";
/// The taint key `gpu = true` adds (the NVIDIA device plugin's resource name).
pub const GPU_TAINT_KEY: &str = "nvidia.com/gpu";
/// The taint value `gpu = true` adds.
pub const GPU_TAINT_VALUE: &str = "present";

/// A checked `cluster.toml`.
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    /// The cluster's name (a DNS-1123 label): kubeconfig context, certificate names.
    pub name: String,
    /// The berth executable installed on every machine.
    pub binary: Binary,
    /// Where ClusterIP Services get their addresses.
    pub service_cidr: Cidr,
    /// Where pods get their addresses (one slice per node).
    pub cluster_cidr: Cidr,
    /// How pod traffic crosses machines.
    pub network_mode: NetworkMode,
    /// Where the API server keeps its objects.
    pub datastore: Datastore,
    /// The one address the admin kubeconfig names (`HOST` or `HOST:PORT`):
    /// a DNS name with a record per master, or a load balancer in front of
    /// them; the serving certificates cover it. `None`: the first master.
    pub api_endpoint: Option<String>,
    /// The control-plane machines: 1 on sqlite, 3 or 5 on etcd.
    pub masters: Vec<Machine>,
    /// The worker pools, in file order.
    pub pools: Vec<Pool>,
    /// Registries (`host:port`) nodes pull from over plain HTTP.
    pub insecure_registries: Vec<String>,
    /// `[aws]`: the masters' `berth server` runs the `aws` NodePool
    /// provider, and with `[aws.masters]` the masters are EC2 instances
    /// (`masters` is empty until they are launched or found).
    pub aws: Option<Aws>,
}

/// The `[aws]` block, with what launched masters are reached with.
#[derive(Debug, Clone, PartialEq)]
pub struct Aws {
    /// The block as written.
    pub config: crate::aws::AwsClusterConfig,
    /// `[ssh]`, resolved: how master instances are reached.
    pub ssh: Ssh,
    /// The top-level `data_dir` (or the default), for master instances.
    pub data_dir: PathBuf,
}

impl Aws {
    /// `[aws.masters]`, when the masters are EC2 instances.
    pub fn masters(&self) -> Option<&crate::aws::AwsMasters> {
        self.config.masters.as_ref()
    }

    /// Whether the servers run the `aws` NodePool provider: only with a
    /// `binary_url`, which every node instance downloads berth from.
    pub fn launches_nodes(&self) -> bool {
        self.config.binary_url.is_some()
    }

    /// The master instance called `name`, reached at `host`, as a machine
    /// `create` provisions like a listed one.
    pub fn machine(&self, name: &str, host: &str) -> Machine {
        Machine {
            host: host.to_owned(),
            name: name.to_owned(),
            data_dir: self.data_dir.clone(),
            ssh: self.ssh.clone(),
        }
    }
}

impl Cluster {
    /// Every machine with its role, masters first, in file order.
    pub fn machines(&self) -> impl Iterator<Item = (Role<'_>, &Machine)> {
        let masters = self.masters.iter().map(|m| (Role::Master, m));
        let nodes = self
            .pools
            .iter()
            .flat_map(|pool| pool.machines.iter().map(move |m| (Role::Node(pool), m)));
        masters.chain(nodes)
    }
}

/// What a machine becomes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Role<'a> {
    /// A control-plane machine (API server, scheduler, controllers, etcd member on etcd).
    Master,
    /// A worker node of this pool.
    Node(&'a Pool),
}

/// The berth executable to install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binary {
    /// `binary = "self"` (the default): the executable running the command.
    SelfExe,
    /// A file on this machine.
    Path(PathBuf),
}

impl fmt::Display for Binary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SelfExe => f.write_str("self (this berth executable)"),
            Self::Path(path) => write!(f, "{}", path.display()),
        }
    }
}

/// A subnet in canonical form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// The network address.
    pub address: IpAddr,
    /// The prefix length.
    pub prefix: u8,
}

impl Cidr {
    /// Whether the two subnets share any address.
    pub fn overlaps(&self, other: &Cidr) -> bool {
        let prefix = self.prefix.min(other.prefix);
        match (self.address, other.address) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                u32::from(a) & mask == u32::from(b) & mask
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                u128::from(a) & mask == u128::from(b) & mask
            }
            _ => false,
        }
    }

    /// The first usable address, which upstream gives the `kubernetes` Service.
    pub fn first_address(&self) -> IpAddr {
        match self.address {
            IpAddr::V4(a) => IpAddr::V4((u32::from(a).wrapping_add(1)).into()),
            IpAddr::V6(a) => IpAddr::V6((u128::from(a).wrapping_add(1)).into()),
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

/// How pod traffic crosses machines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// Plain routes between machines on one L2 network (the default).
    #[default]
    Routed,
    /// A VXLAN overlay, for machines on different networks.
    Vxlan,
}

/// Where the API server keeps its objects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Datastore {
    /// An embedded SQLite file: exactly one master (the default).
    #[default]
    Sqlite,
    /// An etcd cluster on the masters: three or five of them.
    Etcd,
}

impl Datastore {
    /// The master counts this datastore allows.
    pub fn allowed_masters(self) -> &'static [usize] {
        match self {
            Self::Sqlite => &[1],
            Self::Etcd => &[3, 5],
        }
    }

    /// The name as written in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Etcd => "etcd",
        }
    }
}

/// Where a pool's machines come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// Machines that exist already, reached over SSH.
    Ssh,
    /// EC2 instances the cluster's NodePool controller launches: `create`
    /// applies one `berth.dev/v1` NodePool per pool.
    Aws,
}

/// What to do with a host key that is not in known_hosts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostKeyPolicy {
    /// Refuse any host whose key is not already known (the default).
    #[default]
    Strict,
    /// Trust a host seen for the first time and record its key; refuse a changed key.
    AcceptNew,
}

impl HostKeyPolicy {
    /// The name as written in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Strict => "strict",
            Self::AcceptNew => "accept-new",
        }
    }
}

/// How to authenticate to a machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// A private key file on this machine.
    KeyFile(PathBuf),
    /// The keys of the running ssh-agent (`SSH_AUTH_SOCK`), the default.
    Agent,
}

/// A bastion to hop through: `[user@]host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JumpHost {
    /// Login on the bastion; the machine's user when absent.
    pub user: Option<String>,
    /// The bastion's address.
    pub host: String,
    /// The bastion's SSH port.
    pub port: u16,
}

impl fmt::Display for JumpHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(user) = &self.user {
            write!(f, "{user}@")?;
        }
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// The SSH settings one machine ends up with (its overrides over `[ssh]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ssh {
    /// Login user.
    pub user: String,
    /// SSH port.
    pub port: u16,
    /// Key file or agent.
    pub auth: Auth,
    /// The known_hosts file host keys are checked against (`~` not yet expanded).
    pub known_hosts: PathBuf,
    /// Strict, or trust on first use.
    pub host_key_policy: HostKeyPolicy,
    /// A bastion to hop through.
    pub jump_host: Option<JumpHost>,
}

/// One machine of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    /// Address or DNS name SSH connects to.
    pub host: String,
    /// The Node name it registers as (the host in lower case unless set).
    pub name: String,
    /// Where berth keeps its binary, state and logs there (everything it
    /// installs is under it, so deleting the cluster removes it whole).
    pub data_dir: PathBuf,
    /// How to reach it.
    pub ssh: Ssh,
}

/// A `key=value:Effect` taint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taint {
    /// Qualified name.
    pub key: String,
    /// Label-value syntax; may be empty.
    pub value: String,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    pub effect: String,
}

impl fmt::Display for Taint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.value.is_empty() {
            write!(f, "{}:{}", self.key, self.effect)
        } else {
            write!(f, "{}={}:{}", self.key, self.value, self.effect)
        }
    }
}

/// A group of like worker nodes.
#[derive(Debug, Clone, PartialEq)]
pub struct Pool {
    /// Unique name (a DNS-1123 label); also the value of the pool label.
    pub name: String,
    /// Where its machines come from.
    pub provider: Provider,
    /// Its machines (none for an `aws` pool: the controller launches them).
    pub machines: Vec<Machine>,
    /// Labels every node gets, the pool label included.
    pub labels: BTreeMap<String, String>,
    /// Taints every node registers with, the GPU taint included when `gpu = true`.
    pub taints: Vec<Taint>,
    /// Whether the nodes have NVIDIA GPUs.
    pub gpu: bool,
    /// Most pods per node (the agent's default when absent).
    pub max_pods: Option<u32>,
    /// CPU kept back from pods on each node.
    pub reserved_cpu: Option<Quantity>,
    /// Memory kept back from pods on each node.
    pub reserved_memory: Option<Quantity>,
    /// How an `aws` pool's instances are launched, sized and replaced.
    pub aws: Option<AwsPool>,
}

/// The NodePool settings of an `aws` pool, as its `[[pools]]` entry gives them.
#[derive(Debug, Clone, PartialEq)]
pub struct AwsPool {
    /// How each EC2 instance is launched (the NodePool's `template.aws`).
    pub template: AwsTemplate,
    /// How many instances the controller keeps.
    pub size: PoolSize,
    /// What each instance offers by the API's resource names (`cpu`,
    /// `memory`, `nvidia.com/gpu`), checked quantities as written.
    pub capacity: BTreeMap<String, String>,
    /// Totals the pool may not exceed, by the same names.
    pub limits: BTreeMap<String, String>,
    /// How long an instance lives before it is replaced (`720h`, `Never`).
    pub expire_after: Option<String>,
    /// How long a node stays consolidatable before it is removed.
    pub consolidate_after: Option<String>,
}

/// The size of an `aws` pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolSize {
    /// `replicas = N`: exactly this many instances (`kubectl scale` changes it).
    Fixed(i32),
    /// Grown for pending pods and shrunk by consolidation, within the bounds.
    Autoscaled {
        /// Fewest instances (0 when absent).
        min: Option<i32>,
        /// Most instances (only `limits` when absent).
        max: Option<i32>,
    },
}
