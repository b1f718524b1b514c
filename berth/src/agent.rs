//! `berth agent`: one node agent process (kubelet's role) for the node named
//! by `--name`, over the runtime named by `--runtime`. Flags here are shared
//! with `berth sim`; all the work is in the `berth-agent` crate.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use berth_agent::config::{self, NodeConfig};
use berth_agent::ingress::{self, IngressConfig};
use berth_agent::network::dns::DnsConfig;
use berth_agent::network::pod_network::{self, PodNetworkConfig};
use berth_agent::runtime::cri::containerd::ContainerdConfig;
use berth_agent::runtime::cri::{Containerd, CriRuntime};
use berth_agent::runtime::simulated::{SimulatedConfig, SimulatedRuntime};
use berth_agent::runtime::Runtime;
use berth_agent::{AgentOptions, NodeHandle, Nodes};
use clap::Args;
use tokio_util::sync::CancellationToken;

/// How to reach the API server.
#[derive(Args, Debug)]
pub struct ConnectionFlags {
    /// API server URL; overrides the kubeconfig's server. Several URLs,
    /// comma-separated (every master of a cluster), make the agent forward
    /// through a local port to whichever master answers.
    #[arg(long, env = "BERTH_SERVER", global = true)]
    server: Option<String>,
    /// Kubeconfig with the credentials to use (`berth server` writes admin.kubeconfig).
    #[arg(long, env = "KUBECONFIG", global = true)]
    kubeconfig: Option<PathBuf>,
}

impl ConnectionFlags {
    /// The kubeconfig flag, required by commands that have no other credentials.
    fn kubeconfig(&self) -> anyhow::Result<&std::path::Path> {
        self.kubeconfig.as_deref().ok_or_else(|| {
            anyhow::anyhow!(
                "--kubeconfig is required (the admin.kubeconfig `berth server` wrote into its data directory)"
            )
        })
    }

    /// With several `--server` URLs, starts the local forwarder to them and
    /// points `--server` at it; it runs until `cancel` fires.
    async fn fail_over(
        &mut self,
        cancel: &CancellationToken,
    ) -> anyhow::Result<Option<berth_agent::api_failover::ApiFailover>> {
        let Some(servers) = self.server.as_deref().filter(|s| s.contains(',')) else {
            return Ok(None);
        };
        let urls: Vec<&str> = servers
            .split(',')
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .collect();
        let upstreams = berth_agent::api_failover::upstreams(&urls)?;
        let failover =
            berth_agent::api_failover::ApiFailover::start(upstreams, cancel.clone()).await?;
        self.server = Some(failover.url());
        Ok(Some(failover))
    }

    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        Ok(
            berth_agent::client::from_kubeconfig_file(self.kubeconfig()?, self.server.as_deref())
                .await?,
        )
    }
}

/// How a node without a kubeconfig joins (kubelet's TLS bootstrap).
#[derive(Args, Debug)]
pub struct JoinFlags {
    /// Bootstrap token (`ID.SECRET`, from `berth token create`) to request the
    /// node's client certificate with, when it has none yet (needs --server).
    #[arg(
        long,
        env = "BERTH_BOOTSTRAP_TOKEN",
        conflicts_with = "bootstrap_token_file"
    )]
    bootstrap_token: Option<String>,
    /// A file holding the bootstrap token (as the provisioner installs it, so
    /// a new token never changes the agent's command line).
    #[arg(long, env = "BERTH_BOOTSTRAP_TOKEN_FILE")]
    bootstrap_token_file: Option<PathBuf>,
    /// The cluster CA certificate to trust the API server with when joining
    /// (the server's `tls/ca.crt`); kept in the data directory for restarts.
    #[arg(long, env = "BERTH_CA_FILE")]
    ca_file: Option<PathBuf>,
}

impl JoinFlags {
    /// The token from --bootstrap-token or --bootstrap-token-file, if any.
    fn token(&self) -> anyhow::Result<Option<String>> {
        match (&self.bootstrap_token, &self.bootstrap_token_file) {
            (Some(token), _) => Ok(Some(token.clone())),
            (None, Some(file)) => {
                let token = std::fs::read_to_string(file).with_context(|| {
                    format!("reading --bootstrap-token-file {}", file.display())
                })?;
                Ok(Some(token.trim().to_owned()))
            }
            (None, None) => Ok(None),
        }
    }

    /// Whether the node authenticates with its own certificate rather than a kubeconfig.
    fn joins(&self, connection: &ConnectionFlags, data_dir: &std::path::Path) -> bool {
        self.bootstrap_token.is_some()
            || self.bootstrap_token_file.is_some()
            || (connection.kubeconfig.is_none()
                && berth_agent::bootstrap::certificate_path(data_dir).exists())
    }

    /// The node's identity: its kept certificate, or a new one got with the token.
    async fn identity(
        &self,
        connection: &ConnectionFlags,
        node: &str,
        data_dir: &std::path::Path,
    ) -> anyhow::Result<(berth_agent::bootstrap::NodeIdentity, String)> {
        let server = connection.server.clone().ok_or_else(|| {
            anyhow::anyhow!(
                "--server is required to join with a bootstrap token (e.g. https://10.0.0.1:6443)"
            )
        })?;
        let kept_ca = data_dir.join("pki").join("ca.crt");
        let ca_path = self.ca_file.clone().unwrap_or_else(|| kept_ca.clone());
        let ca_pem = std::fs::read_to_string(&ca_path).with_context(|| {
            format!(
                "reading the cluster CA {}; pass --ca-file with the server's tls/ca.crt",
                ca_path.display()
            )
        })?;
        if ca_path != kept_ca {
            std::fs::create_dir_all(data_dir.join("pki"))
                .and_then(|()| std::fs::write(&kept_ca, &ca_pem))
                .with_context(|| format!("keeping the cluster CA in {}", kept_ca.display()))?;
        }
        let identity =
            berth_agent::bootstrap::load_or_bootstrap(berth_agent::bootstrap::BootstrapConfig {
                server,
                ca_pem: ca_pem.clone(),
                token: self.token()?,
                node_name: node.to_owned(),
                dir: data_dir.to_owned(),
                wait: Duration::from_secs(15 * 60),
            })
            .await?;
        Ok((identity, ca_pem))
    }
}

/// What the node (or every simulated node) looks like.
#[derive(Args, Debug)]
pub struct NodeFlags {
    /// Extra node labels: `k=v,k2=v2`.
    #[arg(long, env = "BERTH_NODE_LABELS", default_value = "")]
    labels: String,
    /// Taints set when the node is created: `k=v:Effect,k:Effect`.
    #[arg(long, env = "BERTH_NODE_TAINTS", default_value = "")]
    taints: String,
    /// Capacity (and allocatable), over the defaults cpu=4,memory=16Gi,pods=110,ephemeral-storage=100Gi.
    #[arg(long, env = "BERTH_NODE_CAPACITY", default_value = "")]
    capacity: String,
    /// Resources kept back from pods for the machine itself, as kubelet's
    /// flag: `cpu=500m,memory=1Gi`; allocatable is capacity less these.
    #[arg(long, env = "BERTH_SYSTEM_RESERVED", default_value = "")]
    system_reserved: String,
    /// Node pool: sets the `berth.dev/pool` label.
    #[arg(long, env = "BERTH_NODE_POOL")]
    pool: Option<String>,
    /// How often each node renews its Lease (`10s`, `500ms`).
    #[arg(long, env = "BERTH_HEARTBEAT_INTERVAL", default_value = "10s")]
    heartbeat_interval: String,
    /// Simulated runtime only: how long a pod takes to start.
    #[arg(long, env = "BERTH_START_LATENCY", default_value = "0s")]
    start_latency: String,
}

impl NodeFlags {
    /// The node named `name` in slot `slot`, with these flags applied.
    pub fn node(&self, name: String, slot: u32) -> anyhow::Result<NodeConfig> {
        let mut node = NodeConfig::new(name, slot);
        node.labels = config::parse_labels(&self.labels)?;
        node.taints = config::parse_taints(&self.taints)?;
        node.capacity = config::parse_capacity(&self.capacity)?;
        node.reserved = config::parse_reserved(&self.system_reserved)?;
        if let Some(pool) = &self.pool {
            node = node.with_pool(&config::parse_pool(pool)?);
        }
        Ok(node)
    }

    pub fn options(&self) -> anyhow::Result<AgentOptions> {
        let heartbeat_interval =
            config::parse_duration("--heartbeat-interval", &self.heartbeat_interval)?;
        anyhow::ensure!(
            !heartbeat_interval.is_zero(),
            "--heartbeat-interval must be more than 0 (kubelet renews every 10s)"
        );
        Ok(AgentOptions {
            heartbeat_interval,
            ..AgentOptions::default()
        })
    }

    pub fn simulated_runtime(&self, slot: u32) -> anyhow::Result<Arc<dyn Runtime>> {
        let start_latency: Duration =
            config::parse_duration("--start-latency", &self.start_latency)?;
        let runtime = SimulatedRuntime::new(SimulatedConfig {
            start_latency,
            fallback_pod_cidr: config::fallback_pod_cidr(slot),
            record_calls: false,
        })?;
        Ok(Arc::new(runtime))
    }
}

/// Flags of `berth agent`.
#[derive(Args, Debug)]
pub struct AgentArgs {
    #[command(flatten)]
    connection: ConnectionFlags,
    #[command(flatten)]
    join: JoinFlags,
    /// Container runtime: `cri` (real containers through containerd) or
    /// `simulated` (runs nothing; for tests and hollow nodes).
    #[arg(long, env = "BERTH_RUNTIME", default_value = "cri", value_parser = ["cri", "simulated"])]
    runtime: String,
    /// Node name; defaults to the host name.
    #[arg(long, env = "BERTH_NODE_NAME")]
    name: Option<String>,
    /// The NVML library to open instead of the driver's `libnvidia-ml.so.1`
    /// (a path): a driver outside the loader's path, or a fake one for
    /// tests. With `--runtime simulated` GPUs are looked for only when set.
    #[arg(long, env = "BERTH_NVML_LIBRARY")]
    nvml_library: Option<PathBuf>,
    #[command(flatten)]
    node: NodeFlags,
    #[command(flatten)]
    cri: CriFlags,
    #[command(flatten)]
    ingress: IngressFlags,
}

/// Where the node's ingress proxy (IngressClass `berth`) listens.
#[derive(Args, Debug)]
pub struct IngressFlags {
    /// Port of the ingress proxy's plain HTTP on the node's address; 0 turns
    /// it off. Default 80 (0 with `--runtime simulated`).
    #[arg(long, env = "BERTH_INGRESS_HTTP_PORT")]
    ingress_http_port: Option<u16>,
    /// Port of the ingress proxy's TLS on the node's address; 0 turns it
    /// off. Default 443 (0 with `--runtime simulated`).
    #[arg(long, env = "BERTH_INGRESS_HTTPS_PORT")]
    ingress_https_port: Option<u16>,
}

impl IngressFlags {
    /// The proxy's configuration on `address`; simulated nodes (many per
    /// machine) serve no ingress unless a port is given.
    fn config(&self, address: std::net::IpAddr, simulated: bool) -> IngressConfig {
        let (http, https) = if simulated { (0, 0) } else { (80, 443) };
        IngressConfig {
            address,
            http_port: self.ingress_http_port.unwrap_or(http),
            https_port: self.ingress_https_port.unwrap_or(https),
        }
    }

    /// Runs the proxy of `node` until `cancel` fires; a port that cannot be
    /// bound leaves the node running without ingress.
    fn run(
        &self,
        client: kube::Client,
        node: &NodeConfig,
        simulated: bool,
        cancel: CancellationToken,
    ) -> impl std::future::Future<Output = ()> + use<> {
        let config = self.config(node.internal_ip, simulated);
        let run = ingress::run(client, node.name.clone(), config, cancel);
        async move {
            if let Err(error) = run.await {
                tracing::warn!(%error, "the ingress proxy is not running on this node");
            }
        }
    }
}

/// Where and how the CRI runtime runs.
#[derive(Args, Debug)]
pub struct CriFlags {
    /// The agent's own directory: containerd's root and state, pod volumes, container logs.
    #[arg(long, env = "BERTH_DATA_DIR", default_value = "/var/lib/berth/agent")]
    data_dir: PathBuf,
    /// `managed`: start a containerd of the agent's own under --data-dir.
    #[arg(long, env = "BERTH_CONTAINERD", default_value = "managed", value_parser = ["managed"], conflicts_with = "containerd_socket")]
    containerd: String,
    /// Use the containerd listening on this socket instead of starting one.
    #[arg(long, env = "BERTH_CONTAINERD_SOCKET")]
    containerd_socket: Option<PathBuf>,
    /// The pause image every pod sandbox runs; the default is built on the
    /// machine from Debian's busybox-static, so a node needs no registry for it.
    #[arg(
        long,
        env = "BERTH_PAUSE_IMAGE",
        default_value = berth_agent::runtime::cri::pause::LOCAL_PAUSE_IMAGE
    )]
    pause_image: String,
    /// Registries (`host:port`, comma-separated) pulled from over plain HTTP.
    #[arg(long, env = "BERTH_INSECURE_REGISTRIES", value_delimiter = ',')]
    insecure_registry: Vec<String>,
    /// Where the CNI plugins are.
    #[arg(long, env = "BERTH_CNI_BIN_DIR", default_value = "/usr/lib/cni")]
    cni_bin_dir: PathBuf,
    /// The node's InternalIP; defaults to the address of the default route's interface.
    #[arg(long, env = "BERTH_NODE_IP")]
    node_ip: Option<std::net::IpAddr>,
    /// How this node reaches pods on other nodes: `routed` (a route via each
    /// node's address; all nodes on one L2 network) or `vxlan` (an overlay
    /// over UDP 8472; nodes anywhere they reach each other). Recorded on the
    /// Node as the `berth.dev/network-mode` annotation.
    #[arg(long, env = "BERTH_NETWORK_MODE", default_value = "routed", value_parser = ["routed", "vxlan"])]
    network_mode: String,
    /// The port of the node's kubelet API (logs, exec, port-forward for the API server).
    #[arg(long, env = "BERTH_KUBELET_PORT", default_value_t = 10250)]
    kubelet_port: u16,
    /// Pods the node takes at most.
    #[arg(long, env = "BERTH_MAX_PODS", default_value_t = 110)]
    max_pods: u32,
    /// The cluster DNS address(es) pods' resolv.conf names (kubelet's flag; the
    /// `kube-dns` Service, the tenth address of the service range).
    #[arg(
        long,
        env = "BERTH_CLUSTER_DNS",
        value_delimiter = ',',
        default_value = "10.43.0.10"
    )]
    cluster_dns: Vec<std::net::IpAddr>,
    /// The cluster's DNS domain (kubelet's flag).
    #[arg(long, env = "BERTH_CLUSTER_DOMAIN", default_value = "cluster.local")]
    cluster_domain: String,
    /// The node's resolver file: where the cluster DNS forwards other names,
    /// and what pods with dnsPolicy Default get (kubelet's flag).
    #[arg(long, env = "BERTH_RESOLV_CONF", default_value = "/etc/resolv.conf")]
    resolv_conf: PathBuf,
    /// Where the node's DNS server listens, UDP and TCP (default: the node IP,
    /// port 53); `off` runs none.
    #[arg(long, env = "BERTH_DNS_LISTEN")]
    dns_listen: Option<String>,
    /// Where the node's `local-path` PersistentVolumes live (published on
    /// the Node as the `berth.dev/local-path-dir` annotation); default:
    /// `local-path` under --data-dir.
    #[arg(long, env = "BERTH_LOCAL_PATH_DIR")]
    local_path_dir: Option<PathBuf>,
}

impl CriFlags {
    /// `--local-path-dir`, or `local-path` under `--data-dir`.
    pub fn local_path_dir(&self) -> PathBuf {
        self.local_path_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("local-path"))
    }

    /// The node as this machine has it: capacity, address and GPUs from the
    /// machine, then what `--capacity` and `--labels` say on top.
    pub fn real_node(&self, mut node: NodeConfig, flags: &NodeFlags) -> anyhow::Result<NodeConfig> {
        let facts = berth_agent::host::detect(&self.data_dir).with_context(|| {
            format!(
                "reading this machine's resources (data dir {})",
                self.data_dir.display()
            )
        })?;
        node.capacity = facts.capacity(self.max_pods);
        add_gpus(&mut node);
        node.capacity
            .extend(config::parse_capacity_overrides(&flags.capacity)?);
        node.internal_ip = self
            .node_ip
            .or(facts.internal_ip)
            .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
        node.host = Some(facts);
        node.gpu_checkpoint = Some(self.data_dir.join("gpu-assignments.json"));
        node.kubelet_port = self.kubelet_port;
        let host = berth_agent::network::resolv_conf::ResolvConf::read(&self.resolv_conf)
            .with_context(|| format!("reading --resolv-conf {}", self.resolv_conf.display()))?;
        node.dns = Some(berth_agent::pods::dns::NodeDns {
            cluster_dns: self.cluster_dns.clone(),
            cluster_domain: self.cluster_domain.clone(),
            host,
        });
        Ok(node)
    }

    /// This node's part of the pod network, when its address is IPv4.
    pub fn pod_network(&self, node: &NodeConfig) -> anyhow::Result<Option<PodNetworkConfig>> {
        let std::net::IpAddr::V4(node_ip) = node.internal_ip else {
            return Ok(None);
        };
        let mode = self
            .network_mode
            .parse()
            .map_err(|e: String| anyhow::anyhow!("--network-mode: {e}"))?;
        Ok(Some(PodNetworkConfig {
            node: node.name.clone(),
            node_ip,
            mode,
        }))
    }

    /// The node's DNS server settings, or `None` for `--dns-listen off`.
    pub fn dns(&self, node: &NodeConfig) -> anyhow::Result<Option<DnsConfig>> {
        let listen = match self.dns_listen.as_deref() {
            Some("off") => return Ok(None),
            Some(text) => text
                .parse()
                .with_context(|| format!("--dns-listen {text:?} is not ADDRESS:PORT or off"))?,
            None => std::net::SocketAddr::new(node.internal_ip, 53),
        };
        Ok(Some(DnsConfig {
            listen,
            cluster_domain: self.cluster_domain.clone(),
            resolv_conf: self.resolv_conf.clone(),
        }))
    }

    /// Starts the CRI runtime (and its containerd, when managed), with pods
    /// on `network`'s MTU.
    pub async fn runtime(
        &self,
        node: &str,
        network: Option<&PodNetworkConfig>,
    ) -> anyhow::Result<Arc<CriRuntime>> {
        let containerd = match &self.containerd_socket {
            Some(socket) => Containerd::Socket(socket.clone()),
            None => Containerd::Managed(ContainerdConfig {
                pause_image: self.pause_image.clone(),
                insecure_registries: self.insecure_registry.clone(),
                cni_bin_dir: self.cni_bin_dir.clone(),
            }),
        };
        let mtu = match network {
            Some(network) => pod_network::pod_mtu(network.mode, network.node_ip).await,
            None => None,
        };
        Ok(Arc::new(
            CriRuntime::start(node, &self.data_dir, containerd)
                .await?
                .with_pod_mtu(mtu),
        ))
    }
}

fn host_name() -> anyhow::Result<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .context("reading the host name; pass --name")?;
    Ok(name.trim().to_lowercase())
}

/// Runs `nodes` until SIGINT or SIGTERM (or until the agent fails).
pub async fn run_nodes(
    client: kube::Client,
    nodes: Nodes,
    options: AgentOptions,
) -> anyhow::Result<()> {
    run_nodes_until(client, nodes, options, cancel_on_signal()).await
}

/// A token cancelled by the first SIGINT or SIGTERM.
pub fn cancel_on_signal() -> CancellationToken {
    let cancel = CancellationToken::new();
    let on_signal = cancel.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        on_signal.cancel();
    });
    cancel
}

/// Runs `nodes` until `cancel` fires (or until the agent fails).
pub async fn run_nodes_until(
    client: kube::Client,
    nodes: Nodes,
    options: AgentOptions,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    berth_agent::run(client, nodes, options, cancel)
        .await
        .context("the agent stopped")
}

/// Runs one node agent until SIGINT or SIGTERM.
pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    run_until(args, cancel_on_signal()).await
}

/// Runs one node agent until `cancel` fires; a managed containerd is
/// stopped on the way out, its containers left running.
pub async fn run_until(mut args: AgentArgs, cancel: CancellationToken) -> anyhow::Result<()> {
    let failover = args.connection.fail_over(&cancel).await?;
    let outcome = run_connected(args, cancel.clone()).await;
    cancel.cancel();
    if let Some(failover) = failover {
        failover.stopped().await;
    }
    outcome
}

/// Runs the agent once `--server` names one endpoint.
async fn run_connected(args: AgentArgs, cancel: CancellationToken) -> anyhow::Result<()> {
    let name = match &args.name {
        Some(name) => name.clone(),
        None => host_name()?,
    };
    let slot = config::slot_for_name(&name);
    let node = args.node.node(name, slot)?;
    let options = args.node.options()?;
    let (client, client_ca_pem, rotation) = if args.join.joins(&args.connection, &args.cri.data_dir)
    {
        let (identity, ca_pem) = args
            .join
            .identity(&args.connection, &node.name, &args.cri.data_dir)
            .await?;
        let client = identity.client();
        let rotation = tokio::spawn(identity.rotate_until(cancel.clone()));
        (client, ca_pem, Some(rotation))
    } else {
        let kubeconfig = args.connection.kubeconfig()?;
        let ca_pem = if args.runtime == "simulated" {
            // A simulated node serves its kubelet API when the kubeconfig
            // names the cluster CA, and runs without one otherwise.
            berth_agent::server::ca_from_kubeconfig(kubeconfig).unwrap_or_default()
        } else {
            berth_agent::server::ca_from_kubeconfig(kubeconfig)?
        };
        (args.connection.client().await?, ca_pem, None)
    };
    let outcome = run_node(
        args,
        node,
        options,
        slot,
        client,
        client_ca_pem,
        cancel.clone(),
    )
    .await;
    cancel.cancel();
    if let Some(rotation) = rotation {
        let _ = rotation.await;
    }
    outcome
}

/// Gives `node` the GPUs NVML (its `nvml_library`, or the driver's) finds:
/// their capacity, and GPU feature discovery's labels under the configured ones.
fn add_gpus(node: &mut NodeConfig) {
    let gpus = berth_agent::gpu::detect_at(node.nvml_library.as_deref());
    if let Some(first) = gpus.first() {
        tracing::info!(gpus = gpus.len(), product = %first.name, "NVIDIA GPUs found");
    }
    node.capacity.extend(berth_agent::gpu::capacity(&gpus));
    let mut labels = berth_agent::gpu::node_labels(&gpus);
    labels.extend(std::mem::take(&mut node.labels));
    node.labels = labels;
    node.gpus = gpus;
}

/// Runs the node with `client` until `cancel` fires.
async fn run_node(
    args: AgentArgs,
    mut node: NodeConfig,
    options: AgentOptions,
    slot: u32,
    client: kube::Client,
    client_ca_pem: String,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    node.local_path_dir = args.cri.local_path_dir();
    node.nvml_library = args.nvml_library.clone();
    if args.runtime == "simulated" {
        if node.nvml_library.is_some() {
            add_gpus(&mut node);
        }
        let runtime = args.node.simulated_runtime(slot)?;
        tracing::info!(node = %node.name, runtime = %args.runtime, "berth agent starting");
        node.kubelet_port = args.cri.kubelet_port;
        let ingress = args
            .ingress
            .run(client.clone(), &node, true, cancel.clone());
        let handle = NodeHandle::new(node, runtime);
        let serving = simulated_kubelet_server(client_ca_pem, &handle)
            .await
            .map(|server| tokio::spawn(server.serve(cancel.clone())));
        let nodes = Nodes::new(vec![handle])?;
        let run = async {
            let outcome = run_nodes_until(client, nodes, options, cancel.clone()).await;
            cancel.cancel();
            outcome
        };
        let outcome = tokio::join!(run, ingress).0;
        if let Some(serving) = serving {
            let _ = serving.await;
        }
        return outcome;
    }
    let node = args.cri.real_node(node, &args.node)?;
    let network = args.cri.pod_network(&node)?;
    let dns = args.cri.dns(&node)?;
    let runtime = args.cri.runtime(&node.name, network.as_ref()).await?;
    tracing::info!(node = %node.name, runtime = %runtime.version(), ip = %node.internal_ip, "berth agent starting");
    let node_name = node.name.clone();
    let node_ip = node.internal_ip;
    let ingress = args
        .ingress
        .run(client.clone(), &node, false, cancel.clone());
    let handle = NodeHandle::new(node, runtime.clone());
    let kubelet_api = kubelet_server(client_ca_pem, &handle).await?;
    let nodes = Nodes::new(vec![handle])?;
    let serving = tokio::spawn(kubelet_api.serve(cancel.clone()));
    let proxy = tokio::spawn(berth_agent::network::service_proxy::run(
        client.clone(),
        node_name.clone(),
        node_ip,
        cancel.clone(),
    ));
    let pod_network = network
        .map(|network| tokio::spawn(pod_network::run(client.clone(), network, cancel.clone())));
    let policies = tokio::spawn(berth_agent::network::network_policy::run(
        client.clone(),
        node_name.clone(),
        cancel.clone(),
    ));
    let dns = dns.map(|config| {
        let run = berth_agent::network::dns::run(
            client.clone(),
            node_name.clone(),
            config,
            cancel.clone(),
        );
        // A DNS server that cannot bind leaves the node running without one.
        tokio::spawn(async move {
            if let Err(error) = run.await {
                tracing::warn!(%error, "the cluster DNS is not running on this node");
            }
        })
    });
    let run = async {
        let outcome = run_nodes_until(client, nodes, options, cancel.clone()).await;
        cancel.cancel();
        outcome
    };
    let (outcome, ()) = tokio::join!(run, ingress);
    let _ = serving.await;
    let _ = proxy.await;
    if let Some(pod_network) = pod_network {
        let _ = pod_network.await;
    }
    let _ = policies.await;
    if let Some(dns) = dns {
        let _ = dns.await;
    }
    runtime.shutdown().await;
    outcome
}

/// The node's kubelet API (logs, exec, attach, port-forward for the API
/// server), on the node's address; only clients with a certificate from
/// the cluster's CA (the API server) get in.
async fn kubelet_server(
    client_ca_pem: String,
    handle: &NodeHandle,
) -> anyhow::Result<berth_agent::server::Server> {
    let node = &handle.config;
    let config = berth_agent::server::ServerConfig {
        listen: std::net::SocketAddr::new(node.internal_ip, node.kubelet_port),
        node_name: node.name.clone(),
        client_ca_pem,
        serving_cert_pem: None,
        serving_key_pem: None,
    };
    Ok(berth_agent::server::Server::bind(
        config,
        Arc::clone(&handle.runtime),
        handle.metrics.clone(),
    )
    .await?)
}

/// A simulated node's kubelet API (its metrics and stats; it runs no
/// processes to stream from), on its loopback address. Best effort: a
/// simulated node without the cluster CA, or whose port is taken, runs
/// without one, as simulated nodes did before they served metrics.
async fn simulated_kubelet_server(
    client_ca_pem: String,
    handle: &NodeHandle,
) -> Option<berth_agent::server::Server> {
    if client_ca_pem.is_empty() {
        tracing::info!(node = %handle.config.name, "no cluster CA to verify clients with; the simulated node serves no kubelet API");
        return None;
    }
    match kubelet_server(client_ca_pem, handle).await {
        Ok(server) => Some(server),
        Err(error) => {
            tracing::warn!(node = %handle.config.name, error = %format!("{error:#}"), "the simulated node serves no kubelet API");
            None
        }
    }
}

pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
