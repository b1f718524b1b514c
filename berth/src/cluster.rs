//! `berth cluster …`: clusters built from a `cluster.toml`. Thin: parses
//! flags, calls `berth-provisioner`, prints.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use berth_provisioner::config::{self, Binary, Cluster};
use berth_provisioner::{create, delete, status, upgrade};
use clap::{Args, Subcommand};

/// `berth cluster` and its subcommands.
#[derive(Args, Debug)]
pub struct ClusterArgs {
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Subcommand, Debug)]
enum ClusterCommand {
    /// Check a cluster.toml and print what would be built; exits 1 with the
    /// first problem (file:line:column: field: what is allowed) otherwise.
    Check(CheckArgs),
    /// Build the cluster (or finish a build that stopped part-way; a re-run
    /// on a finished cluster changes nothing) and write its admin kubeconfig.
    Create(CreateArgs),
    /// Stop and remove everything berth installed on the cluster's
    /// machines, then the cluster's local state.
    Delete(StateArgs),
    /// Show the machines with their services and versions, etcd's members
    /// and leader, the Nodes, and when the certificates expire.
    Status(StateArgs),
    /// Roll the cluster onto another berth binary: masters one at a time
    /// (waiting for /readyz and etcd), then nodes one at a time (cordon,
    /// drain respecting PodDisruptionBudgets, swap, Ready, uncordon).
    /// Machines already on it are skipped, so a re-run resumes.
    Upgrade(UpgradeArgs),
}

#[derive(Args, Debug)]
struct CreateArgs {
    #[command(flatten)]
    state: StateArgs,
    /// Print how long each phase took (`timing PHASE SECONDS` lines:
    /// ssh-connect, upload, etcd-formation, api-ready, node-join, total).
    #[arg(long)]
    timings: bool,
}

#[derive(Args, Debug)]
struct UpgradeArgs {
    #[command(flatten)]
    state: StateArgs,
    /// The new berth executable (cluster.toml's `binary` is not changed;
    /// point it at the new one yourself).
    #[arg(long)]
    binary: PathBuf,
    /// How long draining one node may take.
    #[arg(long, default_value = "300s", value_parser = crate::server::parse_duration)]
    drain_timeout: Duration,
}

#[derive(Args, Debug)]
struct StateArgs {
    /// The cluster description.
    #[arg(short = 'f', long = "file", default_value = "cluster.toml")]
    file: PathBuf,
    /// Where the cluster's certificates, token and kubeconfig are kept on
    /// this machine (default: ~/.berth/clusters/NAME).
    #[arg(long, env = "BERTH_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// Limit for each SSH connection.
    #[arg(long, default_value = "20s", value_parser = crate::server::parse_duration)]
    connect_timeout: Duration,
    /// How long the API may take to answer once the servers are started.
    #[arg(long, default_value = "120s", value_parser = crate::server::parse_duration)]
    ready_timeout: Duration,
}

impl StateArgs {
    fn load(&self) -> anyhow::Result<(Cluster, PathBuf)> {
        let cluster = config::load(&self.file).map_err(|e| anyhow::anyhow!("{e}"))?;
        let state_dir = match &self.state_dir {
            Some(dir) => dir.clone(),
            None => PathBuf::from(
                std::env::var_os("HOME").context("HOME is not set; pass --state-dir")?,
            )
            .join(".berth/clusters")
            .join(&cluster.name),
        };
        Ok((cluster, state_dir))
    }
}

#[derive(Args, Debug)]
struct CheckArgs {
    /// The cluster description.
    #[arg(short = 'f', long = "file", default_value = "cluster.toml")]
    file: PathBuf,
}

/// Runs a `berth cluster` subcommand.
pub async fn run(args: ClusterArgs) -> anyhow::Result<()> {
    match args.command {
        ClusterCommand::Check(check) => {
            if let Err(problem) = self::check(&check) {
                eprintln!("{problem}");
                std::process::exit(1);
            }
            Ok(())
        }
        ClusterCommand::Create(CreateArgs {
            state: args,
            timings,
        }) => {
            let (cluster, state_dir) = args.load()?;
            let binary = match &cluster.binary {
                Binary::SelfExe => {
                    std::env::current_exe().context("finding this berth executable")?
                }
                Binary::Path(path) => path.clone(),
            };
            let options = create::CreateOptions {
                state_dir,
                binary,
                connect_timeout: args.connect_timeout,
                ready_timeout: args.ready_timeout,
            };
            let created = create::create(&cluster, &options).await?;
            eprint!("{}", created.summary);
            println!(
                "cluster {} is ready; use it with: kubectl --kubeconfig {}",
                cluster.name,
                created.kubeconfig.display()
            );
            if timings {
                print!("{}", created.timings);
            }
            Ok(())
        }
        ClusterCommand::Status(args) => {
            let (cluster, state_dir) = args.load()?;
            let client = status::client_from_kubeconfig(&state_dir.join("admin.kubeconfig"))
                .await
                .ok();
            print!(
                "{}",
                status::report(&cluster, &state_dir, client.as_ref(), args.connect_timeout).await
            );
            Ok(())
        }
        ClusterCommand::Upgrade(args) => {
            let (cluster, state_dir) = args.state.load()?;
            let options = upgrade::UpgradeOptions {
                state_dir,
                binary: args.binary,
                connect_timeout: args.state.connect_timeout,
                ready_timeout: args.state.ready_timeout,
                drain_timeout: args.drain_timeout,
            };
            let upgraded = upgrade::upgrade(&cluster, &options).await?;
            print!("{upgraded}");
            println!("cluster {} upgraded", cluster.name);
            Ok(())
        }
        ClusterCommand::Delete(args) => {
            let (cluster, state_dir) = args.load()?;
            let summary = delete::delete(&cluster, &state_dir, args.connect_timeout).await?;
            eprint!("{summary}");
            println!("cluster {} deleted", cluster.name);
            Ok(())
        }
    }
}

fn check(args: &CheckArgs) -> Result<(), String> {
    let cluster = config::load(&args.file).map_err(|e| e.to_string())?;
    if let Binary::Path(path) = &cluster.binary {
        if !path.is_file() {
            return Err(format!(
                "{}: binary: {} is not a file; set binary = \"self\" or the path of a berth executable",
                args.file.display(),
                path.display()
            ));
        }
    }
    print!("{}", config::summary(&cluster));
    println!("{}: OK", args.file.display());
    Ok(())
}
