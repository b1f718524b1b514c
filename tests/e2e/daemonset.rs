//! DaemonSets driven with kubectl 1.33 as a user would. On simulated nodes: a
//! DaemonSet reaches a node that joins later and leaves a node whose label
//! stops matching; a RollingUpdate with maxUnavailable 1 never leaves more
//! than one node without an available pod (watched, not polled), one with
//! maxSurge 1 none; `kubectl
//! rollout status|history|undo` work over its ControllerRevisions; a failed
//! daemon pod is replaced; `kubectl drain` refuses daemon pods without
//! `--ignore-daemonsets` and leaves them in place with it. On a real containerd node: the daemon pod runs and a rolling
//! update replaces it.

mod cri_node;
mod support;

use std::collections::BTreeMap;
use std::io::BufReader;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cri_node::{CriNode, Registry};
use serde_json::Value;
use support::{wait_for, Kubectl, Server, KUBECTL_1_33};

const TIMEOUT: Duration = Duration::from_secs(60);
const NS: &str = "ds-e2e";

const LOGS: &str = r#"
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: logs, namespace: ds-e2e}
spec:
  selector: {matchLabels: {app: logs}}
  updateStrategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: 1}}
  template:
    metadata: {labels: {app: logs}}
    spec:
      nodeSelector: {role: logs}
      containers: [{name: agent, image: "example.com/logs:v1"}]
"#;

/// `node → pod names` of the running (not terminating) pods labelled app=NAME.
fn pods_by_node(k: &Kubectl, app: &str) -> BTreeMap<String, Vec<String>> {
    let out = k.jsonpath(
        &["-n", NS, "get", "pods", "-l", &format!("app={app}")],
        r#"{range .items[*]}{.spec.nodeName}={.metadata.name}={.metadata.deletionTimestamp}{"\n"}{end}"#,
    );
    let mut nodes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in out.lines() {
        let parts: Vec<&str> = line.split('=').collect();
        if let [node, name, ""] = parts[..] {
            nodes.entry(node.into()).or_default().push(name.into());
        }
    }
    nodes
}

fn ds_field(k: &Kubectl, name: &str, template: &str) -> String {
    k.jsonpath(&["-n", NS, "get", "ds", name], template)
}

/// Whether a pod (from a watch event) is Ready and not terminating.
fn available(pod: &Value) -> bool {
    pod["metadata"]["deletionTimestamp"].is_null()
        && pod["status"]["conditions"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// Follows `kubectl get pods -w -o json` and records the most nodes (of
/// `nodes`) that were without an available pod at any one time, counting from
/// the first moment every node had one (the initial listing arrives pod by pod).
struct UnavailabilityWatch {
    child: std::process::Child,
    worst: Arc<Mutex<Option<usize>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl UnavailabilityWatch {
    fn start(k: &Kubectl, nodes: &[&str]) -> Self {
        let mut child = k.spawn(&[
            "-n",
            NS,
            "get",
            "pods",
            "-l",
            "app=logs",
            "-w",
            "--output-watch-events",
            "-o",
            "json",
        ]);
        let stdout = child.stdout.take().expect("piped stdout");
        let worst = Arc::new(Mutex::new(None));
        let nodes: Vec<String> = nodes.iter().map(|n| n.to_string()).collect();
        let reader = {
            let worst = worst.clone();
            std::thread::spawn(move || {
                let mut pods: BTreeMap<String, Value> = BTreeMap::new();
                let events = serde_json::Deserializer::from_reader(BufReader::new(stdout))
                    .into_iter::<Value>();
                for event in events.map_while(Result::ok) {
                    let pod = event["object"].clone();
                    let name = pod["metadata"]["name"].as_str().unwrap_or("").to_owned();
                    if event["type"] == "DELETED" {
                        pods.remove(&name);
                    } else {
                        pods.insert(name, pod);
                    }
                    let without = nodes
                        .iter()
                        .filter(|node| {
                            !pods
                                .values()
                                .any(|p| p["spec"]["nodeName"] == node.as_str() && available(p))
                        })
                        .count();
                    let mut worst = worst.lock().unwrap();
                    *worst = match *worst {
                        None if without == 0 => Some(0),
                        None => None,
                        Some(w) => Some(w.max(without)),
                    };
                }
            })
        };
        Self {
            child,
            worst,
            reader: Some(reader),
        }
    }

    /// Waits until every node was seen with an available pod.
    fn wait_armed(&self) {
        support::eventually(TIMEOUT, || self.worst.lock().unwrap().map(|_| ()));
    }

    /// Stops the watch; the most nodes that lacked an available pod at once.
    fn stop(mut self) -> Option<usize> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        let worst = *self.worst.lock().unwrap();
        worst
    }
}

impl Drop for UnavailabilityWatch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sets the image of ds/logs, waits for the rollout, and says the most nodes
/// that were without an available pod at once meanwhile.
fn roll_watched(k: &Kubectl, image: &str) -> Option<usize> {
    let watch = UnavailabilityWatch::start(k, &["ds-a", "ds-b", "ds-c"]);
    watch.wait_armed();
    k.ok(&[
        "-n",
        NS,
        "set",
        "image",
        "ds/logs",
        &format!("agent={image}"),
    ]);
    k.ok(&["-n", NS, "rollout", "status", "ds/logs", "--timeout=90s"]);
    // Events the rollout's last step caused arrive shortly after.
    std::thread::sleep(Duration::from_secs(1));
    watch.stop()
}

#[test]
fn daemon_pods_follow_nodes_roll_one_node_at_a_time_and_survive_drain() {
    let server = Server::start();
    let k = server.kubectl(KUBECTL_1_33);
    let flags = ["--heartbeat-interval", "2s", "--labels", "role=logs"];
    let mut a = server.start_agent("ds-a", &flags);
    let mut b = server.start_agent("ds-b", &flags);
    k.ok(&["create", "namespace", NS]);
    k.ok_stdin(&["apply", "-f", "-"], LOGS);
    wait_for(
        "a daemon pod on each node",
        TIMEOUT,
        &server,
        &mut [&mut a, &mut b],
        || {
            let pods = pods_by_node(&k, "logs");
            (pods.len() == 2 && pods.values().all(|p| p.len() == 1)).then_some(())
        },
    );
    k.ok(&["-n", NS, "rollout", "status", "ds/logs", "--timeout=60s"]);

    // A node that joins later gets a pod; one whose label stops matching loses it.
    let mut c = server.start_agent("ds-c", &flags);
    wait_for(
        "a daemon pod on the new node",
        TIMEOUT,
        &server,
        &mut [&mut a, &mut b, &mut c],
        || pods_by_node(&k, "logs").contains_key("ds-c").then_some(()),
    );
    k.ok(&["label", "node", "ds-c", "role=other", "--overwrite"]);
    wait_for(
        "the pod leaves the node that stopped matching",
        TIMEOUT,
        &server,
        &mut [&mut a, &mut b, &mut c],
        || {
            let pods = pods_by_node(&k, "logs");
            (!pods.contains_key("ds-c") && pods.len() == 2).then_some(())
        },
    );
    k.ok(&["label", "node", "ds-c", "role=logs", "--overwrite"]);
    k.ok(&["-n", NS, "rollout", "status", "ds/logs", "--timeout=60s"]);
    assert_eq!(
        ds_field(
            &k,
            "logs",
            "{.status.desiredNumberScheduled} {.status.numberAvailable} {.status.numberMisscheduled}"
        ),
        "3 3 0"
    );

    // A rolling update with maxUnavailable 1, watched throughout.
    let before = pods_by_node(&k, "logs");
    let worst = roll_watched(&k, "example.com/logs:v2");
    assert_eq!(
        worst,
        Some(1),
        "at most (and at some point) one node without an available pod"
    );
    let after = pods_by_node(&k, "logs");
    assert_eq!(after.len(), 3);
    for (node, pods) in &after {
        assert_ne!(Some(pods), before.get(node), "{node} got a new pod");
    }
    let history = k.ok(&["-n", NS, "rollout", "history", "ds/logs"]);
    let revisions: Vec<&str> = history
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.parse::<u32>().is_ok())
        .collect();
    assert_eq!(revisions, ["1", "2"], "{history}");
    let v1 = k.ok(&["-n", NS, "rollout", "history", "ds/logs", "--revision=1"]);
    assert!(v1.contains("example.com/logs:v1"), "{v1}");

    // Undo goes back to revision 1's template, which becomes revision 3.
    k.ok(&["-n", NS, "rollout", "undo", "ds/logs"]);
    k.ok(&["-n", NS, "rollout", "status", "ds/logs", "--timeout=90s"]);
    assert_eq!(
        ds_field(&k, "logs", "{.spec.template.spec.containers[0].image}"),
        "example.com/logs:v1"
    );
    let revisions = k.jsonpath(
        &["-n", NS, "get", "controllerrevisions", "-l", "app=logs"],
        "{.items[*].revision}",
    );
    let mut revisions: Vec<&str> = revisions.split_whitespace().collect();
    revisions.sort();
    assert_eq!(revisions, ["2", "3"]);
    let images = k.jsonpath(
        &["-n", NS, "get", "pods", "-l", "app=logs"],
        "{.items[*].spec.containers[0].image}",
    );
    assert!(
        images
            .split_whitespace()
            .all(|i| i == "example.com/logs:v1"),
        "{images}"
    );

    // With maxSurge the new pod starts beside the old one: no node is ever without an available pod.
    k.ok(&[
        "-n",
        NS,
        "patch",
        "ds",
        "logs",
        "--type=merge",
        "-p",
        r#"{"spec":{"updateStrategy":{"rollingUpdate":{"maxSurge":1,"maxUnavailable":0}}}}"#,
    ]);
    assert_eq!(
        roll_watched(&k, "example.com/logs:v3"),
        Some(0),
        "a surge leaves every node an available pod"
    );
    wait_for(
        "one pod per node after the surge",
        TIMEOUT,
        &server,
        &mut [&mut a, &mut b, &mut c],
        || {
            let pods = pods_by_node(&k, "logs");
            (pods.len() == 3 && pods.values().all(|p| p.len() == 1)).then_some(())
        },
    );

    // A failed daemon pod is deleted and replaced (upstream's e2e marks it Failed the same way).
    let failed = pods_by_node(&k, "logs")["ds-b"][0].clone();
    k.ok(&[
        "-n",
        NS,
        "patch",
        "pod",
        &failed,
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"Failed"}}"#,
    ]);
    wait_for(
        "the failed pod is replaced",
        TIMEOUT,
        &server,
        &mut [&mut a, &mut b, &mut c],
        || {
            let pods = pods_by_node(&k, "logs");
            let on_b = pods.get("ds-b")?;
            (on_b.len() == 1 && on_b[0] != failed).then_some(())
        },
    );
    let events = k.ok(&[
        "-n",
        NS,
        "get",
        "events",
        "--field-selector",
        "reason=FailedDaemonPod",
        "-o",
        "jsonpath={.items[*].message}",
    ]);
    assert!(
        events.contains(&format!(
            "Found failed daemon pod {NS}/{failed} on node ds-b, will try to kill it"
        )),
        "{events}"
    );
    k.ok(&["-n", NS, "rollout", "status", "ds/logs", "--timeout=60s"]);

    // Drain refuses daemon pods unless told to ignore them, and leaves them be.
    let daemon_pod = pods_by_node(&k, "logs")["ds-a"][0].clone();
    let refused = k.fails(&["drain", "ds-a", "--timeout=30s"]);
    assert!(
        refused
            .contains("cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore)"),
        "{refused}"
    );
    let drained = k.ok(&["drain", "ds-a", "--ignore-daemonsets", "--timeout=60s"]);
    assert!(drained.contains("node/ds-a drained"), "{drained}");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(pods_by_node(&k, "logs")["ds-a"], [daemon_pod]);
    k.ok(&["uncordon", "ds-a"]);
    a.assert_running();
}

#[test]
fn daemon_pod_runs_on_a_real_node_and_a_rolling_update_replaces_it() {
    let registry = Registry::start();
    // A cluster range of its own, so this node's bridge never overlaps another test's.
    let cidr = format!("10.{}.0.0/16", 150 + registry.port % 50);
    let server = Server::start_with(&["--cluster-cidr", &cidr]);
    let k = server.kubectl(KUBECTL_1_33);
    let mut node = CriNode::start(&server, &registry, "ds-real");
    k.ok(&["create", "namespace", NS]);
    let manifest = format!(
        r#"
apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: web, namespace: {NS}}}
spec:
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: {}
        env: [{{name: VERSION, value: "1"}}]
"#,
        registry.image("web:1")
    );
    k.ok_stdin(&["apply", "-f", "-"], &manifest);
    k.ok(&["-n", NS, "rollout", "status", "ds/web", "--timeout=120s"]);
    let first = wait_for(
        "the daemon pod runs",
        TIMEOUT,
        &server,
        &mut [&mut node.agent],
        || {
            let pods = pods_by_node(&k, "web");
            let name = pods.get("ds-real")?.first()?.clone();
            let phase = k.jsonpath(&["-n", NS, "get", "pod", &name], "{.status.phase}");
            (phase == "Running").then_some(name)
        },
    );
    k.ok(&["-n", NS, "set", "env", "ds/web", "VERSION=2"]);
    k.ok(&["-n", NS, "rollout", "status", "ds/web", "--timeout=120s"]);
    wait_for(
        "the new pod replaces the old",
        TIMEOUT,
        &server,
        &mut [&mut node.agent],
        || {
            let pods = pods_by_node(&k, "web");
            let names = pods.get("ds-real")?;
            let name = names.first()?;
            let env = k.jsonpath(
                &["-n", NS, "get", "pod", name],
                "{.status.phase} {.spec.containers[0].env[0].value}",
            );
            (names.len() == 1 && *name != first && env == "Running 2").then_some(())
        },
    );
    k.ok(&["delete", "namespace", NS, "--timeout=60s"]);
}
