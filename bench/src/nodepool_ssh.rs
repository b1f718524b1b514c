//! The `ssh` NodePool provider from request to Ready: a NodePool of N
//! machines over N namespace hosts with OpenSSH (`tests/hosts/hosts.sh`,
//! prefix `bnq`, subnet 10.94), timed from creating the pool to every Node
//! Ready (markers, berth uploaded, agents joined with bootstrap tokens),
//! beside the floor: copying the berth binary to the same hosts over SSH in
//! the same run. Agents run `--runtime simulated` (the join is what is
//! measured, not containerd). Needs root and Debian's openssh-server.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use berth_bench::process::{berth_binary, start_server_on};
use berth_bench::ssh_lab::{copy_binary, Lab};
use clap::Parser;
use k8s_openapi::api::core::v1::Node;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, PostParams,
};
use kube::Api;

const PREFIX: &str = "bnq";
const SUBNET: &str = "10.94";

/// Times NodeClaim request → Node Ready over SSH against copying the binary.
#[derive(Parser, Debug)]
#[command(name = "nodepool-ssh-bench")]
struct Args {
    /// The berth binary (default: `berth` beside this benchmark).
    #[arg(long)]
    berth: Option<std::path::PathBuf>,
    /// Machines in the pool (one namespace host each).
    #[arg(long, default_value_t = 3)]
    machines: usize,
    /// Seconds the pool may take to become Ready.
    #[arg(long, default_value_t = 300)]
    ready_timeout: u64,
}

fn pools(client: &kube::Client) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("berth.dev", "v1", "NodePool");
    Api::all_with(client.clone(), &ApiResource::from_gvk(&gvk))
}

async fn ready_nodes(client: &kube::Client) -> anyhow::Result<usize> {
    let nodes: Api<Node> = Api::all(client.clone());
    let list = nodes
        .list(&ListParams::default().labels("berth.dev/pool=bench-ssh"))
        .await?;
    Ok(list
        .items
        .iter()
        .filter(|n| {
            n.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .count())
}

/// Creates the pool and waits for its Nodes; how long that took.
async fn pool_to_ready(
    client: &kube::Client,
    dir: &Path,
    lab: &Lab,
    timeout: Duration,
) -> anyhow::Result<Duration> {
    let pool: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "berth.dev/v1",
        "kind": "NodePool",
        "metadata": {"name": "bench-ssh"},
        "spec": {
            "provider": "ssh",
            "replicas": lab.addresses.len(),
            "template": {"ssh": {
                "hosts": lab.addresses,
                "dataDir": format!("{}/hosts/{{host}}", dir.display()),
            }},
        },
    }))?;
    let started = Instant::now();
    pools(client).create(&PostParams::default(), &pool).await?;
    while ready_nodes(client).await? < lab.addresses.len() {
        anyhow::ensure!(
            started.elapsed() < timeout,
            "the pool was not Ready in {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(started.elapsed())
}

/// Deletes the pool and waits until its hosts are clean.
async fn delete_pool(client: &kube::Client, dir: &Path, timeout: Duration) -> anyhow::Result<()> {
    pools(client)
        .delete("bench-ssh", &DeleteParams::default())
        .await?;
    let started = Instant::now();
    while dir
        .join("hosts")
        .read_dir()
        .is_ok_and(|mut d| d.next().is_some())
    {
        anyhow::ensure!(
            started.elapsed() < timeout,
            "the pool's hosts were not cleaned"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let berth = berth_binary(args.berth)?;
    let dir = tempfile::tempdir()?;
    let dir = dir.path();
    let lab = Lab::up(dir, PREFIX, SUBNET, args.machines)?;
    let server_dir = dir.join("server");
    std::fs::create_dir_all(&server_dir)?;
    let key = dir.join("id").display().to_string();
    let known_hosts = dir.join("known_hosts").display().to_string();
    let binary = berth.display().to_string();
    let (_server, kubeconfig) = start_server_on(
        &berth,
        &server_dir,
        &lab.gateway,
        &[
            "--nodepool-ssh-key-file",
            &key,
            "--nodepool-ssh-known-hosts",
            &known_hosts,
            "--nodepool-ssh-binary",
            &binary,
            "--nodepool-ssh-runtime",
            "simulated",
        ],
    )?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let config = kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::read_from(&kubeconfig)?,
            &Default::default(),
        )
        .await?;
        let client = kube::Client::try_from(config)?;
        let floor = copy_binary(dir, &lab.addresses, &berth).await?;
        let timeout = Duration::from_secs(args.ready_timeout);
        let took = pool_to_ready(&client, dir, &lab, timeout).await;
        let deleted = delete_pool(&client, dir, timeout).await;
        let took = took.context("pool to Ready")?;
        deleted.context("deleting the pool")?;
        println!(
            "nodepool-ssh: {} ({} MiB), {} machines",
            berth.display(),
            std::fs::metadata(&berth)?.len() / (1024 * 1024),
            args.machines
        );
        println!("{:>12} {:>9} {:>7}", "to Ready s", "copy s", "ratio");
        println!(
            "{:>12.2} {:>9.2} {:>6.1}x",
            took.as_secs_f64(),
            floor.as_secs_f64(),
            took.as_secs_f64() / floor.as_secs_f64()
        );
        println!("ratio = NodePool created to every Node Ready over SSH / copying the binary to the same hosts");
        anyhow::Ok(())
    })
}
