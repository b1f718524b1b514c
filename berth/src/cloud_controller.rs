//! The service controller as `berth cloud-controller` and inside `berth
//! server`, leader-elected through the `kube-system/berth-cloud-controller`
//! Lease either way, with the providers its flags turn on: `haproxy`
//! writing HAProxy's configuration on this host or, over SSH, on a
//! load-balancer host, and `aws` making network load balancers.

mod ssh_file;

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use berth_cloud_controller::haproxy::config::Settings;
use berth_cloud_controller::haproxy::interface::PoolInterface;
use berth_cloud_controller::haproxy::pool::AddressPool;
use berth_cloud_controller::haproxy::target::{ConfigTarget, LocalFile};
use berth_cloud_controller::{
    AwsProvider, Config, HaproxyProvider, LoadBalancerProvider, Providers,
};
use berth_orchestrator::leader_election::{LeaderElector, LeaseConfig};
use berth_orchestrator::scheduler;
use berth_provisioner::aws::AwsSettings;
use berth_provisioner::remote::expand_home;
use berth_provisioner::ssh::{Auth, ConnectOptions, HostKeyPolicy};
use clap::Args;
use tokio_util::sync::CancellationToken;

use crate::agent::ConnectionFlags;
use crate::metrics_endpoint::MetricsFlags;
use ssh_file::{parse_target, SshFile};

/// The Lease copies of the controller elect their leader with.
pub const LEASE_NAME: &str = "berth-cloud-controller";

/// The reload run over SSH when `--haproxy-reload` is left out.
const DEFAULT_SSH_RELOAD: &str = "systemctl reload haproxy";

/// Flags of `berth cloud-controller`.
#[derive(Args, Debug)]
pub struct CloudControllerArgs {
    #[command(flatten)]
    connection: ConnectionFlags,
    /// Holder identity in the Lease; unique per process (default: host, pid, random suffix).
    #[arg(long, env = "BERTH_CLOUD_CONTROLLER_IDENTITY")]
    identity: Option<String>,
    #[command(flatten)]
    metrics: MetricsFlags,
    /// The load-balancer providers (shared with `berth server`).
    #[command(flatten)]
    providers: ProviderFlags,
    /// Where the `aws` provider works; `berth server` takes these from its
    /// NodePool flags of the same names.
    #[command(flatten)]
    aws: AwsAccountFlags,
}

/// The AWS account and cluster of the `aws` provider.
#[derive(Args, Debug)]
pub struct AwsAccountFlags {
    /// The cluster whose network load balancers the `aws` provider makes
    /// and tags (the provider is on with this flag).
    #[arg(long, env = "BERTH_AWS_CLUSTER")]
    aws_cluster: Option<String>,
    /// The `aws` provider's region (default: the AWS chain's).
    #[arg(long, env = "BERTH_AWS_REGION")]
    aws_region: Option<String>,
    /// An ELBv2-compatible endpoint for the `aws` provider (moto).
    #[arg(long, env = "BERTH_AWS_ENDPOINT_URL")]
    aws_endpoint_url: Option<String>,
}

impl AwsAccountFlags {
    /// The `aws` provider's settings, None when it is off.
    fn settings(&self) -> Option<AwsSettings> {
        Some(AwsSettings {
            region: self.aws_region.clone(),
            endpoint_url: self.aws_endpoint_url.clone(),
            cluster: self.aws_cluster.clone()?,
        })
    }
}

/// The providers' flags, the same for `berth cloud-controller` and
/// `berth server`.
#[derive(Args, Debug)]
pub struct ProviderFlags {
    /// The haproxy.cfg the `haproxy` provider writes, on this host or on
    /// the --haproxy-ssh host (the provider is on with this flag).
    #[arg(long, env = "BERTH_HAPROXY_CONFIG")]
    haproxy_config: Option<PathBuf>,
    /// Addresses the `haproxy` provider hands out: CIDRs or first-last
    /// ranges, comma-separated or repeated.
    #[arg(long, env = "BERTH_ADDRESS_POOL", value_delimiter = ',')]
    address_pool: Vec<String>,
    /// Command run after haproxy.cfg changes: here split on spaces (none
    /// when left out); over SSH run by the remote shell (default
    /// `systemctl reload haproxy`).
    #[arg(long, env = "BERTH_HAPROXY_RELOAD")]
    haproxy_reload: Option<String>,
    /// HAProxy's admin socket, written into the file so a reload passes the
    /// listening sockets on (`expose-fd listeners`).
    #[arg(long, env = "BERTH_HAPROXY_STATS_SOCKET")]
    haproxy_stats_socket: Option<PathBuf>,
    /// Connect to the nodes of `externalTrafficPolicy: Local` Services from
    /// the client's address, so pods see it (needs the load-balancer host's
    /// TPROXY set-up and the nodes' route to the clients through it).
    #[arg(long, env = "BERTH_HAPROXY_TRANSPARENT")]
    haproxy_transparent: bool,
    /// Interface of the load-balancer host that carries the assigned pool
    /// addresses (added with `ip addr add` before HAProxy binds them,
    /// removed once released), as MetalLB's layer-2 mode announces them.
    #[arg(long, env = "BERTH_HAPROXY_INTERFACE")]
    haproxy_interface: Option<String>,
    /// The load-balancer host, `user@host[:port]`: the file is uploaded
    /// there, checked with `haproxy -c` and moved into place over SSH.
    #[arg(long, env = "BERTH_HAPROXY_SSH")]
    haproxy_ssh: Option<String>,
    /// Private key for --haproxy-ssh (default: the ssh-agent of SSH_AUTH_SOCK).
    #[arg(long, env = "BERTH_HAPROXY_SSH_KEY_FILE")]
    haproxy_ssh_key_file: Option<PathBuf>,
    /// OpenSSH known_hosts file the load-balancer host's key is checked against.
    #[arg(
        long,
        env = "BERTH_HAPROXY_SSH_KNOWN_HOSTS",
        default_value = "~/.ssh/known_hosts"
    )]
    haproxy_ssh_known_hosts: PathBuf,
    /// Trust (and record) the load-balancer host's key when the known_hosts
    /// file does not list it yet; a changed key is always refused.
    #[arg(long, env = "BERTH_HAPROXY_SSH_ACCEPT_NEW_HOST_KEYS")]
    haproxy_ssh_accept_new_host_keys: bool,
    /// Limit for connecting to the load-balancer host (`10s`).
    #[arg(long, default_value = "10s", value_parser = crate::server::parse_duration)]
    haproxy_ssh_connect_timeout: Duration,
    /// Subnet ids of Services without the `aws-load-balancer-subnets`
    /// annotation, comma-separated or repeated.
    #[arg(long, env = "BERTH_AWS_SUBNETS", value_delimiter = ',')]
    aws_subnets: Vec<String>,
    /// The provider of Services without `spec.loadBalancerClass` (`haproxy`
    /// or `aws`); `none` leaves them to another controller.
    /// Left out: `haproxy` when it is configured, else `aws`.
    #[arg(long, env = "BERTH_DEFAULT_LOAD_BALANCER")]
    default_provider: Option<String>,
}

/// What the service controller runs with.
#[derive(Debug, Clone)]
pub struct Setup {
    providers: Providers,
    config: Config,
}

impl ProviderFlags {
    /// The providers and configuration, or None when no provider is
    /// configured (then, as upstream's controller-manager without a cloud
    /// provider, the service controller does not run).
    pub async fn setup(&self, aws: Option<AwsSettings>) -> anyhow::Result<Option<Setup>> {
        let providers = self.providers(aws).await?;
        if providers.is_empty() {
            return Ok(None);
        }
        let default_provider = match self.default_provider.as_deref() {
            Some("none") => None,
            Some(named) => Some(named.to_owned()),
            None => ["haproxy", "aws"]
                .into_iter()
                .find(|name| providers.contains_key(*name))
                .map(str::to_owned),
        };
        if let Some(default) = &default_provider {
            anyhow::ensure!(
                providers.contains_key(default),
                "--default-provider {default} is not configured (haproxy needs --haproxy-config, aws --aws-cluster)"
            );
        }
        let config = Config {
            default_provider,
            ..Config::default()
        };
        Ok(Some(Setup { providers, config }))
    }

    /// The providers the flags turn on.
    async fn providers(&self, aws: Option<AwsSettings>) -> anyhow::Result<Providers> {
        let mut providers = Providers::new();
        if let Some(path) = &self.haproxy_config {
            anyhow::ensure!(
                !self.address_pool.is_empty(),
                "--haproxy-config needs --address-pool"
            );
            let entries: Vec<&str> = self.address_pool.iter().map(String::as_str).collect();
            let pool = AddressPool::new("default", &entries).context("--address-pool")?;
            let settings = Settings {
                stats_socket: self.haproxy_stats_socket.clone(),
                idle_socket: Some(idle_socket_beside(path)),
                transparent: self.haproxy_transparent,
                ..Settings::default()
            };
            let mut haproxy = HaproxyProvider::new(pool, settings, self.config_target(path)?);
            if let Some(interface) = &self.haproxy_interface {
                haproxy = haproxy.with_interface(PoolInterface::new(interface));
            }
            providers.insert(
                haproxy.name().to_owned(),
                Arc::new(haproxy) as Arc<dyn LoadBalancerProvider>,
            );
        }
        if let Some(settings) = aws {
            let aws = AwsProvider::connect(&settings, self.aws_subnets.clone()).await;
            providers.insert(
                aws.name().to_owned(),
                Arc::new(aws) as Arc<dyn LoadBalancerProvider>,
            );
        }
        Ok(providers)
    }

    /// Where the `haproxy` provider's file goes: over SSH with --haproxy-ssh,
    /// else on this host.
    fn config_target(&self, path: &std::path::Path) -> anyhow::Result<Arc<dyn ConfigTarget>> {
        let Some(host) = &self.haproxy_ssh else {
            let reload = self
                .haproxy_reload
                .as_ref()
                .map(|r| r.split_whitespace().map(str::to_owned).collect());
            let mut file = LocalFile::new(path.to_owned(), reload);
            if let Some(socket) = &self.haproxy_stats_socket {
                file = file.verified_through(socket.clone());
            }
            return Ok(Arc::new(file));
        };
        let target = parse_target(host).map_err(|e| anyhow::anyhow!("--haproxy-ssh: {e}"))?;
        let auth = match &self.haproxy_ssh_key_file {
            Some(key) => Auth::KeyFile(expand_home(key)),
            None => Auth::agent_from_env().context(
                "--haproxy-ssh needs --haproxy-ssh-key-file or an ssh-agent (SSH_AUTH_SOCK)",
            )?,
        };
        let mut options = ConnectOptions::new(auth, expand_home(&self.haproxy_ssh_known_hosts));
        if self.haproxy_ssh_accept_new_host_keys {
            options.policy = HostKeyPolicy::AcceptNew;
        }
        options.connect_timeout = self.haproxy_ssh_connect_timeout;
        let path = path
            .to_str()
            .context("--haproxy-config must be UTF-8 with --haproxy-ssh")?;
        let reload = self
            .haproxy_reload
            .clone()
            .unwrap_or_else(|| DEFAULT_SSH_RELOAD.to_owned());
        Ok(Arc::new(SshFile::new(
            target,
            options,
            path.to_owned(),
            reload,
        )))
    }
}

/// The idle listener's socket, beside the configuration on the host that
/// runs HAProxy (`haproxy.cfg` → `haproxy.cfg.idle.sock`).
fn idle_socket_beside(config: &std::path::Path) -> PathBuf {
    let mut name = config.as_os_str().to_owned();
    name.push(".idle.sock");
    PathBuf::from(name)
}

/// Runs the service controller whenever `identity` holds the Lease, until
/// `cancel` fires.
pub async fn run_while_leading(
    client: kube::Client,
    identity: &str,
    setup: Setup,
    cancel: CancellationToken,
) {
    tracing::info!(%identity, providers = ?setup.providers.keys().collect::<Vec<_>>(), "the service controller runs while this process holds the cloud-controller Lease");
    let elector = LeaderElector::new(
        client.clone(),
        LeaseConfig::new(
            crate::controller_manager::LEASE_NAMESPACE,
            LEASE_NAME,
            identity,
        ),
    );
    let elected = elector.run(cancel, |leading| {
        let (client, providers, config) = (
            client.clone(),
            setup.providers.clone(),
            setup.config.clone(),
        );
        async move {
            berth_cloud_controller::run(client, providers, config, leading).await;
            Ok::<(), Infallible>(())
        }
    });
    let Ok(()) = elected.await;
}

/// Runs `berth cloud-controller` until SIGINT or SIGTERM.
pub async fn run(args: CloudControllerArgs) -> anyhow::Result<()> {
    let setup = args.providers.setup(args.aws.settings()).await?.context(
        "no load-balancer provider is configured (haproxy needs --haproxy-config, aws --aws-cluster)",
    )?;
    let client = args.connection.client().await?;
    let identity = args
        .identity
        .clone()
        .unwrap_or_else(scheduler::default_identity);
    let cancel = crate::agent::cancel_on_signal();
    args.metrics.start(cancel.clone()).await?;
    run_while_leading(client, &identity, setup, cancel).await;
    Ok(())
}
