//! The workload kinds without controllers in berth (DaemonSets, StatefulSets,
//! ControllerRevisions, Jobs, CronJobs, HorizontalPodAutoscalers in
//! autoscaling/v1 and v2, PodDisruptionBudgets), end to end with the real
//! kubectl: upstream's defaults, validation and immutable fields, status reset
//! and generation tracking, tables, short names and `kubectl get all`, the
//! generator commands over protobuf (`create job|cronjob|poddisruptionbudget`,
//! `autoscale`), `kubectl scale statefulset` through `/scale`, and one stored
//! autoscaler served in both versions.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};
use support::{eventually, manifest, Kubectl, Server, KUBECTL_1_31, KUBECTL_1_33};

fn get_json(k: &Kubectl, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&k.ok(&all)).unwrap()
}

fn raw(k: &Kubectl, path: &str) -> Value {
    serde_json::from_str(&k.ok(&["get", "--raw", path])).unwrap()
}

/// The column headers of a `kubectl get` table.
fn headers(table: &str) -> Vec<String> {
    table
        .lines()
        .next()
        .unwrap_or_default()
        .split("  ")
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The first data row of a `kubectl get` table, cell by cell.
fn first_row(table: &str) -> Vec<String> {
    table
        .lines()
        .nth(1)
        .unwrap_or_default()
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn manifests_get_upstream_defaults_tables_short_names_and_get_all() {
    let server = Server::start();
    let k = server.kubectl(KUBECTL_1_33);
    k.ok(&["apply", "-f", &manifest("kinds/workloads.yaml")]);
    let ns = ["-n", "kinds"];

    let ds = get_json(&k, &[&ns[..], &["get", "ds", "agent"]].concat());
    assert_eq!(ds["metadata"]["generation"], 1);
    assert_eq!(
        ds["metadata"]["annotations"]["deprecated.daemonset.template.generation"],
        "1"
    );
    assert_eq!(
        ds["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
    );
    assert_eq!(ds["spec"]["revisionHistoryLimit"], 10);
    // The DaemonSet controller may have recorded the generation it saw; no nodes, no pods.
    let mut status = ds["status"].clone();
    status.as_object_mut().unwrap().remove("observedGeneration");
    assert_eq!(
        status,
        json!({"currentNumberScheduled": 0, "desiredNumberScheduled": 0, "numberMisscheduled": 0, "numberReady": 0})
    );

    let sts = get_json(&k, &[&ns[..], &["get", "sts", "db"]].concat());
    assert_eq!(sts["spec"]["podManagementPolicy"], "OrderedReady");
    assert_eq!(
        sts["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
    );
    assert_eq!(
        sts["spec"]["persistentVolumeClaimRetentionPolicy"],
        json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
    );
    let claim = &sts["spec"]["volumeClaimTemplates"][0];
    assert_eq!(claim["apiVersion"], "v1");
    assert_eq!(claim["kind"], "PersistentVolumeClaim");
    assert_eq!(claim["spec"]["volumeMode"], "Filesystem");
    assert_eq!(claim["status"]["phase"], "Pending");
    // The StatefulSet controller may already have created db-0 (replicas 1),
    // but with no node nothing is ready or available.
    assert_eq!(sts["status"]["availableReplicas"], 0, "{}", sts["status"]);
    assert!(
        matches!(sts["status"]["readyReplicas"].as_i64(), None | Some(0)),
        "{}",
        sts["status"]
    );

    let job = get_json(&k, &[&ns[..], &["get", "job", "pi"]].concat());
    let uid = job["metadata"]["uid"].as_str().unwrap();
    assert_eq!(
        job["spec"]["selector"],
        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}})
    );
    assert_eq!(
        job["spec"]["template"]["metadata"]["labels"],
        json!({"app": "pi", "batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": "pi",
               "controller-uid": uid, "job-name": "pi"})
    );
    // Defaulting copied the template's own labels onto the Job before the selector was generated.
    assert_eq!(job["metadata"]["labels"], json!({"app": "pi"}));
    for (field, value) in [
        ("backoffLimit", json!(6)),
        ("completions", json!(1)),
        ("parallelism", json!(1)),
        ("completionMode", json!("NonIndexed")),
        ("suspend", json!(false)),
        ("manualSelector", json!(false)),
        ("podReplacementPolicy", json!("TerminatingOrFailed")),
    ] {
        assert_eq!(job["spec"][field], value, "{field}");
    }

    let cj = get_json(&k, &[&ns[..], &["get", "cj", "tick"]].concat());
    assert_eq!(cj["spec"]["concurrencyPolicy"], "Allow");
    assert_eq!(cj["spec"]["successfulJobsHistoryLimit"], 3);
    assert_eq!(cj["spec"]["failedJobsHistoryLimit"], 1);
    assert_eq!(cj["spec"]["suspend"], false);

    let hpa = get_json(&k, &[&ns[..], &["get", "hpa", "db"]].concat());
    assert_eq!(hpa["apiVersion"], "autoscaling/v2");
    assert_eq!(
        hpa["spec"]["behavior"],
        json!({
            "scaleDown": {"policies": [{"periodSeconds": 15, "type": "Percent", "value": 100}],
                          "selectPolicy": "Max", "stabilizationWindowSeconds": 120},
            "scaleUp": {"policies": [{"periodSeconds": 15, "type": "Pods", "value": 4},
                                     {"periodSeconds": 15, "type": "Percent", "value": 100}],
                        "selectPolicy": "Max", "stabilizationWindowSeconds": 0},
        })
    );

    let pdb = get_json(&k, &[&ns[..], &["get", "pdb", "db"]].concat());
    assert_eq!(pdb["metadata"]["generation"], 1);
    // The registry's defaults, or the disruption controller's status if it
    // has already synced the budget (the StatefulSet's pod may count as
    // expected): either way no node runs a pod, so none is healthy and no
    // disruption is allowed.
    for field in ["currentHealthy", "disruptionsAllowed"] {
        assert_eq!(pdb["status"][field], 0, "{field}: {}", pdb["status"]);
    }

    // `kubectl get all` lists the kinds in the `all` category, and only those.
    // (Pods are in it too; the controllers may have made db-0 and pi-… by now.)
    let all: BTreeSet<String> = k
        .ok(&[&ns[..], &["get", "all", "-o", "name"]].concat())
        .lines()
        .filter(|line| !line.starts_with("pod/"))
        // The CronJob fires on every fifth minute: its runs come and go.
        .filter(|line| !line.starts_with("job.batch/tick-"))
        .map(str::to_owned)
        .collect();
    let expected: BTreeSet<String> = [
        "daemonset.apps/agent",
        "statefulset.apps/db",
        "horizontalpodautoscaler.autoscaling/db",
        "cronjob.batch/tick",
        "job.batch/pi",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(all, expected);
    let by_short_names = k.ok(&[
        &ns[..],
        &["get", "ds,sts,cj,hpa,pdb,controllerrevisions", "-o", "name"],
    ]
    .concat());
    for name in [
        "daemonset.apps/agent",
        "statefulset.apps/db",
        "cronjob.batch/tick",
        "horizontalpodautoscaler.autoscaling/db",
        "poddisruptionbudget.policy/db",
        "controllerrevision.apps/db-7b9d5c",
    ] {
        assert!(by_short_names.contains(name), "{by_short_names}");
    }

    // Upstream's table columns.
    let tables = [
        (
            "ds",
            vec![
                "NAME",
                "DESIRED",
                "CURRENT",
                "READY",
                "UP-TO-DATE",
                "AVAILABLE",
                "NODE SELECTOR",
                "AGE",
            ],
            vec!["agent", "0", "0", "0", "0", "0", "kubernetes.io/os=linux"],
        ),
        ("sts", vec!["NAME", "READY", "AGE"], vec!["db", "0/2"]),
        (
            "controllerrevisions db-7b9d5c",
            vec!["NAME", "CONTROLLER", "REVISION", "AGE"],
            vec!["db-7b9d5c", "<none>", "1"],
        ),
        (
            "jobs",
            vec!["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"],
            vec!["pi", "Running", "0/1"],
        ),
        (
            "cj",
            vec![
                "NAME",
                "SCHEDULE",
                "TIMEZONE",
                "SUSPEND",
                "ACTIVE",
                "LAST SCHEDULE",
                "AGE",
            ],
            // ACTIVE and LAST SCHEDULE depend on the clock: checked below.
            vec!["tick", "*/5 * * * *", "Europe/Berlin", "False"],
        ),
        (
            "hpa",
            vec![
                "NAME",
                "REFERENCE",
                "TARGETS",
                "MINPODS",
                "MAXPODS",
                "REPLICAS",
                "AGE",
            ],
            vec![
                "db",
                "StatefulSet/db",
                "memory: <unknown>/1Gi, cpu: <unknown>/70%",
                "2",
                "6",
                "0",
            ],
        ),
        (
            "pdb",
            vec![
                "NAME",
                "MIN AVAILABLE",
                "MAX UNAVAILABLE",
                "ALLOWED DISRUPTIONS",
                "AGE",
            ],
            vec!["db", "N/A", "1", "0"],
        ),
    ];
    for (resource, columns, cells) in tables {
        // The DaemonSet's own revision sorts before db's: name the one to show.
        let get: Vec<&str> = resource.split_whitespace().collect();
        let table = k.ok(&[&ns[..], &["get"], &get[..]].concat());
        assert_eq!(headers(&table), columns, "{resource}:\n{table}");
        let row = first_row(&table);
        assert_eq!(&row[..cells.len()], &cells[..], "{resource}:\n{table}");
    }
    // Created just before a five-minute boundary, the CronJob fires at once:
    // then its row shows the run and when it was scheduled, never a mix.
    let cron_row = first_row(&k.ok(&[&ns[..], &["get", "cj", "tick"]].concat()));
    match (cron_row[4].as_str(), cron_row[5].as_str()) {
        ("0", "<none>") => {}
        (active, last) => assert!(
            active.parse::<u32>().is_ok() && last != "<none>",
            "cj row: {cron_row:?}"
        ),
    }
    let wide = k.ok(&[&ns[..], &["get", "job", "pi", "-o", "wide"]].concat());
    assert_eq!(
        headers(&wide),
        [
            "NAME",
            "STATUS",
            "COMPLETIONS",
            "DURATION",
            "AGE",
            "CONTAINERS",
            "IMAGES",
            "SELECTOR"
        ]
    );
    assert!(
        wide.contains(&format!("batch.kubernetes.io/controller-uid={uid}")),
        "{wide}"
    );

    // Discovery: autoscaling prefers v2 and serves v1 beside it.
    let group = raw(&k, "/apis/autoscaling");
    assert_eq!(group["preferredVersion"]["version"], "v2");
    assert_eq!(group["versions"][1]["version"], "v1");
    let apps = raw(&k, "/apis/apps/v1");
    let sts_entry = apps["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "statefulsets")
        .unwrap();
    assert_eq!(sts_entry["shortNames"], json!(["sts"]));
    assert_eq!(sts_entry["categories"], json!(["all"]));
    let names: Vec<&str> = apps["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    for name in [
        "daemonsets/status",
        "statefulsets/scale",
        "statefulsets/status",
        "controllerrevisions",
    ] {
        assert!(names.contains(&name), "{names:?}");
    }
    assert!(!names.contains(&"daemonsets/scale"));

    // Deletes and field selectors.
    let successful = k.ok(&[
        &ns[..],
        &[
            "get",
            "jobs",
            "--field-selector",
            "status.successful=0",
            "-o",
            "name",
        ],
    ]
    .concat());
    assert_eq!(successful.trim(), "job.batch/pi");
    for kind in [
        "ds/agent",
        "sts/db",
        "controllerrevision/db-7b9d5c",
        "job/pi",
        "cj/tick",
        "hpa/db",
        "pdb/db",
    ] {
        k.ok(&[&ns[..], &["delete", kind]].concat());
    }
    // The controllers' pods go with their owners, through the garbage collector.
    eventually(Duration::from_secs(30), || {
        let left = k.ok(&[&ns[..], &["get", "all", "-o", "name"]].concat());
        left.trim().is_empty().then_some(())
    });
}

/// An object with what differs between two creations (and the uid-derived
/// labels and selector of Jobs) removed.
fn normalized(mut object: Value) -> Value {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "namespace",
            "managedFields",
            "labels",
        ] {
            meta.remove(field);
        }
    }
    // The status is the controllers' (a Job's startTime, a PDB's conditions),
    // written a moment apart for the two objects, not what the client sent.
    if let Some(object) = object.as_object_mut() {
        object.remove("status");
    }
    if let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) {
        spec.remove("selector");
        if let Some(labels) = spec
            .get_mut("template")
            .and_then(|t| t.get_mut("metadata"))
            .and_then(|m| m.get_mut("labels"))
            .and_then(Value::as_object_mut)
        {
            labels.remove("controller-uid");
            labels.remove("batch.kubernetes.io/controller-uid");
        }
    }
    object
}

#[test]
fn generator_commands_over_protobuf_store_what_the_json_path_stores() {
    let server = Server::start();
    let proto = server.kubectl(KUBECTL_1_33);
    let json = server.kubectl(KUBECTL_1_31);
    proto.ok(&["create", "namespace", "proto"]);
    proto.ok(&["create", "namespace", "json"]);
    let traced = proto.run(&[
        "-n",
        "proto",
        "create",
        "job",
        "pi",
        "--image=busybox",
        "-v=8",
        "--",
        "echo",
        "3.14",
    ]);
    assert!(
        traced.status.success(),
        "{}",
        String::from_utf8_lossy(&traced.stderr)
    );
    let trace = String::from_utf8_lossy(&traced.stderr);
    assert!(
        trace.contains("Content-Type: application/vnd.kubernetes.protobuf")
            || trace.contains("Content-Type\"=\"application/vnd.kubernetes.protobuf"),
        "kubectl 1.33 must send protobuf:\n{trace}"
    );
    json.ok(&[
        "-n",
        "json",
        "create",
        "job",
        "pi",
        "--image=busybox",
        "--",
        "echo",
        "3.14",
    ]);
    let generators: &[(&[&str], &str, &str)] = &[
        (
            &[
                "create",
                "cronjob",
                "tick",
                "--image=busybox",
                "--schedule=*/1 * * * *",
                "--",
                "date",
            ],
            "cronjob",
            "tick",
        ),
        (
            &[
                "create",
                "poddisruptionbudget",
                "web",
                "--selector=app=web",
                "--min-available=50%",
            ],
            "pdb",
            "web",
        ),
        (
            &[
                "create",
                "pdb",
                "api",
                "--selector=app=api",
                "--max-unavailable=1",
            ],
            "pdb",
            "api",
        ),
        (
            &["create", "deployment", "web", "--image=busybox"],
            "deployment",
            "web",
        ),
    ];
    for (args, _, _) in generators {
        proto.ok(&[&["-n", "proto"], *args].concat());
        json.ok(&[&["-n", "json"], *args].concat());
    }
    for (kind, name) in [
        ("job", "pi"),
        ("cronjob", "tick"),
        ("pdb", "web"),
        ("pdb", "api"),
    ] {
        let read = |k: &Kubectl, ns: &str| normalized(get_json(k, &["-n", ns, "get", kind, name]));
        assert_eq!(read(&proto, "proto"), read(&json, "json"), "{kind}/{name}");
        assert_eq!(read(&json, "proto"), read(&proto, "json"), "{kind}/{name}");
    }
    let job = get_json(&proto, &["-n", "proto", "get", "job", "pi"]);
    let uid = job["metadata"]["uid"].as_str().unwrap();
    assert_eq!(
        job["metadata"]["labels"]["batch.kubernetes.io/controller-uid"],
        uid
    );
    assert_eq!(job["metadata"]["labels"]["job-name"], "pi");
    assert_eq!(
        job["spec"]["template"]["metadata"]["labels"]["controller-uid"],
        uid
    );

    // kubectl 1.33 autoscales through autoscaling/v2 (protobuf), 1.31 through v1 (JSON):
    // both store the same autoscaler.
    let v2_trace = proto.run(&[
        "-n",
        "proto",
        "autoscale",
        "deployment",
        "web",
        "--max=5",
        "--cpu-percent=60",
        "-v=6",
    ]);
    assert!(
        v2_trace.status.success(),
        "{}",
        String::from_utf8_lossy(&v2_trace.stderr)
    );
    assert!(String::from_utf8_lossy(&v2_trace.stderr).contains("/apis/autoscaling/v2/"));
    let v1_trace = json.run(&[
        "-n",
        "json",
        "autoscale",
        "deployment",
        "web",
        "--max=5",
        "--cpu-percent=60",
        "-v=6",
    ]);
    assert!(
        v1_trace.status.success(),
        "{}",
        String::from_utf8_lossy(&v1_trace.stderr)
    );
    assert!(String::from_utf8_lossy(&v1_trace.stderr).contains("/apis/autoscaling/v1/"));
    let hpa = |ns: &str| {
        let mut object = normalized(get_json(&proto, &["-n", ns, "get", "hpa", "web"]));
        object["metadata"] = json!(object["metadata"]["name"]);
        object
    };
    assert_eq!(hpa("proto"), hpa("json"));
    assert_eq!(
        hpa("json")["spec"]["metrics"],
        json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}}])
    );
    let v1 = raw(
        &proto,
        "/apis/autoscaling/v1/namespaces/proto/horizontalpodautoscalers/web",
    );
    assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 60);
    // The HPA controller may have synced by now (a busy machine): the v1
    // status holds v1's fields only, whatever the replica counts are.
    let status = v1["status"].as_object().expect("a v1 status");
    let v1_fields = [
        "currentReplicas",
        "desiredReplicas",
        "lastScaleTime",
        "observedGeneration",
        "currentCPUUtilizationPercentage",
    ];
    assert!(
        status
            .keys()
            .all(|field| v1_fields.contains(&field.as_str())),
        "{status:?}"
    );
    assert!(
        status["currentReplicas"].is_u64() && status["desiredReplicas"].is_u64(),
        "{status:?}"
    );

    // A Job from a CronJob's template.
    proto.ok(&[
        "-n",
        "proto",
        "create",
        "job",
        "tick-now",
        "--from=cronjob/tick",
    ]);
    let manual = get_json(&proto, &["-n", "proto", "get", "job", "tick-now"]);
    assert_eq!(
        manual["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"],
        "manual"
    );
    assert_eq!(manual["metadata"]["ownerReferences"][0]["kind"], "CronJob");
    assert_eq!(
        manual["spec"]["template"]["metadata"]["labels"]["job-name"],
        "tick-now"
    );
}

#[test]
fn kubectl_scale_statefulset_goes_through_the_scale_subresource() {
    let server = Server::start();
    let k = server.kubectl(KUBECTL_1_33);
    k.ok(&["apply", "-f", &manifest("kinds/workloads.yaml")]);
    let traced = k.run(&["-n", "kinds", "scale", "sts", "db", "--replicas=4", "-v=6"]);
    assert!(
        traced.status.success(),
        "{}",
        String::from_utf8_lossy(&traced.stderr)
    );
    assert!(String::from_utf8_lossy(&traced.stderr).contains("/statefulsets/db/scale"));
    let sts = get_json(&k, &["-n", "kinds", "get", "sts", "db"]);
    assert_eq!(sts["spec"]["replicas"], 4);
    assert_eq!(sts["metadata"]["generation"], 2);
    let scale = raw(&k, "/apis/apps/v1/namespaces/kinds/statefulsets/db/scale");
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["apiVersion"], "autoscaling/v1");
    assert_eq!(scale["spec"]["replicas"], 4);
    assert_eq!(scale["status"]["selector"], "app=db");
    // With a precondition kubectl reads the Scale and writes it back (PUT).
    k.ok(&[
        "-n",
        "kinds",
        "scale",
        "sts",
        "db",
        "--current-replicas=4",
        "--replicas=1",
    ]);
    assert_eq!(
        k.jsonpath(&["-n", "kinds", "get", "sts", "db"], "{.spec.replicas}"),
        "1"
    );
    let stale = k.fails(&[
        "-n",
        "kinds",
        "scale",
        "sts",
        "db",
        "--current-replicas=4",
        "--replicas=2",
    ]);
    assert!(
        stale.contains("Expected replicas to be 4, was 1"),
        "{stale}"
    );
    // DaemonSets have no /scale.
    let no_scale = k.fails(&["-n", "kinds", "scale", "ds", "agent", "--replicas=2"]);
    assert!(
        no_scale.contains("could not find the requested resource")
            || no_scale.contains("not found"),
        "{no_scale}"
    );
}

#[test]
fn validation_immutability_status_and_generation_follow_upstream() {
    let server = Server::start();
    let k = server.kubectl(KUBECTL_1_33);
    k.ok(&["apply", "-f", &manifest("kinds/workloads.yaml")]);
    let ns = ["-n", "kinds"];
    let fails = |args: &[&str]| k.fails(&[&ns[..], args].concat());

    // Jobs: the template may not change; the selector is generated unless manualSelector.
    let err = fails(&[
        "patch",
        "job",
        "pi",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"127.0.0.1:5000/pi:v2"}]"#,
    ]);
    assert!(
        err.contains("spec.template: Invalid value") && err.contains("field is immutable"),
        "{err}"
    );
    let job = |name: &str, extra: Value| {
        let mut object = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"template": {"metadata": {"labels": {"app": name}},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]}}}});
        if let (Some(spec), Some(extra)) = (object["spec"].as_object_mut(), extra.as_object()) {
            spec.extend(extra.clone());
        }
        object.to_string()
    };
    let err = k.fails_stdin(
        &[&ns[..], &["create", "-f", "-"]].concat(),
        &job(
            "picky",
            json!({"selector": {"matchLabels": {"app": "picky"}}}),
        ),
    );
    assert!(
        err.contains("spec.selector: Invalid value")
            && err.contains("`selector` not auto-generated"),
        "{err}"
    );
    k.ok_stdin(
        &[&ns[..], &["create", "-f", "-"]].concat(),
        &job(
            "manual",
            json!({"manualSelector": true, "selector": {"matchLabels": {"app": "manual"}}}),
        ),
    );
    let manual = get_json(&k, &[&ns[..], &["get", "job", "manual"]].concat());
    assert_eq!(
        manual["spec"]["template"]["metadata"]["labels"],
        json!({"app": "manual"})
    );
    let mut always: Value = serde_json::from_str(&job("forever", json!({}))).unwrap();
    always["spec"]["template"]["spec"]["restartPolicy"] = json!("Always");
    let err = k.fails_stdin(
        &[&ns[..], &["create", "-f", "-"]].concat(),
        &always.to_string(),
    );
    assert!(err.contains(r#"spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never""#), "{err}");

    // Status goes through /status only, and does not move the generation.
    k.ok(&[
        &ns[..],
        &[
            "patch",
            "job",
            "pi",
            "--type=merge",
            "-p",
            r#"{"status":{"succeeded":5}}"#,
        ],
    ]
    .concat());
    assert_eq!(
        k.jsonpath(
            &[&ns[..], &["get", "job", "pi"]].concat(),
            "{.status.succeeded}"
        ),
        ""
    );
    k.ok(&[&ns[..], &["patch", "job", "pi", "--subresource=status", "--type=merge", "-p",
        r#"{"status":{"succeeded":1,"startTime":"2025-01-01T00:00:00Z","completionTime":"2025-01-01T00:01:40Z","conditions":[{"type":"Complete","status":"True"}]}}"#]].concat());
    let table = k.ok(&[&ns[..], &["get", "job", "pi"]].concat());
    assert_eq!(
        &first_row(&table)[..4],
        ["pi", "Complete", "1/1", "100s"],
        "{table}"
    );
    assert_eq!(
        k.jsonpath(
            &[&ns[..], &["get", "job", "pi"]].concat(),
            "{.metadata.generation}"
        ),
        "1"
    );
    let err = fails(&[
        "patch",
        "job",
        "pi",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"active":-1}}"#,
    ]);
    assert!(
        err.contains("status.active: Invalid value: -1: must be greater than or equal to 0"),
        "{err}"
    );

    // A create never keeps the client's status.
    let ds = json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "logs"},
        "spec": {"selector": {"matchLabels": {"app": "logs"}},
            "template": {"metadata": {"labels": {"app": "logs"}}, "spec": {"containers": [{"name": "logs", "image": "busybox"}]}}},
        "status": {"numberReady": 7, "desiredNumberScheduled": 7, "currentNumberScheduled": 7, "numberMisscheduled": 0}});
    k.ok_stdin(&[&ns[..], &["create", "-f", "-"]].concat(), &ds.to_string());
    assert_eq!(
        k.jsonpath(
            &[&ns[..], &["get", "ds", "logs"]].concat(),
            "{.status.numberReady}"
        ),
        "0"
    );

    // DaemonSets: a template change moves generation and template generation; the selector is fixed.
    k.ok(&[
        &ns[..],
        &["set", "image", "ds/agent", "agent=127.0.0.1:5000/agent:v2"],
    ]
    .concat());
    let ds = get_json(&k, &[&ns[..], &["get", "ds", "agent"]].concat());
    assert_eq!(ds["metadata"]["generation"], 2);
    assert_eq!(
        ds["metadata"]["annotations"]["deprecated.daemonset.template.generation"],
        "2"
    );
    k.ok(&[
        &ns[..],
        &[
            "patch",
            "ds",
            "agent",
            "--type=merge",
            "-p",
            r#"{"spec":{"minReadySeconds":5}}"#,
        ],
    ]
    .concat());
    let ds = get_json(&k, &[&ns[..], &["get", "ds", "agent"]].concat());
    assert_eq!(ds["metadata"]["generation"], 3);
    assert_eq!(
        ds["metadata"]["annotations"]["deprecated.daemonset.template.generation"],
        "2"
    );
    let err = fails(&[
        "patch",
        "ds",
        "agent",
        "--type=merge",
        "-p",
        r#"{"spec":{"selector":{"matchLabels":{"app":"agent","tier":"x"}},"template":{"metadata":{"labels":{"tier":"x"}}}}}"#,
    ]);
    assert!(
        err.contains("spec.selector: Invalid value") && err.contains("field is immutable"),
        "{err}"
    );

    // StatefulSets: names are DNS labels; most of the spec is fixed.
    let err = fails(&[
        "patch",
        "sts",
        "db",
        "--type=merge",
        "-p",
        r#"{"spec":{"serviceName":"other"}}"#,
    ]);
    assert!(err.contains("spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"), "{err}");
    let mut dotted = get_json(&k, &[&ns[..], &["get", "sts", "db"]].concat());
    dotted["metadata"] = json!({"name": "db.v2"});
    dotted.as_object_mut().unwrap().remove("status");
    let err = k.fails_stdin(
        &[&ns[..], &["create", "-f", "-"]].concat(),
        &dotted.to_string(),
    );
    assert!(
        err.contains(r#"metadata.name: Invalid value: "db.v2": must not contain dots"#),
        "{err}"
    );

    // CronJobs: the schedule as robfig/cron reads it, the time zone, the name length.
    let err = k.fails(
        &[
            &ns[..],
            &[
                "create",
                "cronjob",
                "often",
                "--image=busybox",
                "--schedule=*/5 * * * 8",
            ],
        ]
        .concat(),
    );
    assert!(
        err.contains(
            r#"spec.schedule: Invalid value: "*/5 * * * 8": end of range (8) above maximum (6): 8"#
        ),
        "{err}"
    );
    let err = fails(&[
        "patch",
        "cj",
        "tick",
        "--type=merge",
        "-p",
        r#"{"spec":{"timeZone":"Mars/Olympus"}}"#,
    ]);
    assert!(
        err.contains(
            r#"spec.timeZone: Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus"#
        ),
        "{err}"
    );
    let err = fails(&[
        "patch",
        "cj",
        "tick",
        "--type=merge",
        "-p",
        r#"{"spec":{"schedule":"TZ=UTC 0 * * * *"}}"#,
    ]);
    assert!(
        err.contains("cannot use TZ or CRON_TZ in schedule, use timeZone field instead"),
        "{err}"
    );
    let long = "c".repeat(53);
    let err = k.fails(
        &[
            &ns[..],
            &[
                "create",
                "cronjob",
                &long,
                "--image=busybox",
                "--schedule=@hourly",
            ],
        ]
        .concat(),
    );
    assert!(
        err.contains("metadata.name: Invalid value")
            && err.contains("must be no more than 52 characters"),
        "{err}"
    );

    // PodDisruptionBudgets and autoscalers.
    let err = fails(&[
        "patch",
        "pdb",
        "db",
        "--type=merge",
        "-p",
        r#"{"spec":{"minAvailable":"50x"}}"#,
    ]);
    assert!(
        err.contains("minAvailable and maxUnavailable cannot be both set"),
        "{err}"
    );
    assert!(err.contains(r#"spec.minAvailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:"50x"}: a valid percent string must be a numeric string followed by an ending '%'"#), "{err}");
    k.ok(&[
        &ns[..],
        &[
            "patch",
            "pdb",
            "db",
            "--type=merge",
            "-p",
            r#"{"spec":{"maxUnavailable":2}}"#,
        ],
    ]
    .concat());
    assert_eq!(
        k.jsonpath(
            &[&ns[..], &["get", "pdb", "db"]].concat(),
            "{.metadata.generation}"
        ),
        "2"
    );
    let err = fails(&[
        "patch",
        "hpa",
        "db",
        "--type=merge",
        "-p",
        r#"{"spec":{"maxReplicas":1}}"#,
    ]);
    assert!(
        err.contains(
            "spec.maxReplicas: Invalid value: 1: must be greater than or equal to `minReplicas`"
        ),
        "{err}"
    );
    let err = fails(&[
        "patch",
        "hpa",
        "db",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/metrics/1/resource/target/averageUtilization","value":0}]"#,
    ]);
    assert!(err.contains("spec.metrics[1].resource.target.averageUtilization: Invalid value: 0: must be greater than 0"), "{err}");

    // ControllerRevisions keep their data.
    let err = fails(&[
        "patch",
        "controllerrevision",
        "db-7b9d5c",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/data","value":{"spec":{}}}]"#,
    ]);
    assert!(
        err.contains("data: Invalid value") && err.contains("field is immutable"),
        "{err}"
    );
}

#[test]
fn one_stored_autoscaler_is_served_as_v1_and_v2() {
    let server = Server::start();
    let k = server.kubectl(KUBECTL_1_33);
    k.ok(&["apply", "-f", &manifest("kinds/workloads.yaml")]);
    let v1_path = "/apis/autoscaling/v1/namespaces/kinds/horizontalpodautoscalers";
    let v2_path = "/apis/autoscaling/v2/namespaces/kinds/horizontalpodautoscalers";

    // The v2 object through v1: CPU utilization as the v1 field, the rest in annotations.
    let v1 = raw(&k, &format!("{v1_path}/db"));
    assert_eq!(v1["apiVersion"], "autoscaling/v1");
    assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 70);
    assert_eq!(v1["spec"]["minReplicas"], 2);
    let annotations = &v1["metadata"]["annotations"];
    assert_eq!(
        annotations["autoscaling.alpha.kubernetes.io/metrics"],
        r#"[{"type":"Resource","resource":{"name":"memory","targetAverageValue":"1Gi"}}]"#
    );
    assert_eq!(
        annotations["autoscaling.alpha.kubernetes.io/behavior"],
        r#"{"ScaleUp":{"StabilizationWindowSeconds":0,"SelectPolicy":"Max","Policies":[{"Type":"Pods","Value":4,"PeriodSeconds":15},{"Type":"Percent","Value":100,"PeriodSeconds":15}],"Tolerance":null},"ScaleDown":{"StabilizationWindowSeconds":120,"SelectPolicy":"Max","Policies":[{"Type":"Percent","Value":100,"PeriodSeconds":15}],"Tolerance":null}}"#
    );
    let listed = k.ok(&[
        "get",
        "horizontalpodautoscalers.v1.autoscaling",
        "-n",
        "kinds",
        "-o",
        "json",
    ]);
    assert!(
        listed.contains(r#""apiVersion": "autoscaling/v1""#),
        "{listed}"
    );

    // A v1 client writes back what it read: nothing of the v2 object is lost.
    let before = raw(&k, &format!("{v2_path}/db"));
    let mut write = v1.clone();
    write["spec"]["maxReplicas"] = json!(8);
    let file = server.data_dir().join("hpa-v1.json");
    std::fs::write(&file, write.to_string()).unwrap();
    k.ok(&[
        "replace",
        "--raw",
        &format!("{v1_path}/db"),
        "-f",
        file.to_str().unwrap(),
    ]);
    let after = raw(&k, &format!("{v2_path}/db"));
    assert_eq!(after["spec"]["maxReplicas"], 8);
    assert_eq!(after["spec"]["metrics"], before["spec"]["metrics"]);
    assert_eq!(after["spec"]["behavior"], before["spec"]["behavior"]);
    assert!(after["metadata"]
        .get("annotations")
        .is_none_or(|a| a.get("autoscaling.alpha.kubernetes.io/metrics").is_none()));

    // The controller's v2 status, seen through v1.
    let mut status = after.clone();
    status["status"] = json!({"currentReplicas": 2, "desiredReplicas": 3,
        "currentMetrics": [
            {"type": "Resource", "resource": {"name": "memory", "current": {"averageValue": "512Mi"}}},
            {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 35, "averageValue": "100m"}}},
        ],
        "conditions": [{"type": "ScalingActive", "status": "True", "lastTransitionTime": "2025-01-01T00:00:00Z", "reason": "ValidMetricFound", "message": "ok"}]});
    std::fs::write(&file, status.to_string()).unwrap();
    k.ok(&[
        "replace",
        "--raw",
        &format!("{v2_path}/db/status"),
        "-f",
        file.to_str().unwrap(),
    ]);
    let v1 = raw(&k, &format!("{v1_path}/db"));
    assert_eq!(v1["status"]["currentReplicas"], 2);
    assert_eq!(v1["status"]["desiredReplicas"], 3);
    assert_eq!(v1["status"]["currentCPUUtilizationPercentage"], 35);
    assert_eq!(
        v1["metadata"]["annotations"]["autoscaling.alpha.kubernetes.io/conditions"],
        r#"[{"type":"ScalingActive","status":"True","lastTransitionTime":"2025-01-01T00:00:00Z","reason":"ValidMetricFound","message":"ok"}]"#
    );
    let table = k.ok(&["-n", "kinds", "get", "hpa", "db"]);
    assert_eq!(
        first_row(&table)[2],
        "memory: 512Mi/1Gi, cpu: 35%/70%",
        "{table}"
    );

    // A v1 create with other metrics in the annotation: v2 has them, CPU last.
    let created = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "api", "annotations": {
            "autoscaling.alpha.kubernetes.io/metrics": r#"[{"type":"Pods","pods":{"metricName":"qps","targetAverageValue":"100"}}]"#}},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db"}, "maxReplicas": 3,
            "targetCPUUtilizationPercentage": 50}});
    std::fs::write(&file, created.to_string()).unwrap();
    k.ok(&["create", "--raw", v1_path, "-f", file.to_str().unwrap()]);
    let v2 = raw(&k, &format!("{v2_path}/api"));
    assert_eq!(
        v2["spec"]["metrics"],
        json!([
            {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "100"}}},
            {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}},
        ])
    );
    assert!(v2["metadata"].get("annotations").is_none());
    assert_eq!(v2["spec"]["minReplicas"], 1);

    // Watches of v1 carry v1 objects; a delete through v1 removes the one object.
    let watched = k.ok(&[
        "get",
        "--raw",
        &format!("{v1_path}?watch=1&timeoutSeconds=1"),
    ]);
    let events: Vec<Value> = serde_json::Deserializer::from_str(&watched)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .unwrap();
    let seen: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["object"]["metadata"]["name"].as_str().unwrap(),
                e["object"]["apiVersion"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [("api", "autoscaling/v1"), ("db", "autoscaling/v1")],
        "{watched}"
    );
    k.ok(&["delete", "--raw", &format!("{v1_path}/api")]);
    let remaining = k.ok(&["-n", "kinds", "get", "hpa", "-o", "name"]);
    assert_eq!(remaining.trim(), "horizontalpodautoscaler.autoscaling/db");
    // kubectl 1.31 reads the same objects.
    let old = server.kubectl(KUBECTL_1_31);
    assert!(old
        .ok(&["-n", "kinds", "get", "hpa"])
        .contains("memory: 512Mi/1Gi, cpu: 35%/70%"));
}
