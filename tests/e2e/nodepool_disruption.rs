//! NodePool disruption end to end with the `sim` provider: `berth server`
//! (the nodepool controller in-process) driven by kubectl 1.33. An
//! autoscaled pool consolidates its empty nodes down to `minReplicas` after
//! `consolidateAfter`; a PodDisruptionBudget holds an underutilized node's
//! consolidation (a `DisruptionBlocked` Event) until it is relaxed; a
//! template change replaces a pool's nodes one budget at a time; and
//! `expireAfter` replaces a node, except while it carries
//! `berth.dev/do-not-disrupt`. Consolidation keeps a node whose pod's
//! required node affinity no other node matches, and takes it once another
//! does.
//! Each test has its own server; names carry the `npd-` prefix.

mod support;

use std::time::Duration;

use support::nodepool::{
    claims, condition, deleting, events, name, pool_node_field, pool_nodes, ready_claims, waiter,
};
use support::{Kubectl, Server, KUBECTL_1_33};

const AUTOSCALED: &str = r#"
apiVersion: berth.dev/v1
kind: NodePool
metadata:
  name: npd-auto
spec:
  provider: sim
  replicas: 3
  minReplicas: 1
  labels:
    tier: npd-auto
  taints:
  - key: npd/dedicated
    value: "true"
    effect: NoSchedule
  template:
    capacity:
      cpu: "4"
      memory: 8Gi
      pods: "20"
  disruption:
    consolidationPolicy: WhenEmptyOrUnderutilized
    consolidateAfter: 5s
"#;

const DRIFTING: &str = r#"
apiVersion: berth.dev/v1
kind: NodePool
metadata:
  name: npd-drift
spec:
  provider: sim
  replicas: 3
  labels:
    version: v1
  template:
    capacity:
      cpu: "2"
      memory: 4Gi
      pods: "10"
  disruption:
    budgets:
    - nodes: "1"
"#;

const EXPIRING: &str = r#"
apiVersion: berth.dev/v1
kind: NodePool
metadata:
  name: npd-exp
spec:
  provider: sim
  replicas: 1
  expireAfter: 20s
  template:
    capacity:
      cpu: "2"
      memory: 4Gi
      pods: "10"
"#;

const SELECTED: &str = r#"
apiVersion: berth.dev/v1
kind: NodePool
metadata:
  name: npd-sel
spec:
  provider: sim
  replicas: 1
  minReplicas: 1
  labels:
    tier: npd-sel
  template:
    capacity:
      cpu: "4"
      memory: 8Gi
      pods: "20"
  disruption:
    consolidationPolicy: WhenEmptyOrUnderutilized
    consolidateAfter: 2s
"#;

/// A fixed pool of one node, room for what consolidation moves.
const SPARE: &str = r#"
apiVersion: berth.dev/v1
kind: NodePool
metadata:
  name: npd-spare
spec:
  provider: sim
  replicas: 1
  template:
    capacity:
      cpu: "4"
      memory: 8Gi
      pods: "20"
"#;

#[test]
fn consolidation_shrinks_to_min_and_waits_for_pdbs() {
    let (server, k) = server_with_pool(&[AUTOSCALED, SPARE].join("---"), "npd-auto", 3);
    let wait = waiter(&server);
    k.ok(&["create", "namespace", "npd-e2e"]);
    wait("the spare pool's node Ready", 60, &mut || {
        ready_claims(&k, "npd-spare").len() == 1
    });
    wait("npd-auto nodes Initialized", 30, &mut || {
        claims(&k, "npd-auto")
            .iter()
            .all(|c| condition(c, "Initialized"))
    });
    let keeper_node = pool_node_field(&k, "npd-auto", ".spec.unschedulable")[0]
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    let pod = format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"keeper","namespace":"npd-e2e","labels":{{"app":"keeper"}}}},
        "spec":{{"nodeName":"{keeper_node}","tolerations":[{{"key":"npd/dedicated","operator":"Exists"}}],
        "containers":[{{"name":"c","image":"busybox","resources":{{"requests":{{"cpu":"100m"}}}}}}]}}}}"#
    );
    k.ok_stdin(&["apply", "-f", "-"], &pod);
    k.ok(&[
        "create",
        "pdb",
        "keeper",
        "-n",
        "npd-e2e",
        "--selector=app=keeper",
        "--min-available=1",
    ]);
    wait(
        "keeper Running and its pdb allowing nothing",
        30,
        &mut || {
            k.jsonpath(
                &["get", "pod", "keeper", "-n", "npd-e2e"],
                "{.status.phase}",
            ) == "Running"
                && k.jsonpath(
                    &["get", "pdb", "keeper", "-n", "npd-e2e"],
                    "{.status.currentHealthy} {.status.disruptionsAllowed}",
                ) == "1 0"
        },
    );

    // Autoscaled from here on: the two empty nodes go, not the third.
    k.ok(&[
        "patch",
        "nodepool",
        "npd-auto",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/spec/replicas"}]"#,
    ]);
    wait("npd-auto consolidated to its minimum", 90, &mut || {
        let all = claims(&k, "npd-auto");
        all.len() == 1
            && pool_node_field(&k, "npd-auto", ".spec.unschedulable") == [keeper_node.clone()]
    });
    let seen = events(&k);
    assert!(
        seen.contains("Disrupting: Disrupting nodeclaim") && seen.contains(": Empty; removing it"),
        "{seen}"
    );
    std::thread::sleep(Duration::from_secs(8));
    assert_eq!(claims(&k, "npd-auto").len(), 1, "went below minReplicas");
    assert_eq!(
        ready_claims(&k, "npd-spare").len(),
        1,
        "a fixed pool was consolidated"
    );

    // Minimum 0: the keeper fits on the spare node, but its PDB holds it.
    k.ok(&[
        "patch",
        "nodepool",
        "npd-auto",
        "--type=merge",
        "-p",
        r#"{"spec":{"minReplicas":0}}"#,
    ]);
    wait("consolidation blocked by the pdb", 60, &mut || {
        events(&k).contains("DisruptionBlocked: pdb npd-e2e/keeper prevents disruption")
    });
    let remaining = claims(&k, "npd-auto");
    assert_eq!(remaining.len(), 1);
    assert!(!deleting(&remaining[0]), "claim removed despite the pdb");
    assert!(
        condition(&remaining[0], "Consolidatable"),
        "{:?}",
        remaining[0]
    );
    assert_eq!(
        k.jsonpath(
            &["get", "pod", "keeper", "-n", "npd-e2e"],
            "{.spec.nodeName} {.metadata.deletionTimestamp}"
        ),
        format!("{keeper_node} ")
    );
    k.ok(&[
        "patch",
        "pdb",
        "keeper",
        "-n",
        "npd-e2e",
        "--type=merge",
        "-p",
        r#"{"spec":{"minAvailable":0}}"#,
    ]);
    wait(
        "the underutilized node consolidated once allowed",
        90,
        &mut || {
            claims(&k, "npd-auto").is_empty()
                && pool_node_field(&k, "npd-auto", ".spec.unschedulable").is_empty()
        },
    );
    underutilized_removed(&k, "npd-auto");
}

/// Asserts that consolidation announced an Underutilized removal, then
/// deletes `pool` and the spare pool.
fn underutilized_removed(k: &Kubectl, pool: &str) {
    let seen = events(k);
    assert!(seen.contains(": Underutilized; removing it"), "{seen}");
    k.ok(&["delete", "nodepool", pool, "npd-spare", "--timeout=60s"]);
}

/// A server with the pools of `manifest` applied and `count` claims of
/// `pool` Ready.
fn server_with_pool(manifest: &str, pool: &str, count: usize) -> (Server, Kubectl) {
    let server = Server::start();
    let k = server.kubectl(KUBECTL_1_33);
    k.ok_stdin(&["apply", "-f", "-"], manifest);
    waiter(&server)(&format!("{count} Ready {pool} claims"), 90, &mut || {
        ready_claims(&k, pool).len() == count
    });
    (server, k)
}

#[test]
fn drift_replaces_nodes_one_budget_at_a_time() {
    let (server, k) = server_with_pool(DRIFTING, "npd-drift", 3);
    let wait = waiter(&server);
    let old = ready_claims(&k, "npd-drift");
    k.ok(&[
        "patch",
        "nodepool",
        "npd-drift",
        "--type=merge",
        "-p",
        r#"{"spec":{"labels":{"version":"v2"}}}"#,
    ]);
    let mut most_disrupted = 0;
    let mut seen_drifted = false;
    wait(
        "every node replaced with the new template",
        240,
        &mut || {
            let all = claims(&k, "npd-drift");
            let nodes = pool_node_field(&k, "npd-drift", ".spec.unschedulable");
            seen_drifted |= all.iter().any(|c| condition(c, "Drifted"));
            // An old claim is disrupted while it is deleting, its node is
            // cordoned, or a replacement for it exists.
            let disrupted = all
                .iter()
                .filter(|c| old.contains(&name(c)))
                .filter(|c| {
                    let n = name(c);
                    deleting(c)
                        || nodes.contains(&format!("{n} true"))
                        || all.iter().any(|r| {
                            r["metadata"]["annotations"]["berth.dev/replaces"] == n.as_str()
                        })
                })
                .count();
            most_disrupted = most_disrupted.max(disrupted);
            assert!(
                disrupted <= 1,
                "{disrupted} old nodes disrupted at once: {all:#?}"
            );
            assert!(
                all.len() <= 4,
                "more than one replacement at once: {all:#?}"
            );
            let ready = ready_claims(&k, "npd-drift");
            all.len() == 3 && ready.len() == 3 && ready.is_disjoint(&old)
        },
    );
    assert_eq!(most_disrupted, 1);
    assert!(seen_drifted, "no claim was ever marked Drifted");
    wait("3 nodes with the new label", 30, &mut || {
        k.jsonpath(
            &["get", "nodes", "-l", "berth.dev/pool=npd-drift"],
            "{.items[*].metadata.labels.version}",
        ) == "v2 v2 v2"
    });
    let seen = events(&k);
    assert!(seen.contains(": Drifted; replacing it with"), "{seen}");
    assert!(
        seen.matches("Replaced: Replaced nodeclaim").count() >= 3,
        "{seen}"
    );
    k.ok(&["delete", "nodepool", "npd-drift", "--timeout=60s"]);
}

#[test]
fn expire_after_replaces_a_node() {
    let (server, k) = server_with_pool(EXPIRING, "npd-exp", 1);
    let wait = waiter(&server);
    let first = ready_claims(&k, "npd-exp");
    wait(
        "the expired claim replaced by a Ready one",
        120,
        &mut || {
            let all = claims(&k, "npd-exp");
            let ready = ready_claims(&k, "npd-exp");
            all.len() == 1 && ready.len() == 1 && ready.is_disjoint(&first)
        },
    );
    let seen = events(&k);
    assert!(seen.contains(": Expired; replacing it with"), "{seen}");
    assert!(seen.contains("Replaced: Replaced nodeclaim"), "{seen}");

    // do-not-disrupt on the node holds its own expiry until it is removed.
    let second = ready_claims(&k, "npd-exp");
    let node = claims(&k, "npd-exp")[0]["status"]["nodeName"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    k.ok(&["annotate", "node", &node, "berth.dev/do-not-disrupt=true"]);
    let blocked = format!("DisruptionBlocked: node {node} has berth.dev/do-not-disrupt");
    wait("expiry blocked by do-not-disrupt", 90, &mut || {
        events(&k).contains(&blocked)
    });
    let all = claims(&k, "npd-exp");
    assert_eq!(all.len(), 1, "a replacement was made: {all:#?}");
    assert!(condition(&all[0], "Expired") && !deleting(&all[0]));
    assert_eq!(ready_claims(&k, "npd-exp"), second);
    k.ok(&["annotate", "node", &node, "berth.dev/do-not-disrupt-"]);
    wait("replaced once the annotation is gone", 90, &mut || {
        let ready = ready_claims(&k, "npd-exp");
        claims(&k, "npd-exp").len() == 1 && ready.len() == 1 && ready.is_disjoint(&second)
    });
    k.ok(&["delete", "nodepool", "npd-exp", "--timeout=60s"]);
}

/// The name of `pool`'s (first) node.
fn node_of(k: &Kubectl, pool: &str) -> String {
    let nodes = pool_nodes(k, pool);
    let first = nodes.first().map(String::as_str).unwrap_or_default();
    first.split(' ').next().unwrap_or_default().to_owned()
}

/// The reason of `claim`'s `Consolidatable` condition, empty without one.
fn consolidatable(claim: &serde_json::Value) -> String {
    claim["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Consolidatable")
        .and_then(|c| c["reason"].as_str())
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn consolidation_keeps_a_node_only_it_can_hold_a_pod_for() {
    let (server, k) = server_with_pool(&[SELECTED, SPARE].join("---"), "npd-sel", 1);
    let wait = waiter(&server);
    wait("the spare pool's node Ready", 60, &mut || {
        ready_claims(&k, "npd-spare").len() == 1
    });
    k.ok(&[
        "patch",
        "nodepool",
        "npd-sel",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/spec/replicas"}]"#,
    ]);
    wait(
        "the empty node consolidatable (held by minReplicas)",
        60,
        &mut || {
            claims(&k, "npd-sel")
                .iter()
                .any(|c| consolidatable(c) == "Empty")
        },
    );
    let node = node_of(&k, "npd-sel");
    k.ok(&["create", "namespace", "npd-sel"]);
    let pod = format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"pinned","namespace":"npd-sel"}},
        "spec":{{"nodeName":"{node}","affinity":{{"nodeAffinity":{{"requiredDuringSchedulingIgnoredDuringExecution":
        {{"nodeSelectorTerms":[{{"matchExpressions":[{{"key":"tier","operator":"In","values":["npd-sel"]}}]}}]}}}}}},
        "containers":[{{"name":"c","image":"busybox","resources":{{"requests":{{"cpu":"100m"}}}}}}]}}}}"#
    );
    k.ok_stdin(&["apply", "-f", "-"], &pod);
    wait("the node re-judged with its pod", 60, &mut || {
        claims(&k, "npd-sel")
            .iter()
            .all(|c| consolidatable(c) != "Empty")
    });
    let all = claims(&k, "npd-sel");
    assert_eq!(
        consolidatable(&all[0]),
        "",
        "no other node matches the pod's required node affinity: {all:#?}"
    );

    // Minimum 0 and another node the selector matches: now it goes.
    k.ok(&[
        "patch",
        "nodepool",
        "npd-sel",
        "--type=merge",
        "-p",
        r#"{"spec":{"minReplicas":0}}"#,
    ]);
    let spare = node_of(&k, "npd-spare");
    k.ok(&["label", "node", &spare, "tier=npd-sel"]);
    wait(
        "the node consolidated once its pod fits elsewhere",
        90,
        &mut || claims(&k, "npd-sel").is_empty(),
    );
    underutilized_removed(&k, "npd-sel");
}
