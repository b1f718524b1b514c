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
use support::{wait_for, wait_pod_ready, Kubectl, Server, KUBECTL_1_31};

/// How long a first pod may take to pull, unpack and start: three of these
/// tests share two cores in CI, and a 60 s `kubectl wait` once ran out.
const SLOW_START: Duration = Duration::from_secs(150);

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

/// `curl http://ADDRESS` (`/` added when ADDRESS names no path).
fn http_get(address: &str) -> String {
    let url = if address.contains('/') {
        format!("http://{address}")
    } else {
        format!("http://{address}/")
    };
    let output = Command::new("curl")
        .args(["-s", "-m", "5", &url])
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
    wait_pod_ready(&kubectl, &server, &mut [&mut node.agent], "web", SLOW_START);
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

    // The API server goes away: pods keep running, and what happened
    // meanwhile (a killed process, restarted by the agent) is reported once
    // it is back.
    let mut server = server;
    server.kill9();
    let adopted_task = running_id.trim_start_matches("containerd://").to_owned();
    node.ctr(&["task", "kill", "--signal", "SIGKILL", &adopted_task]);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        http_get(&ip).trim(),
        "hello from the init container",
        "the pod is restarted and serves while the API server is down"
    );
    server.restart();
    let kubectl = server.kubectl(KUBECTL_1_31);
    wait_for(
        "the agent reports the restart once the API server is back",
        Duration::from_secs(60),
        &server,
        &mut [&mut node.agent],
        || {
            (jsonpath(
                &kubectl,
                "web",
                "{.status.containerStatuses[0].restartCount}",
            ) == "2")
                .then_some(())
        },
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
    let reasons = kubectl.jsonpath(
        &["get", "events"],
        r#"{range .items[?(@.involvedObject.name=="crash")]}{.reason}/{.type}/{.involvedObject.fieldPath} {end}"#,
    );
    for expected in [
        "Pulled/Normal/spec.containers{crash}",
        "Created/Normal/spec.containers{crash}",
        "Started/Normal/spec.containers{crash}",
        "BackOff/Warning/spec.containers{crash}",
    ] {
        assert!(
            reasons.contains(expected),
            "{expected} missing from the pod's events: {reasons}"
        );
    }
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
    wait_pod_ready(&kubectl, &server, &mut [&mut node.agent], "probed", SLOW_START);
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

const CHATTY_POD: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {mode: fast}
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
stringData: {token: s3cr3t}
---
apiVersion: v1
kind: Pod
metadata: {name: chatty, labels: {app: chatty}}
spec:
  initContainers:
  - name: page
    image: REGISTRY/web:1
    command: ["sh", "-c", "echo writing the page; echo hello from the init container > /www/index.html"]
    volumeMounts: [{name: www, mountPath: /www}]
  containers:
  - name: server
    image: REGISTRY/web:1
    env:
    - {name: MODE, valueFrom: {configMapKeyRef: {name: settings, key: mode}}}
    - {name: TOKEN, valueFrom: {secretKeyRef: {name: creds, key: token}}}
    - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    volumeMounts:
    - {name: www, mountPath: /www}
    - {name: settings, mountPath: /etc/settings, readOnly: true}
    - {name: podinfo, mountPath: /etc/podinfo}
  - name: counter
    image: REGISTRY/web:1
    command: ["sh", "-c", "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.2; done"]
  volumes:
  - name: www
    emptyDir: {}
  - name: settings
    configMap: {name: settings}
  - name: podinfo
    downwardAPI:
      items: [{path: labels, fieldRef: {fieldPath: metadata.labels}}]
"#;

/// Reads lines from `reader` until one contains `needle` (or 20 s pass).
fn read_until(reader: impl std::io::Read + Send + 'static, needle: &str) -> Vec<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        // Keep draining after the caller stops listening: a closed pipe
        // would kill kubectl (SIGPIPE) on its next line of output.
        for line in std::io::BufReader::new(reader)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            let done = line.contains(needle);
            seen.push(line);
            if done {
                return seen;
            }
        }
    }
    panic!("never saw {needle:?}; got {seen:?}");
}

#[test]
fn kubectl_logs_exec_port_forward_cp_and_describe_work_on_real_pods() {
    let registry = Registry::start();
    let cidr = format!("10.{}.0.0/16", 50 + registry.port % 50);
    let server = Server::start_with(&["--cluster-cidr", &cidr]);
    let kubectl = server.kubectl(KUBECTL_1_31);
    let mut node = CriNode::start(&server, &registry, "real3");
    kubectl.ok_stdin(
        &["apply", "-f", "-"],
        &CHATTY_POD.replace("REGISTRY", &registry.host()),
    );
    kubectl.ok_stdin(
        &["apply", "-f", "-"],
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: crash}}\nspec:\n  containers:\n  - {{name: crash, image: {}}}\n",
            registry.image("crash:1")
        ),
    );
    wait_pod_ready(&kubectl, &server, &mut [&mut node.agent], "chatty", SLOW_START);

    // logs: init container, --tail, -f, --previous, and upstream's error without -c.
    assert_eq!(
        kubectl.ok(&["logs", "chatty", "-c", "page"]).trim(),
        "writing the page"
    );
    // kubectl picks the first container itself; the API asks for one.
    let defaulted = kubectl.run(&["logs", "chatty"]);
    assert!(
        String::from_utf8_lossy(&defaulted.stderr).contains("Defaulted container \"server\""),
        "{defaulted:?}"
    );
    let error = kubectl.fails(&["get", "--raw", "/api/v1/namespaces/default/pods/chatty/log"]);
    assert!(
        error.contains(
            "a container name must be specified for pod chatty, choose one of: [page server counter]"
        ),
        "{error}"
    );
    std::thread::sleep(Duration::from_secs(1));
    let tail = kubectl.ok(&["logs", "chatty", "-c", "counter", "--tail=2"]);
    assert_eq!(tail.lines().count(), 2, "{tail}");
    assert!(tail.lines().all(|l| l.starts_with("line ")), "{tail}");
    let stamped = kubectl.ok(&[
        "logs",
        "chatty",
        "-c",
        "counter",
        "--tail=1",
        "--timestamps",
    ]);
    assert!(
        stamped.starts_with("20") && stamped.contains("Z line "),
        "{stamped}"
    );
    let mut follow = kubectl.spawn(&["logs", "-f", "chatty", "-c", "counter", "--tail=1"]);
    let first: usize = read_until(follow.stdout.take().unwrap(), "line ")
        .last()
        .and_then(|l| l.trim_start_matches("line ").parse().ok())
        .unwrap();
    let mut follow_on = kubectl.spawn(&["logs", "-f", "chatty", "-c", "counter"]);
    let later = format!("line {}", first + 5);
    read_until(follow_on.stdout.take().unwrap(), &later);
    let _ = follow.kill();
    let _ = follow_on.kill();
    let _ = (follow.wait(), follow_on.wait());
    wait_for(
        "the crashing pod restarts",
        Duration::from_secs(30),
        &server,
        &mut [&mut node.agent],
        || {
            (jsonpath(
                &kubectl,
                "crash",
                "{.status.containerStatuses[0].restartCount}",
            ) != "0")
                .then_some(())
        },
    );
    assert_eq!(
        kubectl.ok(&["logs", "crash", "--previous"]).trim(),
        "crash: exiting with status 1"
    );

    // exec: plain, with stdin, and with a terminal (through `script`, which gives kubectl a pty).
    assert_eq!(
        kubectl
            .ok(&[
                "exec",
                "chatty",
                "-c",
                "server",
                "--",
                "cat",
                "/www/index.html"
            ])
            .trim(),
        "hello from the init container"
    );
    let configured = kubectl.ok(&[
        "exec",
        "chatty",
        "-c",
        "server",
        "--",
        "sh",
        "-c",
        "echo $MODE $TOKEN $POD_NAME; cat /etc/settings/mode; echo; cat /etc/podinfo/labels",
    ]);
    assert_eq!(configured, "fast s3cr3t chatty\nfast\napp=\"chatty\"\n");
    let echoed = kubectl.ok_stdin(
        &[
            "exec",
            "-i",
            "chatty",
            "-c",
            "server",
            "--",
            "sh",
            "-c",
            "cat > /www/note.txt; cat /www/note.txt",
        ],
        "from stdin\n",
    );
    assert_eq!(echoed.trim(), "from stdin");
    let failed = kubectl.run(&["exec", "chatty", "-c", "server", "--", "sh", "-c", "exit 3"]);
    assert_eq!(
        failed.status.code(),
        Some(3),
        "exec passes the exit code on"
    );
    let tty = std::process::Command::new("script")
        .args(["-qec"])
        .arg(format!(
            "{KUBECTL_1_31} --kubeconfig {} exec -it chatty -c server -- sh -c 'tty; exit'",
            server.kubeconfig().display()
        ))
        .arg("/dev/null")
        .output()
        .unwrap();
    let tty_out = String::from_utf8_lossy(&tty.stdout);
    assert!(
        tty_out.contains("/dev/pts/"),
        "exec -it got no terminal: {tty_out}"
    );

    // port-forward to the server container's port 80.
    let local = support::free_port();
    let mut forward = kubectl.spawn(&["port-forward", "pod/chatty", &format!("{local}:80")]);
    read_until(forward.stdout.take().unwrap(), "Forwarding from");
    let page = http_get(&format!("127.0.0.1:{local}"));
    let _ = forward.kill();
    let output = forward.wait_with_output().unwrap();
    assert_eq!(
        page.trim(),
        "hello from the init container",
        "port-forward: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    // cp in both directions (tar through exec).
    let dir = tempfile::tempdir().unwrap();
    let down = dir.path().join("index.html");
    kubectl.ok(&[
        "cp",
        "-c",
        "server",
        "chatty:/www/index.html",
        down.to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_to_string(&down).unwrap().trim(),
        "hello from the init container"
    );
    let up = dir.path().join("up.txt");
    std::fs::write(&up, "uploaded\n").unwrap();
    kubectl.ok(&[
        "cp",
        "-c",
        "server",
        up.to_str().unwrap(),
        "chatty:/www/up.txt",
    ]);
    let ip = jsonpath(&kubectl, "chatty", "{.status.podIP}");
    assert_eq!(http_get(&format!("{ip}/up.txt")).trim(), "uploaded");

    // A Service's ClusterIP leads to the pod, from the node and from a pod.
    kubectl.ok(&["expose", "pod", "chatty", "--port=8080", "--target-port=80"]);
    let cluster_ip = kubectl.jsonpath(&["get", "service", "chatty"], "{.spec.clusterIP}");
    wait_for(
        "the Service's ClusterIP answers on the node",
        Duration::from_secs(30),
        &server,
        &mut [&mut node.agent],
        || {
            (http_get(&format!("{cluster_ip}:8080")).trim() == "hello from the init container")
                .then_some(())
        },
    );
    let through_service = kubectl.ok(&[
        "exec",
        "chatty",
        "-c",
        "counter",
        "--",
        "wget",
        "-qO-",
        &format!("http://{cluster_ip}:8080/"),
    ]);
    assert_eq!(through_service.trim(), "hello from the init container");
    // A NodePort answers on the node's own addresses: here the bridge
    // gateway, as a pod sees it (the node's loopback InternalIP does not
    // forward, as with upstream's nftables proxy).
    kubectl.ok(&[
        "expose",
        "pod",
        "chatty",
        "--name=chatty-np",
        "--type=NodePort",
        "--port=80",
    ]);
    let node_port = kubectl.jsonpath(
        &["get", "service", "chatty-np"],
        "{.spec.ports[0].nodePort}",
    );
    let gateway = {
        let (network, _) = ip.rsplit_once('.').unwrap();
        format!("{network}.1")
    };
    let through_node_port = wait_for(
        "the NodePort answers on the node's address",
        Duration::from_secs(30),
        &server,
        &mut [&mut node.agent],
        || {
            let out = kubectl.run(&[
                "exec",
                "chatty",
                "-c",
                "counter",
                "--",
                "wget",
                "-qO-",
                &format!("http://{gateway}:{node_port}/"),
            ]);
            Some(String::from_utf8_lossy(&out.stdout).into_owned())
                .filter(|page| page.trim() == "hello from the init container")
        },
    );
    assert_eq!(through_node_port.trim(), "hello from the init container");

    // describe tells the story a user expects.
    let described = kubectl.ok(&["describe", "pod", "chatty"]);
    for expected in [
        "Init Containers:",
        "Restart Count:",
        "State:          Running",
        "Ready:          True",
        "Service Account:  default",
    ] {
        assert!(
            described.contains(expected),
            "{expected:?} missing from:\n{described}"
        );
    }
    // kubectl aligns the values to its longest label, so only the line's words are fixed.
    assert!(
        described
            .lines()
            .any(|line| line.starts_with("Node:") && line.contains(" real3/")),
        "the node line is missing from:\n{described}"
    );
    kubectl.ok(&["delete", "pods", "--all", "--timeout=60s"]);
}
