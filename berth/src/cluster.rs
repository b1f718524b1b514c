//! `berth cluster …`: clusters built from a `cluster.toml`. Thin: parses
//! flags, calls `berth-provisioner`, prints.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use berth_provisioner::config::edit::NewMachine;
use berth_provisioner::config::{self, Binary, Cluster, MasterRule};
use berth_provisioner::nodes::{self, RemoveOptions};
use berth_provisioner::{
    admin, create, delete, ec2_masters, renew, restore, snapshot, status, terraform, upgrade,
};
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
    /// Save etcd's data to a file, or restore the masters from one.
    #[command(subcommand)]
    EtcdSnapshot(SnapshotCommand),
    /// Re-issue every leaf certificate from the same CAs and restart the
    /// masters one at a time with them; prints old and new expiry.
    RenewCerts(StateArgs),
    /// Add a machine to a pool: written into cluster.toml (comments and
    /// layout kept), joined as `create` joins pool machines, waited for
    /// until its Node is Ready. A re-run changes nothing.
    AddNode(AddNodeArgs),
    /// Take a machine out: a node is cordoned and drained through the
    /// Eviction API (PodDisruptionBudgets respected), a master's etcd member
    /// removed first; then its services stop, its data_dir goes, its Node
    /// object is deleted and cluster.toml no longer lists it.
    RemoveNode(RemoveNodeArgs),
    /// Roll the cluster onto another berth binary: masters one at a time
    /// (waiting for /readyz and etcd), then nodes one at a time (cordon,
    /// drain respecting PodDisruptionBudgets, swap, Ready, uncordon).
    /// Machines already on it are skipped, so a re-run resumes.
    Upgrade(UpgradeArgs),
}

#[derive(Subcommand, Debug)]
enum SnapshotCommand {
    /// Stream a snapshot from a healthy etcd member into a file, checked
    /// against its sha256; prints its path, size and revision.
    Save(SaveArgs),
    /// Stop every master, rebuild each etcd member's data from FILE (the old
    /// data kept aside until the API answers), start them again. Installs
    /// the masters first when they are fresh machines.
    Restore(RestoreArgs),
}

#[derive(Args, Debug)]
struct SaveArgs {
    #[command(flatten)]
    state: StateArgs,
    /// Where to write the snapshot (default:
    /// STATE_DIR/snapshots/NAME-<UTC time>.db).
    #[arg(long, short = 'o')]
    output: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct RestoreArgs {
    #[command(flatten)]
    state: StateArgs,
    /// The snapshot file `etcd-snapshot save` wrote.
    snapshot: PathBuf,
}

#[derive(Args, Debug)]
struct AddNodeArgs {
    #[command(flatten)]
    state: StateArgs,
    /// The pool (its `name` in cluster.toml).
    pool: String,
    /// The machine's address or DNS name, as SSH reaches it.
    host: String,
    /// Its Node name (default: the host in lower case).
    #[arg(long)]
    name: Option<String>,
    /// Where berth keeps its files there (default: the file's data_dir).
    #[arg(long)]
    data_dir: Option<String>,
}

#[derive(Args, Debug)]
struct RemoveNodeArgs {
    #[command(flatten)]
    state: StateArgs,
    /// The machine's Node name (its `name` in cluster.toml).
    name: String,
    /// How long the drain may take; evictions a disruption budget refuses
    /// are retried until then.
    #[arg(long, default_value = "5m", value_parser = crate::server::parse_duration)]
    timeout: Duration,
    /// Also evict pods no controller manages, allow leaving a single
    /// master, and go on when the machine cannot be reached to clean it.
    #[arg(long)]
    force: bool,
}

#[derive(Args, Debug)]
struct CreateArgs {
    #[command(flatten)]
    state: StateArgs,
    /// Print how long each phase took (`timing PHASE SECONDS` lines:
    /// ssh-connect, upload, etcd-formation, api-ready, node-join, total).
    #[arg(long)]
    timings: bool,
    /// Build the cluster from `terraform output -json` of
    /// terraform/examples/cluster instead of `-f`: the cluster.toml made from
    /// it is written (see `--output`) and then created.
    #[arg(long, value_name = "OUTPUTS_JSON", conflicts_with = "file")]
    from_terraform: Option<PathBuf>,
    /// Where `--from-terraform` writes the cluster.toml (default: cluster.toml
    /// beside the outputs file).
    #[arg(long, short = 'o', requires = "from_terraform")]
    output: Option<PathBuf>,
    /// With `--from-terraform`: check the cluster.toml it makes and print it;
    /// write nothing, touch no machine.
    #[arg(long, requires = "from_terraform")]
    dry_run: bool,
    /// With `[aws.masters]`: how long the master instances may take to be
    /// `running` with an address.
    #[arg(long, default_value = "5m", value_parser = crate::server::parse_duration)]
    launch_timeout: Duration,
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
    /// The cluster, checked with `rule`, and its state directory.
    fn load(&self, rule: MasterRule) -> anyhow::Result<(Cluster, PathBuf)> {
        let cluster = config::load_with(&self.file, rule).map_err(|e| anyhow::anyhow!("{e}"))?;
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

    /// [`Self::load`] for a cluster that exists: with `[aws.masters]`, its
    /// master instances found in EC2 become its masters (none launched);
    /// an error when there are none, unless `allow_none`.
    async fn load_existing(&self, allow_none: bool) -> anyhow::Result<(Cluster, PathBuf)> {
        let (cluster, state_dir) = self.load(MasterRule::Existing)?;
        if !ec2_masters::is_launched(&cluster) {
            return Ok((cluster, state_dir));
        }
        let (cluster, _) = ec2_masters::find(&cluster).await?;
        if cluster.masters.is_empty() && !allow_none {
            anyhow::bail!(
                "no running master instance of cluster {name} in EC2 (tags berth.dev/cluster={name}, berth.dev/role=master); run `berth cluster create`",
                name = cluster.name
            );
        }
        Ok((cluster, state_dir))
    }

    /// What `create` and the commands that install masters need.
    fn create_options(
        &self,
        cluster: &Cluster,
        state_dir: PathBuf,
    ) -> anyhow::Result<create::CreateOptions> {
        let binary = match &cluster.binary {
            Binary::SelfExe => std::env::current_exe().context("finding this berth executable")?,
            Binary::Path(path) => path.clone(),
        };
        Ok(create::CreateOptions {
            state_dir,
            binary,
            connect_timeout: self.connect_timeout,
            ready_timeout: self.ready_timeout,
        })
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
            state: mut args,
            timings,
            from_terraform,
            output,
            dry_run,
            launch_timeout,
        }) => {
            if let Some(outputs) = from_terraform {
                let written = from_terraform_file(&outputs, output, dry_run)?;
                match written {
                    Some(file) => args.file = file,
                    None => return Ok(()),
                }
            }
            let (cluster, state_dir) = args.load(MasterRule::New)?;
            let cluster = ec2_masters::launch(&cluster, launch_timeout).await?;
            if ec2_masters::is_launched(&cluster) {
                for master in &cluster.masters {
                    eprintln!("master instance {} at {}", master.name, master.host);
                }
            }
            let options = args.create_options(&cluster, state_dir)?;
            let created = create::create(&cluster, &options).await?;
            eprint!("{}", created.summary);
            for pool in &created.node_pools {
                eprintln!("nodepool {pool}: applied (kubectl get nodepool {pool})");
            }
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
            let (cluster, state_dir) = args.load(MasterRule::Existing)?;
            let (cluster, instances) = ec2_masters::find(&cluster).await?;
            if let Some(spec) = cluster.aws.as_ref().and_then(|aws| aws.masters()) {
                print!("{}", ec2_masters::describe(&instances, spec.public));
                if cluster.masters.is_empty() {
                    return Ok(());
                }
            }
            let client = admin::client(&cluster, &state_dir, args.connect_timeout)
                .await
                .map_err(|e| tracing::warn!("{e}"))
                .ok();
            print!(
                "{}",
                status::report(&cluster, &state_dir, client.as_ref(), args.connect_timeout).await
            );
            Ok(())
        }
        ClusterCommand::Upgrade(args) => {
            let (cluster, state_dir) = args.state.load_existing(false).await?;
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
            let (cluster, state_dir) = args.load_existing(true).await?;
            let summary = delete::delete(&cluster, &state_dir, args.connect_timeout).await?;
            eprint!("{summary}");
            for id in ec2_masters::terminate_all(&cluster).await? {
                eprintln!("terminated instance {id}");
            }
            println!("cluster {} deleted", cluster.name);
            Ok(())
        }
        ClusterCommand::EtcdSnapshot(SnapshotCommand::Save(args)) => {
            let (cluster, state_dir) = args.state.load_existing(false).await?;
            let saved = snapshot::save(
                &cluster,
                &state_dir,
                args.output.as_deref(),
                args.state.connect_timeout,
            )
            .await?;
            println!(
                "snapshot {} ({} bytes, revision {}, from etcd member {}, sha256 checked)",
                saved.path.display(),
                saved.size,
                saved.revision,
                saved.member
            );
            Ok(())
        }
        ClusterCommand::EtcdSnapshot(SnapshotCommand::Restore(args)) => {
            let (cluster, state_dir) = args.state.load_existing(false).await?;
            let options = args.state.create_options(&cluster, state_dir)?;
            let restored = restore::restore(&cluster, &options, &args.snapshot).await?;
            eprint!("{}", restored.summary);
            println!(
                "cluster {} restored from {}; use it with: kubectl --kubeconfig {}",
                cluster.name,
                args.snapshot.display(),
                restored.kubeconfig.display()
            );
            Ok(())
        }
        ClusterCommand::RenewCerts(args) => {
            let (cluster, state_dir) = args.load_existing(false).await?;
            let options = args.create_options(&cluster, state_dir)?;
            let report = renew::renew(&cluster, &options).await?;
            eprint!("{}", report.summary);
            for certificate in &report.certificates {
                println!("{certificate}");
            }
            let reissued = report.certificates.iter().filter(|c| c.reissued).count();
            println!(
                "cluster {}: {reissued} certificates renewed, {} kept, every master restarted with them",
                cluster.name,
                report.certificates.len() - reissued
            );
            Ok(())
        }
        ClusterCommand::AddNode(args) => {
            let (cluster, state_dir) = args.state.load(MasterRule::Existing)?;
            listed_masters_only(&cluster, "add-node")?;
            let options = args.state.create_options(&cluster, state_dir)?;
            let machine = NewMachine {
                host: args.host.clone(),
                name: args.name.clone(),
                data_dir: args.data_dir.clone(),
            };
            let added = nodes::add_node(&args.state.file, &args.pool, &machine, &options).await?;
            eprint!("{}", added.summary);
            println!(
                "node/{} is Ready in pool {}{}",
                added.name,
                args.pool,
                if added.file_changed {
                    format!("; added to {}", args.state.file.display())
                } else {
                    String::new()
                }
            );
            Ok(())
        }
        ClusterCommand::RemoveNode(args) => {
            let (cluster, state_dir) = args.state.load(MasterRule::Existing)?;
            listed_masters_only(&cluster, "remove-node")?;
            let options = RemoveOptions {
                state_dir,
                connect_timeout: args.state.connect_timeout,
                timeout: args.timeout,
                force: args.force,
            };
            let report = |line: String| eprintln!("{line}");
            let removed =
                nodes::remove_node(&args.state.file, &args.name, &options, &report).await?;
            println!(
                "{} {} removed{}",
                if removed.master { "master" } else { "node" },
                args.name,
                if removed.master {
                    String::new()
                } else {
                    format!(" ({} pods evicted)", removed.evicted)
                }
            );
            Ok(())
        }
    }
}

/// Refuses `command` (which edits the file's machine lists) on a cluster
/// whose masters are EC2 instances.
fn listed_masters_only(cluster: &Cluster, command: &str) -> anyhow::Result<()> {
    if ec2_masters::is_launched(cluster) {
        anyhow::bail!(
            "{command} works on clusters whose masters are listed in [masters] machines; cluster {}'s are EC2 instances ([aws.masters])",
            cluster.name
        );
    }
    Ok(())
}

/// Makes the cluster.toml for a `terraform output -json` file and checks it;
/// prints it on `dry_run` (returning `None`), else writes it to `output` (or
/// beside the outputs) and returns where.
fn from_terraform_file(
    outputs: &std::path::Path,
    output: Option<PathBuf>,
    dry_run: bool,
) -> anyhow::Result<Option<PathBuf>> {
    let source = outputs.display().to_string();
    let json = std::fs::read_to_string(outputs).with_context(|| format!("reading {source}"))?;
    let model = terraform::parse(&source, &json)?;
    let text = terraform::cluster_toml(&model, &source);
    let file = output.unwrap_or_else(|| outputs.with_file_name("cluster.toml"));
    config::parse_with(&file.display().to_string(), &text, MasterRule::New).map_err(|e| {
        anyhow::anyhow!("the cluster.toml made from {source} is not valid: {e}\n{text}")
    })?;
    if dry_run {
        print!("{text}");
        return Ok(None);
    }
    std::fs::write(&file, &text).with_context(|| format!("writing {}", file.display()))?;
    eprintln!("wrote {} from {source}", file.display());
    Ok(Some(file))
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
