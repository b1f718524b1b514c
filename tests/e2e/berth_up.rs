//! `berth up` as a newcomer runs it: one process with the API server and a
//! real node (its pause image built locally from busybox, no registry
//! needed for sandboxes). A pod from the offline test registry serves its
//! page; stopping `berth up` leaves the container running and the next
//! `berth up` adopts it. On a machine lacking containerd, `--no-install`
//! says exactly what is missing and how to install it.

mod cri_node;
mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cri_node::{clean_up_node, Registry};
use support::{berth_bin, eventually, free_port, KUBECTL_1_31};

const NODE: &str = "upnode";

/// A `berth up` process, SIGTERMed (then SIGKILLed) when dropped.
struct Up {
    child: Option<Child>,
    log: std::path::PathBuf,
}

impl Up {
    fn start(data_dir: &Path, port: u16, registry: &Registry, cidr: &str) -> Self {
        std::fs::create_dir_all(data_dir).unwrap();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data_dir.join("up.log"))
            .unwrap();
        let child = Command::new(berth_bin())
            .args(["up", "--data-dir"])
            .arg(data_dir)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--name", NODE, "--cluster-cidr", cidr])
            .args([
                "--node-ip",
                "127.0.0.1",
                "--kubelet-port",
                &free_port().to_string(),
            ])
            .args(["--insecure-registry", &registry.host()])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap();
        Self {
            child: Some(child),
            log: data_dir.join("up.log"),
        }
    }

    /// SIGTERM, then the exit status once it stopped.
    fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        child.wait().unwrap()
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
    }
}

fn kubectl(kubeconfig: &Path, args: &[&str]) -> (bool, String) {
    let output = Command::new(KUBECTL_1_31)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

fn ok(kubeconfig: &Path, args: &[&str]) -> String {
    let (success, text) = kubectl(kubeconfig, args);
    assert!(success, "kubectl {args:?}: {text}");
    text
}

#[test]
fn without_containerd_and_no_install_it_names_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(berth_bin())
        .args(["up", "--no-install", "--data-dir"])
        .arg(dir.path())
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("lacks containerd, ctr, runc")
            && stderr.contains("`apt-get install containerd runc nftables`"),
        "{stderr}"
    );
}

#[test]
fn berth_up_runs_a_cluster_whose_pods_survive_a_restart() {
    let registry = Registry::start();
    let dir = tempfile::Builder::new()
        .prefix("berth-up")
        .tempdir()
        .unwrap();
    let data_dir = dir.path().join("cluster");
    let cidr = format!("10.{}.0.0/16", 200 + registry.port % 50);
    let port = free_port();
    let _cleanup = scopeguard(data_dir.join("agent"));
    let mut up = Up::start(&data_dir, port, &registry, &cidr);
    let kubeconfig = data_dir.join("server/admin.kubeconfig");

    let log = up.log.clone();
    eventually(Duration::from_secs(60), || {
        let (_, text) = kubectl(
            &kubeconfig,
            &[
                "get",
                "node",
                NODE,
                "-o",
                r#"jsonpath={.status.conditions[?(@.type=="Ready")].status}"#,
            ],
        );
        (text == "True").then_some(())
    });
    let banner = std::fs::read_to_string(&log).unwrap();
    assert!(
        banner.contains(&format!("export KUBECONFIG={}", kubeconfig.display())),
        "{banner}"
    );

    ok(
        &kubeconfig,
        &[
            "run",
            "hello",
            &format!("--image={}", registry.image("web:1")),
        ],
    );
    ok(
        &kubeconfig,
        &[
            "wait",
            "--for=condition=Ready",
            "pod/hello",
            "--timeout=60s",
        ],
    );
    let ip = ok(
        &kubeconfig,
        &["get", "pod", "hello", "-o", "jsonpath={.status.podIP}"],
    );
    let page = |ip: &str| {
        let out = Command::new("curl")
            .args(["-s", "-m", "5", &format!("http://{ip}/")])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(page(&ip), "hello from berth");
    let container = ok(
        &kubeconfig,
        &[
            "get",
            "pod",
            "hello",
            "-o",
            "jsonpath={.status.containerStatuses[0].containerID}",
        ],
    );

    // Stopping berth up stops the control plane, not the workload.
    assert!(up.stop().success(), "berth up exits 0 on SIGTERM");
    assert_eq!(
        page(&ip),
        "hello from berth",
        "the container outlives berth up"
    );

    let mut up = Up::start(&data_dir, port, &registry, &cidr);
    let adopted = eventually(Duration::from_secs(60), || {
        let (_, text) = kubectl(
            &kubeconfig,
            &["get", "pod", "hello", "-o", "jsonpath={.status.containerStatuses[0].containerID} {.status.containerStatuses[0].restartCount}"],
        );
        text.starts_with("containerd://").then_some(text)
    });
    assert_eq!(adopted, format!("{container} 0"), "adopted, not restarted");
    ok(&kubeconfig, &["delete", "pod", "hello", "--timeout=60s"]);
    assert!(up.stop().success());
}

/// Cleans the node's leftovers when the test ends, passed or not.
fn scopeguard(agent_dir: std::path::PathBuf) -> impl Drop {
    struct Guard(std::path::PathBuf);
    impl Drop for Guard {
        fn drop(&mut self) {
            clean_up_node(&self.0, NODE);
        }
    }
    Guard(agent_dir)
}
