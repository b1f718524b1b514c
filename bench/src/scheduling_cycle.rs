//! Scheduling-cycle micro-benchmark: the scheduler's decisions alone, with no
//! API server, watches or HTTP. A snapshot of N nodes (4 CPUs, 32 GiB, 110
//! pods, the labels an agent registers, a few tainted, cordoned or
//! bin-packing nodes) takes M small pods (10m CPU, 16 MiB) one at a time
//! through `framework::schedule_pod` and `Snapshot::assume`, then sees each
//! one confirmed bound as the pod watch would show it.
//!
//! Everything is deterministic (a fixed cluster, seeded tie-breaks), so the
//! printed digest of the decisions must stay the same when the scheduler is
//! made faster. The floor is the least any decision must do: visit as many
//! nodes as upstream's adaptive percentageOfNodesToScore asks for and keep
//! the emptiest, over plain integers.
//!
//! `cargo build --release -p berth-bench --bin scheduling-cycle && target/release/scheduling-cycle [--nodes 5000 --pods 30000 --rounds 3]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use berth_orchestrator::scheduler::cache::Snapshot;
use berth_orchestrator::scheduler::framework::{
    num_feasible_nodes_to_find, schedule_pod, seeded_rng, Profile,
};
use berth_orchestrator::scheduler::informer::strip_managed_fields;
use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::json;

/// The scheduler runs inside `berth`, which uses mimalloc; so does this.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Options {
    nodes: usize,
    pods: usize,
    rounds: usize,
}

fn options() -> anyhow::Result<Options> {
    let mut opts = Options {
        nodes: 5_000,
        pods: 30_000,
        rounds: 3,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--nodes" => opts.nodes = value.parse()?,
            "--pods" => opts.pods = value.parse()?,
            "--rounds" => opts.rounds = value.parse()?,
            other => anyhow::bail!("unknown flag {other} (use --nodes, --pods, --rounds)"),
        }
    }
    anyhow::ensure!(
        opts.nodes > 0 && opts.pods > 0 && opts.rounds > 0,
        "--nodes, --pods and --rounds must be positive"
    );
    Ok(opts)
}

/// Node `index`: what a simulated agent registers (well-known labels, the
/// default capacity, Ready), with every 50th node a tainted GPU node, every
/// 20th a spot node (PreferNoSchedule), every 97th cordoned and every 10th
/// in a bin-packing pool.
fn node(index: usize) -> Node {
    let name = format!("sim-{index}");
    let mut labels = json!({
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": name,
        "berth.dev/pool": format!("pool-{}", index % 8),
    });
    let mut taints = Vec::new();
    let mut capacity =
        json!({"cpu": "4", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi"});
    if index.is_multiple_of(50) {
        taints.push(json!({"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}));
        capacity["nvidia.com/gpu"] = json!("1");
    }
    if index.is_multiple_of(20) {
        taints
            .push(json!({"key": "berth.dev/spot", "value": "true", "effect": "PreferNoSchedule"}));
    }
    if index.is_multiple_of(10) {
        labels["berth.dev/scoring"] = json!("most-allocated");
    }
    serde_json::from_value(json!({
        "metadata": {"name": name, "uid": format!("node-uid-{index}"), "labels": labels},
        "spec": {"taints": taints, "unschedulable": index.is_multiple_of(97)},
        "status": {
            "capacity": capacity.clone(),
            "allocatable": capacity,
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
            "addresses": [{"type": "InternalIP", "address": "127.1.0.1"}, {"type": "Hostname", "address": name}],
        },
    }))
    .expect("the node parses")
}

/// Pod `index` as the pod watch shows it pending: the scheduler benchmark's
/// pod after API defaulting (with the DefaultTolerationSeconds tolerations),
/// with the managedFields entry its create wrote.
fn pod(index: usize) -> Pod {
    serde_json::from_value(json!({
        "metadata": {
            "name": format!("bench-{index}"),
            "namespace": "default",
            "uid": format!("pod-uid-{index}"),
            "resourceVersion": format!("{}", 1000 + index),
            "labels": {"bench": "scheduler"},
            "managedFields": [{
                "manager": "scheduler-bench",
                "operation": "Update",
                "apiVersion": "v1",
                "time": "2025-01-01T00:00:00Z",
                "fieldsType": "FieldsV1",
                "fieldsV1": {
                    "f:metadata": {"f:labels": {".": {}, "f:bench": {}}},
                    "f:spec": {"f:containers": {"k:{\"name\":\"main\"}": {
                        ".": {}, "f:image": {}, "f:name": {},
                        "f:resources": {".": {}, "f:requests": {".": {}, "f:cpu": {}, "f:memory": {}}}}}},
                },
            }],
        },
        "spec": {
            "containers": [{
                "name": "main",
                "image": "registry.k8s.io/pause:3.10",
                "imagePullPolicy": "IfNotPresent",
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
            }],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "schedulerName": "default-scheduler",
            "tolerations": [
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            ],
            "enableServiceLinks": true,
            "preemptionPolicy": "PreemptLowerPriority",
            "priority": 0,
            "securityContext": {},
        },
        "status": {"phase": "Pending", "qosClass": "Burstable"},
    }))
    .expect("the pod parses")
}

/// The pods as the scheduler caches them: trimmed as its pod watch trims
/// them, shared by the queue, the snapshot and the binding.
fn cached_pods(count: usize) -> Vec<Arc<Pod>> {
    (0..count)
        .map(|index| {
            let mut pod = pod(index);
            strip_managed_fields(&mut pod);
            Arc::new(pod)
        })
        .collect()
}

/// What one round measured.
struct Round {
    /// Decisions plus assumes.
    schedule: Duration,
    /// Confirmations of the bindings through `apply_pod`.
    confirm: Duration,
    /// FNV-1a over the chosen node names, in order.
    digest: u64,
}

fn fnv(digest: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(digest, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn snapshot_of(nodes: &[Node]) -> Snapshot {
    let mut snapshot = Snapshot::default();
    for node in nodes {
        snapshot.apply_node(node.clone());
    }
    snapshot
}

/// Schedules every pod on a fresh snapshot, then confirms every binding.
fn round(nodes: &[Node], pods: &[Arc<Pod>]) -> Round {
    let mut snapshot = snapshot_of(nodes);
    let profile = Profile::default();
    let mut rng = seeded_rng(1);
    let mut next_start = 0;
    let mut chosen = Vec::with_capacity(pods.len());
    let started = Instant::now();
    for pod in pods {
        let node = schedule_pod(&profile, &snapshot, pod, &mut next_start, &mut rng)
            .expect("every bench pod fits somewhere");
        snapshot.assume(pod, &node);
        chosen.push(node);
    }
    let schedule = started.elapsed();
    let bound: Vec<Arc<Pod>> = pods
        .iter()
        .zip(&chosen)
        .map(|(pod, node)| {
            let mut pod = Pod::clone(pod);
            pod.spec.as_mut().expect("pods have a spec").node_name = Some(node.to_string());
            Arc::new(pod)
        })
        .collect();
    let started = Instant::now();
    for pod in &bound {
        snapshot.apply_pod(pod);
    }
    let confirm = started.elapsed();
    let digest = chosen
        .iter()
        .fold(0xcbf2_9ce4_8422_2325, |h, node| fnv(h, node.as_bytes()));
    Round {
        schedule,
        confirm,
        digest,
    }
}

/// The floor: per pod, visit as many nodes as a decision filters, round
/// robin, and take the one with the most free CPU, over plain integers.
fn floor(nodes: usize, pods: usize) -> Duration {
    let wanted = num_feasible_nodes_to_find(nodes);
    let mut free_cpu = vec![4000i64; nodes];
    let mut next_start = 0;
    let started = Instant::now();
    for _ in 0..pods {
        let mut best = next_start;
        for offset in 0..wanted {
            let index = (next_start + offset) % nodes;
            if free_cpu[index] > free_cpu[best] {
                best = index;
            }
        }
        free_cpu[best] -= 10;
        next_start = (next_start + wanted) % nodes;
    }
    std::hint::black_box(&free_cpu);
    started.elapsed()
}

fn per_pod(duration: Duration, pods: usize) -> f64 {
    duration.as_secs_f64() * 1e6 / pods as f64
}

fn main() -> anyhow::Result<()> {
    let opts = options()?;
    let nodes: Vec<Node> = (0..opts.nodes).map(node).collect();
    let pods = cached_pods(opts.pods);
    println!(
        "{} nodes, {} pods, {} rounds; µs per pod",
        opts.nodes, opts.pods, opts.rounds
    );
    let mut best: Option<(f64, f64, f64)> = None;
    for number in 1..=opts.rounds {
        let floor = per_pod(floor(opts.nodes, opts.pods), opts.pods);
        let round = round(&nodes, &pods);
        let schedule = per_pod(round.schedule, opts.pods);
        let confirm = per_pod(round.confirm, opts.pods);
        println!(
            "round {number}: schedule+assume {schedule:.2}, confirm {confirm:.2}, floor {floor:.2} (ratio {:.1}), digest {:016x}",
            schedule / floor,
            round.digest
        );
        let (s, c, f) = best.unwrap_or((f64::MAX, f64::MAX, f64::MAX));
        best = Some((s.min(schedule), c.min(confirm), f.min(floor)));
    }
    if let Some((schedule, confirm, floor)) = best {
        println!(
            "best: schedule+assume {schedule:.2} µs/pod, confirm {confirm:.2} µs/pod, floor {floor:.2} µs/pod, ratio {:.1}",
            schedule / floor
        );
    }
    Ok(())
}
