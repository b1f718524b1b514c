//! The scheduler end to end: `berth server` (or two `berth scheduler`
//! processes) place pods on a CPU pool and a tainted GPU pool of Node objects
//! created with kubectl, never beyond their GPUs; an impossible pod stays
//! Pending with upstream's message and a FailedScheduling event until a big
//! enough node arrives; of two schedulers exactly one holds the Lease.

mod support;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use support::{eventually, Kubectl, Server, KUBECTL_1_31};

const TIMEOUT: Duration = Duration::from_secs(20);

/// Creates a Ready node with kubectl, then sets its status through the
/// `status` subresource as a kubelet would.
fn create_node(k: &Kubectl, name: &str, pool: &str, capacity: Value, gpu_taint: bool) {
    let taints = if gpu_taint {
        json!([{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}])
    } else {
        json!([])
    };
    let node = json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"berth.dev/pool": pool, "kubernetes.io/hostname": name}},
        "spec": {"taints": taints},
    });
    k.ok_stdin(&["create", "-f", "-"], &node.to_string());
    let status = json!({"status": {
        "capacity": capacity, "allocatable": capacity,
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
            "message": "test node", "lastHeartbeatTime": "2025-01-01T00:00:00Z",
            "lastTransitionTime": "2025-01-01T00:00:00Z"}],
    }});
    k.ok(&[
        "patch",
        "node",
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        &status.to_string(),
    ]);
}

fn pod(name: &str, gpus: u32, gpu_pool: bool) -> Value {
    let mut spec = json!({"containers": [{"name": "c", "image": "busybox",
        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]});
    if gpu_pool {
        spec["containers"][0]["resources"]["limits"] = json!({"nvidia.com/gpu": gpus.to_string()});
        spec["containers"][0]["resources"]["requests"]["nvidia.com/gpu"] = json!(gpus.to_string());
        spec["nodeSelector"] = json!({"berth.dev/pool": "gpu"});
        spec["tolerations"] =
            json!([{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]);
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"}, "spec": spec})
}

fn create_pods(k: &Kubectl, pods: &[Value]) {
    let list = json!({"apiVersion": "v1", "kind": "List", "items": pods});
    k.ok_stdin(&["create", "-f", "-"], &list.to_string());
}

/// `pod name → node name` (empty when unbound) for every pod in `default`.
fn placements(k: &Kubectl) -> HashMap<String, String> {
    let out = k.ok(&["get", "pods", "-o", "json"]);
    let list: Value = serde_json::from_str(&out).unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["metadata"]["name"].as_str().unwrap().to_owned(),
                p["spec"]["nodeName"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

fn events(k: &Kubectl) -> Vec<Value> {
    let out = k.ok(&["get", "events", "-o", "json"]);
    let list: Value = serde_json::from_str(&out).unwrap();
    list["items"].as_array().unwrap().clone()
}

/// A `berth scheduler` process, SIGKILLed when dropped.
struct SchedulerProcess {
    child: Option<Child>,
    log: std::path::PathBuf,
}

impl SchedulerProcess {
    fn start(kubeconfig: &Path, identity: &str, dir: &Path) -> Self {
        let log = dir.join(format!("{identity}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(support::berth_bin())
            .args(["scheduler", "--kubeconfig"])
            .arg(kubeconfig)
            .args(["--identity", identity])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("starting berth scheduler");
        SchedulerProcess {
            child: Some(child),
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then wait: a clean stop releases the Lease.
    fn terminate(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }
}

impl Drop for SchedulerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn gpu_and_cpu_pools_get_the_right_pods_and_impossible_pods_wait_with_upstream_message() {
    let server = Server::start_with(&["--disable", "controllers"]);
    let k = server.kubectl(KUBECTL_1_31);
    let cpu = json!({"cpu": "4", "memory": "8Gi", "pods": "110"});
    let gpu = json!({"cpu": "8", "memory": "32Gi", "pods": "110", "nvidia.com/gpu": "2"});
    create_node(&k, "cpu-1", "cpu", cpu.clone(), false);
    create_node(&k, "cpu-2", "cpu", cpu, false);
    create_node(&k, "gpu-1", "gpu", gpu.clone(), true);
    create_node(&k, "gpu-2", "gpu", gpu, true);

    let mut pods: Vec<Value> = (0..5).map(|i| pod(&format!("gpu-{i}"), 1, true)).collect();
    pods.extend((0..6).map(|i| pod(&format!("cpu-{i}"), 0, false)));
    create_pods(&k, &pods);
    let placed = eventually(TIMEOUT, || {
        let p = placements(&k);
        let bound = p.values().filter(|n| !n.is_empty()).count();
        (bound >= 10).then_some(p)
    });
    let mut gpu_per_node: HashMap<&str, u32> = HashMap::new();
    for (name, node) in &placed {
        if name.starts_with("gpu-") {
            if !node.is_empty() {
                assert!(node.starts_with("gpu-"), "{name} landed on {node}");
                *gpu_per_node.entry(node).or_default() += 1;
            }
        } else {
            assert!(
                node.starts_with("cpu-"),
                "CPU pod {name} landed on {node:?}"
            );
        }
    }
    assert_eq!(gpu_per_node.len(), 2, "{placed:?}");
    assert!(
        gpu_per_node.values().all(|n| *n == 2),
        "at most 2 GPU pods per node: {placed:?}"
    );
    let pending: Vec<_> = placed.iter().filter(|(_, n)| n.is_empty()).collect();
    assert_eq!(pending.len(), 1, "one GPU pod has no GPU left: {placed:?}");

    create_pods(&k, &[pod("eight-gpus", 8, true)]);
    let want = "0/4 nodes are available: 2 Insufficient nvidia.com/gpu, 2 node(s) didn't match Pod's node affinity/selector. preemption: 0/4 nodes are available: 4 Preemption is not helpful for scheduling..";
    let condition = eventually(TIMEOUT, || {
        let out = k.jsonpath(
            &["get", "pod", "eight-gpus"],
            "{.status.conditions[?(@.type==\"PodScheduled\")].status}|{.status.conditions[?(@.type==\"PodScheduled\")].reason}|{.status.conditions[?(@.type==\"PodScheduled\")].message}",
        );
        (!out.starts_with("||")).then_some(out)
    });
    assert_eq!(condition, format!("False|Unschedulable|{want}"));
    let failed = eventually(TIMEOUT, || {
        events(&k).into_iter().find(|e| {
            e["reason"] == "FailedScheduling" && e["involvedObject"]["name"] == "eight-gpus"
        })
    });
    assert_eq!(failed["type"], "Warning");
    assert_eq!(failed["message"], want);
    assert_eq!(failed["source"]["component"], "default-scheduler");
    let table = k.ok(&["get", "events"]);
    assert!(table.contains("FailedScheduling"), "{table}");

    create_node(
        &k,
        "gpu-big",
        "gpu",
        json!({"cpu": "64", "memory": "256Gi", "pods": "110", "nvidia.com/gpu": "16"}),
        true,
    );
    let node = eventually(TIMEOUT, || {
        let node = k.jsonpath(&["get", "pod", "eight-gpus"], "{.spec.nodeName}");
        (!node.is_empty()).then_some(node)
    });
    assert_eq!(node, "gpu-big");
    let scheduled = eventually(TIMEOUT, || {
        events(&k)
            .into_iter()
            .find(|e| e["reason"] == "Scheduled" && e["involvedObject"]["name"] == "eight-gpus")
    });
    assert_eq!(
        scheduled["message"],
        "Successfully assigned default/eight-gpus to gpu-big"
    );
    assert_eq!(scheduled["type"], "Normal");
}

#[test]
fn of_two_schedulers_exactly_one_holds_the_lease_and_pods_are_bound_once() {
    let server = Server::start_with(&["--disable", "scheduler,controllers"]);
    let k = server.kubectl(KUBECTL_1_31);
    create_node(
        &k,
        "n1",
        "cpu",
        json!({"cpu": "4", "memory": "8Gi", "pods": "110"}),
        false,
    );
    create_node(
        &k,
        "n2",
        "cpu",
        json!({"cpu": "4", "memory": "8Gi", "pods": "110"}),
        false,
    );
    let mut a = SchedulerProcess::start(&server.kubeconfig(), "sched-a", server.data_dir());
    let mut b = SchedulerProcess::start(&server.kubeconfig(), "sched-b", server.data_dir());
    let holder = eventually(TIMEOUT, || {
        let out = k.run(&[
            "-n",
            "kube-system",
            "get",
            "lease",
            "berth-scheduler",
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ]);
        let holder = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.success() && !holder.is_empty()).then_some(holder)
    });
    assert!(holder == "sched-a" || holder == "sched-b", "{holder}");

    create_pods(
        &k,
        &(0..6)
            .map(|i| pod(&format!("p{i}"), 0, false))
            .collect::<Vec<_>>(),
    );
    eventually(TIMEOUT, || {
        placements(&k).values().all(|n| !n.is_empty()).then_some(())
    });
    let (leader, follower) = if holder == "sched-a" {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    assert!(leader.log().contains("became leader"), "{}", leader.log());
    assert!(
        !follower.log().contains("became leader"),
        "{}",
        follower.log()
    );
    let scheduled = eventually(TIMEOUT, || {
        let e: Vec<Value> = events(&k)
            .into_iter()
            .filter(|e| e["reason"] == "Scheduled")
            .collect();
        (e.len() >= 6).then_some(e)
    });
    std::thread::sleep(Duration::from_millis(500));
    let scheduled_again = events(&k)
        .into_iter()
        .filter(|e| e["reason"] == "Scheduled")
        .count();
    assert_eq!(scheduled.len(), 6);
    assert_eq!(scheduled_again, 6, "each pod is bound exactly once");

    // The leader stops cleanly and releases the Lease; the other takes over.
    leader.terminate();
    let next = eventually(TIMEOUT, || {
        let now = k.jsonpath(
            &["-n", "kube-system", "get", "lease", "berth-scheduler"],
            "{.spec.holderIdentity}",
        );
        (!now.is_empty() && now != holder).then_some(now)
    });
    assert_ne!(next, holder);
    create_pods(&k, &[pod("after-failover", 0, false)]);
    eventually(TIMEOUT, || {
        let node = k.jsonpath(&["get", "pod", "after-failover"], "{.spec.nodeName}");
        (!node.is_empty()).then_some(())
    });
    assert!(
        follower.log().contains("became leader"),
        "{}",
        follower.log()
    );
}
