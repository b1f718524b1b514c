//! Pod start-up benchmark: the time from creating a pod through the API to
//! the pod reporting Ready, on a real node (`berth up`: API server,
//! scheduler, agent and its containerd), beside the floor of the same work
//! done straight against containerd's CRI API (RunPodSandbox +
//! CreateContainer + StartContainer), measured in the same run, alternating
//! one cluster pod with one raw pod so both see the same machine.
//!
//! `cargo build --release -p berth -p berth-bench && target/release/pod-startup [--pods 50]`
//!
//! Needs root, containerd, runc, the CNI plugins and the test-image tools
//! (`tests/run-all.sh` installs them). Images come from `tests/images/build.sh`
//! on a free loopback port. Targets: p99 ≤ 1.5 s and p50 ≤ 1.3 × the floor.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use berth_agent::runtime::cri::{connect, translate};
use berth_agent::runtime::{ContainerConfig, PodSandboxConfig};
use futures::{StreamExt, TryStreamExt};
use k8s_cri::v1 as cri;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams, WatchEvent, WatchParams};

const NODE: &str = "bench-node";

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64) * p).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn berth_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let beside = exe.with_file_name("berth");
    anyhow::ensure!(
        beside.exists(),
        "{} not found: build it with `cargo build --release -p berth`",
        beside.display()
    );
    Ok(beside)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(5055)
}

/// The offline test registry, stopped when dropped.
struct Registry {
    dir: tempfile::TempDir,
    port: u16,
}

impl Registry {
    fn start() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("berth-bench-registry")
            .tempdir()?;
        let port = free_port();
        let status = Command::new("bash")
            .arg(repo_root().join("tests/images/build.sh"))
            .args(["--port", &port.to_string(), "--dir"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .status()?;
        anyhow::ensure!(status.success(), "tests/images/build.sh failed");
        Ok(Self { dir, port })
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo_root().join("tests/images/stop.sh"))
            .arg("--dir")
            .arg(self.dir.path())
            .status();
    }
}

/// `berth up` as a child; stopped, and the node's shims and bridge
/// removed, when dropped.
struct Cluster {
    child: Child,
    data_dir: PathBuf,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let agent = self.data_dir.join("agent/containerd");
        for pattern in [agent.join("containerd.sock"), agent.join("config.toml")] {
            let _ = Command::new("pkill")
                .args(["-KILL", "-f"])
                .arg(pattern)
                .status();
        }
        let bridge = berth_agent::runtime::cri::cni::bridge_name(NODE);
        let _ = Command::new("ip")
            .args(["link", "delete", &bridge])
            .output();
        for table in berth_agent::network::service_proxy::table_names(NODE) {
            let _ = Command::new("nft")
                .args(["delete", "table", "ip", &table])
                .output();
        }
    }
}

fn pod_json(name: &str, image: &str) -> anyhow::Result<Pod> {
    Ok(serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "web", "image": image}]}
    }))?)
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Creates pod `name` and waits for it to be Ready; the time that took.
async fn cluster_pod(pods: &Api<Pod>, name: &str, image: &str) -> anyhow::Result<Duration> {
    let params = WatchParams::default().fields(&format!("metadata.name={name}"));
    let mut events = pods.watch(&params, "0").await?.boxed();
    let started = Instant::now();
    pods.create(&PostParams::default(), &pod_json(name, image)?)
        .await?;
    while let Some(event) = events.try_next().await? {
        if let WatchEvent::Added(pod) | WatchEvent::Modified(pod) = event {
            if is_ready(&pod) {
                return Ok(started.elapsed());
            }
        }
    }
    anyhow::bail!("the watch on {name} ended before it was Ready")
}

/// Starts a pod straight through CRI, as the agent would; the time that took.
async fn raw_pod(
    client: &mut RuntimeServiceClient<tonic::transport::Channel>,
    data_dir: &Path,
    index: usize,
    image: &str,
) -> anyhow::Result<(Duration, String)> {
    let pod = PodSandboxConfig {
        uid: format!("floor-{index}-{}", std::process::id()),
        namespace: "floor".into(),
        name: format!("floor-{index}"),
        hostname: format!("floor-{index}"),
        ..PodSandboxConfig::default()
    };
    let container = ContainerConfig {
        name: "web".into(),
        image: image.into(),
        ..ContainerConfig::default()
    };
    std::fs::create_dir_all(translate::log_dir(data_dir, &pod))?;
    let sandbox_config = translate::sandbox_config(data_dir, &pod, 0);
    let started = Instant::now();
    let sandbox = client
        .run_pod_sandbox(cri::RunPodSandboxRequest {
            config: Some(sandbox_config.clone()),
            runtime_handler: String::new(),
        })
        .await?
        .into_inner()
        .pod_sandbox_id;
    let id = client
        .create_container(cri::CreateContainerRequest {
            pod_sandbox_id: sandbox.clone(),
            config: Some(translate::container_config(
                data_dir, &pod, &container, false, 0,
            )),
            sandbox_config: Some(sandbox_config),
        })
        .await?
        .into_inner()
        .container_id;
    client
        .start_container(cri::StartContainerRequest { container_id: id })
        .await?;
    Ok((started.elapsed(), sandbox))
}

fn summary(label: &str, samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort();
    let (p50, p99) = (percentile(samples, 0.50), percentile(samples, 0.99));
    println!(
        "{label:<34} p50 {:>7.1} ms   p99 {:>7.1} ms   max {:>7.1} ms",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        samples.last().copied().unwrap_or_default().as_secs_f64() * 1e3
    );
    (p50, p99)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut count = 50usize;
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, value] = args.as_slice() {
        anyhow::ensure!(flag == "--pods", "unknown flag {flag} (use --pods N)");
        count = value.parse().context("--pods")?;
    }
    let berth = berth_binary()?;
    let registry = Registry::start()?;
    let image = format!("127.0.0.1:{}/web:1", registry.port);
    let dir = tempfile::Builder::new()
        .prefix("berth-bench-up")
        .tempdir()?;
    let data_dir = dir.path().to_owned();
    let port = free_port();
    let log = std::fs::File::create(data_dir.join("up.log"))?;
    let child = Command::new(&berth)
        .args(["up", "--no-install", "--data-dir"])
        .arg(&data_dir)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--name", NODE])
        .args(["--cluster-cidr", "10.251.0.0/16", "--node-ip", "127.0.0.1"])
        .args(["--kubelet-port", &free_port().to_string()])
        .args([
            "--insecure-registry",
            &format!("127.0.0.1:{}", registry.port),
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("starting berth up")?;
    let cluster = Cluster {
        child,
        data_dir: data_dir.clone(),
    };

    let kubeconfig = data_dir.join("server/admin.kubeconfig");
    let deadline = Instant::now() + Duration::from_secs(60);
    let client = loop {
        if let Ok(config) = kube::config::Kubeconfig::read_from(&kubeconfig) {
            let options = kube::config::KubeConfigOptions::default();
            if let Ok(config) = kube::Config::from_custom_kubeconfig(config, &options).await {
                let client = kube::Client::try_from(config)?;
                let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
                let ready = nodes.get_opt(NODE).await.ok().flatten().is_some_and(|n| {
                    n.status
                        .and_then(|s| s.conditions)
                        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
                });
                if ready {
                    break client;
                }
            }
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "berth up did not bring the node up (log: {}/up.log)",
            data_dir.display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let socket = data_dir.join("agent/containerd/containerd.sock");
    let mut cri_client = RuntimeServiceClient::new(connect::channel(&socket).await?);
    let agent_dir = data_dir.join("agent");

    // Warm-up, not counted: the image pull and first-use costs on both paths.
    cluster_pod(&pods, "warm-up", &image).await?;
    let mut sandboxes = vec![
        raw_pod(&mut cri_client, &agent_dir, usize::MAX, &image)
            .await?
            .1,
    ];

    let (mut cluster_times, mut floor_times) = (Vec::new(), Vec::new());
    for index in 0..count {
        cluster_times.push(cluster_pod(&pods, &format!("pod-{index}"), &image).await?);
        let (took, sandbox) = raw_pod(&mut cri_client, &agent_dir, index, &image).await?;
        floor_times.push(took);
        sandboxes.push(sandbox);
    }

    println!("pod start-up, {count} pods one after another, on one real node (this machine)");
    let (p50, p99) = summary("create → Ready through berth", &mut cluster_times);
    let (floor_p50, _) = summary("raw CRI sandbox+create+start", &mut floor_times);
    let ratio = p50.as_secs_f64() / floor_p50.as_secs_f64();
    println!(
        "p50 ratio to the floor: {ratio:.2}x (target ≤ 1.3x); p99 {:.2} s (target ≤ 1.5 s)",
        p99.as_secs_f64()
    );

    for sandbox in sandboxes {
        let _ = cri_client
            .remove_pod_sandbox(cri::RemovePodSandboxRequest {
                pod_sandbox_id: sandbox,
            })
            .await;
    }
    let all = pods.list(&Default::default()).await?;
    for pod in all.items {
        if let Some(name) = pod.metadata.name {
            let _ = pods.delete(&name, &Default::default()).await;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while !pods.list(&Default::default()).await?.items.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(cluster);
    drop(registry);
    Ok(())
}
