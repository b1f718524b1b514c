//! `berth up`: a working single-node cluster in one command and one
//! process: the API server on SQLite (with its scheduler and controllers)
//! and a node agent running real containers on a containerd of its own.
//! As root it installs what it lacks from Debian packages.

mod packages;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser};

use crate::agent::{self, AgentArgs};
use crate::server::{self, ServerArgs};

/// Flags of `berth up`.
#[derive(Args, Debug)]
pub struct UpArgs {
    /// Where the cluster keeps everything: `server/` (database, certificates,
    /// admin.kubeconfig) and `agent/` (containerd, volumes, logs).
    #[arg(long, env = "BERTH_DATA_DIR", default_value = "/var/lib/berth")]
    data_dir: PathBuf,
    /// Address the HTTPS API listens on.
    #[arg(long, env = "BERTH_LISTEN", default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// Range pods get their addresses from (each node a /24 of it).
    #[arg(long, env = "BERTH_CLUSTER_CIDR", default_value = "10.42.0.0/16")]
    cluster_cidr: String,
    /// The node's name; defaults to the host name.
    #[arg(long, env = "BERTH_NODE_NAME")]
    name: Option<String>,
    /// The pause image of pod sandboxes; the default is built on this machine from busybox.
    #[arg(long, env = "BERTH_PAUSE_IMAGE", default_value = berth_agent::runtime::cri::pause::LOCAL_PAUSE_IMAGE)]
    pause_image: String,
    /// Registries (`host:port`, comma-separated) pulled from over plain HTTP.
    #[arg(
        long,
        env = "BERTH_INSECURE_REGISTRIES",
        value_delimiter = ',',
        default_value = "127.0.0.1:5000"
    )]
    insecure_registry: Vec<String>,
    /// The node's address (default: the address of the default route's interface).
    #[arg(long, env = "BERTH_NODE_IP")]
    node_ip: Option<std::net::IpAddr>,
    /// The port of the node's kubelet API (logs, exec, port-forward).
    #[arg(long, env = "BERTH_KUBELET_PORT", default_value_t = 10250)]
    kubelet_port: u16,
    /// Never install packages; report what is missing instead.
    #[arg(long)]
    no_install: bool,
}

/// Parses `args` as a subcommand's flags (so the server and agent get
/// exactly the defaults their own commands have).
fn parse<T: Args>(args: &[String]) -> anyhow::Result<T> {
    #[derive(Parser)]
    struct Wrapper<T: Args> {
        #[command(flatten)]
        inner: T,
    }
    let parsed = Wrapper::<T>::try_parse_from(args).context("building the component flags")?;
    Ok(parsed.inner)
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Runs the cluster until SIGINT or SIGTERM.
pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        is_root(),
        "berth up runs containers and configures their network, which needs root; run it with sudo"
    );
    packages::ensure(!args.no_install)?;
    let server_dir = args.data_dir.join("server");
    let agent_dir = args.data_dir.join("agent");
    let server_args: ServerArgs = parse(&[
        "server".into(),
        "--data-dir".into(),
        server_dir.display().to_string(),
        "--listen".into(),
        args.listen.to_string(),
        "--cluster-cidr".into(),
        args.cluster_cidr.clone(),
    ])?;
    let running = server::start(server_args).await?;
    let mut agent_flags = vec![
        "agent".to_owned(),
        "--kubeconfig".into(),
        running.kubeconfig.display().to_string(),
        "--data-dir".into(),
        agent_dir.display().to_string(),
        "--pause-image".into(),
        args.pause_image.clone(),
        "--insecure-registry".into(),
        args.insecure_registry.join(","),
    ];
    if let Some(name) = &args.name {
        agent_flags.extend(["--name".into(), name.clone()]);
    }
    if let Some(ip) = &args.node_ip {
        agent_flags.extend(["--node-ip".into(), ip.to_string()]);
    }
    agent_flags.extend(["--kubelet-port".into(), args.kubelet_port.to_string()]);
    let agent_args: AgentArgs = parse(&agent_flags)?;
    eprintln!(
        "berth is up: the API server on {url} and this machine as a node.\n\
         use it with:\n  export KUBECONFIG={kubeconfig}\n  kubectl get nodes\n\
         stop it with Ctrl-C (containers keep running and are adopted on the next `berth up`).",
        url = running.url,
        kubeconfig = running.kubeconfig.display(),
    );
    let outcome = agent::run_until(agent_args, agent::cancel_on_signal()).await;
    let stopped = running.stop().await;
    outcome.and(stopped)
}
