//! The NodePool controller end to end with the `sim` provider: `berth server`
//! (controllers, scheduler and the nodepool controller in-process) driven by
//! kubectl 1.33. A pool of 3 becomes 3 NodeClaims and 3 Ready Nodes with the
//! pool's labels and taints; `kubectl scale` to 1 removes the two emptiest
//! (the node holding a pod survives) with cordon and drain as Events; a
//! PodDisruptionBudget holds a drain until it is relaxed; `berth nodepool
//! scale|status` work; deleting the pool removes its machines.

mod support;

use std::process::Command;
use std::time::Duration;

use support::nodepool::{events, live_claims, pool_nodes, waiter};
use support::{berth_bin, Server, KUBECTL_1_33};

const POOL: &str = r#"
apiVersion: berth.dev/v1
kind: NodePool
metadata:
  name: np-cpu
spec:
  provider: sim
  replicas: 3
  labels:
    tier: np-cpu
  taints:
  - key: np-e2e/dedicated
    value: "true"
    effect: NoSchedule
  startupTaints:
  - key: np-e2e/initializing
    effect: NoSchedule
  template:
    capacity:
      cpu: "4"
      memory: 8Gi
      pods: "20"
      nvidia.com/gpu: "1"
"#;

fn berth_nodepool(server: &Server, args: &[&str]) -> String {
    let out = Command::new(berth_bin())
        .arg("nodepool")
        .args(["--kubeconfig", &server.kubeconfig().to_string_lossy()])
        .args(args)
        .output()
        .expect("running berth nodepool");
    assert!(out.status.success(), "berth nodepool {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn nodepool_scales_drains_respects_budgets_and_cleans_up() {
    let server = Server::start();
    let k = server.kubectl(KUBECTL_1_33);
    let wait = waiter(&server);
    k.ok(&["create", "namespace", "np-e2e"]);
    k.ok_stdin(&["apply", "-f", "-"], POOL);

    wait("3 Ready nodes in np-cpu", 60, &mut || {
        let nodes = pool_nodes(&k, "np-cpu");
        nodes.len() == 3 && nodes.iter().all(|n| n.ends_with(" True"))
    });
    wait("3 Ready and Initialized nodeclaims", 30, &mut || {
        k.jsonpath(
            &["get", "nodeclaims"],
            r#"{.items[*].status.conditions[?(@.type=="Ready")].status} {.items[*].status.conditions[?(@.type=="Initialized")].status}"#,
        ) == "True True True True True True"
    });
    let nodes: Vec<String> = pool_nodes(&k, "np-cpu")
        .iter()
        .map(|n| n.split(' ').next().unwrap().to_owned())
        .collect();
    for node in &nodes {
        let labels = k.jsonpath(
            &["get", "node", node],
            r#"{.metadata.labels.tier} {.metadata.labels.berth\.dev/nodeclaim} {.spec.taints[*].key} {.status.capacity.nvidia\.com/gpu}"#,
        );
        assert_eq!(
            labels,
            format!("np-cpu {node} np-e2e/dedicated 1"),
            "{node}"
        );
    }
    wait("pool status 3/3", 30, &mut || {
        let table = k.ok(&["get", "nodepools"]);
        table.lines().any(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            cells.len() >= 4 && cells[..4] == ["np-cpu", "sim", "3", "3"]
        })
    });
    let table = k.ok(&["get", "nodepools"]);
    assert!(table.starts_with("NAME"), "{table}");
    assert!(
        table.contains("PROVIDER") && table.contains("REPLICAS"),
        "{table}"
    );
    let status = berth_nodepool(&server, &["status", "np-cpu"]);
    assert!(
        status.starts_with("np-cpu: provider sim, desired 3, replicas 3, ready 3"),
        "{status}"
    );

    // A pod on one node: that node is not among the emptiest.
    let keeper_node = nodes[1].clone();
    let pod = format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"keeper","namespace":"np-e2e","labels":{{"app":"keeper"}}}},
        "spec":{{"nodeName":"{keeper_node}","tolerations":[{{"key":"np-e2e/dedicated","operator":"Exists"}}],
        "containers":[{{"name":"c","image":"busybox"}}]}}}}"#
    );
    k.ok_stdin(&["apply", "-f", "-"], &pod);
    wait("keeper Running", 30, &mut || {
        k.jsonpath(&["get", "pod", "keeper", "-n", "np-e2e"], "{.status.phase}") == "Running"
    });

    k.ok(&["scale", "nodepool", "np-cpu", "--replicas=1"]);
    wait("np-cpu down to the keeper's node", 60, &mut || {
        pool_nodes(&k, "np-cpu") == [format!("{keeper_node} True")]
            && live_claims(&k, "np-cpu").len() == 1
    });
    assert_eq!(
        k.jsonpath(
            &["get", "pod", "keeper", "-n", "np-e2e"],
            "{.spec.nodeName} {.metadata.deletionTimestamp}"
        ),
        format!("{keeper_node} ")
    );
    wait("nodeclaims of removed nodes gone", 30, &mut || {
        k.jsonpath(&["get", "nodeclaims"], "{.items[*].metadata.name}")
            .split_whitespace()
            .count()
            == 1
    });
    let seen = events(&k);
    for reason in [
        "ScaledUp",
        "Launched",
        "Registered",
        "ScaledDown",
        "Draining",
        "Terminated",
    ] {
        let line = format!("{reason}: ");
        assert!(
            seen.lines().any(|l| l.starts_with(&line)),
            "no {reason} event in {seen}"
        );
    }

    // A budget that allows no disruption holds the last node's drain.
    k.ok(&[
        "create",
        "pdb",
        "keeper",
        "-n",
        "np-e2e",
        "--selector=app=keeper",
        "--min-available=1",
    ]);
    wait("pdb allows 0 disruptions", 30, &mut || {
        k.jsonpath(
            &["get", "pdb", "keeper", "-n", "np-e2e"],
            "{.status.currentHealthy} {.status.disruptionsAllowed}",
        ) == "1 0"
    });
    berth_nodepool(&server, &["scale", "np-cpu", "--replicas", "0"]);
    wait("drain blocked by the budget", 30, &mut || {
        events(&k).contains("FailedDraining: ")
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        pool_nodes(&k, "np-cpu").len(),
        1,
        "the node went despite the budget"
    );
    assert_eq!(
        k.jsonpath(
            &["get", "pod", "keeper", "-n", "np-e2e"],
            "{.metadata.deletionTimestamp}"
        ),
        ""
    );
    k.ok(&[
        "patch",
        "pdb",
        "keeper",
        "-n",
        "np-e2e",
        "--type=merge",
        "-p",
        r#"{"spec":{"minAvailable":0}}"#,
    ]);
    wait(
        "node drained and removed once the budget allows",
        60,
        &mut || {
            pool_nodes(&k, "np-cpu").is_empty()
                && k.jsonpath(&["get", "nodeclaims"], "{.items[*].metadata.name}")
                    .is_empty()
        },
    );
    assert!(
        k.run(&["get", "pod", "keeper", "-n", "np-e2e"])
            .status
            .code()
            != Some(0)
    );

    // Deleting the pool removes its machines.
    k.ok(&["scale", "nodepool", "np-cpu", "--replicas=2"]);
    wait("2 nodes again", 60, &mut || {
        let nodes = pool_nodes(&k, "np-cpu");
        nodes.len() == 2 && nodes.iter().all(|n| n.ends_with(" True"))
    });
    k.ok(&["delete", "nodepool", "np-cpu", "--timeout=60s"]);
    wait("pool, claims and nodes gone", 60, &mut || {
        pool_nodes(&k, "np-cpu").is_empty()
            && k.jsonpath(&["get", "nodeclaims"], "{.items[*].metadata.name}")
                .is_empty()
            && k.run(&["get", "nodepool", "np-cpu"]).status.code() != Some(0)
    });
}
