//! Real pods on a real node: `berth server` and `berth agent --runtime cri`
//! with its own containerd, images from the offline test registry, driven
//! with kubectl 1.31. Covers the web-server example (an initContainer writes
//! the page into an emptyDir the server shares; `curl` to the pod IP returns
//! it), restarts after a killed process, CrashLoopBackOff with growing
//! back-off, ImagePullBackOff, OOMKilled, a completed pod, adoption across
//! an agent restart, and that deleting pods leaves nothing on the node.

mod cri_node;
mod support;

use std::process::Command;
use std::time::Duration;

use cri_node::{CriNode, Registry};
use support::{wait_for, Kubectl, Server, KUBECTL_1_31};

const WEB_POD: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  initContainers:
  - name: page
    image: REGISTRY/web:1
    command: ["sh", "-c", "echo hello from the init container > /www/index.html"]
    volumeMounts: [{name: www, mountPath: /www}]
  containers:
  - name: server
    image: REGISTRY/web:1
    env: [{name: GREETING, value: hi}]
    volumeMounts: [{name: www, mountPath: /www}]
  volumes:
  - name: www
    emptyDir: {}
"#;

const OOM_POD: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: hog}
spec:
  restartPolicy: Never
  containers:
  - name: hog
    image: REGISTRY/web:1
    command: ["sh", "-c", "x=$(head -c 67108864 /dev/zero | tr '\\0' a); echo survived"]
    resources: {limits: {memory: 16Mi}}
"#;

fn jsonpath(kubectl: &Kubectl, pod: &str, template: &str) -> String {
    kubectl.jsonpath(&["get", "pod", pod], template)
}

fn http_get(ip: &str) -> String {
    let output = Command::new("curl")
        .args(["-s", "-m", "5", &format!("http://{ip}/")])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn real_pods_run_restart_fail_as_upstream_and_leave_nothing_behind() {
    let registry = Registry::start();
    // A cluster range of its own, so this node's bridge never overlaps another test's.
    let cidr = format!("10.{}.0.0/16", 100 + registry.port % 50);
    let server = Server::start_with(&["--cluster-cidr", &cidr]);
    let kubectl = server.kubectl(KUBECTL_1_31);
    let mut node = CriNode::start(&server, &registry, "real1");
    let with_registry = |text: &str| text.replace("REGISTRY", &registry.host());

    wait_for(
        "the node registers Ready with this machine's capacity",
        Duration::from_secs(60),
        &server,
        &mut [&mut node.agent],
        || {
            // Not found until the agent has registered it.
            let out = kubectl.run(&[
                "get",
                "node",
                "real1",
                "-o",
                r#"jsonpath={.status.conditions[?(@.type=="Ready")].status}"#,
            ]);
            (String::from_utf8_lossy(&out.stdout) == "True").then_some(())
        },
    );
    let runtime = kubectl.jsonpath(
        &["get", "node", "real1"],
        "{.status.nodeInfo.containerRuntimeVersion}",
    );
    assert!(runtime.starts_with("containerd://1."), "{runtime}");
    let kernel = kubectl.jsonpath(
        &["get", "node", "real1"],
        "{.status.nodeInfo.kernelVersion}",
    );
    let osrelease = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert_eq!(kernel, osrelease.trim());
    let memory = kubectl.jsonpath(&["get", "node", "real1"], "{.status.capacity.memory}");
    assert!(memory.ends_with("Ki") || memory.ends_with("Gi"), "{memory}");

    // Pods that take a while to show their states go first.
    kubectl.ok(&[
        "run",
        "missing",
        &format!("--image={}", registry.image("no-such-image:1")),
    ]);
    kubectl.ok(&[
        "run",
        "once",
        "--restart=Never",
        &format!("--image={}", registry.image("done:1")),
    ]);
    kubectl.ok_stdin(&["apply", "-f", "-"], &with_registry(OOM_POD));
    kubectl.ok_stdin(&["apply", "-f", "-"], &with_registry(WEB_POD));

    // The web server example.
    kubectl.ok(&["wait", "--for=condition=Ready", "pod/web", "--timeout=60s"]);
    let ip = jsonpath(&kubectl, "web", "{.status.podIP}");
    assert!(
        ip.starts_with(&cidr[..cidr.len() - 6]),
        "{ip} not in {cidr}"
    );
    assert_eq!(http_get(&ip).trim(), "hello from the init container");
    let init = jsonpath(
        &kubectl,
        "web",
        "{.status.initContainerStatuses[0].state.terminated.reason}",
    );
    assert_eq!(init, "Completed");
    let listing = kubectl.ok(&["get", "pod", "web"]);
    assert!(
        listing.contains("1/1") && listing.contains("Running"),
        "{listing}"
    );

    // Killing the server's process restarts it (restartCount 1).
    let first_id = jsonpath(
        &kubectl,
        "web",
        "{.status.containerStatuses[0].containerID}",
    );
    let task = first_id.trim_start_matches("containerd://");
    node.ctr(&["task", "kill", "--signal", "SIGKILL", task]);
    let restarted = wait_for(
        "the killed server restarts",
        Duration::from_secs(30),
        &server,
        &mut [&mut node.agent],
        || {
            let out = jsonpath(
                &kubectl,
                "web",
                "{.status.containerStatuses[0].restartCount} {.status.containerStatuses[0].ready} {.status.containerStatuses[0].lastState.terminated.exitCode}",
            );
            out.starts_with("1 true").then_some(out)
        },
    );
    assert_eq!(restarted, "1 true 137");
    assert_eq!(
        http_get(&ip).trim(),
        "hello from the init container",
        "the emptyDir outlives the restart"
    );

    // Adoption: the agent restarts, the running container is the same one.
    let running_id = jsonpath(
        &kubectl,
        "web",
        "{.status.containerStatuses[0].containerID}",
    );
    node.restart(&server);
    assert_eq!(
        http_get(&ip).trim(),
        "hello from the init container",
        "pods run on while the agent is down"
    );
    let agent_log = node.agent.log_path();
    wait_for(
        "the restarted agent registers the node again",
        Duration::from_secs(30),
        &server,
        &mut [],
        || {
            let log = std::fs::read_to_string(&agent_log).unwrap_or_default();
            (log.matches("nodes registered").count() >= 2).then_some(())
        },
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        jsonpath(
            &kubectl,
            "web",
            "{.status.containerStatuses[0].containerID}"
        ),
        running_id,
        "the running container is adopted, not replaced"
    );

    // Completed, OOMKilled, ImagePullBackOff, CrashLoopBackOff with growing
    // back-off (started after the agent restart, which forgets back-off as
    // kubelet's does).
    kubectl.ok(&[
        "run",
        "crash",
        &format!("--image={}", registry.image("crash:1")),
    ]);
    wait_for(
        "the run-once pod succeeds",
        Duration::from_secs(30),
        &server,
        &mut [&mut node.agent],
        || (jsonpath(&kubectl, "once", "{.status.phase}") == "Succeeded").then_some(()),
    );
    assert_eq!(
        jsonpath(
            &kubectl,
            "once",
            "{.status.containerStatuses[0].state.terminated.reason}"
        ),
        "Completed"
    );
    let hog = wait_for(
        "the memory hog is OOMKilled",
        Duration::from_secs(30),
        &server,
        &mut [&mut node.agent],
        || {
            let out = jsonpath(
                &kubectl,
                "hog",
                "{.status.phase} {.status.containerStatuses[0].state.terminated.reason}",
            );
            out.starts_with("Failed").then_some(out)
        },
    );
    assert_eq!(hog, "Failed OOMKilled");
    wait_for(
        "the missing image backs off",
        Duration::from_secs(30),
        &server,
        &mut [&mut node.agent],
        || {
            (jsonpath(
                &kubectl,
                "missing",
                "{.status.containerStatuses[0].state.waiting.reason}",
            ) == "ImagePullBackOff")
                .then_some(())
        },
    );
    let crash_state = || {
        jsonpath(
            &kubectl,
            "crash",
            "{.status.containerStatuses[0].state.waiting.reason} {.status.containerStatuses[0].restartCount} {.status.containerStatuses[0].state.waiting.message}",
        )
    };
    let first = wait_for(
        "the crashing pod backs off for 10s after its first restart",
        Duration::from_secs(30),
        &server,
        &mut [&mut node.agent],
        || Some(crash_state()).filter(|s| s.contains("back-off 10s")),
    );
    assert!(first.starts_with("CrashLoopBackOff 1 "), "{first}");
    let second = wait_for(
        "the crashing pod backs off for 20s after its second restart",
        Duration::from_secs(30),
        &server,
        &mut [&mut node.agent],
        || Some(crash_state()).filter(|s| s.contains("back-off 20s")),
    );
    assert!(second.starts_with("CrashLoopBackOff 2 "), "{second}");
    assert!(kubectl
        .ok(&["get", "pod", "crash"])
        .contains("CrashLoopBackOff"));
    assert_eq!(
        jsonpath(
            &kubectl,
            "crash",
            "{.status.containerStatuses[0].lastState.terminated.exitCode}"
        ),
        "1"
    );

    // Deleting every pod leaves no container, sandbox, interface or file.
    kubectl.ok(&["delete", "pods", "--all", "--timeout=60s"]);
    assert_eq!(kubectl.ok(&["get", "pods", "-o", "name"]).trim(), "");
    let left = wait_for(
        "the node has nothing left",
        Duration::from_secs(30),
        &server,
        &mut [],
        || {
            let containers = node.ctr(&["containers", "list", "--quiet"]);
            let on_bridge = Command::new("ip")
                .args(["-o", "link", "show", "master", &node.bridge()])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            let pods_dir = std::fs::read_dir(node.data_dir.join("pods"))
                .map(|d| d.count())
                .unwrap_or(0);
            let logs_dir = std::fs::read_dir(node.data_dir.join("logs"))
                .map(|d| d.count())
                .unwrap_or(0);
            let mounts = std::fs::read_to_string("/proc/self/mounts")
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains(&format!("{}/pods", node.data_dir.display())))
                .count();
            let state = (
                containers.trim().to_owned(),
                on_bridge.trim().to_owned(),
                pods_dir,
                logs_dir,
                mounts,
            );
            (state == (String::new(), String::new(), 0, 0, 0)).then_some(state)
        },
    );
    assert_eq!(left.0, "");
}

const PROBED_POD: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: probed
  labels: {app: probed}
spec:
  terminationGracePeriodSeconds: 3
  containers:
  - name: server
    image: REGISTRY/web:1
    ports: [{name: http, containerPort: 80}]
    readinessProbe:
      httpGet: {path: /ready.html, port: http}
      periodSeconds: 1
      failureThreshold: 1
    livenessProbe:
      exec: {command: ["test", "-f", "/www/alive"]}
      periodSeconds: 1
      failureThreshold: 2
    lifecycle:
      preStop:
        exec: {command: ["sh", "-c", "echo bye > /www/prestop-ran"]}
    volumeMounts: [{name: www, mountPath: /www}]
  volumes:
  - name: www
    hostPath: {path: HOSTDIR}
---
apiVersion: v1
kind: Service
metadata: {name: probed}
spec:
  selector: {app: probed}
  ports: [{port: 80, targetPort: http}]
"#;

const STUBBORN_POD: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: stubborn}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: ignores-term
    image: REGISTRY/web:1
    command: ["sh", "-c", "trap '' TERM; while true; do sleep 1; done"]
"#;

#[test]
fn probes_gate_readiness_restart_unhealthy_containers_and_termination_is_graceful() {
    let registry = Registry::start();
    let cidr = format!("10.{}.0.0/16", 150 + registry.port % 50);
    let server = Server::start_with(&["--cluster-cidr", &cidr]);
    let kubectl = server.kubectl(KUBECTL_1_31);
    let mut node = CriNode::start(&server, &registry, "real2");
    let site = tempfile::tempdir().unwrap();
    for file in ["index.html", "ready.html", "alive"] {
        std::fs::write(site.path().join(file), "ok\n").unwrap();
    }
    let manifest = PROBED_POD
        .replace("REGISTRY", &registry.host())
        .replace("HOSTDIR", &site.path().display().to_string());
    kubectl.ok_stdin(&["apply", "-f", "-"], &manifest);
    kubectl.ok_stdin(
        &["apply", "-f", "-"],
        &STUBBORN_POD.replace("REGISTRY", &registry.host()),
    );
    kubectl.ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/probed",
        "--timeout=60s",
    ]);
    let ip = jsonpath(&kubectl, "probed", "{.status.podIP}");
    let endpoints = |field: &str| {
        kubectl.jsonpath(
            &["get", "endpoints", "probed"],
            &format!("{{.subsets[*].{field}[*].ip}}"),
        )
    };
    wait_for(
        "the ready pod is an endpoint",
        Duration::from_secs(20),
        &server,
        &mut [&mut node.agent],
        || (endpoints("addresses") == ip).then_some(()),
    );

    // Readiness failure: out of the endpoints, back in once it passes again.
    std::fs::remove_file(site.path().join("ready.html")).unwrap();
    wait_for(
        "a failing readiness probe makes the pod unready",
        Duration::from_secs(20),
        &server,
        &mut [&mut node.agent],
        || {
            let ready = jsonpath(
                &kubectl,
                "probed",
                r#"{.status.conditions[?(@.type=="Ready")].status}"#,
            );
            (ready == "False"
                && endpoints("notReadyAddresses") == ip
                && endpoints("addresses").is_empty())
            .then_some(())
        },
    );
    assert_eq!(
        jsonpath(
            &kubectl,
            "probed",
            "{.status.containerStatuses[0].restartCount}"
        ),
        "0",
        "readiness never restarts"
    );
    std::fs::write(site.path().join("ready.html"), "ok\n").unwrap();
    wait_for(
        "a passing readiness probe puts it back",
        Duration::from_secs(20),
        &server,
        &mut [&mut node.agent],
        || (endpoints("addresses") == ip).then_some(()),
    );

    // Liveness failure: the container is restarted.
    std::fs::remove_file(site.path().join("alive")).unwrap();
    wait_for(
        "a failing liveness probe restarts the container",
        Duration::from_secs(30),
        &server,
        &mut [&mut node.agent],
        || {
            (jsonpath(
                &kubectl,
                "probed",
                "{.status.containerStatuses[0].restartCount}",
            ) == "1")
                .then_some(())
        },
    );
    std::fs::write(site.path().join("alive"), "ok\n").unwrap();
    kubectl.ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/probed",
        "--timeout=30s",
    ]);

    // Graceful termination: preStop runs before SIGTERM; a container that
    // ignores SIGTERM is killed when the grace period ends.
    kubectl.ok(&["delete", "pod", "probed", "--timeout=30s"]);
    assert_eq!(
        std::fs::read_to_string(site.path().join("prestop-ran"))
            .unwrap()
            .trim(),
        "bye"
    );
    let started = std::time::Instant::now();
    kubectl.ok(&["delete", "pod", "stubborn", "--timeout=30s"]);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(15),
        "deleting a pod that ignores SIGTERM with a 2s grace period took {took:?}"
    );
}
