//! PodDisruptionBudgets, the Eviction API and `kubectl drain` end to end:
//! `berth server` (scheduler and controllers in-process) with simulated
//! agents, driven by kubectl 1.33 as a user runs it. A Deployment of 3 under
//! a budget of minAvailable 2; the disruption controller keeps the budget's
//! status; evictions that would break it answer upstream's 429 (and several
//! budgets upstream's 500); `kubectl drain` cordons a node holding two of the
//! pods, evicts one, retries the other on 429 until its replacement is ready
//! elsewhere, and finishes; `kubectl uncordon` makes the node schedulable.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use support::{wait_for, BerthProcess, Kubectl, Server, KUBECTL_1_31, KUBECTL_1_33};

/// `node → web pods on it` of the pods not being deleted.
fn web_pods_by_node(kubectl: &Kubectl) -> BTreeMap<String, Vec<String>> {
    let mut by_node: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let listed = kubectl.jsonpath(
        &["get", "pods", "-l", "app=web"],
        r#"{range .items[*]}{.metadata.name} {.spec.nodeName} {.metadata.deletionTimestamp}{"\n"}{end}"#,
    );
    for line in listed.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        if fields.len() >= 2 && fields.get(2).is_none_or(|d| d.is_empty()) {
            by_node
                .entry(fields[1].to_owned())
                .or_default()
                .push(fields[0].to_owned());
        }
    }
    by_node
}

/// `currentHealthy desiredHealthy expectedPods disruptionsAllowed reason` of budget `name`.
fn budget_status(kubectl: &Kubectl, name: &str) -> String {
    kubectl.jsonpath(
        &["get", "pdb", name],
        r#"{.status.currentHealthy} {.status.desiredHealthy} {.status.expectedPods} {.status.disruptionsAllowed} {.status.conditions[?(@.type=="DisruptionAllowed")].reason}"#,
    )
}

/// Waits until budget `name` reports `wanted` for its observed generation.
fn wait_for_budget(
    server: &Server,
    kubectl: &Kubectl,
    agents: &mut [&mut BerthProcess],
    name: &str,
    wanted: &str,
) {
    wait_for(
        &format!("pdb {name} reports {wanted}"),
        Duration::from_secs(30),
        server,
        agents,
        || {
            let generation = kubectl.jsonpath(
                &["get", "pdb", name],
                "{.metadata.generation} {.status.observedGeneration}",
            );
            let synced = generation.split_once(' ').is_some_and(|(g, o)| g == o);
            (synced && budget_status(kubectl, name) == wanted).then_some(())
        },
    );
}

/// Patches budget `web` to `minAvailable: min` and waits until it reports `wanted`.
fn set_min_available(
    server: &Server,
    kubectl: &Kubectl,
    agents: &mut [&mut BerthProcess],
    min: u32,
    wanted: &str,
) {
    let patch = format!(r#"{{"spec":{{"minAvailable":{min}}}}}"#);
    kubectl.ok(&["patch", "pdb", "web", "--type=merge", "-p", &patch]);
    wait_for_budget(server, kubectl, agents, "web", wanted);
}

/// Posts an Eviction of `pod` with `kubectl create --raw`: the output.
fn evict(kubectl: &Kubectl, dir: &std::path::Path, pod: &str) -> std::process::Output {
    let body = dir.join(format!("evict-{pod}.json"));
    std::fs::write(
        &body,
        format!(r#"{{"apiVersion":"policy/v1","kind":"Eviction","metadata":{{"name":"{pod}","namespace":"default"}}}}"#),
    )
    .unwrap();
    kubectl.run(&[
        "create",
        "--raw",
        &format!("/api/v1/namespaces/default/pods/{pod}/eviction"),
        "-f",
        &body.to_string_lossy(),
    ])
}

/// `POST` of an Eviction of `pod` with curl and the admin token, as a client
/// library sends it: the HTTP code and the decoded `Status`.
fn evict_raw(server: &Server, pod: &str) -> (u16, serde_json::Value) {
    let dir = server.data_dir();
    let token = std::fs::read_to_string(dir.join("tls/admin.token")).unwrap();
    let body = format!(
        r#"{{"apiVersion":"policy/v1","kind":"Eviction","metadata":{{"name":"{pod}","namespace":"default"}}}}"#
    );
    let out = std::process::Command::new("curl")
        .args(["-sS", "-o", "-", "-w", "\n%{http_code}", "--cacert"])
        .arg(dir.join("tls/ca.crt"))
        .args(["-H", &format!("Authorization: Bearer {}", token.trim())])
        .args([
            "-H",
            "Content-Type: application/json",
            "-X",
            "POST",
            "--data",
            &body,
        ])
        .arg(format!(
            "https://{}:{}/api/v1/namespaces/default/pods/{pod}/eviction",
            server.host, server.port
        ))
        .output()
        .expect("curl is installed by tests/run-all.sh");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (status, code) = text.rsplit_once('\n').expect("curl wrote the code");
    (
        code.trim().parse().unwrap(),
        serde_json::from_str(status).unwrap_or_else(|e| panic!("{e}: {status}")),
    )
}

/// kubectl 1.33 sends protobuf bodies (the Eviction among them).
#[test]
fn drain_evicts_within_the_budget_and_refusals_match_upstream() {
    drain_under_a_budget(KUBECTL_1_33);
}

/// kubectl 1.31 sends JSON.
#[test]
fn drain_with_a_json_kubectl() {
    drain_under_a_budget(KUBECTL_1_31);
}

fn drain_under_a_budget(kubectl_binary: &str) {
    let server = Server::start();
    let kubectl = server.kubectl(kubectl_binary);
    let dir = tempfile::tempdir().unwrap();
    let heartbeat = ["--heartbeat-interval", "2s"];
    let mut a = server.start_agent("drain-a", &heartbeat);
    let mut b = server.start_agent("drain-b", &heartbeat);

    kubectl.ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx:1.27",
        "--replicas=3",
    ]);
    kubectl.ok(&[
        "create",
        "poddisruptionbudget",
        "web",
        "--selector=app=web",
        "--min-available=2",
    ]);
    // Two nodes for three pods: one node holds two of them.
    let placed = wait_for(
        "web is 3 available on two nodes",
        Duration::from_secs(40),
        &server,
        &mut [&mut a, &mut b],
        || {
            let available =
                kubectl.jsonpath(&["get", "deployment", "web"], "{.status.availableReplicas}");
            let pods = web_pods_by_node(&kubectl);
            (available == "3" && pods.values().map(Vec::len).sum::<usize>() == 3).then_some(pods)
        },
    );
    wait_for_budget(
        &server,
        &kubectl,
        &mut [&mut a, &mut b],
        "web",
        "3 2 3 1 SufficientPods",
    );
    let table = kubectl.ok(&["get", "pdb"]);
    let lines: Vec<Vec<&str>> = table
        .lines()
        .map(|l| {
            l.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect()
        })
        .collect();
    assert_eq!(
        lines[0],
        [
            "NAME",
            "MIN AVAILABLE",
            "MAX UNAVAILABLE",
            "ALLOWED DISRUPTIONS",
            "AGE"
        ],
        "{table}"
    );
    assert_eq!(lines[1][..4], ["web", "2", "N/A", "1"], "{table}");

    // A budget that allows nothing refuses with upstream's 429.
    set_min_available(
        &server,
        &kubectl,
        &mut [&mut a, &mut b],
        3,
        "3 3 3 0 InsufficientPods",
    );
    let victim = placed.values().next().unwrap()[0].clone();
    let refused = evict(&kubectl, dir.path(), &victim);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success(),
        "eviction of {victim} went through"
    );
    assert!(
        stderr.contains(
            "Error from server (TooManyRequests): Cannot evict pod as it would violate the pod's disruption budget."
        ),
        "{stderr}"
    );
    let (code, status) = evict_raw(&server, &victim);
    assert_eq!(code, 429, "{status}");
    assert_eq!(status["reason"], "TooManyRequests", "{status}");
    assert_eq!(
        status["details"]["causes"],
        serde_json::json!([{
            "reason": "DisruptionBudget",
            "message": "The disruption budget web needs 3 healthy pods and has 3 currently"
        }]),
        "{status}"
    );
    // A dry run through a budget that allows one disruption spends nothing.
    set_min_available(
        &server,
        &kubectl,
        &mut [&mut a, &mut b],
        2,
        "3 2 3 1 SufficientPods",
    );
    let dry = kubectl.run(&[
        "drain",
        "drain-a",
        "--dry-run=server",
        "--ignore-daemonsets",
        "--timeout=20s",
    ]);
    assert!(
        dry.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&dry.stdout),
        String::from_utf8_lossy(&dry.stderr)
    );
    assert_eq!(budget_status(&kubectl, "web"), "3 2 3 1 SufficientPods");
    assert_eq!(
        kubectl.jsonpath(&["get", "node", "drain-a"], "{.spec.unschedulable}"),
        ""
    );

    // Two budgets over one pod: upstream's 500.
    kubectl.ok(&[
        "create",
        "poddisruptionbudget",
        "web-too",
        "--selector=app=web",
        "--max-unavailable=1",
    ]);
    let twice = evict(&kubectl, dir.path(), &victim);
    let stderr = String::from_utf8_lossy(&twice.stderr);
    assert!(!twice.status.success());
    assert!(
        stderr.contains(
            "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
        ),
        "{stderr}"
    );
    let (code, status) = evict_raw(&server, &victim);
    assert_eq!(
        (code, &status["status"]),
        (500, &serde_json::json!("Failure")),
        "{status}"
    );
    kubectl.ok(&["delete", "pdb", "web-too"]);

    // A third node takes the replacements; drain the node holding two pods.
    let mut c = server.start_agent("drain-c", &heartbeat);
    wait_for(
        "drain-c is Ready",
        Duration::from_secs(20),
        &server,
        &mut [&mut a, &mut b, &mut c],
        || {
            // NotFound until the agent has registered it.
            let out = kubectl.run(&[
                "get",
                "node",
                "drain-c",
                "-o",
                r#"jsonpath={.status.conditions[?(@.type=="Ready")].status}"#,
            ]);
            let ready = String::from_utf8_lossy(&out.stdout).into_owned();
            (ready == "True").then_some(())
        },
    );
    let (node, pods) = placed
        .iter()
        .find(|(_, pods)| pods.len() >= 2)
        .expect("one of two nodes holds two of three pods");
    let drained = kubectl.run(&[
        "drain",
        node,
        "--ignore-daemonsets",
        "--delete-emptydir-data",
        "--timeout=120s",
    ]);
    let stdout = String::from_utf8_lossy(&drained.stdout);
    let stderr = String::from_utf8_lossy(&drained.stderr);
    println!("kubectl drain {node}:\n{stdout}{stderr}");
    assert!(
        drained.status.success(),
        "drain failed\nstdout: {stdout}\nstderr: {stderr}\nserver log:\n{}",
        server.log()
    );
    assert!(
        stdout.contains(&format!("node/{node} cordoned")),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("node/{node} drained")), "{stdout}");
    for pod in pods {
        assert!(
            stdout.contains(&format!("pod/{pod} evicted")),
            "{pod} not evicted: {stdout}"
        );
    }
    // The second eviction waited for the budget: kubectl retried it on 429.
    assert!(
        stderr.contains("Cannot evict pod as it would violate the pod's disruption budget.")
            && stderr.contains("will retry after 5s"),
        "no eviction was refused: {stderr}"
    );
    assert_eq!(
        kubectl.jsonpath(&["get", "node", node], "{.spec.unschedulable}"),
        "true"
    );
    wait_for(
        "web is 3 available again, none on the drained node",
        Duration::from_secs(40),
        &server,
        &mut [&mut a, &mut b, &mut c],
        || {
            let available =
                kubectl.jsonpath(&["get", "deployment", "web"], "{.status.availableReplicas}");
            let pods = web_pods_by_node(&kubectl);
            (available == "3" && !pods.contains_key(node.as_str())).then_some(())
        },
    );
    wait_for_budget(
        &server,
        &kubectl,
        &mut [&mut a, &mut b, &mut c],
        "web",
        "3 2 3 1 SufficientPods",
    );

    // An eviction's DisruptionTarget left standing on a pod that was not
    // deleted is reset to False once it is two minutes old.
    let survivor = web_pods_by_node(&kubectl)
        .into_values()
        .flatten()
        .next()
        .unwrap();
    let long_ago = std::process::Command::new("date")
        .args(["-u", "-d", "-180 seconds", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .unwrap();
    let long_ago = String::from_utf8_lossy(&long_ago.stdout).trim().to_owned();
    kubectl.ok(&[
        "patch",
        "pod",
        &survivor,
        "--subresource=status",
        "-p",
        &format!(
            r#"{{"status":{{"conditions":[{{"type":"DisruptionTarget","status":"True","reason":"EvictionByEvictionAPI","message":"Eviction API: evicting","lastTransitionTime":"{long_ago}"}}]}}}}"#
        ),
    ]);
    wait_for(
        "the stale DisruptionTarget condition is reset to False",
        Duration::from_secs(30),
        &server,
        &mut [&mut a, &mut b, &mut c],
        || {
            let status = kubectl.jsonpath(
                &["get", "pod", &survivor],
                r#"{.status.conditions[?(@.type=="DisruptionTarget")].status}"#,
            );
            (status == "False").then_some(())
        },
    );

    kubectl.ok(&["uncordon", node]);
    assert_eq!(
        kubectl.jsonpath(&["get", "node", node], "{.spec.unschedulable}"),
        ""
    );
}
