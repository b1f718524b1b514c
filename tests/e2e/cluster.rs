//! The whole control plane on simulated nodes, driven by kubectl as a user
//! would: `berth server` (scheduler and controllers in-process) plus `berth sim`
//! node pools. Deployments roll out to Running pods, scale, roll back and go
//! away; GPU pods land only on GPU nodes and never exceed their GPUs.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use support::{eventually, Kubectl, Server, KUBECTL_1_33};

/// `pod name → node name` of the pods matching `selector` in `namespace`.
fn placements(k: &Kubectl, namespace: &str, selector: &str) -> HashMap<String, String> {
    let out = k.jsonpath(
        &["-n", namespace, "get", "pods", "-l", selector],
        r#"{range .items[*]}{.metadata.name}={.spec.nodeName}{"\n"}{end}"#,
    );
    out.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(p, n)| (p.to_owned(), n.to_owned()))
        .collect()
}

fn running(k: &Kubectl, namespace: &str, selector: &str) -> usize {
    let phases = k.jsonpath(
        &["-n", namespace, "get", "pods", "-l", selector],
        "{.items[*].status.phase}",
    );
    phases
        .split_whitespace()
        .filter(|p| *p == "Running")
        .count()
}

#[test]
fn deployments_roll_out_scale_and_roll_back_on_simulated_nodes() {
    let server = Server::start();
    let _nodes = server.start_sim(3, "cpu-", &["--pool", "cpu"]);
    let k = server.kubectl(KUBECTL_1_33);
    eventually(Duration::from_secs(20), || {
        let ready = k.jsonpath(
            &["get", "nodes"],
            r#"{.items[*].status.conditions[?(@.type=="Ready")].status}"#,
        );
        (ready.split_whitespace().filter(|s| *s == "True").count() == 3).then_some(())
    });

    k.ok(&[
        "create",
        "deployment",
        "web",
        "--image=127.0.0.1:5000/web:v1",
        "--replicas=3",
    ]);
    let status = k.ok(&["rollout", "status", "deployment/web", "--timeout=60s"]);
    assert!(status.contains("successfully rolled out"), "{status}");
    assert_eq!(running(&k, "default", "app=web"), 3);
    let ready = k.ok(&["get", "deploy", "web"]);
    assert!(ready.lines().nth(1).unwrap().contains("3/3"), "{ready}");

    k.ok(&["scale", "deployment", "web", "--replicas=10"]);
    eventually(Duration::from_secs(30), || {
        (running(&k, "default", "app=web") == 10).then_some(())
    });
    let nodes: std::collections::HashSet<String> =
        placements(&k, "default", "app=web").into_values().collect();
    assert_eq!(
        nodes.len(),
        3,
        "least-allocated scoring spreads pods over every node: {nodes:?}"
    );

    k.ok(&["scale", "deployment", "web", "--replicas=0"]);
    eventually(Duration::from_secs(30), || {
        placements(&k, "default", "app=web")
            .is_empty()
            .then_some(())
    });
    k.ok(&["scale", "deployment", "web", "--replicas=2"]);

    k.ok(&[
        "set",
        "image",
        "deployment/web",
        "web=127.0.0.1:5000/web:v2",
    ]);
    let status = k.ok(&["rollout", "status", "deployment/web", "--timeout=60s"]);
    assert!(status.contains("successfully rolled out"), "{status}");
    let history = k.ok(&["rollout", "history", "deployment/web"]);
    assert!(history.contains('1') && history.contains('2'), "{history}");
    k.ok(&["rollout", "undo", "deployment/web"]);
    k.ok(&["rollout", "status", "deployment/web", "--timeout=60s"]);
    let images = k.jsonpath(
        &["get", "pods", "-l", "app=web"],
        "{.items[*].spec.containers[0].image}",
    );
    assert!(
        images.split_whitespace().all(|i| i.ends_with(":v1")),
        "rolled back: {images}"
    );

    k.ok(&["run", "solo", "--image=127.0.0.1:5000/web:v1"]);
    k.ok(&["wait", "--for=condition=Ready", "pod/solo", "--timeout=30s"]);

    k.ok(&["delete", "deployment", "web"]);
    eventually(Duration::from_secs(30), || {
        let left = k.ok(&["get", "rs,pods", "-l", "app=web", "-o", "name"]);
        left.trim().is_empty().then_some(())
    });
}

#[test]
fn gpu_pods_land_only_on_gpu_nodes_and_never_exceed_their_gpus() {
    let server = Server::start();
    let _cpu = server.start_sim(
        2,
        "cpu-",
        &["--pool", "cpu", "--capacity", "cpu=8,memory=32Gi,pods=110"],
    );
    let _gpu = server.start_sim(
        2,
        "gpu-",
        &[
            "--pool",
            "gpu",
            "--capacity",
            "cpu=32,memory=256Gi,pods=110,nvidia.com/gpu=2",
            "--taints",
            "nvidia.com/gpu=present:NoSchedule",
        ],
    );
    let k = server.kubectl(KUBECTL_1_33);
    eventually(Duration::from_secs(20), || {
        let names = k.ok(&["get", "nodes", "-o", "name"]);
        (names.lines().count() == 4).then_some(())
    });
    let gpu_job = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: train}
spec:
  replicas: 5
  selector: {matchLabels: {app: train}}
  template:
    metadata: {labels: {app: train}}
    spec:
      nodeSelector: {berth.dev/pool: gpu}
      tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
      containers:
      - name: train
        image: 127.0.0.1:5000/web:v1
        resources: {limits: {nvidia.com/gpu: 1}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api}
spec:
  replicas: 6
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers: [{name: api, image: 127.0.0.1:5000/web:v1, resources: {requests: {cpu: 100m}}}]
"#;
    k.ok_stdin(&["apply", "-f", "-"], gpu_job);
    eventually(Duration::from_secs(40), || {
        (running(&k, "default", "app=train") == 4 && running(&k, "default", "app=api") == 6)
            .then_some(())
    });
    let train = placements(&k, "default", "app=train");
    let mut per_node: HashMap<&str, usize> = HashMap::new();
    for node in train.values().filter(|n| !n.is_empty()) {
        assert!(node.starts_with("gpu-"), "GPU pod on {node}");
        *per_node.entry(node).or_default() += 1;
    }
    assert!(
        per_node.values().all(|n| *n <= 2),
        "no node exceeds its 2 GPUs: {per_node:?}"
    );
    assert_eq!(
        train.values().filter(|n| n.is_empty()).count(),
        1,
        "the fifth GPU pod waits"
    );
    let api = placements(&k, "default", "app=api");
    assert!(
        api.values().all(|n| n.starts_with("cpu-")),
        "CPU pods stay off the tainted GPU pool: {api:?}"
    );

    let pending = train
        .iter()
        .find(|(_, n)| n.is_empty())
        .map(|(p, _)| p.clone())
        .unwrap();
    let message = k.jsonpath(
        &["get", "pod", &pending],
        r#"{.status.conditions[?(@.type=="PodScheduled")].message}"#,
    );
    assert!(
        message.starts_with("0/4 nodes are available:")
            && message.contains("Insufficient nvidia.com/gpu"),
        "{message}"
    );
    let events = k.ok(&[
        "get",
        "events",
        "--field-selector",
        &format!("involvedObject.name={pending}"),
    ]);
    assert!(events.contains("FailedScheduling"), "{events}");
}

#[test]
fn rollouts_pause_resume_and_restart() {
    let server = Server::start();
    let _nodes = server.start_sim(2, "cpu-", &[]);
    let k = server.kubectl(KUBECTL_1_33);
    k.ok(&[
        "create",
        "deployment",
        "web",
        "--image=127.0.0.1:5000/web:v1",
        "--replicas=2",
    ]);
    k.ok(&["rollout", "status", "deployment/web", "--timeout=60s"]);
    let replica_sets = || {
        k.ok(&["get", "rs", "-l", "app=web", "-o", "name"])
            .lines()
            .count()
    };
    assert_eq!(replica_sets(), 1);

    k.ok(&["rollout", "pause", "deployment/web"]);
    k.ok(&[
        "set",
        "image",
        "deployment/web",
        "web=127.0.0.1:5000/web:v2",
    ]);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(replica_sets(), 1, "a paused deployment does not roll out");
    k.ok(&["rollout", "resume", "deployment/web"]);
    k.ok(&["rollout", "status", "deployment/web", "--timeout=60s"]);
    assert_eq!(replica_sets(), 2);
    let images = k.jsonpath(
        &["get", "pods", "-l", "app=web"],
        "{.items[*].spec.containers[0].image}",
    );
    assert!(
        images.split_whitespace().all(|i| i.ends_with(":v2")),
        "{images}"
    );

    k.ok(&["rollout", "restart", "deployment/web"]);
    k.ok(&["rollout", "status", "deployment/web", "--timeout=60s"]);
    assert_eq!(replica_sets(), 3, "a restart rolls out a new ReplicaSet");
    let annotation = k.jsonpath(
        &["get", "deploy", "web"],
        "{.spec.template.metadata.annotations}",
    );
    assert!(
        annotation.contains("kubectl.kubernetes.io/restartedAt"),
        "{annotation}"
    );
}

#[test]
fn a_stuck_rollout_exceeds_its_progress_deadline() {
    let server = Server::start();
    let _nodes = server.start_sim(1, "cpu-", &["--capacity", "cpu=2,memory=4Gi,pods=110"]);
    let k = server.kubectl(KUBECTL_1_33);
    let too_big = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: huge}
spec:
  replicas: 1
  progressDeadlineSeconds: 3
  selector: {matchLabels: {app: huge}}
  template:
    metadata: {labels: {app: huge}}
    spec:
      containers: [{name: huge, image: 127.0.0.1:5000/web:v1, resources: {requests: {cpu: "64"}}}]
"#;
    k.ok_stdin(&["apply", "-f", "-"], too_big);
    let out = k.run(&["rollout", "status", "deployment/huge", "--timeout=30s"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(r#"deployment "huge" exceeded its progress deadline"#),
        "{err}"
    );
    let reason = k.jsonpath(
        &["get", "deploy", "huge"],
        r#"{.status.conditions[?(@.type=="Progressing")].reason}"#,
    );
    assert_eq!(reason, "ProgressDeadlineExceeded");
}
