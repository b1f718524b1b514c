//! Deployments resized mid-rollout and ReplicaSets whose pods the API refuses,
//! driven by kubectl as a user would: `kubectl scale` during a stuck (and a
//! paused) rollout spreads the change over the old and new ReplicaSets in
//! proportion to their sizes, and a refused pod creation shows as the
//! ReplicaFailure condition on the ReplicaSet and its Deployment until the
//! ReplicaSet manages its pods again.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use support::{eventually, wait_for, Kubectl, Server, KUBECTL_1_33};

const TIMEOUT: Duration = Duration::from_secs(60);

/// `image → spec.replicas` of the ReplicaSets labelled `app=web` in `namespace`.
fn sizes(k: &Kubectl, namespace: &str) -> BTreeMap<String, i32> {
    let out = k.jsonpath(
        &["-n", namespace, "get", "rs", "-l", "app=web"],
        r#"{range .items[*]}{.spec.template.spec.containers[0].image}={.spec.replicas}{"\n"}{end}"#,
    );
    out.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(image, n)| (image.to_owned(), n.parse().unwrap_or(-1)))
        .collect()
}

fn expect(pairs: &[(&str, i32)]) -> BTreeMap<String, i32> {
    pairs
        .iter()
        .map(|(tag, n)| (format!("127.0.0.1:5000/web:{tag}"), *n))
        .collect()
}

/// A jsonpath over the Deployment `web` in `namespace`.
fn deployment(k: &Kubectl, namespace: &str, template: &str) -> String {
    k.jsonpath(&["-n", namespace, "get", "deploy", "web"], template)
}

const WEB: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 10
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 3, maxUnavailable: 2}}
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "127.0.0.1:5000/web:v1"}]
"#;

#[test]
fn scaling_mid_rollout_spreads_replicas_over_old_and_new_replica_sets() {
    let server = Server::start();
    let mut nodes = server.start_sim(1, "cpu-", &[]);
    let k = server.kubectl(KUBECTL_1_33);
    let node = wait_for("the node", TIMEOUT, &server, &mut [&mut nodes], || {
        let name = k.jsonpath(&["get", "nodes"], "{.items[*].metadata.name}");
        (!name.trim().is_empty()).then(|| name.trim().to_owned())
    });
    k.ok_stdin(&["apply", "-f", "-"], WEB);
    k.ok(&["rollout", "status", "deployment/web", "--timeout=60s"]);

    // New pods cannot be scheduled on the cordoned node, so the rollout stops
    // where upstream's would: 10+3 pods, at least 10-2 of them available.
    k.ok(&["cordon", &node]);
    k.ok(&[
        "set",
        "image",
        "deployment/web",
        "web=127.0.0.1:5000/web:v2",
    ]);
    let stuck = expect(&[("v1", 8), ("v2", 5)]);
    wait_for(
        "the rollout stops at 8+5",
        TIMEOUT,
        &server,
        &mut [&mut nodes],
        || (sizes(&k, "default") == stuck).then_some(()),
    );

    // 10 -> 20 with surge 3: 13 becomes 23; v1 gets round(8*23/13)=14, v2 the rest.
    k.ok(&["scale", "deployment", "web", "--replicas=20"]);
    let grown = expect(&[("v1", 14), ("v2", 9)]);
    wait_for(
        "proportional scale-up",
        TIMEOUT,
        &server,
        &mut [&mut nodes],
        || (sizes(&k, "default") == grown).then_some(()),
    );
    let annotations = k.jsonpath(
        &["get", "rs", "-l", "app=web"],
        r#"{range .items[*]}{.metadata.annotations.deployment\.kubernetes\.io/desired-replicas}/{.metadata.annotations.deployment\.kubernetes\.io/max-replicas} {end}"#,
    );
    assert_eq!(
        annotations.split_whitespace().collect::<Vec<_>>(),
        ["20/23", "20/23"]
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        sizes(&k, "default"),
        grown,
        "the rollout holds within 20+3 pods afterwards"
    );

    // Paused mid-rollout, 20 -> 10 shrinks both the same way: 23 becomes 13.
    k.ok(&["rollout", "pause", "deployment/web"]);
    k.ok(&["scale", "deployment", "web", "--replicas=10"]);
    wait_for(
        "proportional scale-down while paused",
        TIMEOUT,
        &server,
        &mut [&mut nodes],
        || (sizes(&k, "default") == stuck).then_some(()),
    );
    let reason = deployment(
        &k,
        "default",
        r#"{.status.conditions[?(@.type=="Progressing")].reason}"#,
    );
    assert_eq!(reason, "DeploymentPaused");

    k.ok(&["uncordon", &node]);
    k.ok(&["rollout", "resume", "deployment/web"]);
    let status = k.ok(&["rollout", "status", "deployment/web", "--timeout=60s"]);
    assert!(status.contains("successfully rolled out"), "{status}");
    assert_eq!(sizes(&k, "default"), expect(&[("v1", 0), ("v2", 10)]));
}

/// The namespace's finalizers, through `namespaces/NAME/finalize` as a
/// controller (or an operator) releases or holds a namespace.
fn finalize(k: &Kubectl, namespace: &str, finalizers: &[&str]) {
    let body = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": namespace},
        "spec": {"finalizers": finalizers},
    });
    let path = format!("/api/v1/namespaces/{namespace}/finalize");
    k.ok_stdin(&["replace", "--raw", &path, "-f", "-"], &body.to_string());
}

#[test]
fn refused_pod_creations_show_as_replica_failure_until_pods_are_managed_again() {
    let server = Server::start();
    let k = server.kubectl(KUBECTL_1_33);
    k.ok(&["create", "namespace", "doomed"]);
    // Another party holds the namespace, so it stays Terminating with its
    // contents; the API then refuses new pods in it, as upstream's
    // NamespaceLifecycle admission does, while updates still go through.
    finalize(&k, "doomed", &["example.com/hold"]);
    k.ok(&[
        "-n",
        "doomed",
        "create",
        "deployment",
        "web",
        "--image=127.0.0.1:5000/web:v1",
        "--replicas=1",
    ]);
    eventually(TIMEOUT, || {
        (deployment(&k, "doomed", "{.status.replicas}") == "1").then_some(())
    });
    k.ok(&["delete", "namespace", "doomed", "--wait=false"]);
    let phase = k.jsonpath(&["get", "namespace", "doomed"], "{.status.phase}");
    assert_eq!(phase, "Terminating");

    k.ok(&["-n", "doomed", "scale", "deployment", "web", "--replicas=3"]);
    let on_rs = r#"{.items[0].status.conditions[?(@.type=="ReplicaFailure")]}"#;
    let on_deployment = r#"{.status.conditions[?(@.type=="ReplicaFailure")]}"#;
    let (status, reason, message) = eventually(TIMEOUT, || {
        let rs = k.jsonpath(&["-n", "doomed", "get", "rs", "-l", "app=web"], on_rs);
        let parsed: serde_json::Value = serde_json::from_str(&rs).ok()?;
        Some((
            parsed["status"].as_str()?.to_owned(),
            parsed["reason"].as_str()?.to_owned(),
            parsed["message"].as_str()?.to_owned(),
        ))
    });
    assert_eq!((status.as_str(), reason.as_str()), ("True", "FailedCreate"));
    assert!(message.contains("being terminated"), "{message}");
    let copied = eventually(TIMEOUT, || {
        let d = deployment(&k, "doomed", on_deployment);
        serde_json::from_str::<serde_json::Value>(&d).ok()
    });
    assert_eq!(copied["status"], "True");
    assert_eq!(copied["reason"], "FailedCreate");
    assert_eq!(copied["message"], message.as_str());
    let progressing = deployment(
        &k,
        "doomed",
        r#"{.status.conditions[?(@.type=="Progressing")].status}"#,
    );
    assert_eq!(
        progressing, "True",
        "a refusal is not yet a deadline overrun"
    );

    // Back to the pods it has: the ReplicaSet manages them without error, and
    // the condition goes from both objects.
    k.ok(&["-n", "doomed", "scale", "deployment", "web", "--replicas=1"]);
    eventually(TIMEOUT, || {
        let rs = k.jsonpath(&["-n", "doomed", "get", "rs", "-l", "app=web"], on_rs);
        let d = deployment(&k, "doomed", on_deployment);
        (rs.is_empty() && d.is_empty()).then_some(())
    });
    finalize(&k, "doomed", &[]);
}
