//! PersistentVolumes on a real node (`berth agent --runtime cri`, kubectl
//! 1.33): a static `local` PV pre-bound to a claim is mounted (subPath, a
//! read-only claim volume); a file written by one pod is read by the next; a
//! pod whose claim is missing or unbound waits in ContainerCreating with
//! kubelet's FailedMount event and starts once its claim is bound; released
//! `local-path` volumes with reclaim policy Delete lose their directory and
//! their PV, Retain ones keep both, and a path outside the node's
//! `--local-path-dir` is refused with VolumeFailedDelete. The PV controller
//! releases the volumes whose claims are gone; the second case runs
//! dynamic provisioning end to end: a StatefulSet of 3 on
//! the default `local-path` class keeps each pod's data across pod deletion,
//! and deleting the claims frees their directories.

mod cri_node;
mod support;

use std::path::Path;
use std::time::Duration;

use cri_node::{CriNode, Registry};
use serde_json::Value;
use support::{wait_for, Kubectl, Server, KUBECTL_1_33};

const NS: &str = "mnt-e2e";
const TIMEOUT: Duration = Duration::from_secs(60);

/// A `local` PV on `node` at `path`, pre-bound to claim `claim`.
fn local_pv(name: &str, node: &str, path: &Path, claim: &str, extra: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: PersistentVolume
metadata: {{name: {name}{extra}}}
spec:
  capacity: {{storage: 1Gi}}
  accessModes: [ReadWriteOnce]
  storageClassName: ""
  persistentVolumeReclaimPolicy: Retain
  claimRef: {{namespace: {NS}, name: {claim}}}
  local: {{path: "{path}"}}
  nodeAffinity:
    required:
      nodeSelectorTerms:
      - matchExpressions: [{{key: kubernetes.io/hostname, operator: In, values: [{node}]}}]
"#,
        path = path.display()
    )
}

/// A claim pre-bound to volume `volume` (empty: unbound, of a class nobody provisions).
fn claim(name: &str, volume: &str) -> String {
    let class = if volume.is_empty() { "none-such" } else { "" };
    format!(
        r#"
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: {name}, namespace: {NS}}}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: "{class}"
  volumeName: "{volume}"
  resources: {{requests: {{storage: 1Gi}}}}
"#
    )
}

/// A pod on `node` running `script` with claim `claim` mounted at /data.
fn pod(name: &str, node: &str, image: &str, claim: &str, mount: &str, script: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: {NS}}}
spec:
  nodeName: {node}
  terminationGracePeriodSeconds: 0
  containers:
  - name: app
    image: {image}
    command: ["sh", "-c", {script:?}]
    volumeMounts: [{{name: data, mountPath: /data{mount}}}]
  volumes:
  - name: data
    persistentVolumeClaim: {{claimName: {claim}}}
"#
    )
}

fn json(kubectl: &Kubectl, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&kubectl.ok(&all)).unwrap()
}

/// The messages of the events with `reason` about object `name`.
fn event_messages(kubectl: &Kubectl, namespace: &str, name: &str, reason: &str) -> Vec<String> {
    let events = json(kubectl, &["get", "events", "-n", namespace]);
    events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["involvedObject"]["name"] == name && e["reason"] == reason)
        .filter_map(|e| e["message"].as_str().map(str::to_owned))
        .collect()
}

fn pod_phase(kubectl: &Kubectl, name: &str) -> String {
    kubectl.jsonpath(&["get", "pod", "-n", NS, name], "{.status.phase}")
}

fn logs(kubectl: &Kubectl, name: &str) -> String {
    let out = kubectl.run(&["logs", "-n", NS, name]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Starts a registry, a server with a cluster range of its own, and node
/// `node`, waiting until it is Ready.
fn cluster(node_name: &str, base: u16) -> (Registry, Server, CriNode) {
    let registry = Registry::start();
    let cidr = format!("10.{}.0.0/16", base + registry.port % 50);
    let server = Server::start_with(&["--cluster-cidr", &cidr]);
    let kubectl = server.kubectl(KUBECTL_1_33);
    let mut node = CriNode::start(&server, &registry, node_name);
    node.wait_ready(&server, &kubectl, TIMEOUT);
    kubectl.ok(&["create", "namespace", NS]);
    (registry, server, node)
}

#[test]
fn claims_mount_static_volumes_and_released_local_path_volumes_are_reclaimed() {
    const NODE: &str = "mnt-1";
    let (registry, server, mut node) = cluster(NODE, 200);
    let kubectl = server.kubectl(KUBECTL_1_33);
    let image = registry.image("web:1");
    let local_path_dir = node.data_dir.join("local-path");
    assert_eq!(
        kubectl.jsonpath(
            &["get", "node", NODE],
            r"{.metadata.annotations.berth\.dev/local-path-dir}"
        ),
        local_path_dir.display().to_string(),
        "the agent publishes its --local-path-dir"
    );
    let scratch = tempfile::tempdir().unwrap();

    // (1) A static local PV pre-bound to its claim: written through a
    // subPath by one pod, read through a read-only claim by the next.
    let disk = scratch.path().join("disk");
    std::fs::create_dir_all(&disk).unwrap();
    kubectl.ok_stdin(
        &["apply", "-f", "-"],
        &(local_pv("mnt-static", NODE, &disk, "data", "") + "---" + &claim("data", "mnt-static")),
    );
    kubectl.ok_stdin(
        &["apply", "-f", "-"],
        &pod(
            "writer",
            NODE,
            &image,
            "data",
            ", subPath: sub",
            "echo hello > /data/file && sleep 100000",
        ),
    );
    wait_for(
        "the writer's file reaches the volume",
        TIMEOUT,
        &server,
        &mut [&mut node.agent],
        || {
            std::fs::read_to_string(disk.join("sub/file"))
                .ok()
                .filter(|t| t == "hello\n")
        },
    );
    kubectl.ok(&["delete", "pod", "-n", NS, "writer", "--wait=false"]);
    let reader = pod(
        "reader",
        NODE,
        &image,
        "data",
        "",
        "cat /data/sub/file; if touch /data/x 2>/dev/null; then echo writable; else echo read-only; fi; sleep 100000",
    )
    .replace("claimName: data}", "claimName: data, readOnly: true}");
    kubectl.ok_stdin(&["apply", "-f", "-"], &reader);
    let seen = wait_for(
        "the reader sees the file through a read-only volume",
        TIMEOUT,
        &server,
        &mut [&mut node.agent],
        || {
            Some(logs(&kubectl, "reader"))
                .filter(|l| l.contains("read-only") || l.contains("writable"))
        },
    );
    assert_eq!(seen, "hello\nread-only\n");

    // (2) A missing claim and an unbound one: ContainerCreating with
    // kubelet's FailedMount; once the claim exists, bound, the pod starts.
    kubectl.ok_stdin(&["apply", "-f", "-"], &claim("nowhere", ""));
    for (name, claim_name) in [("unbound", "nowhere"), ("late", "later")] {
        kubectl.ok_stdin(
            &["apply", "-f", "-"],
            &pod(
                name,
                NODE,
                &image,
                claim_name,
                "",
                "echo started; sleep 100000",
            ),
        );
    }
    for (name, expected) in [
        ("unbound", "error processing PVC mnt-e2e/nowhere: PVC is not bound"),
        (
            "late",
            "error processing PVC mnt-e2e/later: failed to fetch PVC from API server: persistentvolumeclaims \"later\" not found",
        ),
    ] {
        let message = wait_for(
            "a FailedMount event",
            TIMEOUT,
            &server,
            &mut [&mut node.agent],
            || event_messages(&kubectl, NS, name, "FailedMount").pop(),
        );
        assert_eq!(
            message,
            format!("Unable to attach or mount volumes: unmounted volumes=[data], unattached volumes=[], failed to process volumes=[data]: {expected}")
        );
        let waiting = kubectl.jsonpath(
            &["get", "pod", "-n", NS, name],
            "{.status.containerStatuses[0].state.waiting.reason}",
        );
        assert_eq!(waiting, "ContainerCreating", "{name}");
        assert_eq!(pod_phase(&kubectl, name), "Pending");
    }
    let late_disk = scratch.path().join("late");
    std::fs::create_dir_all(&late_disk).unwrap();
    kubectl.ok_stdin(
        &["apply", "-f", "-"],
        &(local_pv("mnt-late", NODE, &late_disk, "later", "")
            + "---"
            + &claim("later", "mnt-late")),
    );
    wait_for(
        "the pod starts once its claim is bound",
        TIMEOUT,
        &server,
        &mut [&mut node.agent],
        || (pod_phase(&kubectl, "late") == "Running").then_some(()),
    );

    // (3) Reclaim: volumes bound to claims that are gone, which the PV
    // controller releases. Of this node's local-path volumes, Delete removes
    // directory and PV; Retain keeps them; a path outside --local-path-dir is
    // refused.
    let provisioned = ", annotations: {pv.kubernetes.io/provisioned-by: berth.dev/local-path}";
    let released = local_path_dir.join("pvc-u1_mnt-e2e_gone");
    let retained = local_path_dir.join("pvc-u2_mnt-e2e_kept");
    let outside = scratch.path().join("pvc-u3_mnt-e2e_outside");
    for dir in [&released, &retained, &outside] {
        std::fs::create_dir_all(dir.join("deep")).unwrap();
        std::fs::write(dir.join("deep/data"), b"x").unwrap();
    }
    let volumes = [
        ("mnt-released", &released, "Delete"),
        ("mnt-retained", &retained, "Retain"),
        ("mnt-outside", &outside, "Delete"),
    ];
    for (name, dir, policy) in volumes {
        let manifest = local_pv(name, NODE, dir, &format!("claim-of-{name}"), provisioned)
            .replace("storageClassName: \"\"", "storageClassName: local-path")
            .replace(
                "persistentVolumeReclaimPolicy: Retain",
                &format!("persistentVolumeReclaimPolicy: {policy}"),
            )
            .replace("name: claim-of-", "uid: 00000000-dead, name: claim-of-");
        kubectl.ok_stdin(&["apply", "-f", "-"], &manifest);
    }
    wait_for(
        "the released Delete volume's directory and PV are gone",
        TIMEOUT,
        &server,
        &mut [&mut node.agent],
        || {
            let out = kubectl.run(&["get", "pv", "mnt-released"]);
            (!released.exists() && !out.status.success()).then_some(())
        },
    );
    let message = wait_for(
        "a VolumeFailedDelete event for the path outside --local-path-dir",
        TIMEOUT,
        &server,
        &mut [&mut node.agent],
        || event_messages(&kubectl, "default", "mnt-outside", "VolumeFailedDelete").pop(),
    );
    assert!(message.contains("does not lie under"), "{message}");
    assert!(
        outside.join("deep/data").exists(),
        "nothing outside is removed"
    );
    assert!(retained.join("deep/data").exists(), "Retain keeps the data");
    assert_eq!(
        kubectl.jsonpath(&["get", "pv", "mnt-retained"], "{.status.phase}"),
        "Released"
    );
    kubectl.ok(&["get", "pv", "mnt-outside"]);
    node.agent.assert_running();
}

const STATEFUL: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: store, namespace: mnt-e2e}
spec:
  clusterIP: None
  selector: {app: store}
  ports: [{port: 80}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: store, namespace: mnt-e2e}
spec:
  serviceName: store
  replicas: 3
  podManagementPolicy: Parallel
  selector: {matchLabels: {app: store}}
  template:
    metadata: {labels: {app: store}}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: app
        image: IMAGE
        command: ["sh", "-c", "if [ -f /data/name ]; then echo found $(cat /data/name); else hostname > /data/name; echo wrote; fi; sleep 100000"]
        volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
"#;

/// Dynamic provisioning end to end on the default `local-path` class: the
/// PV controller, the provisioner and the scheduler's volume binding in the
/// server, the mounts and the clean-up on the node.
#[test]
fn stateful_set_pods_keep_their_local_path_data_and_deleted_claims_free_the_directories() {
    const NODE: &str = "mnt-2";
    let (registry, server, mut node) = cluster(NODE, 100);
    let kubectl = server.kubectl(KUBECTL_1_33);
    kubectl.ok_stdin(
        &["apply", "-f", "-"],
        &STATEFUL.replace("IMAGE", &registry.image("web:1")),
    );
    let pods = ["store-0", "store-1", "store-2"];
    for name in pods {
        wait_for(
            "each pod writes its name into its own volume",
            Duration::from_secs(90),
            &server,
            &mut [&mut node.agent],
            || logs(&kubectl, name).contains("wrote").then_some(()),
        );
    }
    let paths: Vec<String> = pods
        .iter()
        .map(|name| {
            let claim = format!("data-{name}");
            let volume = kubectl.jsonpath(&["get", "pvc", "-n", NS, &claim], "{.spec.volumeName}");
            let path = kubectl.jsonpath(&["get", "pv", &volume], "{.spec.local.path}");
            assert!(
                path.starts_with(&node.data_dir.join("local-path").display().to_string()),
                "{path}"
            );
            assert_eq!(
                std::fs::read_to_string(Path::new(&path).join("name")).unwrap(),
                format!("{name}\n")
            );
            path
        })
        .collect();
    let old_uids: Vec<String> = pods
        .iter()
        .map(|name| kubectl.jsonpath(&["get", "pod", "-n", NS, name], "{.metadata.uid}"))
        .collect();
    kubectl.ok(&["delete", "pod", "-n", NS, "-l", "app=store", "--wait=false"]);
    for (name, old) in pods.iter().zip(&old_uids) {
        wait_for(
            "the recreated pod reads its own data back",
            Duration::from_secs(90),
            &server,
            &mut [&mut node.agent],
            || {
                let uid = kubectl.run(&[
                    "get",
                    "pod",
                    "-n",
                    NS,
                    name,
                    "-o",
                    "jsonpath={.metadata.uid}",
                ]);
                let uid = String::from_utf8_lossy(&uid.stdout).into_owned();
                (!uid.is_empty()
                    && &uid != old
                    && logs(&kubectl, name) == format!("found {name}\n"))
                .then_some(())
            },
        );
    }
    kubectl.ok(&["scale", "statefulset", "-n", NS, "store", "--replicas=0"]);
    wait_for(
        "the pods are gone",
        TIMEOUT,
        &server,
        &mut [&mut node.agent],
        || {
            let out = kubectl.ok(&["get", "pods", "-n", NS, "-l", "app=store", "-o", "name"]);
            out.trim().is_empty().then_some(())
        },
    );
    kubectl.ok(&[
        "delete",
        "pvc",
        "-n",
        NS,
        "data-store-0",
        "data-store-1",
        "data-store-2",
        "--wait=false",
    ]);
    wait_for(
        "the agent removes the released volumes' directories and PVs",
        Duration::from_secs(90),
        &server,
        &mut [&mut node.agent],
        || {
            let left = kubectl.ok(&["get", "pv", "-o", "name"]);
            (paths.iter().all(|p| !Path::new(p).exists()) && left.trim().is_empty()).then_some(())
        },
    );
}
