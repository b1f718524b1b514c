//! The real kubectl drives `berth server` as it would drive Kubernetes:
//! apply, get (table, wide, yaml, jsonpath, watch), describe, label, annotate,
//! every patch type, create, delete, errors with upstream wording, and
//! durability across restarts.

mod support;

/// Runs each scenario on each state store with a JSON-speaking kubectl (1.31) and
/// a protobuf-speaking one (1.33), as `sqlite_1_31::NAME`, `etcd_1_33::NAME`, ….
macro_rules! on_every_datastore {
    ($($scenario:ident),* $(,)?) => {
        on_every_datastore!(@module sqlite_1_31, Sqlite, KUBECTL_1_31; $($scenario),*);
        on_every_datastore!(@module sqlite_1_33, Sqlite, KUBECTL_1_33; $($scenario),*);
        on_every_datastore!(@module etcd_1_31, Etcd, KUBECTL_1_31; $($scenario),*);
        on_every_datastore!(@module etcd_1_33, Etcd, KUBECTL_1_33; $($scenario),*);
    };
    (@module $module:ident, $datastore:ident, $kubectl:ident; $($scenario:ident),*) => {
        mod $module {
            $(#[test]
            fn $scenario() {
                super::$scenario(super::Setup {
                    datastore: super::Datastore::$datastore,
                    kubectl: super::support::$kubectl,
                })
            })*
        }
    };
}

/// Which store the server runs on and which kubectl drives it.
#[derive(Clone, Copy)]
struct Setup {
    datastore: Datastore,
    kubectl: &'static str,
}

on_every_datastore!(
    apply_twice_is_unchanged_and_a_changed_field_is_configured,
    get_prints_upstream_tables_and_formats,
    get_watch_sees_a_change_made_by_another_command,
    describe_label_annotate_and_every_patch_type,
    create_and_delete_with_kubectl_generators,
    invalid_manifests_get_upstream_errors,
    objects_survive_restart_and_kill_with_same_uid_and_resource_version,
    strict_field_validation_explain_and_server_side_apply,
    watch_prints_table_rows_as_objects_change,
    delete_collection_and_generate_name,
    watch_resumes_from_a_resource_version_and_expires_after_compaction,
    malformed_and_oversized_bodies_get_upstream_statuses,
    watch_list_sends_initial_events_then_a_bookmark,
    server_side_apply_tracks_owners_and_reports_conflicts,
    binding_eviction_and_namespace_finalize,
    deleting_a_namespace_deletes_everything_in_it,
);

use std::io::{BufRead, BufReader};
use std::time::Duration;

use support::{eventually, manifest, Datastore, Server};

fn first_line(text: &str) -> Vec<String> {
    text.lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

fn apply_twice_is_unchanged_and_a_changed_field_is_configured(setup: Setup) {
    let server = Server::start_on(setup.datastore, &[]);
    let k = server.kubectl(setup.kubectl);
    let file = manifest("basics.yaml");
    let out = k.ok(&["apply", "-f", &file]);
    for line in [
        "namespace/basics created",
        "deployment.apps/web created",
        "service/web created",
        "configmap/web-config created",
        "secret/web-secret created",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    let again = k.ok(&["apply", "-f", &file]);
    assert_eq!(again.matches("unchanged").count(), 4, "{again}");
    // As upstream: write-only stringData is never in the live object, so kubectl always re-sends it.
    assert!(again.contains("secret/web-secret configured"), "{again}");

    let changed = std::fs::read_to_string(&file)
        .unwrap()
        .replace("replicas: 2", "replicas: 3");
    let out = k.ok_stdin(&["apply", "-f", "-"], &changed);
    assert!(out.contains("deployment.apps/web configured"), "{out}");
    assert_eq!(
        k.jsonpath(
            &["-n", "basics", "get", "deploy", "web"],
            "{.spec.replicas} {.metadata.generation}"
        ),
        "3 2"
    );

    let secret = k.jsonpath(
        &["-n", "basics", "get", "secret", "web-secret"],
        "{.data.password}",
    );
    assert_eq!(secret, "czNjcmV0", "stringData is folded into base64 data");
}

fn get_prints_upstream_tables_and_formats(setup: Setup) {
    let server = Server::start_on(setup.datastore, &[]);
    let k = server.kubectl(setup.kubectl);
    k.ok(&["apply", "-f", &manifest("basics.yaml")]);

    let table = k.ok(&["-n", "basics", "get", "deployments"]);
    assert_eq!(
        first_line(&table),
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    );
    assert!(table.lines().nth(1).unwrap().starts_with("web "), "{table}");

    let wide = k.ok(&["-n", "basics", "get", "deploy", "-o", "wide"]);
    assert_eq!(
        first_line(&wide),
        [
            "NAME",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "AGE",
            "CONTAINERS",
            "IMAGES",
            "SELECTOR"
        ]
    );
    assert!(
        wide.contains("127.0.0.1:5000/web:v1") && wide.contains("app=web"),
        "{wide}"
    );

    let services = k.ok(&["-n", "basics", "get", "svc"]);
    assert_eq!(
        first_line(&services),
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE"
        ]
    );
    assert!(
        services.contains("ClusterIP") && services.contains("80/TCP"),
        "{services}"
    );

    let all_ns = k.ok(&["get", "configmaps", "-A"]);
    assert_eq!(first_line(&all_ns), ["NAMESPACE", "NAME", "DATA", "AGE"]);
    assert!(
        all_ns.contains("basics") && all_ns.contains("web-config"),
        "{all_ns}"
    );

    let yaml = k.ok(&["-n", "basics", "get", "deploy", "web", "-o", "yaml"]);
    for field in [
        "kind: Deployment",
        "uid:",
        "resourceVersion:",
        "generation: 1",
        "imagePullPolicy: IfNotPresent",
        "maxSurge: 25%",
    ] {
        assert!(yaml.contains(field), "missing {field:?}:\n{yaml}");
    }
    let ip = k.jsonpath(&["-n", "basics", "get", "svc", "web"], "{.spec.clusterIP}");
    assert!(ip.starts_with("10.43."), "{ip}");

    let labelled = k.ok(&[
        "get",
        "ns",
        "-l",
        "kubernetes.io/metadata.name in (basics,default)",
        "-o",
        "name",
    ]);
    assert_eq!(
        labelled.lines().collect::<Vec<_>>(),
        ["namespace/basics", "namespace/default"]
    );

    let names = k.ok(&["get", "deploy,svc", "-n", "basics", "-o", "name"]);
    assert_eq!(
        names.lines().collect::<Vec<_>>(),
        ["deployment.apps/web", "service/web"]
    );

    let resources = k.ok(&["api-resources"]);
    for row in ["deployments", "nodepools", "leases", "endpointslices"] {
        assert!(
            resources.contains(row),
            "api-resources lacks {row}:\n{resources}"
        );
    }
    let pools = k.run(&["get", "nodepools"]);
    assert!(pools.status.success());
    assert!(
        String::from_utf8_lossy(&pools.stderr).contains("No resources found"),
        "{pools:?}"
    );
}

fn get_watch_sees_a_change_made_by_another_command(setup: Setup) {
    let server = Server::start_on(setup.datastore, &[]);
    let k = server.kubectl(setup.kubectl);
    k.ok(&["create", "configmap", "watched", "--from-literal=a=1"]);
    let mut watcher = k.spawn(&["get", "configmaps", "-w", "-o", "name"]);
    let stdout = watcher.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("initial list line");
    assert_eq!(first, "configmap/watched");
    k.ok(&["label", "configmap", "watched", "changed=yes"]);
    k.ok(&["create", "configmap", "second", "--from-literal=b=2"]);
    let mut seen = Vec::new();
    while seen.len() < 2 {
        seen.push(
            rx.recv_timeout(Duration::from_secs(10))
                .expect("watch event"),
        );
    }
    watcher.kill().unwrap();
    watcher.wait().unwrap();
    assert_eq!(seen, ["configmap/watched", "configmap/second"]);
}

fn describe_label_annotate_and_every_patch_type(setup: Setup) {
    let server = Server::start_on(setup.datastore, &[]);
    let k = server.kubectl(setup.kubectl);
    k.ok(&["apply", "-f", &manifest("basics.yaml")]);
    let ns = ["-n", "basics"];
    let run = |args: &[&str]| k.ok(&[&ns[..], args].concat());

    let described = run(&["describe", "deployment", "web"]);
    assert!(
        described.contains("Replicas:               2 desired"),
        "{described}"
    );
    assert!(
        described.contains("RollingUpdateStrategy:  25% max unavailable, 25% max surge"),
        "{described}"
    );

    assert!(run(&["label", "deploy", "web", "tier=frontend"]).contains("labeled"));
    assert!(run(&["annotate", "deploy", "web", "owner=team-a"]).contains("annotated"));
    assert_eq!(
        run(&["get", "deploy", "-l", "tier=frontend,app", "-o", "name"]).trim(),
        "deployment.apps/web"
    );
    assert_eq!(
        run(&["get", "deploy", "-l", "tier!=frontend", "-o", "name"]).trim(),
        ""
    );

    fn json_patch(ops: &str) -> [&str; 6] {
        ["patch", "deploy", "web", "--type=json", "-p", ops]
    }
    run(&json_patch(
        r#"[{"op":"replace","path":"/spec/replicas","value":4}]"#,
    ));
    // kube-rs's finalizer helper adds the first finalizer behind a `test` of
    // the absent list against null, which upstream passes.
    let first_finalizer = r#"[{"op":"test","path":"/metadata/finalizers","value":null},{"op":"add","path":"/metadata/finalizers","value":["example.com/hold"]}]"#;
    run(&json_patch(first_finalizer));
    assert_eq!(
        run(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.metadata.finalizers}"
        ]),
        r#"["example.com/hold"]"#
    );
    // Once it is there, the same test fails with upstream's wording.
    let refused = k.fails(&[&ns[..], &json_patch(first_finalizer)].concat());
    assert!(
        refused.contains("testing value /metadata/finalizers failed: test failed"),
        "{refused}"
    );
    run(&json_patch(
        r#"[{"op":"test","path":"/metadata/finalizers","value":["example.com/hold"]},{"op":"remove","path":"/metadata/finalizers"}]"#,
    ));
    run(&[
        "patch",
        "deploy",
        "web",
        "--type=merge",
        "-p",
        r#"{"metadata":{"annotations":{"owner":null}}}"#,
    ]);
    run(&[
        "patch",
        "deploy",
        "web",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"127.0.0.1:5000/web:v2"}]}}}}"#,
    ]);
    let state = run(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas} {.metadata.annotations.owner} {.spec.template.spec.containers[0].image} {.spec.template.spec.containers[0].env[0].name}"]);
    assert_eq!(
        state, "4  127.0.0.1:5000/web:v2 GREETING",
        "strategic merge keeps the env of the patched container"
    );

    let scaled = run(&["scale", "deploy", "web", "--replicas=0"]);
    assert!(scaled.contains("scaled"), "{scaled}");
    assert_eq!(
        run(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]),
        "0"
    );
}

fn create_and_delete_with_kubectl_generators(setup: Setup) {
    let server = Server::start_on(setup.datastore, &[]);
    let k = server.kubectl(setup.kubectl);
    k.ok(&["create", "namespace", "team"]);
    k.ok(&[
        "-n",
        "team",
        "create",
        "configmap",
        "settings",
        "--from-literal=color=blue",
        "--from-literal=size=L",
    ]);
    k.ok(&[
        "-n",
        "team",
        "create",
        "secret",
        "generic",
        "creds",
        "--from-literal=user=admin",
    ]);
    assert_eq!(
        k.jsonpath(&["-n", "team", "get", "cm", "settings"], "{.data.color}"),
        "blue"
    );
    assert_eq!(
        k.jsonpath(&["-n", "team", "get", "secret", "creds"], "{.data.user}"),
        "YWRtaW4="
    );
    let err = k.fails(&[
        "-n",
        "team",
        "create",
        "configmap",
        "settings",
        "--from-literal=x=y",
    ]);
    assert!(
        err.contains(r#"configmaps "settings" already exists"#),
        "{err}"
    );

    let deleted = k.ok(&["-n", "team", "delete", "configmap", "settings"]);
    assert!(
        deleted.contains(r#"configmap "settings" deleted"#),
        "{deleted}"
    );
    let err = k.fails(&["-n", "team", "get", "configmap", "settings"]);
    assert!(
        err.contains(r#"Error from server (NotFound): configmaps "settings" not found"#),
        "{err}"
    );
    let err = k.fails(&["-n", "nowhere", "create", "configmap", "x"]);
    assert!(err.contains(r#"namespaces "nowhere" not found"#), "{err}");
}

fn invalid_manifests_get_upstream_errors(setup: Setup) {
    let server = Server::start_on(setup.datastore, &[]);
    let k = server.kubectl(setup.kubectl);
    let negative = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: -1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: nginx}]}
"#;
    let err = k.fails_stdin(&["create", "-f", "-"], negative);
    assert!(
        err.contains(r#"The Deployment "web" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"#),
        "{err}"
    );
    let bad_name = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Bad_Name}\n";
    let err = k.fails_stdin(&["create", "-f", "-"], bad_name);
    assert!(err.contains(r#"ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain"#), "{err}");
    let mismatch = negative.replace("replicas: -1", "replicas: 1").replace(
        "labels: {app: web}}\n    spec",
        "labels: {app: db}}\n    spec",
    );
    let err = k.fails_stdin(&["create", "-f", "-"], &mismatch);
    assert!(
        err.contains("`selector` does not match template `labels`"),
        "{err}"
    );
}

fn objects_survive_restart_and_kill_with_same_uid_and_resource_version(setup: Setup) {
    // No controllers: their status writes would legitimately move resourceVersions.
    let mut server = Server::start_on(setup.datastore, &["--disable", "controllers,scheduler"]);
    let k = server.kubectl(setup.kubectl);
    k.ok(&["apply", "-f", &manifest("basics.yaml")]);
    let query = ["get", "deploy,svc,cm,secret", "-n", "basics", "-o", "jsonpath={range .items[*]}{.metadata.name}={.metadata.uid}/{.metadata.resourceVersion};{end}"];
    let before = k.ok(&query);
    let ip_before = k.jsonpath(&["-n", "basics", "get", "svc", "web"], "{.spec.clusterIP}");
    server.restart();
    let k = server.kubectl(setup.kubectl);
    assert_eq!(k.ok(&query), before);
    // Acknowledged writes survive SIGKILL right after they return.
    for i in 0..20 {
        k.ok(&["-n", "basics", "create", "configmap", &format!("c{i}")]);
    }
    server.kill9();
    server.restart();
    let k = server.kubectl(setup.kubectl);
    let count = eventually(Duration::from_secs(5), || {
        let names = k.ok(&["-n", "basics", "get", "cm", "-o", "name"]);
        Some(
            names
                .lines()
                .filter(|l| l.starts_with("configmap/c"))
                .count(),
        )
    });
    assert_eq!(count, 20);
    // The reserved ClusterIP stays allocated: a new Service cannot take it.
    let claim = format!("apiVersion: v1\nkind: Service\nmetadata: {{name: thief, namespace: basics}}\nspec: {{clusterIP: {ip_before}, ports: [{{port: 80}}]}}\n");
    let err = k.fails_stdin(&["create", "-f", "-"], &claim);
    assert!(err.contains("provided IP is already allocated"), "{err}");
}

fn strict_field_validation_explain_and_server_side_apply(setup: Setup) {
    let server = Server::start_on(setup.datastore, &[]);
    let k = server.kubectl(setup.kubectl);
    let with_typo =
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: typo}\ndata: {a: b}\ndatta: {c: d}\n";
    let err = k.fails_stdin(&["apply", "-f", "-"], with_typo);
    assert!(
        err.contains(r#"ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: unknown field "datta""#),
        "{err}"
    );
    let out = k.run_stdin(&["apply", "--validate=warn", "-f", "-"], with_typo);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(r#"Warning: unknown field "datta""#));
    assert_eq!(
        k.jsonpath(&["get", "cm", "typo"], "{.data}"),
        r#"{"a":"b"}"#
    );

    let explained = k.ok(&["explain", "deployment.spec"]);
    assert!(explained.contains("KIND:       Deployment"), "{explained}");
    assert!(explained.contains("replicas\t<integer>"), "{explained}");

    let out = k.ok(&["apply", "--server-side", "-f", &manifest("basics.yaml")]);
    assert!(
        out.contains("deployment.apps/web serverside-applied"),
        "{out}"
    );
    let managers = k.jsonpath(
        &[
            "-n",
            "basics",
            "get",
            "deploy",
            "web",
            "--show-managed-fields",
        ],
        "{.metadata.managedFields[*].manager}",
    );
    assert!(managers.contains("kubectl"), "{managers}");
    let changed = std::fs::read_to_string(manifest("basics.yaml"))
        .unwrap()
        .replace("replicas: 2", "replicas: 6");
    k.ok_stdin(&["apply", "--server-side", "-f", "-"], &changed);
    assert_eq!(
        k.jsonpath(
            &["-n", "basics", "get", "deploy", "web"],
            "{.spec.replicas}"
        ),
        "6"
    );
}

fn watch_prints_table_rows_as_objects_change(setup: Setup) {
    let server = Server::start_on(setup.datastore, &[]);
    let k = server.kubectl(setup.kubectl);
    k.ok(&["apply", "-f", &manifest("basics.yaml")]);
    let mut watcher = k.spawn(&["-n", "basics", "get", "deploy", "-w"]);
    let stdout = watcher.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let header = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(
        first_line(&header),
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    );
    assert!(rx
        .recv_timeout(Duration::from_secs(10))
        .unwrap()
        .starts_with("web    0/2"));
    k.ok(&["-n", "basics", "scale", "deploy", "web", "--replicas=7"]);
    // The deployment controller updates status too; wait for the scaled row.
    let scaled = loop {
        let row = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        if row.starts_with("web    0/7") {
            break row;
        }
    };
    watcher.kill().unwrap();
    watcher.wait().unwrap();
    assert!(scaled.starts_with("web    0/7"), "{scaled}");
}

fn delete_collection_and_generate_name(setup: Setup) {
    let server = Server::start_on(setup.datastore, &[]);
    let k = server.kubectl(setup.kubectl);
    for i in 0..3 {
        k.ok(&[
            "create",
            "configmap",
            &format!("bulk-{i}"),
            "--from-literal=x=y",
        ]);
    }
    k.ok(&["label", "configmap", "bulk-0", "bulk-1", "batch=one"]);
    let out = k.ok(&["delete", "configmaps", "-l", "batch=one"]);
    assert!(
        out.contains(r#"configmap "bulk-0" deleted"#)
            && out.contains(r#"configmap "bulk-1" deleted"#),
        "{out}"
    );
    assert_eq!(
        k.ok(&["get", "cm", "-o", "name"]).trim(),
        "configmap/bulk-2"
    );

    let generated = k.ok_stdin(
        &["create", "-f", "-", "-o", "name"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {generateName: gen-}\n",
    );
    let name = generated.trim().strip_prefix("configmap/").unwrap();
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");
}

fn watch_resumes_from_a_resource_version_and_expires_after_compaction(setup: Setup) {
    // Each tick forgets the history older than the previous tick, so a
    // revision survives at least one interval: 3 s leaves room for slow
    // kubectl runs on a loaded machine between the writes and the resume.
    let server = Server::start_on(setup.datastore, &["--compaction-interval", "3s"]);
    let k = server.kubectl(setup.kubectl);
    k.ok(&["create", "configmap", "history", "--from-literal=v=0"]);
    let rv = k.jsonpath(&["get", "cm", "history"], "{.metadata.resourceVersion}");
    k.ok(&["label", "cm", "history", "step=1"]);
    let resumed = k.ok(&[
        "get",
        "--raw",
        &format!(
            "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv}&timeoutSeconds=1"
        ),
    ]);
    let first: serde_json::Value = serde_json::from_str(resumed.lines().next().unwrap()).unwrap();
    assert_eq!(first["type"], "MODIFIED");
    assert_eq!(first["object"]["metadata"]["labels"]["step"], "1");

    // Later writes, then two compaction ticks: the old revision is gone (upstream's 410 Expired).
    k.ok(&["create", "configmap", "later"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let (event, expired) = loop {
        std::thread::sleep(Duration::from_millis(1000));
        let expired = k.ok(&[
            "get",
            "--raw",
            &format!(
                "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv}&timeoutSeconds=1"
            ),
        ]);
        let event: serde_json::Value =
            serde_json::from_str(expired.lines().next().unwrap()).unwrap();
        if event["type"] == "ERROR" || std::time::Instant::now() > deadline {
            break (event, expired);
        }
    };
    assert_eq!(event["type"], "ERROR", "{expired}");
    assert_eq!(event["object"]["code"], 410);
    assert_eq!(event["object"]["reason"], "Expired");
}

fn malformed_and_oversized_bodies_get_upstream_statuses(setup: Setup) {
    let server = Server::start_on(setup.datastore, &[]);
    let k = server.kubectl(setup.kubectl);
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.json");
    std::fs::write(&garbage, "{not json").unwrap();
    let path = garbage.to_str().unwrap();
    let err = k.fails(&[
        "create",
        "--raw",
        "/api/v1/namespaces/default/configmaps",
        "-f",
        path,
    ]);
    assert!(err.contains("Error from server (BadRequest)"), "{err}");

    let big = dir.path().join("big.yaml");
    let payload = "x".repeat(4 * 1024 * 1024);
    std::fs::write(
        &big,
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: big}}\ndata: {{blob: {payload}}}\n"
        ),
    )
    .unwrap();
    let err = k.fails(&["create", "-f", big.to_str().unwrap()]);
    assert!(
        err.contains("RequestEntityTooLarge") || err.contains("too large"),
        "{err}"
    );
    let err = k.fails(&["get", "configmap", "big"]);
    assert!(err.contains("NotFound"), "nothing was stored: {err}");
}

fn watch_list_sends_initial_events_then_a_bookmark(setup: Setup) {
    let server = Server::start_on(setup.datastore, &[]);
    let k = server.kubectl(setup.kubectl);
    k.ok(&["create", "configmap", "one"]);
    k.ok(&["create", "configmap", "two"]);
    let out = k.ok(&[
        "get",
        "--raw",
        "/api/v1/namespaces/default/configmaps?watch=1&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan&timeoutSeconds=1",
    ]);
    let events: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["ADDED", "ADDED", "BOOKMARK"], "{out}");
    assert_eq!(
        events[2]["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
}

fn server_side_apply_tracks_owners_and_reports_conflicts(setup: Setup) {
    let server = Server::start_on(setup.datastore, &[]);
    let k = server.kubectl(setup.kubectl);
    // The namespace and the Deployment of the basics manifest.
    let manifest_text: String = std::fs::read_to_string(manifest("basics.yaml"))
        .unwrap()
        .split("---\n")
        .filter(|doc| doc.contains("kind: Namespace") || doc.contains("kind: Deployment"))
        .collect::<Vec<_>>()
        .join("---\n");
    k.ok_stdin(
        &[
            "apply",
            "--server-side",
            "--field-manager=team-a",
            "-f",
            "-",
        ],
        &manifest_text.replacen(
            "  labels:\n    app: web\n",
            "  labels:\n    app: web\n    owner: team-a\n",
            1,
        ),
    );
    let fields = k.jsonpath(
        &[
            "-n",
            "basics",
            "get",
            "deploy",
            "web",
            "--show-managed-fields",
        ],
        "{.metadata.managedFields[0].manager} {.metadata.managedFields[0].operation}",
    );
    assert_eq!(fields, "team-a Apply");
    let owned = k.jsonpath(
        &[
            "-n",
            "basics",
            "get",
            "deploy",
            "web",
            "--show-managed-fields",
        ],
        "{.metadata.managedFields[0].fieldsV1}",
    );
    assert!(
        owned.contains(r#""f:replicas""#) && owned.contains(r#""k:{\"name\":\"web\"}""#),
        "{owned}"
    );

    // Another manager changing an owned field conflicts, with upstream's message ...
    let other = manifest_text.replace("replicas: 2", "replicas: 5");
    let err = k.fails_stdin(
        &[
            "apply",
            "--server-side",
            "--field-manager=team-b",
            "-f",
            "-",
        ],
        &other,
    );
    assert!(
        err.contains(r#"Apply failed with 1 conflict: conflict with "team-a": .spec.replicas"#)
            || err.contains(r#"Apply failed with 1 conflict: conflict with "team-a" using apps/v1: .spec.replicas"#),
        "{err}"
    );
    assert_eq!(
        k.jsonpath(
            &["-n", "basics", "get", "deploy", "web"],
            "{.spec.replicas}"
        ),
        "2"
    );
    // ... and --force-conflicts takes the field over.
    k.ok_stdin(
        &[
            "apply",
            "--server-side",
            "--field-manager=team-b",
            "--force-conflicts",
            "-f",
            "-",
        ],
        &other,
    );
    assert_eq!(
        k.jsonpath(
            &["-n", "basics", "get", "deploy", "web"],
            "{.spec.replicas}"
        ),
        "5"
    );

    // Dropping the `owner` label from team-a's config removes it (team-a owned it alone);
    // `app` stays (team-b applies it too), and replicas: 5 agrees with team-b, so no conflict.
    let without_label = other.clone();
    k.ok_stdin(
        &[
            "apply",
            "--server-side",
            "--field-manager=team-a",
            "-f",
            "-",
        ],
        &without_label,
    );
    let labels = k.jsonpath(
        &["-n", "basics", "get", "deploy", "web"],
        "{.metadata.labels}",
    );
    assert_eq!(
        labels, r#"{"app":"web"}"#,
        "the label team-a stopped applying is gone"
    );
}

fn binding_eviction_and_namespace_finalize(setup: Setup) {
    // Without controllers, so the namespace waits for the test's own /finalize.
    let server = Server::start_on(setup.datastore, &["--disable", "controllers"]);
    let k = server.kubectl(setup.kubectl);
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_string_lossy().into_owned()
    };
    k.ok(&["run", "solo", "--image=127.0.0.1:5000/web:v1"]);
    let binding = write(
        "binding.json",
        r#"{"apiVersion":"v1","kind":"Binding","metadata":{"name":"solo"},"target":{"kind":"Node","name":"node-1"}}"#,
    );
    k.ok(&[
        "create",
        "--raw",
        "/api/v1/namespaces/default/pods/solo/binding",
        "-f",
        &binding,
    ]);
    assert_eq!(
        k.jsonpath(
            &["get", "pod", "solo"],
            r#"{.spec.nodeName} {.status.conditions[?(@.type=="PodScheduled")].status}"#
        ),
        "node-1 True"
    );
    let again = write(
        "again.json",
        r#"{"apiVersion":"v1","kind":"Binding","metadata":{"name":"solo"},"target":{"kind":"Node","name":"node-2"}}"#,
    );
    let err = k.fails(&[
        "create",
        "--raw",
        "/api/v1/namespaces/default/pods/solo/binding",
        "-f",
        &again,
    ]);
    assert!(
        err.contains(r#"pod solo is already assigned to node \"node-1\""#)
            || err.contains("already assigned to node"),
        "{err}"
    );

    // An eviction deletes gracefully: a bound pod waits for its node with a deletionTimestamp.
    let eviction = write(
        "eviction.json",
        r#"{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"solo"}}"#,
    );
    k.ok(&[
        "create",
        "--raw",
        "/api/v1/namespaces/default/pods/solo/eviction",
        "-f",
        &eviction,
    ]);
    let deleting = k.jsonpath(
        &["get", "pod", "solo"],
        "{.metadata.deletionGracePeriodSeconds}",
    );
    assert_eq!(deleting, "30");
    k.ok(&["delete", "pod", "solo", "--grace-period=0", "--force"]);
    assert!(k.fails(&["get", "pod", "solo"]).contains("NotFound"));

    // A namespace stays Terminating until its finalizer is released through /finalize.
    k.ok(&["create", "namespace", "doomed"]);
    k.ok(&["delete", "namespace", "doomed", "--wait=false"]);
    assert_eq!(
        k.jsonpath(&["get", "ns", "doomed"], "{.status.phase}"),
        "Terminating"
    );
    let released = write(
        "ns.json",
        r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"doomed"},"spec":{"finalizers":[]}}"#,
    );
    k.ok(&[
        "replace",
        "--raw",
        "/api/v1/namespaces/doomed/finalize",
        "-f",
        &released,
    ]);
    assert!(k.fails(&["get", "ns", "doomed"]).contains("NotFound"));
}

fn deleting_a_namespace_deletes_everything_in_it(setup: Setup) {
    let server = Server::start_on(setup.datastore, &[]);
    let k = server.kubectl(setup.kubectl);
    k.ok(&["apply", "-f", &manifest("basics.yaml")]);
    let deleted = k.ok(&["delete", "namespace", "basics", "--timeout=30s"]);
    assert!(
        deleted.contains(r#"namespace "basics" deleted"#),
        "{deleted}"
    );
    assert!(k.fails(&["get", "ns", "basics"]).contains("NotFound"));
    for kind in ["deployments", "services", "configmaps", "secrets"] {
        let left = k.ok(&[
            "get",
            kind,
            "-A",
            "-o",
            "name",
            "--field-selector=metadata.namespace=basics",
        ]);
        assert_eq!(left.trim(), "", "{kind} left behind");
    }
    // The name can be used again at once.
    k.ok(&["create", "namespace", "basics"]);
}
