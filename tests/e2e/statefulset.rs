//! StatefulSets driven with kubectl 1.33 as a user would, on a simulated
//! node: three replicas start in order (web-1 is created only after web-0 is
//! Ready, seen on one watch), each with its hostname, subdomain and claim
//! from the volumeClaimTemplate; a deleted pod comes back under its name;
//! scaling down removes the highest ordinal (and its claim, whenScaled:
//! Delete); a rolling update with partition 2 replaces only web-2, then all;
//! `kubectl rollout status|history|undo` work over the ControllerRevisions.
//! On a real containerd node: two replicas run, each with its own hostname.

mod cri_node;
mod support;

use std::collections::BTreeMap;
use std::io::BufReader;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cri_node::{CriNode, Registry};
use serde_json::Value;
use support::{wait_for, BerthProcess, Kubectl, Server, KUBECTL_1_33};

const TIMEOUT: Duration = Duration::from_secs(60);
const NS: &str = "sts-e2e";

const WEB: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: nginx, namespace: sts-e2e}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web, namespace: sts-e2e}
spec:
  serviceName: nginx
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "example.com/web:v1"}]
"#;

/// Claims are created but not bound yet, and agents cannot mount them: these
/// pods never start, so Parallel management is what lets the set scale.
const DATA: &str = r#"
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: data, namespace: sts-e2e}
spec:
  serviceName: data
  replicas: 2
  podManagementPolicy: Parallel
  selector: {matchLabels: {app: data}}
  persistentVolumeClaimRetentionPolicy: {whenDeleted: Delete, whenScaled: Delete}
  template:
    metadata: {labels: {app: data}}
    spec:
      terminationGracePeriodSeconds: 0
      containers: [{name: db, image: "example.com/db:v1"}]
  volumeClaimTemplates:
  - metadata: {name: www}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
"#;

/// Whether a pod (from a watch event) is Ready and not terminating.
fn ready(pod: &Value) -> bool {
    pod["metadata"]["deletionTimestamp"].is_null()
        && pod["status"]["conditions"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// Follows `kubectl get pods -w` and records, for each pod, whether its
/// predecessor had been seen Ready when the pod first appeared.
struct OrderWatch {
    child: std::process::Child,
    seen: Arc<Mutex<BTreeMap<String, bool>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl OrderWatch {
    fn start(k: &Kubectl) -> Self {
        let mut child = k.spawn(&[
            "-n",
            NS,
            "get",
            "pods",
            "-l",
            "app=web",
            "-w",
            "--output-watch-events",
            "-o",
            "json",
        ]);
        let stdout = child.stdout.take().expect("piped stdout");
        let seen = Arc::new(Mutex::new(BTreeMap::new()));
        let reader = {
            let seen = seen.clone();
            std::thread::spawn(move || {
                let mut was_ready = std::collections::BTreeSet::new();
                let events = serde_json::Deserializer::from_reader(BufReader::new(stdout))
                    .into_iter::<Value>();
                for event in events.map_while(Result::ok) {
                    let pod = &event["object"];
                    let name = pod["metadata"]["name"].as_str().unwrap_or("").to_owned();
                    let ordinal: u32 = name.trim_start_matches("web-").parse().unwrap_or(0);
                    let predecessor_ready =
                        ordinal == 0 || was_ready.contains(&format!("web-{}", ordinal - 1));
                    seen.lock()
                        .unwrap()
                        .entry(name.clone())
                        .or_insert(predecessor_ready);
                    if ready(pod) {
                        was_ready.insert(name);
                    }
                }
            })
        };
        Self {
            child,
            seen,
            reader: Some(reader),
        }
    }

    fn stop(mut self) -> BTreeMap<String, bool> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for OrderWatch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `name=image` of the live pods, sorted by name.
fn images(k: &Kubectl) -> String {
    let out = k.jsonpath(
        &["-n", NS, "get", "pods", "-l", "app=web"],
        r#"{range .items[*]}{.metadata.name}={.spec.containers[0].image}={.metadata.deletionTimestamp}{"\n"}{end}"#,
    );
    let mut pods: Vec<String> = out
        .lines()
        .filter(|l| l.ends_with('='))
        .map(|l| l.trim_end_matches('=').to_owned())
        .collect();
    pods.sort();
    pods.join(" ")
}

fn claims(k: &Kubectl) -> String {
    k.jsonpath(
        &["-n", NS, "get", "pvc"],
        r#"{range .items[*]}{.metadata.name}{" "}{end}"#,
    )
    .trim()
    .to_owned()
}

fn sts_field(k: &Kubectl, template: &str) -> String {
    k.jsonpath(&["-n", NS, "get", "sts", "web"], template)
}

/// `kubectl rollout status sts/NAME`, failing with the pods, the set, its
/// events and the controller's log lines when it does not complete.
fn rollout(k: &Kubectl, server: &Server, name: &str, timeout: &str) {
    let target = format!("sts/{name}");
    let out = k.run(&[
        "-n",
        NS,
        "rollout",
        "status",
        &target,
        &format!("--timeout={timeout}"),
    ]);
    if out.status.success() {
        return;
    }
    let pods = k.run(&["-n", NS, "get", "pods", "-o", "wide", "--show-labels"]);
    let set = k.run(&["-n", NS, "get", &target, "-o", "yaml"]);
    let events = k.run(&["-n", NS, "get", "events"]);
    let log: Vec<String> = server
        .log()
        .lines()
        .filter(|l| l.contains("statefulset"))
        .map(str::to_owned)
        .collect();
    panic!(
        "rollout of {target} did not complete: {}\npods:\n{}\nset:\n{}\nevents:\n{}\nlog:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&pods.stdout),
        String::from_utf8_lossy(&set.stdout),
        String::from_utf8_lossy(&events.stdout),
        log.join("\n")
    );
}

#[test]
fn pods_start_in_order_keep_their_names_and_roll_by_partition() {
    let server = Server::start();
    let k = server.kubectl(KUBECTL_1_33);
    let mut node = server.start_agent("sts-a", &["--heartbeat-interval", "2s"]);
    k.ok(&["create", "namespace", NS]);
    let watch = OrderWatch::start(&k);
    k.ok_stdin(&["apply", "-f", "-"], WEB);
    rollout(&k, &server, "web", "90s");
    let order = watch.stop();
    assert_eq!(
        order,
        BTreeMap::from([
            ("web-0".to_owned(), true),
            ("web-1".to_owned(), true),
            ("web-2".to_owned(), true)
        ]),
        "each pod appeared only after its predecessor was Ready"
    );
    let identity = k.jsonpath(
        &["-n", NS, "get", "pod", "web-1"],
        "{.spec.hostname} {.spec.subdomain} {.metadata.labels.statefulset\\.kubernetes\\.io/pod-name} {.metadata.labels.apps\\.kubernetes\\.io/pod-index}",
    );
    assert_eq!(identity, "web-1 nginx web-1 1");
    assert_eq!(
        sts_field(
            &k,
            "{.status.replicas} {.status.readyReplicas} {.status.availableReplicas}"
        ),
        "3 3 3"
    );

    // A deleted pod comes back under its own name.
    delete_and_await_recreation(&k, &server, &mut node, "web-1");
    rollout(&k, &server, "web", "60s");

    // Scaling down removes the highest ordinal.
    k.ok(&["-n", NS, "scale", "sts/web", "--replicas=2"]);
    wait_for("web-2 gone", TIMEOUT, &server, &mut [&mut node], || {
        (images(&k) == "web-0=example.com/web:v1 web-1=example.com/web:v1").then_some(())
    });
    k.ok(&["-n", NS, "scale", "sts/web", "--replicas=3"]);
    rollout(&k, &server, "web", "60s");

    // A partitioned rolling update replaces only web-2.
    k.ok(&["-n", NS, "patch", "sts", "web", "-p", r#"{"spec":{"updateStrategy":{"rollingUpdate":{"partition":2}},"template":{"spec":{"containers":[{"name":"web","image":"example.com/web:v2"}]}}}}"#]);
    rollout(&k, &server, "web", "60s");
    assert_eq!(
        images(&k),
        "web-0=example.com/web:v1 web-1=example.com/web:v1 web-2=example.com/web:v2"
    );
    // Deleting a pod below the partition recreates it at the old revision.
    delete_and_await_recreation(&k, &server, &mut node, "web-0");
    rollout(&k, &server, "web", "60s");
    wait_for(
        "web-0 back at v1",
        TIMEOUT,
        &server,
        &mut [&mut node],
        || {
            images(&k)
                .starts_with("web-0=example.com/web:v1 web-1")
                .then_some(())
        },
    );
    k.ok(&[
        "-n",
        NS,
        "patch",
        "sts",
        "web",
        "-p",
        r#"{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}"#,
    ]);
    rollout(&k, &server, "web", "90s");
    assert_eq!(
        images(&k),
        "web-0=example.com/web:v2 web-1=example.com/web:v2 web-2=example.com/web:v2"
    );
    assert_eq!(
        sts_field(&k, "{.status.updatedReplicas} {.status.currentReplicas}"),
        "3 3"
    );
    assert_eq!(
        sts_field(&k, "{.status.currentRevision}"),
        sts_field(&k, "{.status.updateRevision}")
    );

    // History and undo.
    let history = k.ok(&["-n", NS, "rollout", "history", "sts/web"]);
    let numbers = |history: &str| {
        history
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|w| w.parse::<u32>().is_ok())
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(numbers(&history), ["1", "2"], "{history}");
    let v1 = k.ok(&["-n", NS, "rollout", "history", "sts/web", "--revision=1"]);
    assert!(v1.contains("example.com/web:v1"), "{v1}");
    k.ok(&["-n", NS, "rollout", "undo", "sts/web"]);
    rollout(&k, &server, "web", "90s");
    assert_eq!(
        images(&k),
        "web-0=example.com/web:v1 web-1=example.com/web:v1 web-2=example.com/web:v1"
    );
    let history = k.ok(&["-n", NS, "rollout", "history", "sts/web"]);
    assert_eq!(numbers(&history), ["2", "3"], "{history}");
    let events = k.ok(&[
        "-n",
        NS,
        "get",
        "events",
        "--field-selector",
        "involvedObject.kind=StatefulSet",
    ]);
    assert!(
        events.contains("create Pod web-0 in StatefulSet web successful"),
        "{events}"
    );

    // Pods orphaned by `--cascade=orphan` are adopted by the set applied
    // again, which adopts its orphaned ControllerRevisions too: the pods keep
    // their revision and are not rolled.
    let uids = || {
        let template = "{.items[*].metadata.uid}";
        k.jsonpath(&["-n", NS, "get", "pods", "-l", "app=web"], template)
    };
    let before = uids();
    let owners = || {
        let template = "{.items[*].metadata.ownerReferences[*].name}";
        k.jsonpath(&["-n", NS, "get", "pods", "-l", "app=web"], template)
    };
    k.ok(&["-n", NS, "delete", "sts", "web", "--cascade=orphan"]);
    wait_for(
        "the pods orphaned",
        TIMEOUT,
        &server,
        &mut [&mut node],
        || owners().trim().is_empty().then_some(()),
    );
    k.ok_stdin(&["apply", "-f", "-"], WEB);
    wait_for(
        "the orphans adopted",
        TIMEOUT,
        &server,
        &mut [&mut node],
        || (owners() == "web web web").then_some(()),
    );
    rollout(&k, &server, "web", "60s");
    assert_eq!(uids(), before, "the adopted pods were replaced");

    // Claims from volumeClaimTemplates, deleted as the retention policy says.
    k.ok_stdin(&["apply", "-f", "-"], DATA);
    wait_for("claims created", TIMEOUT, &server, &mut [&mut node], || {
        (claims(&k) == "www-data-0 www-data-1").then_some(())
    });
    let volume = k.jsonpath(
        &["-n", NS, "get", "pod", "data-1"],
        "{.spec.volumes[0].name}={.spec.volumes[0].persistentVolumeClaim.claimName}",
    );
    assert_eq!(volume, "www=www-data-1");
    k.ok(&["-n", NS, "scale", "sts/data", "--replicas=1"]);
    wait_for(
        "the scaled-down claim deleted",
        TIMEOUT,
        &server,
        &mut [&mut node],
        || (claims(&k) == "www-data-0").then_some(()),
    );
    k.ok(&["-n", NS, "delete", "sts", "data"]);
    wait_for(
        "claims deleted with the set",
        TIMEOUT,
        &server,
        &mut [&mut node],
        || claims(&k).is_empty().then_some(()),
    );
    let events = k.ok(&["-n", NS, "get", "events"]);
    assert!(
        events.contains("create Claim www-data-0 Pod data-0 in StatefulSet data success"),
        "{events}"
    );
}

#[test]
fn replicas_run_on_a_real_node_with_stable_hostnames() {
    let registry = Registry::start();
    // A cluster range of its own, so this node's bridge never overlaps another test's.
    let cidr = format!("10.{}.0.0/16", 150 + registry.port % 50);
    let server = Server::start_with(&["--cluster-cidr", &cidr]);
    let k = server.kubectl(KUBECTL_1_33);
    let mut node = CriNode::start(&server, &registry, "sts-real");
    k.ok(&["create", "namespace", NS]);
    let manifest = format!(
        r#"
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: db, namespace: {NS}}}
spec:
  serviceName: db
  replicas: 2
  selector: {{matchLabels: {{app: db}}}}
  template:
    metadata: {{labels: {{app: db}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: db
        image: {}
        command: ["sh", "-c", "echo I am $(hostname); sleep 3600"]
"#,
        registry.image("web:1")
    );
    k.ok_stdin(&["apply", "-f", "-"], &manifest);
    rollout(&k, &server, "db", "120s");
    for pod in ["db-0", "db-1"] {
        wait_for(
            "the pod prints its hostname",
            TIMEOUT,
            &server,
            &mut [&mut node.agent],
            || {
                let out = k.run(&["-n", NS, "logs", pod]);
                String::from_utf8_lossy(&out.stdout)
                    .contains(&format!("I am {pod}"))
                    .then_some(())
            },
        );
    }
    k.ok(&["delete", "namespace", NS, "--timeout=60s"]);
}

/// Deletes `pod` without kubectl's wait and waits for the controller's new pod
/// of that name. (`kubectl delete` waits for a DELETED event after listing the
/// name; on a simulated node the pod can be gone and recreated before that
/// list, and kubectl then waits for the new pod's deletion, for ever.)
fn delete_and_await_recreation(k: &Kubectl, server: &Server, node: &mut BerthProcess, pod: &str) {
    let uid = k.jsonpath(&["-n", NS, "get", "pod", pod], "{.metadata.uid}");
    k.ok(&["-n", NS, "delete", "pod", pod, "--wait=false"]);
    wait_for(
        &format!("{pod} recreated"),
        TIMEOUT,
        server,
        &mut [node],
        || {
            let now = k.run(&[
                "-n",
                NS,
                "get",
                "pod",
                pod,
                "-o",
                "jsonpath={.metadata.uid}",
            ]);
            let now = String::from_utf8_lossy(&now.stdout).to_string();
            (!now.is_empty() && now != uid).then_some(())
        },
    );
}
