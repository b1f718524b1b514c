//! The `berth` command line: one binary for the API server and, later, the
//! agent and the cluster tools. It only parses flags and calls the crates.

mod agent;
mod cloud_controller;
mod cluster;
mod controller_manager;
mod metrics_endpoint;
mod nodepool;
mod scheduler;
mod secrets;
mod server;
mod sim;
mod supervise;
mod token;
mod up;

use clap::{Parser, Subcommand};

/// The API server allocates and frees many small JSON values per request;
/// mimalloc spends far less CPU on that than glibc's allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// berth: a Kubernetes-compatible cluster in one binary.
#[derive(Parser)]
#[command(name = "berth", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    telemetry: berth_observability::TelemetryArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Start a single-node cluster: the API server and a node running real
    /// containers, in one process (installs containerd and friends as root).
    Up(up::UpArgs),
    /// Run the API server (with its embedded SQLite store by default).
    Server(server::ServerArgs),
    /// Run the scheduler alone against a cluster (leader-elected through a Lease).
    Scheduler(scheduler::SchedulerArgs),
    /// Run the controllers alone against a cluster (leader-elected through a Lease).
    ControllerManager(controller_manager::ControllerManagerArgs),
    /// Run a node agent that registers a Node and runs the pods bound to it.
    Agent(Box<agent::AgentArgs>),
    /// Run many simulated nodes in one process (for tests and benchmarks).
    Sim(sim::SimArgs),
    /// Keep a command running where there is no systemd: restart it with
    /// back-off, log its output to a file, stop it on SIGTERM.
    Supervise(supervise::SuperviseArgs),
    /// Build, check and delete clusters described by a cluster.toml.
    Cluster(cluster::ClusterArgs),
    /// Manage bootstrap tokens nodes join with (`create`, `list`).
    Token(token::TokenArgs),
    /// Secrets at rest: `reencrypt` rewrites every Secret with the first
    /// provider of the server's --encryption-provider-config.
    Secrets(secrets::SecretsArgs),
    /// Run the NodePool controller alone against a cluster (leader-elected through a Lease).
    NodepoolController(nodepool::ControllerArgs),
    /// Scale node pools and show their machines (`scale`, `status`).
    Nodepool(nodepool::NodePoolArgs),
    /// Run the cloud-controller (load balancers for Services of type
    /// LoadBalancer) against a cluster, leader-elected through a Lease.
    CloudController(cloud_controller::CloudControllerArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let telemetry = berth_observability::init(cli.command.service_name(), "info", &cli.telemetry);
    let result = match cli.command {
        Command::Up(args) => up::run(args).await,
        Command::Server(args) => server::run(args).await,
        Command::Scheduler(args) => scheduler::run(args).await,
        Command::ControllerManager(args) => controller_manager::run(args).await,
        Command::Agent(args) => agent::run(*args).await,
        Command::Sim(args) => sim::run(args).await,
        Command::Supervise(args) => supervise::run(args).await,
        Command::Cluster(args) => cluster::run(args).await,
        Command::Token(args) => token::run(args).await,
        Command::Secrets(args) => secrets::run(args).await,
        Command::NodepoolController(args) => nodepool::run_standalone(args).await,
        Command::Nodepool(args) => nodepool::run(args).await,
        Command::CloudController(args) => cloud_controller::run(args).await,
    };
    telemetry.shutdown().await;
    result
}

impl Command {
    /// The `service.name` of this process's spans: one per process, named
    /// after the command (spans say which component made them in `berth.component`).
    fn service_name(&self) -> &'static str {
        match self {
            Command::Up(_) => "berth-up",
            Command::Server(_) => "berth-server",
            Command::Scheduler(_) => "berth-scheduler",
            Command::ControllerManager(_) => "berth-controller-manager",
            Command::Agent(_) => "berth-agent",
            Command::Sim(_) => "berth-sim",
            Command::Supervise(_) => "berth-supervise",
            Command::Cluster(_) => "berth-cluster",
            Command::Token(_) => "berth-token",
            Command::Secrets(_) => "berth-secrets",
            Command::NodepoolController(_) => "berth-nodepool-controller",
            Command::Nodepool(_) => "berth-nodepool",
            Command::CloudController(_) => "berth-cloud-controller",
        }
    }
}
