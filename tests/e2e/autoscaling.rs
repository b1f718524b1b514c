//! Horizontal pod autoscaling on a real node: a Deployment whose pod burns
//! CPU (request 50m, limit 100m) gets `kubectl autoscale --cpu-percent=50
//! --min=1 --max=3` (kubectl 1.33, autoscaling/v2); the HPA scales it to 3
//! with upstream's SuccessfulRescale event and status, and once the load
//! stops (a file the loop checks) and a short scale-down window is set in
//! `behavior`, back to 1. An HPA whose target does not exist reports
//! AbleToScale False / FailedGetScale.

mod cri_node;
mod support;

use std::time::Duration;

use cri_node::{CriNode, Registry};
use serde_json::Value;
use support::{wait_for, Server, KUBECTL_1_33};

const NODE: &str = "hpa-1";
const NAMESPACE: &str = "hpa-e2e";

const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: burn, namespace: hpa-e2e}
spec:
  replicas: 1
  selector: {matchLabels: {app: burn}}
  template:
    metadata: {labels: {app: burn}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: burn
        image: REGISTRY/web:1
        command: ["sh", "-c", "while [ ! -f /tmp/idle ]; do :; done; exec sleep 100000"]
        resources:
          requests: {cpu: 50m}
          limits: {cpu: 100m}
"#;

const GHOST: &str = r#"
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: ghost, namespace: hpa-e2e}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: ghost}
  maxReplicas: 2
"#;

/// The HPA as JSON.
fn hpa(kubectl: &support::Kubectl, name: &str) -> Value {
    let text = kubectl.ok(&["get", "hpa", name, "-n", NAMESPACE, "-o", "json"]);
    serde_json::from_str(&text).unwrap()
}

/// The condition `type_` of an HPA as (status, reason).
fn condition(hpa: &Value, type_: &str) -> Option<(String, String)> {
    hpa.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .map(|c| {
            (
                c["status"].as_str().unwrap_or_default().to_owned(),
                c["reason"].as_str().unwrap_or_default().to_owned(),
            )
        })
}

/// The messages of the HPA's events with `reason`.
fn events(kubectl: &support::Kubectl, name: &str, reason: &str) -> Vec<String> {
    let selector = format!("involvedObject.name={name},reason={reason}");
    let text = kubectl.ok(&[
        "get",
        "events",
        "-n",
        NAMESPACE,
        "--field-selector",
        &selector,
        "-o",
        "jsonpath={range .items[*]}{.message}{\"\\n\"}{end}",
    ]);
    text.lines().map(str::to_owned).collect()
}

/// The `burn` HPA once its desiredReplicas is `replicas` (within 2 minutes).
fn wait_for_desired(
    server: &Server,
    node: &mut CriNode,
    kubectl: &support::Kubectl,
    replicas: i64,
) -> Value {
    wait_for(
        &format!("the HPA scales the Deployment to {replicas}"),
        Duration::from_secs(120),
        server,
        &mut [&mut node.agent],
        || {
            std::thread::sleep(Duration::from_secs(1));
            let burn = hpa(kubectl, "burn");
            (burn["status"]["desiredReplicas"] == replicas).then_some(burn)
        },
    )
}

#[test]
fn hpa_scales_a_deployment_up_under_cpu_load_and_back_down_after_the_window() {
    let registry = Registry::start();
    // A cluster range of its own, so this node's bridge never overlaps another test's.
    let cidr = format!("10.{}.0.0/16", 1 + registry.port % 40);
    let server = Server::start_with(&[
        "--cluster-cidr",
        &cidr,
        "--horizontal-pod-autoscaler-sync-period",
        "2s",
    ]);
    let kubectl = server.kubectl(KUBECTL_1_33);
    let mut node = CriNode::start(&server, &registry, NODE);
    kubectl.ok(&["create", "namespace", NAMESPACE]);
    kubectl.ok_stdin(
        &["apply", "-f", "-"],
        &DEPLOYMENT.replace("REGISTRY", &registry.host()),
    );

    // A target that does not exist: the HPA cannot get its scale.
    // (kubectl autoscale refuses a missing target, so the HPA is applied.)
    kubectl.ok_stdin(&["apply", "-f", "-"], GHOST);
    wait_for(
        "the HPA of a missing target reports FailedGetScale",
        Duration::from_secs(30),
        &server,
        &mut [&mut node.agent],
        || {
            let ghost = hpa(&kubectl, "ghost");
            (condition(&ghost, "AbleToScale") == Some(("False".into(), "FailedGetScale".into())))
                .then_some(())
        },
    );
    let failed = events(&kubectl, "ghost", "FailedGetScale");
    assert!(
        failed.iter().any(|m| m.contains("\"ghost\" not found")),
        "{failed:?}"
    );

    kubectl.ok(&[
        "autoscale",
        "deployment",
        "burn",
        "-n",
        NAMESPACE,
        "--cpu-percent=50",
        "--min=1",
        "--max=3",
    ]);
    let created = hpa(&kubectl, "burn");
    assert_eq!(created["apiVersion"], "autoscaling/v2");
    assert_eq!(
        created["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
        50
    );

    // The busy pod (about 100m against a 50m request) drives it to the maximum.
    let scaled_up = wait_for_desired(&server, &mut node, &kubectl, 3);
    eprintln!("scaled up: {}", scaled_up["status"]);
    let utilization = scaled_up
        .pointer("/status/currentMetrics/0/resource/current/averageUtilization")
        .and_then(Value::as_i64)
        .unwrap();
    assert!(utilization > 100, "{}", scaled_up["status"]);
    assert!(scaled_up["status"]["lastScaleTime"].is_string());
    assert_eq!(
        condition(&scaled_up, "ScalingActive"),
        Some(("True".into(), "ValidMetricFound".into()))
    );
    let rescaled = events(&kubectl, "burn", "SuccessfulRescale");
    assert!(
        rescaled.contains(
            &"New size: 3; reason: cpu resource utilization (percentage of request) above target"
                .to_owned()
        ),
        "{rescaled:?}"
    );
    let replicas = kubectl.ok(&[
        "get",
        "deployment",
        "burn",
        "-n",
        NAMESPACE,
        "-o",
        "jsonpath={.spec.replicas}",
    ]);
    assert_eq!(replicas, "3");
    let table = kubectl.ok(&["get", "hpa", "burn", "-n", NAMESPACE]);
    assert!(
        table.contains("cpu: ") && table.contains("%/50%"),
        "{table}"
    );

    // Stop the load in every pod, with a short scale-down window.
    kubectl.ok(&[
        "patch",
        "hpa",
        "burn",
        "-n",
        NAMESPACE,
        "--type=merge",
        "-p",
        r#"{"spec":{"behavior":{"scaleDown":{"stabilizationWindowSeconds":5}}}}"#,
    ]);
    let pods = wait_for(
        "the 3 pods run",
        Duration::from_secs(60),
        &server,
        &mut [&mut node.agent],
        || {
            let out = kubectl.ok(&[
                "get",
                "pods",
                "-n",
                NAMESPACE,
                "-l",
                "app=burn",
                "--field-selector=status.phase=Running",
                "-o",
                "name",
            ]);
            let pods: Vec<String> = out.lines().map(str::to_owned).collect();
            (pods.len() == 3).then_some(pods)
        },
    );
    for pod in &pods {
        wait_for(
            "the pod's loop is told to stop",
            Duration::from_secs(30),
            &server,
            &mut [&mut node.agent],
            || {
                let out = kubectl.run(&["exec", "-n", NAMESPACE, pod, "--", "touch", "/tmp/idle"]);
                out.status.success().then_some(())
            },
        );
    }
    let scaled_down = wait_for_desired(&server, &mut node, &kubectl, 1);
    eprintln!("scaled down: {}", scaled_down["status"]);
    let rescaled = events(&kubectl, "burn", "SuccessfulRescale");
    assert!(
        rescaled.contains(&"New size: 1; reason: All metrics below target".to_owned()),
        "{rescaled:?}"
    );
    assert!(
        condition(&scaled_down, "ScalingLimited").is_some(),
        "{}",
        scaled_down["status"]
    );
    kubectl.ok(&["delete", "namespace", NAMESPACE, "--wait=false"]);
}
