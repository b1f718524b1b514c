//! Volume protection and the retroactive default StorageClass on a simulated
//! node, driven by kubectl 1.33: new claims and volumes carry upstream's
//! protection finalizers; a deleted claim stays Terminating while a pod uses
//! it and a deleted volume while it is Bound, and both go once the pod does;
//! a claim made while no class is the default gets the default class once
//! one is marked again.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::{wait_for, BerthProcess, Kubectl, Server, KUBECTL_1_33};

const NS: &str = "dr-vp";
const WAIT: Duration = Duration::from_secs(60);
const PVC_PROTECTION: &str = "kubernetes.io/pvc-protection";
const PV_PROTECTION: &str = "kubernetes.io/pv-protection";

fn apply(k: &Kubectl, object: &Value) {
    k.ok_stdin(&["apply", "-f", "-"], &object.to_string());
}

fn get(k: &Kubectl, args: &[&str]) -> Option<Value> {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let out = k.run(&all);
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).unwrap())
}

fn finalizers(object: &Value) -> Vec<String> {
    object["metadata"]["finalizers"]
        .as_array()
        .map(|f| {
            f.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn gone(server: &Server, k: &Kubectl, procs: &mut [&mut BerthProcess], args: &[&str]) {
    wait_for(&format!("{args:?} gone"), WAIT, server, procs, || {
        get(k, args).is_none().then_some(())
    });
}

#[test]
fn claims_and_volumes_in_use_are_protected_and_class_less_claims_get_a_later_default() {
    let server = Server::start_with(&[]);
    let k = server.kubectl(KUBECTL_1_33);
    k.ok(&["create", "namespace", NS]);
    let mut node = server.start_agent("dr-vp-node", &[]);
    let procs = &mut [&mut node];

    // A static volume bound to a claim that a running pod uses.
    apply(
        &k,
        &json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "dr-vp-vol"},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                     "storageClassName": "dr-manual", "hostPath": {"path": "/tmp/dr-vp-vol"}}}),
    );
    apply(
        &k,
        &json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "namespace": NS},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "dr-manual",
                     "resources": {"requests": {"storage": "1Gi"}}}}),
    );
    apply(
        &k,
        &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "app", "namespace": NS},
            "spec": {"terminationGracePeriodSeconds": 0,
                "containers": [{"name": "c", "image": "busybox",
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]}}),
    );
    wait_for("app running on a bound claim", WAIT, &server, procs, || {
        let pod = get(&k, &["-n", NS, "get", "pod", "app"])?;
        let claim = get(&k, &["-n", NS, "get", "pvc", "data"])?;
        (pod["status"]["phase"] == "Running" && claim["status"]["phase"] == "Bound").then_some(())
    });
    let claim = get(&k, &["-n", NS, "get", "pvc", "data"]).unwrap();
    assert_eq!(finalizers(&claim), [PVC_PROTECTION], "{claim}");
    let volume = get(&k, &["get", "pv", "dr-vp-vol"]).unwrap();
    assert_eq!(finalizers(&volume), [PV_PROTECTION], "{volume}");

    // Deleting both while in use leaves both Terminating.
    k.ok(&["-n", NS, "delete", "pvc", "data", "--wait=false"]);
    k.ok(&["delete", "pv", "dr-vp-vol", "--wait=false"]);
    std::thread::sleep(Duration::from_secs(3));
    let table = k.ok(&["-n", NS, "get", "pvc", "data", "--no-headers"]);
    assert_eq!(
        table.split_whitespace().nth(1),
        Some("Terminating"),
        "{table}"
    );
    let claim = get(&k, &["-n", NS, "get", "pvc", "data"]).unwrap();
    assert_eq!(finalizers(&claim), [PVC_PROTECTION], "{claim}");
    let volume = get(&k, &["get", "pv", "dr-vp-vol"]).unwrap();
    assert!(
        !volume["metadata"]["deletionTimestamp"].is_null(),
        "{volume}"
    );
    assert_eq!(volume["status"]["phase"], "Bound", "{volume}");

    // The pod goes: the claim follows, its volume is released and follows too.
    k.ok(&["-n", NS, "delete", "pod", "app", "--wait=false"]);
    gone(&server, &k, procs, &["-n", NS, "get", "pvc", "data"]);
    gone(&server, &k, procs, &["get", "pv", "dr-vp-vol"]);

    // No default class: a class-less claim keeps storageClassName unset ...
    let default = "storageclass.kubernetes.io/is-default-class";
    k.ok(&[
        "annotate",
        "sc",
        "local-path",
        &format!("{default}=false"),
        "--overwrite",
    ]);
    apply(
        &k,
        &json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "late", "namespace": NS},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}),
    );
    apply(
        &k,
        &json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "none", "namespace": NS},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "",
                     "resources": {"requests": {"storage": "1Gi"}}}}),
    );
    std::thread::sleep(Duration::from_secs(2));
    let late = get(&k, &["-n", NS, "get", "pvc", "late"]).unwrap();
    assert!(late["spec"].get("storageClassName").is_none(), "{late}");
    // ... until a default exists again; "" stays "no class".
    k.ok(&[
        "annotate",
        "sc",
        "local-path",
        &format!("{default}=true"),
        "--overwrite",
    ]);
    wait_for("late gets local-path", WAIT, &server, procs, || {
        let late = get(&k, &["-n", NS, "get", "pvc", "late"])?;
        (late["spec"]["storageClassName"] == "local-path").then_some(())
    });
    let none = get(&k, &["-n", NS, "get", "pvc", "none"]).unwrap();
    assert_eq!(none["spec"]["storageClassName"], "", "{none}");
    k.ok(&["delete", "namespace", NS, "--timeout=60s"]);
}
