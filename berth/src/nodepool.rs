//! `berth nodepool-controller` (the NodePool controller alone, leader-elected
//! through the `kube-system/berth-nodepool-controller` Lease), the in-process
//! wiring `berth server` uses, and `berth nodepool scale|status`.

mod aws;
mod sim;
mod ssh;
pub mod ssh_settings;

pub use aws::{AwsConfig, AwsFlags};

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use berth_api::nodeclaim::NodeClaim;
use berth_api::nodepool::{NodePool, POOL_LABEL};
use berth_orchestrator::leader_election::{LeaderElector, LeaseConfig};
use berth_orchestrator::scheduler;
use clap::{Args, Subcommand};
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use tokio_util::sync::CancellationToken;

use crate::agent::ConnectionFlags;
use ssh_settings::{Defaults, SshProviderFlags, SshSettings};

/// The Lease copies of the controller elect their leader with.
pub const LEASE_NAME: &str = "berth-nodepool-controller";

/// The controller's settings from the flags: the providers besides `sim`
/// (each off when None) and how long a machine may take to register.
#[derive(Debug, Clone)]
pub struct ControllerSettings {
    /// The `ssh` provider (a list of bare machines per pool).
    pub ssh: Option<SshSettings>,
    /// The `aws` provider (EC2 instances).
    pub aws: Option<AwsConfig>,
    /// How long after launch a machine's node may take to register before
    /// its claim and machine are replaced.
    pub registration_timeout: Duration,
}

/// Runs the NodePool controller with the `sim` provider, and `ssh` and
/// `aws` when they have settings (`aws` with its clean-up pass), until
/// `cancel` fires, then stops every simulated machine; hosts joined over
/// SSH and EC2 instances keep running.
pub async fn run_controller(
    client: kube::Client,
    settings: ControllerSettings,
    cancel: CancellationToken,
) {
    let sim = Arc::new(sim::SimProvider::new(client.clone(), cancel.child_token()));
    let mut providers: berth_nodepool::Providers = BTreeMap::from([(
        "sim".to_owned(),
        Arc::clone(&sim) as Arc<dyn berth_nodepool::MachineProvider>,
    )]);
    if let Some(ssh) = settings.ssh {
        let provider = ssh::SshProvider::new(client.clone(), ssh);
        providers.insert("ssh".to_owned(), Arc::new(provider));
    }
    let aws = match settings.aws {
        Some(config) => Some(Arc::new(
            aws::AwsProvider::connect(client.clone(), config).await,
        )),
        None => None,
    };
    if let Some(aws) = &aws {
        providers.insert(
            "aws".to_owned(),
            Arc::clone(aws) as Arc<dyn berth_nodepool::MachineProvider>,
        );
    }
    let clean_up = async {
        if let Some(aws) = &aws {
            aws.clean_up_until(cancel.clone()).await;
        }
    };
    let config = berth_nodepool::Config {
        registration_timeout: settings.registration_timeout,
        ..berth_nodepool::Config::default()
    };
    let controller = berth_nodepool::run(client, providers, config, cancel.clone());
    tokio::join!(controller, clean_up);
    sim.shutdown().await;
}

/// Runs the controller whenever `identity` holds the nodepool Lease, until
/// `cancel` fires.
pub async fn run_while_leading(
    client: kube::Client,
    identity: &str,
    settings: ControllerSettings,
    cancel: CancellationToken,
) {
    let elector = LeaderElector::new(
        client.clone(),
        LeaseConfig::new(
            crate::controller_manager::LEASE_NAMESPACE,
            LEASE_NAME,
            identity,
        ),
    );
    let elected = elector.run(cancel, |leading| {
        let (client, settings) = (client.clone(), settings.clone());
        async move {
            run_controller(client, settings, leading).await;
            Ok::<(), Infallible>(())
        }
    });
    let Ok(()) = elected.await;
}

/// Flags of `berth nodepool-controller`.
#[derive(Args, Debug)]
pub struct ControllerArgs {
    #[command(flatten)]
    connection: ConnectionFlags,
    /// Holder identity in the Lease; unique per process (default: host, pid, random suffix).
    #[arg(long, env = "BERTH_NODEPOOL_CONTROLLER_IDENTITY")]
    identity: Option<String>,
    /// The `ssh` provider (on with --nodepool-ssh-key-file).
    #[command(flatten)]
    ssh: SshProviderFlags,
    /// The `aws` provider (on with --aws-cluster).
    #[command(flatten)]
    aws: AwsFlags,
    /// How long after launch a machine's node may take to register before
    /// its claim and machine are removed and replaced.
    #[arg(long, env = "BERTH_NODEPOOL_REGISTRATION_TIMEOUT", default_value = "15m", value_parser = crate::server::parse_duration)]
    registration_timeout: Duration,
}

/// Runs `berth nodepool-controller` until SIGINT or SIGTERM.
pub async fn run_standalone(args: ControllerArgs) -> anyhow::Result<()> {
    let aws = args.aws.config(None, None)?;
    let client = args.connection.client().await?;
    let identity = args.identity.unwrap_or_else(scheduler::default_identity);
    let ssh = args.ssh.settings(Defaults::default())?;
    tracing::info!(%identity, ssh = ssh.is_some(), aws = aws.is_some(), "berth nodepool-controller starting");
    let cancel = crate::agent::cancel_on_signal();
    let settings = ControllerSettings {
        ssh,
        aws,
        registration_timeout: args.registration_timeout,
    };
    run_while_leading(client, &identity, settings, cancel).await;
    Ok(())
}

/// Flags of `berth nodepool`.
#[derive(Args, Debug)]
pub struct NodePoolArgs {
    #[command(flatten)]
    connection: ConnectionFlags,
    #[command(subcommand)]
    command: NodePoolCommand,
}

#[derive(Subcommand, Debug)]
enum NodePoolCommand {
    /// Set a pool's desired number of nodes (through its /scale subresource).
    Scale {
        /// The NodePool.
        name: String,
        /// How many nodes it should have.
        #[arg(long)]
        replicas: i32,
    },
    /// Show pools (or one pool) with their NodeClaims and nodes.
    Status {
        /// One NodePool; all when left out.
        name: Option<String>,
    },
}

/// Runs `berth nodepool scale|status`.
pub async fn run(args: NodePoolArgs) -> anyhow::Result<()> {
    let client = args.connection.client().await?;
    let pools: Api<NodePool> = Api::all(client.clone());
    match args.command {
        NodePoolCommand::Scale { name, replicas } => {
            anyhow::ensure!(replicas >= 0, "--replicas must be 0 or more");
            let patch = serde_json::json!({"spec": {"replicas": replicas}});
            pools
                .patch_scale(&name, &PatchParams::default(), &Patch::Merge(patch))
                .await
                .with_context(|| format!("scaling nodepool {name}"))?;
            println!("nodepool.berth.dev/{name} scaled");
        }
        NodePoolCommand::Status { name } => {
            let list = match name {
                Some(name) => vec![pools
                    .get(&name)
                    .await
                    .with_context(|| format!("reading nodepool {name}"))?],
                None => pools.list(&ListParams::default()).await?.items,
            };
            let claims: Api<NodeClaim> = Api::all(client);
            for pool in list {
                let pool_name = pool.name_any();
                let owned = claims
                    .list(&ListParams::default().labels(&format!("{POOL_LABEL}={pool_name}")))
                    .await?
                    .items;
                print!("{}", status_text(&pool, &owned));
            }
        }
    }
    Ok(())
}

/// The text `berth nodepool status` prints for one pool.
fn status_text(pool: &NodePool, claims: &[NodeClaim]) -> String {
    let status = pool.status.clone().unwrap_or_default();
    let desired = pool
        .spec
        .replicas
        .map_or_else(|| "-".to_owned(), |r| r.to_string());
    let mut text = format!(
        "{}: provider {}, desired {desired}, replicas {}, ready {}\n",
        pool.name_any(),
        pool.spec.provider_name(),
        status.replicas,
        status.ready_replicas,
    );
    for claim in claims {
        let claim_status = claim.status.clone().unwrap_or_default();
        let ready = claim_status
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .map_or("Unknown", |c| c.status.as_str());
        let deleting = if claim.metadata.deletion_timestamp.is_some() {
            " (terminating)"
        } else {
            ""
        };
        text.push_str(&format!(
            "  {}  node={}  ready={ready}  id={}{deleting}\n",
            claim.name_any(),
            claim_status.node_name.as_deref().unwrap_or("<none>"),
            claim_status.provider_id.as_deref().unwrap_or("<none>"),
        ));
    }
    text
}
