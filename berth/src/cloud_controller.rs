//! `berth cloud-controller`: the service controller alone, leader-elected
//! through the `kube-system/berth-cloud-controller` Lease, with the
//! `haproxy` provider writing this host's HAProxy configuration and the
//! `aws` provider making network load balancers. Not run by `berth server`
//! yet (issue 23).

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use berth_cloud_controller::haproxy::config::Settings;
use berth_cloud_controller::haproxy::pool::AddressPool;
use berth_cloud_controller::{
    AwsProvider, Config, HaproxyProvider, LoadBalancerProvider, Providers,
};
use berth_orchestrator::leader_election::{LeaderElector, LeaseConfig};
use berth_orchestrator::scheduler;
use berth_provisioner::aws::AwsSettings;
use clap::Args;

use crate::agent::ConnectionFlags;

/// The Lease copies of the controller elect their leader with.
pub const LEASE_NAME: &str = "berth-cloud-controller";

/// Flags of `berth cloud-controller`.
#[derive(Args, Debug)]
pub struct CloudControllerArgs {
    #[command(flatten)]
    connection: ConnectionFlags,
    /// Holder identity in the Lease; unique per process (default: host, pid, random suffix).
    #[arg(long, env = "BERTH_CLOUD_CONTROLLER_IDENTITY")]
    identity: Option<String>,
    /// The haproxy.cfg the `haproxy` provider writes (the provider is on with this flag).
    #[arg(long, env = "BERTH_HAPROXY_CONFIG")]
    haproxy_config: Option<PathBuf>,
    /// Addresses the `haproxy` provider hands out: CIDRs or first-last
    /// ranges, comma-separated or repeated.
    #[arg(long, env = "BERTH_ADDRESS_POOL", value_delimiter = ',')]
    address_pool: Vec<String>,
    /// Command run after haproxy.cfg changes, split on spaces
    /// (`systemctl reload haproxy`); none when left out.
    #[arg(long, env = "BERTH_HAPROXY_RELOAD")]
    haproxy_reload: Option<String>,
    /// HAProxy's admin socket, written into the file so a reload passes the
    /// listening sockets on (`expose-fd listeners`).
    #[arg(long, env = "BERTH_HAPROXY_STATS_SOCKET")]
    haproxy_stats_socket: Option<PathBuf>,
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
    /// Subnet ids of Services without the `aws-load-balancer-subnets`
    /// annotation, comma-separated or repeated.
    #[arg(long, env = "BERTH_AWS_SUBNETS", value_delimiter = ',')]
    aws_subnets: Vec<String>,
    /// The provider of Services without `spec.loadBalancerClass` (`haproxy`
    /// or `aws`); `none` leaves them to another controller.
    #[arg(long, env = "BERTH_DEFAULT_LOAD_BALANCER", default_value = "haproxy")]
    default_provider: String,
}

/// The providers the flags turn on.
async fn providers(args: &CloudControllerArgs) -> anyhow::Result<Providers> {
    let mut providers = Providers::new();
    if let Some(path) = &args.haproxy_config {
        anyhow::ensure!(
            !args.address_pool.is_empty(),
            "--haproxy-config needs --address-pool"
        );
        let entries: Vec<&str> = args.address_pool.iter().map(String::as_str).collect();
        let pool = AddressPool::new("default", &entries).context("--address-pool")?;
        let settings = Settings {
            stats_socket: args.haproxy_stats_socket.clone(),
            ..Settings::default()
        };
        let reload = args
            .haproxy_reload
            .as_ref()
            .map(|r| r.split_whitespace().map(str::to_owned).collect());
        let haproxy = HaproxyProvider::new(pool, path.clone(), settings, reload);
        providers.insert(
            haproxy.name().to_owned(),
            Arc::new(haproxy) as Arc<dyn LoadBalancerProvider>,
        );
    }
    if let Some(cluster) = &args.aws_cluster {
        let settings = AwsSettings {
            region: args.aws_region.clone(),
            endpoint_url: args.aws_endpoint_url.clone(),
            cluster: cluster.clone(),
        };
        let aws = AwsProvider::connect(&settings, args.aws_subnets.clone()).await;
        providers.insert(
            aws.name().to_owned(),
            Arc::new(aws) as Arc<dyn LoadBalancerProvider>,
        );
    }
    Ok(providers)
}

/// Runs `berth cloud-controller` until SIGINT or SIGTERM.
pub async fn run(args: CloudControllerArgs) -> anyhow::Result<()> {
    let providers = providers(&args).await?;
    let default_provider = (args.default_provider != "none").then(|| args.default_provider.clone());
    if let Some(default) = &default_provider {
        anyhow::ensure!(
            providers.contains_key(default),
            "--default-provider {default} is not configured (haproxy needs --haproxy-config, aws --aws-cluster)"
        );
    }
    let client = args.connection.client().await?;
    let identity = args
        .identity
        .clone()
        .unwrap_or_else(scheduler::default_identity);
    tracing::info!(%identity, providers = ?providers.keys().collect::<Vec<_>>(), "berth cloud-controller starting");
    let cancel = crate::agent::cancel_on_signal();
    let config = Config {
        default_provider,
        ..Config::default()
    };
    let elector = LeaderElector::new(
        client.clone(),
        LeaseConfig::new(
            crate::controller_manager::LEASE_NAMESPACE,
            LEASE_NAME,
            &identity,
        ),
    );
    let elected = elector.run(cancel, |leading| {
        let (client, providers, config) = (client.clone(), providers.clone(), config.clone());
        async move {
            berth_cloud_controller::run(client, providers, config, leading).await;
            Ok::<(), Infallible>(())
        }
    });
    let Ok(()) = elected.await;
    Ok(())
}
