//! GPU metrics and health end to end, on a `berth agent --runtime
//! simulated` whose GPUs come from a fake NVML (`--nvml-library`, compiled
//! from `agent/tests/fake_nvml/fake_nvml.c`): the Node advertises them, a
//! pod using one shows in the dcgm-exporter metrics served through the node
//! proxy, and a critical XID on the other withdraws it — allocatable drops
//! while capacity stays, the `NvidiaGPUUnhealthy` condition names it, a
//! Warning Event is recorded on the Node, and the scheduler no longer
//! places a pod asking for it.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::{free_port, spawn_with_stdin, wait_for, BerthProcess, Kubectl, Server, KUBECTL_1_33};

const NODE: &str = "gpuh-1";

const GPUS: &str = "\
gpu name=NVIDIA_H100_80GB_HBM3 uuid=GPU-gpuh-aaa minor=0 total=85899345920 used=1073741824 util=42 memutil=17 temp=55 power=312500 sm=1980 sbe=0 dbe=0
gpu name=NVIDIA_H100_80GB_HBM3 uuid=GPU-gpuh-bbb minor=1 total=85899345920 used=0 util=0 memutil=0 temp=30 power=70000 sm=345 sbe=0 dbe=0
";

fn gpu_pod(name: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  containers:
  - name: train
    image: registry.test/cuda:1
    resources: {{limits: {{nvidia.com/gpu: "1"}}}}
"#
    )
}

/// Compiles the fake NVML into `dir` (with its `state` file) and returns
/// the library's path.
fn fake_nvml(dir: &Path) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../agent/tests/fake_nvml/fake_nvml.c");
    let library = dir.join("libnvidia-ml.so.1");
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&library)
        .arg(&source)
        .arg("-ldl")
        .status()
        .expect("cc runs");
    assert!(status.success(), "compiling {}", source.display());
    std::fs::write(dir.join("state"), GPUS).unwrap();
    library
}

/// Waits up to `seconds` for `check`, failing with the logs if the agent stops.
fn until<T>(
    server: &Server,
    agent: &mut BerthProcess,
    what: &str,
    seconds: u64,
    check: impl FnMut() -> Option<T>,
) -> T {
    wait_for(
        what,
        Duration::from_secs(seconds),
        server,
        &mut [agent],
        check,
    )
}

fn node_field(kubectl: &Kubectl, template: &str) -> String {
    kubectl.jsonpath(&["get", "node", NODE], template)
}

#[test]
fn an_xid_withdraws_a_gpu_and_its_metrics_follow_dcgm_exporter() {
    let dir = tempfile::tempdir().unwrap();
    let library = fake_nvml(dir.path());
    let server = Server::start();
    let kubectl = server.kubectl(KUBECTL_1_33);
    let port = free_port().to_string();
    let mut agent = server.start_agent(
        NODE,
        &[
            "--heartbeat-interval",
            "1s",
            "--kubelet-port",
            &port,
            "--nvml-library",
            library.to_str().unwrap(),
        ],
    );
    until(
        &server,
        &mut agent,
        "the node advertises two GPUs",
        60,
        || {
            let out = kubectl.run(&[
                "get",
                "node",
                NODE,
                "-o",
                r"jsonpath={.status.allocatable.nvidia\.com/gpu}",
            ]);
            (String::from_utf8_lossy(&out.stdout) == "2").then_some(())
        },
    );
    assert_eq!(
        node_field(&kubectl, r"{.metadata.labels.nvidia\.com/gpu\.product}"),
        "NVIDIA-H100-80GB-HBM3"
    );
    kubectl.ok_stdin(&["apply", "-f", "-"], &gpu_pod("gpuh-first"));
    let metrics = until(
        &server,
        &mut agent,
        "the GPU metrics name the pod using GPU 0",
        60,
        || {
            let out = kubectl.run(&[
                "get",
                "--raw",
                &format!("/api/v1/nodes/{NODE}/proxy/metrics"),
            ]);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.contains(r#"pod="gpuh-first""#).then_some(text)
        },
    );
    for line in [
        format!(
            r#"DCGM_FI_DEV_GPU_UTIL{{gpu="0",UUID="GPU-gpuh-aaa",device="nvidia0",modelName="NVIDIA H100 80GB HBM3",Hostname="{NODE}",container="train",namespace="default",pod="gpuh-first"}} 42"#
        ),
        format!(
            r#"DCGM_FI_DEV_POWER_USAGE{{gpu="1",UUID="GPU-gpuh-bbb",device="nvidia1",modelName="NVIDIA H100 80GB HBM3",Hostname="{NODE}"}} 70"#
        ),
    ] {
        assert!(metrics.contains(&line), "{line} missing from\n{metrics}");
    }
    promtool_accepts(&metrics);

    // XID 79 (fallen off the bus) on the GPU no pod holds.
    std::fs::write(dir.path().join("state"), format!("{GPUS}xid 1 79\n")).unwrap();
    until(
        &server,
        &mut agent,
        "allocatable drops to one GPU",
        60,
        || (node_field(&kubectl, r"{.status.allocatable.nvidia\.com/gpu}") == "1").then_some(()),
    );
    assert_eq!(
        node_field(&kubectl, r"{.status.capacity.nvidia\.com/gpu}"),
        "2"
    );
    let condition = node_field(
        &kubectl,
        r#"{.status.conditions[?(@.type=="NvidiaGPUUnhealthy")].status} {.status.conditions[?(@.type=="NvidiaGPUUnhealthy")].reason} {.status.conditions[?(@.type=="NvidiaGPUUnhealthy")].message}"#,
    );
    assert!(
        condition.starts_with("True XidCriticalError GPU GPU-gpuh-bbb: critical XID error 79"),
        "{condition}"
    );
    let events = until(
        &server,
        &mut agent,
        "a Warning Event on the Node",
        30,
        || {
            let text = kubectl.jsonpath(
                &["get", "events", "-n", "default"],
                r#"{range .items[?(@.involvedObject.kind=="Node")]}{.type} {.reason} {.involvedObject.name} {.message}{"\n"}{end}"#,
            );
            text.contains("XidCriticalError").then_some(text)
        },
    );
    assert!(
        events.contains(&format!(
            "Warning XidCriticalError {NODE} GPU GPU-gpuh-bbb (index 1"
        )),
        "{events}"
    );

    // The one healthy GPU is taken: a second GPU pod is not scheduled.
    kubectl.ok_stdin(&["apply", "-f", "-"], &gpu_pod("gpuh-second"));
    until(
        &server,
        &mut agent,
        "the second GPU pod is unschedulable",
        60,
        || {
            let reason = kubectl.jsonpath(
                &["get", "pod", "gpuh-second"],
                r#"{.status.conditions[?(@.type=="PodScheduled")].reason}"#,
            );
            (reason == "Unschedulable").then_some(())
        },
    );
}

/// `promtool check metrics` parses `text` and finds nothing to lint but
/// dcgm-exporter's own camelCase label names (`modelName`, `Hostname`),
/// kept so its dashboards work.
fn promtool_accepts(text: &str) {
    let child = spawn_with_stdin(Command::new("promtool").args(["check", "metrics"]), text);
    let output = child.wait_with_output().unwrap();
    let verdict = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let problems: Vec<&str> = verdict
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| {
            !(l.starts_with("DCGM_FI_DEV_")
                && l.ends_with("label names should be written in 'snake_case' not 'camelCase'"))
        })
        .collect();
    assert!(
        problems.is_empty() && matches!(output.status.code(), Some(0 | 3)),
        "promtool check metrics: {:?}\n{verdict}\n{text}",
        output.status
    );
}
