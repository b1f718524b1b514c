//! Autoscaling NodePools end to end with the `sim` provider: `berth server`
//! driven by kubectl 1.33. A Deployment whose pods request `nvidia.com/gpu`
//! grows a GPU pool from 0 to exactly the machines they need (and no other
//! pool); the GPU nodes advertise their GPUs only after a delay, and no pod
//! is bound to one before it does; a pool at its limit leaves the extra pod
//! Pending with a clear Warning; of two pools that fit, the higher weight
//! is grown; once the Deployment is deleted, consolidation shrinks the GPU
//! pool back to its minimum (0) after `consolidateAfter`.

mod support;

use std::collections::BTreeMap;

use support::nodepool::{claims, name_to, waiter};
use support::{Kubectl, Server, KUBECTL_1_33};

const POOLS: &str = r#"
apiVersion: berth.dev/v1
kind: NodePool
metadata:
  name: as-gpu
spec:
  provider: sim
  minReplicas: 0
  labels:
    as-e2e/kind: gpu
  taints:
  - key: nvidia.com/gpu
    value: present
    effect: NoSchedule
  limits:
    nvidia.com/gpu: "6"
  disruption:
    consolidationPolicy: WhenEmpty
    consolidateAfter: 5s
    budgets:
    - nodes: "1"
  template:
    capacity:
      cpu: "8"
      memory: 32Gi
      pods: "20"
      nvidia.com/gpu: "2"
    sim:
      gpuAdvertiseDelay: 12s
---
apiVersion: berth.dev/v1
kind: NodePool
metadata:
  name: as-cpu
spec:
  provider: sim
  template:
    capacity:
      cpu: "4"
      memory: 8Gi
      pods: "20"
---
apiVersion: berth.dev/v1
kind: NodePool
metadata:
  name: as-cpu-preferred
spec:
  provider: sim
  weight: 50
  maxReplicas: 3
  template:
    capacity:
      cpu: "16"
      memory: 32Gi
      pods: "40"
"#;

fn deployment(name: &str, replicas: u32, resources: &str, tolerations: &str) -> String {
    format!(
        r#"{{"apiVersion":"apps/v1","kind":"Deployment","metadata":{{"name":"{name}","namespace":"as-e2e"}},
        "spec":{{"replicas":{replicas},"selector":{{"matchLabels":{{"app":"{name}"}}}},
        "template":{{"metadata":{{"labels":{{"app":"{name}"}}}},"spec":{{"tolerations":{tolerations},
        "containers":[{{"name":"main","image":"registry.k8s.io/pause:3.10","resources":{resources}}}]}}}}}}}}"#
    )
}

/// `pod → node` of the pods of `app` (node empty when unbound).
fn placements(k: &Kubectl, app: &str) -> BTreeMap<String, String> {
    let selector = format!("app={app}");
    name_to(
        k,
        &["get", "pods", "-n", "as-e2e", "-l", &selector],
        ".spec.nodeName",
    )
}

/// `node → GPUs it advertises` of the GPU pool's nodes.
fn gpu_nodes(k: &Kubectl) -> BTreeMap<String, String> {
    name_to(
        k,
        &["get", "nodes", "-l", "berth.dev/pool=as-gpu"],
        r".status.allocatable.nvidia\.com/gpu",
    )
}

/// `reason: message` of the Events about `kind/name` in `namespace`.
fn events(k: &Kubectl, namespace: &str, kind: &str) -> String {
    k.jsonpath(
        &[
            "get",
            "events",
            "-n",
            namespace,
            "--field-selector",
            &format!("involvedObject.kind={kind}"),
        ],
        r#"{range .items[*]}{.involvedObject.name} {.reason}: {.message}{"\n"}{end}"#,
    )
}

#[test]
fn pending_pods_grow_the_cheapest_fitting_pool_by_what_they_need() {
    let server = Server::start();
    let k = server.kubectl(KUBECTL_1_33);
    let wait = waiter(&server);
    k.ok(&["create", "namespace", "as-e2e"]);
    k.ok_stdin(&["apply", "-f", "-"], POOLS);
    let gpu = r#"{"limits":{"nvidia.com/gpu":"1"}}"#;
    let tolerate = r#"[{"key":"nvidia.com/gpu","operator":"Exists","effect":"NoSchedule"}]"#;
    k.ok_stdin(
        &["apply", "-f", "-"],
        &deployment("trainer", 3, gpu, tolerate),
    );
    k.ok_stdin(
        &["apply", "-f", "-"],
        &deployment("web", 2, r#"{"requests":{"cpu":"1"}}"#, "[]"),
    );

    // Three 1-GPU pods need two 2-GPU machines. While they boot their GPUs
    // are not advertised: no pod may be bound there, their claims are not
    // Initialized, and a fourth pod that fails scheduling then (the
    // provisioner decides again) is nominated to the room coming, not given
    // a third machine.
    let mut saw_gpuless_node = false;
    wait("4 trainer pods bound", 90, &mut || {
        // Pods and claims first: a node that lacks GPUs now lacked them then.
        let placed = placements(&k, "trainer");
        let initialized = name_to(
            &k,
            &["get", "nodeclaims", "-l", "berth.dev/pool=as-gpu"],
            r#".status.conditions[?(@.type=="Initialized")].status"#,
        );
        let nodes = gpu_nodes(&k);
        if !saw_gpuless_node && nodes.values().any(String::is_empty) {
            saw_gpuless_node = true;
            k.ok(&[
                "scale",
                "-n",
                "as-e2e",
                "deployment/trainer",
                "--replicas=4",
            ]);
        }
        for (pod, node) in placed.iter().filter(|(_, n)| !n.is_empty()) {
            assert!(
                nodes.get(node).is_some_and(|gpus| !gpus.is_empty()),
                "{pod} bound to {node}, which advertises no GPUs: {nodes:?}"
            );
        }
        for (claim, gpus) in &nodes {
            assert!(
                !gpus.is_empty() || initialized.get(claim).is_none_or(|s| s != "True"),
                "nodeclaim {claim} Initialized before its node advertised GPUs"
            );
        }
        assert!(
            claims(&k, "as-gpu").len() <= 2,
            "more GPU machines than needed"
        );
        placed.len() == 4 && placed.values().all(|n| !n.is_empty())
    });
    assert!(
        saw_gpuless_node,
        "the GPU nodes never showed the advertisement delay"
    );
    assert_eq!(claims(&k, "as-gpu").len(), 2);
    assert_eq!(gpu_nodes(&k).values().filter(|g| *g == "2").count(), 2);

    // The CPU pods went to the preferred pool, one machine for both.
    wait("2 web pods bound", 60, &mut || {
        let placed = placements(&k, "web");
        placed.len() == 2 && placed.values().all(|n| n.starts_with("as-cpu-preferred-"))
    });
    assert_eq!(claims(&k, "as-cpu-preferred").len(), 1);
    assert_eq!(claims(&k, "as-cpu").len(), 0);

    let pool_events = events(&k, "default", "NodePool");
    assert!(
        pool_events.contains("as-gpu ScaledUp: created 2 nodeclaim(s) for 3 pending pod(s)"),
        "{pool_events}"
    );
    let pod_events = events(&k, "as-e2e", "Pod");
    assert!(
        pod_events.contains("Nominated: Pod should schedule on nodeclaim/as-gpu-"),
        "{pod_events}"
    );

    // Seven pods need 7 GPUs; the pool may have 6 (3 machines): two take a
    // third machine, the last stays Pending with a Warning naming the limit.
    k.ok(&[
        "scale",
        "-n",
        "as-e2e",
        "deployment/trainer",
        "--replicas=7",
    ]);
    let limit = r#"FailedProvisioning: nodepool "as-gpu" is at its limit nvidia.com/gpu=6"#;
    wait("the limit Warning on the pending pod", 60, &mut || {
        events(&k, "as-e2e", "Pod").contains(limit)
    });
    wait("6 trainer pods bound", 60, &mut || {
        placements(&k, "trainer")
            .values()
            .filter(|n| !n.is_empty())
            .count()
            == 6
    });
    assert_eq!(placements(&k, "trainer").len(), 7);
    assert_eq!(claims(&k, "as-gpu").len(), 3);
    let pool_events = events(&k, "default", "NodePool");
    assert!(
        pool_events.contains("as-gpu FailedProvisioning: 1 pending pod(s) not provisioned"),
        "{pool_events}"
    );
    let warnings = k.ok(&[
        "get",
        "events",
        "-n",
        "as-e2e",
        "--field-selector",
        "type=Warning",
    ]);
    assert!(
        warnings.contains("is at its limit nvidia.com/gpu=6"),
        "{warnings}"
    );

    // Without the Deployment the GPU machines are empty: after
    // consolidateAfter they go, one at a time (budget 1), down to the
    // pool's minimum of 0; the CPU pool's machine, still busy, stays.
    k.ok(&[
        "delete",
        "-n",
        "as-e2e",
        "deployment/trainer",
        "--wait=false",
    ]);
    wait("the GPU pool back at 0 machines", 120, &mut || {
        claims(&k, "as-gpu").is_empty() && gpu_nodes(&k).is_empty()
    });
    assert_eq!(claims(&k, "as-cpu-preferred").len(), 1);
    let pool_events = events(&k, "default", "NodePool");
    assert!(
        pool_events.contains("as-gpu Disrupting: Disrupting nodeclaim as-gpu-"),
        "{pool_events}"
    );
}
