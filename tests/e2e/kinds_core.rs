//! The remaining core/v1 kinds through the real kubectl 1.33: ReplicationController
//! (its controller on simulated nodes, `kubectl scale`), PodTemplate, LimitRange,
//! PersistentVolume, PersistentVolumeClaim, ResourceQuota (usage kept by the quota
//! controller, `kubectl create quota` in protobuf) and the read-only ComponentStatus.
//! Each kind is applied from a kubernetes.io example, read back as a table, YAML,
//! `describe` and `explain`, edited, refused when invalid, and deleted.

mod support;

use std::process::Command;
use std::time::Duration;

use support::{eventually, manifest, Kubectl, Server, KUBECTL_1_33};

/// One server (with two simulated nodes) for every kind of this file.
#[test]
fn core_kinds_are_served_as_upstream_serves_them() {
    let server = Server::start();
    let _nodes = server.start_sim(2, "core-", &[]);
    let k = server.kubectl(KUBECTL_1_33);
    eventually(Duration::from_secs(30), || {
        let ready = k.jsonpath(
            &["get", "nodes"],
            r#"{.items[*].status.conditions[?(@.type=="Ready")].status}"#,
        );
        (ready.split_whitespace().filter(|s| *s == "True").count() == 2).then_some(())
    });
    pod_templates(&k);
    limit_ranges(&server, &k);
    persistent_volumes_and_claims(&k);
    component_statuses(&k);
    resource_quotas(&k);
    replication_controllers(&k);
}

/// The header line of a table, words separated by single spaces.
fn header(table: &str) -> String {
    table
        .lines()
        .next()
        .unwrap_or_default()
        .split("  ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" | ")
}

/// The table row of `name`, its cells split on runs of spaces.
fn row(table: &str, name: &str) -> Vec<String> {
    table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no row {name} in\n{table}"))
        .split("  ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Whether some line of `text` has exactly these words (spacing aside).
fn has_line(text: &str, words: &str) -> bool {
    let wanted: Vec<&str> = words.split_whitespace().collect();
    text.lines()
        .any(|l| l.split_whitespace().collect::<Vec<_>>() == wanted)
}

/// Writes `text` into a temporary file and returns its path (kept for the run).
fn temp_manifest(name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("berth-kinds-core-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

fn pod_templates(k: &Kubectl) {
    k.ok(&["apply", "-f", &manifest("kinds/podtemplate.yaml")]);
    let table = k.ok(&["get", "podtemplates"]);
    assert_eq!(header(&table), "NAME | CONTAINERS | IMAGES | POD LABELS");
    assert_eq!(
        row(&table, "hello"),
        ["hello", "hello", "busybox:1.28", "app=hello"]
    );
    let yaml = k.ok(&["get", "podtemplate", "hello", "-o", "yaml"]);
    for default in [
        "restartPolicy: Always",
        "terminationGracePeriodSeconds: 30",
        "dnsPolicy: ClusterFirst",
        "imagePullPolicy: IfNotPresent",
        "schedulerName: default-scheduler",
    ] {
        assert!(yaml.contains(default), "{default} missing:\n{yaml}");
    }
    let described = k.ok(&["describe", "podtemplate", "hello"]);
    assert!(
        described.contains("hello") && described.contains("busybox:1.28"),
        "{described}"
    );
    let explained = k.ok(&["explain", "podtemplate.template"]);
    assert!(explained.contains("KIND:       PodTemplate"), "{explained}");
    k.ok(&[
        "patch",
        "podtemplate",
        "hello",
        "-p",
        r#"{"template":{"metadata":{"labels":{"tier":"demo"}}}}"#,
    ]);
    let table = k.ok(&["get", "podtemplate", "hello"]);
    assert_eq!(row(&table, "hello")[3], "app=hello,tier=demo");
    let bad = temp_manifest(
        "bad-podtemplate.yaml",
        "apiVersion: v1\nkind: PodTemplate\nmetadata:\n  name: empty\ntemplate:\n  spec:\n    containers: []\n",
    );
    let refused = k.fails(&["apply", "-f", &bad]);
    assert!(
        refused.contains(
            r#"PodTemplate "empty" is invalid: template.spec.containers: Required value"#
        ),
        "{refused}"
    );
    k.ok(&["delete", "podtemplate", "hello"]);
    assert!(k
        .fails(&["get", "podtemplate", "hello"])
        .contains("NotFound"));
}

fn limit_ranges(server: &Server, k: &Kubectl) {
    k.ok(&["apply", "-f", &manifest("kinds/limitrange.yaml")]);
    let table = k.ok(&["get", "limits"]);
    assert_eq!(header(&table), "NAME | CREATED AT");
    assert!(row(&table, "mem-limit-range")[1].ends_with('Z'), "{table}");
    let described = k.ok(&["describe", "limitrange", "mem-limit-range"]);
    assert!(
        has_line(&described, "Container memory - - 256Mi 512Mi -"),
        "{described}"
    );
    assert!(k
        .ok(&["explain", "limitrange.spec.limits"])
        .contains("FIELD: limits <[]LimitRangeItem>"));
    // Upstream's container defaults: the limit from max, the request from the limit.
    let cpu = temp_manifest(
        "cpu-limits.yaml",
        "apiVersion: v1\nkind: LimitRange\nmetadata:\n  name: cpu-max\nspec:\n  limits:\n  - type: Container\n    max:\n      cpu: \"1\"\n",
    );
    k.ok(&["apply", "-f", &cpu]);
    let defaulted = k.jsonpath(
        &["get", "limits", "cpu-max"],
        "{.spec.limits[0].default.cpu} {.spec.limits[0].defaultRequest.cpu}",
    );
    assert_eq!(defaulted, "1 1");
    // kubectl edit, with a sed script as the editor.
    let edited = Command::new(KUBECTL_1_33)
        .args(["--kubeconfig", &server.kubeconfig().to_string_lossy()])
        .args(["edit", "limitrange", "mem-limit-range"])
        .env("KUBE_EDITOR", "sed -i s/512Mi/1Gi/")
        .output()
        .unwrap();
    assert!(edited.status.success(), "{edited:?}");
    assert_eq!(
        k.jsonpath(
            &["get", "limits", "mem-limit-range"],
            "{.spec.limits[0].default.memory}"
        ),
        "1Gi"
    );
    let refused = k.fails(&[
        "patch",
        "limitrange",
        "mem-limit-range",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/limits/0/defaultRequest/memory","value":"2Gi"}]"#,
    ]);
    assert!(
        refused.contains(r#"LimitRange "mem-limit-range" is invalid: spec.limits[0].defaultRequest[memory]: Invalid value: "2Gi": default request value 2Gi is greater than default limit value 1Gi"#),
        "{refused}"
    );
    k.ok(&["delete", "limits", "mem-limit-range", "cpu-max"]);
    assert!(k.ok(&["get", "limits", "-o", "name"]).trim().is_empty());
}

fn persistent_volumes_and_claims(k: &Kubectl) {
    k.ok(&["apply", "-f", &manifest("kinds/persistentvolume.yaml")]);
    let table = k.ok(&["get", "pv"]);
    assert_eq!(
        header(&table),
        "NAME | CAPACITY | ACCESS MODES | RECLAIM POLICY | STATUS | CLAIM | STORAGECLASS | VOLUMEATTRIBUTESCLASS | REASON | AGE"
    );
    // The PV controller makes a new volume Available at once (Pending before it looks).
    let cells = row(&table, "task-pv-volume");
    assert_eq!(
        [&cells[..4], &cells[5..7]].concat(),
        [
            "task-pv-volume",
            "10Gi",
            "RWO",
            "Retain",
            "manual",
            "<unset>"
        ]
    );
    assert!(
        matches!(cells[4].as_str(), "Pending" | "Available"),
        "{table}"
    );
    let yaml = k.ok(&["get", "pv", "task-pv-volume", "-o", "yaml"]);
    for default in [
        "persistentVolumeReclaimPolicy: Retain",
        "volumeMode: Filesystem",
    ] {
        assert!(yaml.contains(default), "{default} missing:\n{yaml}");
    }
    let described = k.ok(&["describe", "pv", "task-pv-volume"]);
    assert!(described.contains("Reclaim Policy:  Retain"), "{described}");
    assert!(
        described.contains("HostPath (bare host directory volume)"),
        "{described}"
    );
    assert!(k
        .ok(&["explain", "pv.spec.accessModes"])
        .contains("FIELD: accessModes <[]string>"));
    k.ok(&["label", "pv", "task-pv-volume", "tier=fast"]);
    let refused = k.fails(&[
        "patch",
        "pv",
        "task-pv-volume",
        "-p",
        r#"{"spec":{"hostPath":{"path":"/mnt/other"}}}"#,
    ]);
    assert!(refused.contains(r#"PersistentVolume "task-pv-volume" is invalid: spec.persistentvolumesource: Forbidden: spec.persistentvolumesource is immutable after creation"#), "{refused}");
    let no_modes = temp_manifest(
        "pv-no-modes.yaml",
        "apiVersion: v1\nkind: PersistentVolume\nmetadata:\n  name: nomodes\nspec:\n  capacity:\n    storage: 1Gi\n  hostPath:\n    path: /tmp\n",
    );
    let refused = k.fails(&["apply", "-f", &no_modes]);
    assert!(
        refused.contains("spec.accessModes: Required value: must specify at least 1 access mode"),
        "{refused}"
    );

    k.ok(&["apply", "-f", &manifest("kinds/persistentvolumeclaim.yaml")]);
    let table = k.ok(&["get", "pvc"]);
    assert_eq!(
        header(&table),
        "NAME | STATUS | VOLUME | CAPACITY | ACCESS MODES | STORAGECLASS | VOLUMEATTRIBUTESCLASS | AGE"
    );
    // The PV controller binds the claim to the volume of its class, as upstream's.
    let table = eventually(Duration::from_secs(30), || {
        let table = k.ok(&["get", "pvc"]);
        (row(&table, "task-pv-claim")[1] == "Bound").then_some(table)
    });
    assert_eq!(
        row(&table, "task-pv-claim")[..6],
        [
            "task-pv-claim",
            "Bound",
            "task-pv-volume",
            "10Gi",
            "RWO",
            "manual"
        ]
    );
    let yaml = k.ok(&["get", "pvc", "task-pv-claim", "-o", "yaml"]);
    assert!(
        yaml.contains("volumeMode: Filesystem") && yaml.contains("phase: Bound"),
        "{yaml}"
    );
    let described = k.ok(&["describe", "pvc", "task-pv-claim"]);
    assert!(
        described.contains("StorageClass:  manual") && described.contains("Status:        Bound"),
        "{described}"
    );
    assert!(k
        .ok(&["explain", "pvc.spec.resources"])
        .contains("KIND:       PersistentVolumeClaim"));
    k.ok(&[
        "patch",
        "pvc",
        "task-pv-claim",
        "-p",
        r#"{"spec":{"resources":{"requests":{"storage":"4Gi"}}}}"#,
    ]);
    let refused = k.fails(&[
        "patch",
        "pvc",
        "task-pv-claim",
        "-p",
        r#"{"spec":{"accessModes":["ReadWriteMany"]}}"#,
    ]);
    assert!(refused.contains("spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"), "{refused}");
    let no_storage = temp_manifest(
        "pvc-no-storage.yaml",
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: nostorage\nspec:\n  accessModes: [ReadWriteOnce]\n",
    );
    let refused = k.fails(&["apply", "-f", &no_storage]);
    assert!(refused.contains(r#"PersistentVolumeClaim "nostorage" is invalid: spec.resources[storage]: Required value"#), "{refused}");
    k.ok(&["delete", "pvc", "task-pv-claim"]);
    k.ok(&["delete", "pv", "task-pv-volume"]);
    assert!(k.ok(&["get", "pv,pvc", "-o", "name"]).trim().is_empty());
}

fn component_statuses(k: &Kubectl) {
    let out = k.run(&["get", "componentstatuses"]);
    assert!(out.status.success(), "{out:?}");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("Warning: v1 ComponentStatus is deprecated in v1.19+"),
        "{out:?}"
    );
    assert_eq!(header(&table), "NAME | STATUS | MESSAGE | ERROR");
    for name in ["controller-manager", "etcd-0", "scheduler"] {
        assert_eq!(row(&table, name), [name, "Healthy", "ok"]);
    }
    let yaml = k.ok(&["get", "cs", "etcd-0", "-o", "yaml"]);
    for line in [
        "type: Healthy",
        "status: \"True\"",
        "message: ok",
        "kind: ComponentStatus",
    ] {
        assert!(yaml.contains(line), "{line} missing:\n{yaml}");
    }
    assert!(k.ok(&["describe", "cs", "scheduler"]).contains("scheduler"));
    assert!(k
        .ok(&["explain", "componentstatus"])
        .contains("KIND:       ComponentStatus"));
    assert!(k
        .fails(&["get", "cs", "nothing"])
        .contains(r#"componentstatuses "nothing" not found"#));
    let refused = k.fails(&["delete", "cs", "etcd-0"]);
    assert!(
        refused.contains("the server does not allow this method on the requested resource"),
        "{refused}"
    );
    let refused = k.fails(&["label", "cs", "etcd-0", "a=b"]);
    assert!(
        refused.contains("the server does not allow this method on the requested resource"),
        "{refused}"
    );
}

fn resource_quotas(k: &Kubectl) {
    k.ok(&["create", "namespace", "quota-demo"]);
    let ns = ["-n", "quota-demo"];
    let with_ns = |args: &[&str]| -> Vec<String> {
        args.iter()
            .chain(ns.iter())
            .map(|s| (*s).to_owned())
            .collect()
    };
    let run = |args: &[&str]| {
        let args = with_ns(args);
        k.ok(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    run(&["apply", "-f", &manifest("kinds/resourcequota.yaml")]);
    let table = eventually(Duration::from_secs(20), || {
        let table = run(&["get", "quota"]);
        table.contains("requests.cpu: 0/1").then_some(table)
    });
    assert_eq!(header(&table), "NAME | AGE | REQUEST | LIMIT");
    let cells = row(&table, "mem-cpu-demo");
    assert_eq!(
        cells[2..],
        [
            "requests.cpu: 0/1, requests.memory: 0/1Gi",
            "limits.cpu: 0/2, limits.memory: 0/2Gi"
        ]
    );
    // kubectl 1.33 sends this one in protobuf.
    run(&["create", "quota", "object-counts", "--hard=pods=4,configmaps=5,count/configmaps=5,services.nodeports=2,count/deployments.apps=2"]);
    run(&["apply", "-f", &manifest("kinds/resourcequota-pod.yaml")]);
    run(&["create", "configmap", "one", "--from-literal=a=b"]);
    run(&["create", "configmap", "two", "--from-literal=a=b"]);
    let described = eventually(Duration::from_secs(30), || {
        let text = run(&["describe", "quota", "mem-cpu-demo"]);
        has_line(&text, "requests.cpu 400m 1").then_some(text)
    });
    for line in [
        "limits.cpu       800m   2",
        "limits.memory    800Mi  2Gi",
        "requests.memory  600Mi  1Gi",
    ] {
        assert!(has_line(&described, line), "{line} missing:\n{described}");
    }
    let counts = eventually(Duration::from_secs(30), || {
        let text = run(&["describe", "quota", "object-counts"]);
        text.contains("count/configmaps        2     5")
            .then_some(text)
    });
    for line in [
        "configmaps              2     5",
        "count/deployments.apps  0     2",
        "pods                    1     4",
        "services.nodeports      0     2",
    ] {
        assert!(has_line(&counts, line), "{line} missing:\n{counts}");
    }
    let yaml = run(&["get", "quota", "mem-cpu-demo", "-o", "yaml"]);
    assert!(
        yaml.contains("status:\n  hard:\n    limits.cpu: \"2\""),
        "{yaml}"
    );
    assert!(
        run(&["explain", "resourcequota.spec.hard"]).contains("FIELD: hard <map[string]Quantity>")
    );
    run(&[
        "patch",
        "quota",
        "mem-cpu-demo",
        "-p",
        r#"{"spec":{"hard":{"requests.cpu":"2"}}}"#,
    ]);
    eventually(Duration::from_secs(20), || {
        run(&["get", "quota", "mem-cpu-demo"])
            .contains("requests.cpu: 400m/2")
            .then_some(())
    });
    // Deleting the pod gives its share back.
    run(&[
        "delete",
        "pod",
        "quota-mem-cpu-demo",
        "--grace-period=0",
        "--force",
    ]);
    eventually(Duration::from_secs(30), || {
        run(&["get", "quota", "mem-cpu-demo"])
            .contains("requests.cpu: 0/2")
            .then_some(())
    });
    let refused = k.fails(
        &with_ns(&["create", "quota", "bad", "--hard=widgets=1"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(refused.contains(r#"ResourceQuota "bad" is invalid: spec.hard[widgets]: Invalid value: "widgets": must be a standard resource for quota"#), "{refused}");
    run(&["delete", "quota", "mem-cpu-demo", "object-counts"]);
    assert!(run(&["get", "quota", "-o", "name"]).trim().is_empty());
}

fn replication_controllers(k: &Kubectl) {
    k.ok(&["apply", "-f", &manifest("kinds/replicationcontroller.yaml")]);
    let running = |count: usize| {
        eventually(Duration::from_secs(40), || {
            let phases = k.jsonpath(
                &["get", "pods", "-l", "app=nginx"],
                "{.items[*].status.phase}",
            );
            let ready = k.jsonpath(&["get", "rc", "nginx"], "{.status.readyReplicas}");
            let running = phases
                .split_whitespace()
                .filter(|p| *p == "Running")
                .count();
            let total = phases.split_whitespace().count();
            (running == count && total == count && ready == count.to_string()).then_some(())
        })
    };
    running(3);
    let table = k.ok(&["get", "rc", "-o", "wide"]);
    assert_eq!(
        header(&table),
        "NAME | DESIRED | CURRENT | READY | AGE | CONTAINERS | IMAGES | SELECTOR"
    );
    let cells = row(&table, "nginx");
    assert_eq!(cells[..4], ["nginx", "3", "3", "3"]);
    assert_eq!(cells[5..], ["nginx", "nginx", "app=nginx"]);
    let yaml = k.ok(&["get", "rc", "nginx", "-o", "yaml"]);
    for default in [
        "  labels:\n    app: nginx",
        "restartPolicy: Always",
        "imagePullPolicy: Always",
        "generation: 1",
    ] {
        assert!(yaml.contains(default), "{default} missing:\n{yaml}");
    }
    let owners = k.jsonpath(
        &["get", "pods", "-l", "app=nginx"],
        "{.items[0].metadata.ownerReferences[0].kind} {.items[0].metadata.ownerReferences[0].controller}",
    );
    assert_eq!(owners, "ReplicationController true");
    let described = k.ok(&["describe", "rc", "nginx"]);
    assert!(
        described.contains("Replicas:     3 current / 3 desired"),
        "{described}"
    );
    assert!(
        described.contains("SuccessfulCreate") && described.contains("replication-controller"),
        "{described}"
    );
    assert!(k
        .ok(&["explain", "rc.spec.selector"])
        .contains("FIELD: selector <map[string]string>"));

    let scaled = k.ok(&["scale", "rc", "nginx", "--replicas=1"]);
    assert!(
        scaled.contains("replicationcontroller/nginx scaled"),
        "{scaled}"
    );
    running(1);
    let scale = k.ok(&[
        "get",
        "--raw",
        "/api/v1/namespaces/default/replicationcontrollers/nginx/scale",
    ]);
    let scale: serde_json::Value = serde_json::from_str(&scale).unwrap();
    assert_eq!(scale["status"]["selector"], "app=nginx");
    assert_eq!(scale["spec"]["replicas"], 1);
    k.ok(&["patch", "rc", "nginx", "-p", r#"{"spec":{"replicas":2}}"#]);
    running(2);

    let refused = k.fails(&[
        "patch",
        "rc",
        "nginx",
        "-p",
        r#"{"spec":{"selector":{"app":"other"}}}"#,
    ]);
    assert!(refused.contains(r#"ReplicationController "nginx" is invalid: spec.template.metadata.labels: Invalid value: "app=nginx": `selector` does not match template `labels`"#), "{refused}");
    let refused = k.fails(&["scale", "rc", "nginx", "--replicas=-1"]);
    assert!(
        refused.contains("--replicas=COUNT")
            || refused.contains("must be greater than or equal to 0"),
        "{refused}"
    );

    k.ok(&["delete", "rc", "nginx"]);
    eventually(Duration::from_secs(30), || {
        k.ok(&["get", "pods", "-l", "app=nginx", "-o", "name"])
            .trim()
            .is_empty()
            .then_some(())
    });
}
