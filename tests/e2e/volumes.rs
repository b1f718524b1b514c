//! Persistent volumes end to end on simulated nodes, driven by kubectl 1.33:
//! static PersistentVolumes bound to claims by size, class and selector as
//! upstream's PV controller binds them (annotations, phases, `kubectl get
//! pv,pvc,sc` columns), a Retain volume Released when its claim goes; the
//! `local-path` StorageClass is the default, so a class-less claim gets it
//! and waits for its first consumer; a pod using it gets a volume pinned to
//! the node it was scheduled to, and a second pod using the claim follows it
//! there; a StatefulSet's volumeClaimTemplates get Bound claims; a pod
//! whose claim does not exist stays Pending with upstream's reason.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::{wait_for, BerthProcess, Kubectl, Server, KUBECTL_1_33};

const NS: &str = "vol-e2e";
const WAIT: Duration = Duration::from_secs(60);

fn apply(k: &Kubectl, object: &Value) {
    k.ok_stdin(&["apply", "-f", "-"], &object.to_string());
}

fn static_volume(name: &str, size: &str, class: Option<&str>, labels: Value) -> Value {
    let mut spec = json!({"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"],
                          "hostPath": {"path": format!("/tmp/{name}")}});
    if let Some(class) = class {
        spec["storageClassName"] = json!(class);
    }
    json!({"apiVersion": "v1", "kind": "PersistentVolume",
           "metadata": {"name": name, "labels": labels}, "spec": spec})
}

fn claim(name: &str, size: &str, class: Option<&str>, selector: Option<Value>) -> Value {
    let mut spec =
        json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}});
    if let Some(class) = class {
        spec["storageClassName"] = json!(class);
    }
    if let Some(selector) = selector {
        spec["selector"] = selector;
    }
    json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
           "metadata": {"name": name, "namespace": NS}, "spec": spec})
}

fn pod(name: &str, claim: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS},
        "spec": {"terminationGracePeriodSeconds": 0,
            "containers": [{"name": "c", "image": "busybox",
                "resources": {"requests": {"cpu": "500m", "memory": "64Mi"}},
                "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]}})
}

fn get(k: &Kubectl, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&k.ok(&all)).unwrap()
}

fn claim_json(k: &Kubectl, name: &str) -> Value {
    get(k, &["-n", NS, "get", "pvc", name])
}

/// The volume `name` is bound to, once it is Bound.
fn bound_volume(k: &Kubectl, name: &str) -> Option<String> {
    let c = claim_json(k, name);
    (c["status"]["phase"] == "Bound").then(|| c["spec"]["volumeName"].as_str().unwrap().to_owned())
}

fn wait_bound(server: &Server, k: &Kubectl, procs: &mut [&mut BerthProcess], name: &str) -> String {
    wait_for(&format!("claim {name} bound"), WAIT, server, procs, || {
        bound_volume(k, name)
    })
}

/// The words of the line of `table` that starts with `name`.
fn row(table: &str, name: &str) -> Vec<String> {
    table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no row {name} in\n{table}"))
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

fn header(table: &str) -> Vec<&str> {
    table
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect()
}

fn event_messages(k: &Kubectl, reason: &str, name: &str) -> Vec<String> {
    let list = get(k, &["get", "events", "-n", NS]);
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["reason"] == reason && e["involvedObject"]["name"] == name)
        .map(|e| e["message"].as_str().unwrap_or("").to_owned())
        .collect()
}

fn node_of(k: &Kubectl, pod: &str) -> Option<String> {
    let node = k.jsonpath(&["-n", NS, "get", "pod", pod], "{.spec.nodeName}");
    (!node.trim().is_empty()).then(|| node.trim().to_owned())
}

#[test]
fn claims_bind_static_and_local_path_volumes_as_upstream() {
    let server = Server::start_with(&[]);
    let k = server.kubectl(KUBECTL_1_33);
    k.ok(&["create", "namespace", NS]);
    let mut a = server.start_agent("vol-a", &["--capacity", "cpu=2"]);
    let mut b = server.start_agent("vol-b", &["--capacity", "cpu=2"]);
    let procs = &mut [&mut a, &mut b];

    // The default StorageClass exists from the start.
    let classes = k.ok(&["get", "sc"]);
    assert_eq!(
        header(&classes),
        [
            "NAME",
            "PROVISIONER",
            "RECLAIMPOLICY",
            "VOLUMEBINDINGMODE",
            "ALLOWVOLUMEEXPANSION",
            "AGE"
        ]
    );
    assert_eq!(
        row(&classes, "local-path")[..6],
        [
            "local-path",
            "(default)",
            "berth.dev/local-path",
            "Delete",
            "WaitForFirstConsumer",
            "false"
        ]
    );

    // Static binding: the smallest volume that fits by size, class and selector.
    apply(
        &k,
        &static_volume("vol-small", "1Gi", Some("manual"), json!({})),
    );
    apply(
        &k,
        &static_volume("vol-big", "5Gi", Some("manual"), json!({})),
    );
    apply(
        &k,
        &static_volume("vol-gold", "2Gi", Some("manual"), json!({"tier": "gold"})),
    );
    apply(&k, &static_volume("vol-plain", "1Gi", None, json!({})));
    wait_for("static volumes available", WAIT, &server, procs, || {
        let list = get(&k, &["get", "pv"]);
        let phases: Vec<&str> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["status"]["phase"].as_str().unwrap_or(""))
            .collect();
        (phases.len() == 4 && phases.iter().all(|p| *p == "Available")).then_some(())
    });
    apply(&k, &claim("sized", "3Gi", Some("manual"), None));
    apply(
        &k,
        &claim(
            "gold",
            "1Gi",
            Some("manual"),
            Some(json!({"matchLabels": {"tier": "gold"}})),
        ),
    );
    apply(&k, &claim("classless", "1Gi", Some(""), None));
    assert_eq!(wait_bound(&server, &k, procs, "sized"), "vol-big");
    assert_eq!(wait_bound(&server, &k, procs, "gold"), "vol-gold");
    assert_eq!(wait_bound(&server, &k, procs, "classless"), "vol-plain");
    let sized = claim_json(&k, "sized");
    let annotations = &sized["metadata"]["annotations"];
    assert_eq!(
        annotations["pv.kubernetes.io/bind-completed"], "yes",
        "{sized}"
    );
    assert_eq!(
        annotations["pv.kubernetes.io/bound-by-controller"], "yes",
        "{sized}"
    );
    assert_eq!(sized["status"]["capacity"]["storage"], "5Gi", "{sized}");
    assert_eq!(sized["status"]["accessModes"], json!(["ReadWriteOnce"]));
    let big = get(&k, &["get", "pv", "vol-big"]);
    assert_eq!(
        big["spec"]["claimRef"]["uid"], sized["metadata"]["uid"],
        "{big}"
    );
    assert_eq!(
        big["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"],
        "yes"
    );
    let volumes = k.ok(&["get", "pv"]);
    assert_eq!(
        header(&volumes),
        [
            "NAME",
            "CAPACITY",
            "ACCESS",
            "MODES",
            "RECLAIM",
            "POLICY",
            "STATUS",
            "CLAIM",
            "STORAGECLASS",
            "VOLUMEATTRIBUTESCLASS",
            "REASON",
            "AGE"
        ]
    );
    assert_eq!(
        row(&volumes, "vol-big")[..7],
        [
            "vol-big",
            "5Gi",
            "RWO",
            "Retain",
            "Bound",
            "vol-e2e/sized",
            "manual"
        ]
    );
    assert_eq!(row(&volumes, "vol-small")[4], "Available");
    let claims = k.ok(&["-n", NS, "get", "pvc"]);
    assert_eq!(
        header(&claims),
        [
            "NAME",
            "STATUS",
            "VOLUME",
            "CAPACITY",
            "ACCESS",
            "MODES",
            "STORAGECLASS",
            "VOLUMEATTRIBUTESCLASS",
            "AGE"
        ]
    );
    assert_eq!(
        row(&claims, "sized")[..6],
        ["sized", "Bound", "vol-big", "5Gi", "RWO", "manual"]
    );
    // A claim nothing fits stays Pending, with upstream's event.
    apply(&k, &claim("huge", "100Gi", Some(""), None));
    wait_for("FailedBinding event", WAIT, &server, procs, || {
        event_messages(&k, "FailedBinding", "huge")
            .contains(
                &"no persistent volumes available for this claim and no storage class is set"
                    .to_owned(),
            )
            .then_some(())
    });
    assert_eq!(claim_json(&k, "huge")["status"]["phase"], "Pending");

    // Retain: the volume is Released when its claim is deleted, and stays.
    k.ok(&["-n", NS, "delete", "pvc", "sized"]);
    wait_for("vol-big released", WAIT, &server, procs, || {
        (get(&k, &["get", "pv", "vol-big"])["status"]["phase"] == "Released").then_some(())
    });

    // The default class: a claim without a class gets local-path and waits
    // for its first consumer.
    apply(&k, &claim("data", "2Gi", None, None));
    let data = claim_json(&k, "data");
    assert_eq!(data["spec"]["storageClassName"], "local-path", "{data}");
    wait_for("WaitForFirstConsumer event", WAIT, &server, procs, || {
        event_messages(&k, "WaitForFirstConsumer", "data")
            .contains(&"waiting for first consumer to be created before binding".to_owned())
            .then_some(())
    });
    assert_eq!(claim_json(&k, "data")["status"]["phase"], "Pending");

    // A pod using it: the claim is provisioned on the pod's node, and bound
    // before the pod is.
    apply(&k, &pod("writer", "data"));
    let node = wait_for("writer scheduled", WAIT, &server, procs, || {
        node_of(&k, "writer")
    });
    let volume = bound_volume(&k, "data").expect("the claim is Bound before its pod is bound");
    let data = claim_json(&k, "data");
    assert_eq!(
        volume,
        format!("pvc-{}", data["metadata"]["uid"].as_str().unwrap())
    );
    let annotations = &data["metadata"]["annotations"];
    assert_eq!(
        annotations["volume.kubernetes.io/selected-node"],
        node.as_str(),
        "{data}"
    );
    assert_eq!(
        annotations["volume.kubernetes.io/storage-provisioner"],
        "berth.dev/local-path"
    );
    assert_eq!(
        annotations["volume.beta.kubernetes.io/storage-provisioner"],
        "berth.dev/local-path"
    );
    let pv = get(&k, &["get", "pv", &volume]);
    assert_eq!(
        pv["metadata"]["annotations"]["pv.kubernetes.io/provisioned-by"],
        "berth.dev/local-path"
    );
    assert_eq!(
        pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0],
        json!({"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}),
        "{pv}"
    );
    let path = pv["spec"]["local"]["path"].as_str().unwrap();
    assert!(path.ends_with(&format!("/{volume}_{NS}_data")), "{path}");
    assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Delete");
    assert_eq!(pv["spec"]["capacity"]["storage"], "2Gi");
    for reason in ["ExternalProvisioning", "ProvisioningSucceeded"] {
        assert!(
            !event_messages(&k, reason, "data").is_empty(),
            "no {reason} event"
        );
    }
    let volumes = k.ok(&["get", "pv", &volume]);
    assert_eq!(
        row(&volumes, &volume)[..7],
        [
            volume.as_str(),
            "2Gi",
            "RWO",
            "Delete",
            "Bound",
            "vol-e2e/data",
            "local-path"
        ]
    );

    // A second pod using the claim follows the volume to its node, though
    // the other node is emptier.
    apply(&k, &pod("reader", "data"));
    let second = wait_for("reader scheduled", WAIT, &server, procs, || {
        node_of(&k, "reader")
    });
    assert_eq!(second, node);

    // A pod whose claim does not exist is not scheduled, with upstream's reason.
    apply(&k, &pod("orphan", "missing"));
    let message = wait_for("orphan unschedulable", WAIT, &server, procs, || {
        let pod = get(&k, &["-n", NS, "get", "pod", "orphan"]);
        pod["status"]["conditions"].as_array().and_then(|c| {
            c.iter()
                .find(|c| c["type"] == "PodScheduled" && c["status"] == "False")
                .map(|c| c["message"].as_str().unwrap_or("").to_owned())
        })
    });
    assert!(
        message.contains("persistentvolumeclaim \"missing\" not found"),
        "{message}"
    );

    // A StatefulSet's volumeClaimTemplates get Bound local-path claims.
    let set = json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": NS},
        "spec": {"serviceName": "db", "replicas": 3, "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}},
                "spec": {"terminationGracePeriodSeconds": 0,
                    "containers": [{"name": "db", "image": "busybox",
                        "volumeMounts": [{"name": "www", "mountPath": "/www"}]}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "www"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}});
    apply(&k, &set);
    for ordinal in 0..3 {
        let name = format!("www-db-{ordinal}");
        let volume = wait_bound(&server, &k, procs, &name);
        let pod = format!("db-{ordinal}");
        let node = wait_for(&format!("{pod} scheduled"), WAIT, &server, procs, || {
            node_of(&k, &pod)
        });
        let pv = get(&k, &["get", "pv", &volume]);
        let pinned = &pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]
            ["matchExpressions"][0]["values"][0];
        assert_eq!(pinned, node.as_str(), "{pod}'s volume is on its node");
    }
}
