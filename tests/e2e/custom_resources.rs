//! CustomResourceDefinitions with kubectl 1.33: the documentation's CronTab
//! with a structural schema, printer columns, status and scale subresources,
//! a CEL rule, a default and a selectable field; established, discovered,
//! explained, validated with upstream's messages, pruned, defaulted, scaled,
//! applied server-side, selected by field, and gone with its objects when the
//! definition is deleted (also across a server restart); no new objects while
//! it terminates.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{eventually, manifest, Server, KUBECTL_1_33};

const CRONTAB: &str = "\
apiVersion: stable.example.com/v1
kind: CronTab
metadata:
  name: my-new-cron-object
spec:
  cronSpec: \"* * * * */5\"
  image: my-awesome-cron-image
";

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn a_crontab_definition_serves_validated_defaulted_scalable_objects() {
    let mut server = Server::start();
    let k = server.kubectl(KUBECTL_1_33);
    k.ok(&["apply", "-f", &manifest("crd/crontab.yaml")]);
    k.ok(&[
        "wait",
        "--for=condition=established",
        "--timeout=30s",
        "crd/crontabs.stable.example.com",
    ]);
    let crd = json(&k.ok(&["get", "crd", "crontabs.stable.example.com", "-o", "json"]));
    assert_eq!(crd["status"]["acceptedNames"]["kind"], "CronTab");
    assert_eq!(crd["status"]["storedVersions"], serde_json::json!(["v1"]));
    let table = k.ok(&["get", "crd"]);
    assert!(
        table.starts_with("NAME") && table.contains("CREATED AT"),
        "{table}"
    );

    // Discovery, OpenAPI and explain.
    let resources = k.ok(&["api-resources", "--api-group=stable.example.com"]);
    assert!(
        resources.contains("crontabs") && resources.contains("ct") && resources.contains("CronTab"),
        "{resources}"
    );
    let explained = k.ok(&["explain", "crontab.spec"]);
    assert!(
        explained.contains("cronSpec") && explained.contains("replicas"),
        "{explained}"
    );

    // Strict validation refuses unknown fields; without it they are pruned; defaults fill in.
    let with_unknown = format!("{CRONTAB}  bogus: 1\n");
    let error = k.fails_stdin(&["apply", "-f", "-"], &with_unknown);
    assert!(
        error.contains("strict decoding error: unknown field \"spec.bogus\""),
        "{error}"
    );
    k.ok_stdin(&["apply", "--validate=false", "-f", "-"], &with_unknown);
    let created = json(&k.ok(&["get", "ct", "my-new-cron-object", "-o", "json"]));
    assert!(created["spec"].get("bogus").is_none(), "{created}");
    assert_eq!(created["spec"]["replicas"], 1);
    assert_eq!(created["spec"]["minReplicas"], 1);
    assert_eq!(created["metadata"]["generation"], 1);

    // Printer columns, and `kubectl get all` through the `all` category.
    let rows = k.ok(&["get", "crontabs"]);
    let header: Vec<&str> = rows.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "SPEC", "REPLICAS", "AGE"]);
    assert!(rows.contains("* * * * */5"), "{rows}");
    assert!(k
        .ok(&["get", "all"])
        .contains("crontab.stable.example.com/my-new-cron-object"));

    // Schema and CEL failures with upstream's messages.
    let invalid = "\
apiVersion: stable.example.com/v1
kind: CronTab
metadata: {name: bad}
spec: {cronSpec: nope, replicas: 20, minReplicas: 30}
";
    let error = k.fails_stdin(&["apply", "-f", "-"], invalid);
    for expected in [
        "The CronTab \"bad\" is invalid:",
        "spec.cronSpec: Invalid value: \"nope\": spec.cronSpec in body should match",
        "spec.replicas: Invalid value: 20: spec.replicas in body should be less than or equal to 10",
        "spec: Invalid value: \"object\": replicas should be greater than or equal to minReplicas",
    ] {
        assert!(error.contains(expected), "{expected} in {error}");
    }

    // The scale subresource, server-side apply, and the selectable field.
    k.ok(&["scale", "crontab", "my-new-cron-object", "--replicas=3"]);
    assert_eq!(
        k.jsonpath(&["get", "ct", "my-new-cron-object"], "{.spec.replicas}"),
        "3"
    );
    let scale = json(&k.ok(&[
        "get",
        "--raw",
        "/apis/stable.example.com/v1/namespaces/default/crontabs/my-new-cron-object/scale",
    ]));
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["spec"]["replicas"], 3);
    let applied = "\
apiVersion: stable.example.com/v1
kind: CronTab
metadata: {name: applied}
spec: {cronSpec: \"0 * * * *\", image: other}
";
    k.ok_stdin(&["apply", "--server-side", "-f", "-"], applied);
    let managed = json(&k.ok(&[
        "get",
        "ct",
        "applied",
        "-o",
        "json",
        "--show-managed-fields",
    ]));
    assert_eq!(
        managed["metadata"]["managedFields"][0]["manager"],
        "kubectl"
    );
    assert_eq!(
        managed["metadata"]["managedFields"][0]["operation"],
        "Apply"
    );
    let selected = k.ok(&[
        "get",
        "ct",
        "--field-selector",
        "spec.image=other",
        "-o",
        "name",
    ]);
    assert_eq!(selected.trim(), "crontab.stable.example.com/applied");
    let error = k.fails(&["get", "ct", "--field-selector", "spec.cronSpec=x"]);
    assert!(
        error.contains("field label not supported: spec.cronSpec"),
        "{error}"
    );
    let error = k.fails(&[
        "patch",
        "ct",
        "applied",
        "--type=strategic",
        "-p",
        r#"{"spec":{"image":"x"}}"#,
    ]);
    assert!(
        error.contains("application/strategic-merge-patch+json is not supported"),
        "{error}"
    );
    k.ok(&[
        "patch",
        "ct",
        "applied",
        "--type=merge",
        "-p",
        r#"{"spec":{"image":"x"}}"#,
    ]);
    assert_eq!(
        k.jsonpath(&["get", "ct", "applied"], "{.metadata.generation}"),
        "2"
    );

    // The status subresource ignores spec and the main resource ignores status.
    k.ok(&[
        "patch",
        "ct",
        "applied",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"replicas":2}}"#,
    ]);
    assert_eq!(
        k.jsonpath(&["get", "ct", "applied"], "{.status.replicas}"),
        "2"
    );
    k.ok(&[
        "patch",
        "ct",
        "applied",
        "--type=merge",
        "-p",
        r#"{"status":{"replicas":9}}"#,
    ]);
    assert_eq!(
        k.jsonpath(&["get", "ct", "applied"], "{.status.replicas}"),
        "2"
    );

    // A restart serves the definition again from the store.
    server.restart();
    let k = server.kubectl(KUBECTL_1_33);
    assert_eq!(k.jsonpath(&["get", "ct", "applied"], "{.spec.image}"), "x");

    // Deleting the definition deletes its objects, then the definition itself.
    k.ok(&[
        "delete",
        "crd",
        "crontabs.stable.example.com",
        "--timeout=60s",
    ]);
    eventually(Duration::from_secs(30), || {
        let out = k.run(&[
            "get",
            "--raw",
            "/apis/stable.example.com/v1/namespaces/default/crontabs",
        ]);
        (!out.status.success()).then_some(())
    });
    let groups = k.ok(&["get", "--raw", "/apis"]);
    assert!(!groups.contains("stable.example.com"), "{groups}");
}

#[test]
fn cluster_scoped_definitions_and_generate_name_work() {
    let server = Server::start();
    let k = server.kubectl(KUBECTL_1_33);
    let definition = "\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Cluster
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
";
    k.ok_stdin(&["apply", "-f", "-"], definition);
    k.ok(&[
        "wait",
        "--for=condition=established",
        "--timeout=30s",
        "crd/widgets.example.com",
    ]);
    let widget = "\
apiVersion: example.com/v1
kind: Widget
metadata: {generateName: w-, labels: {color: blue}}
anything: {goes: here}
";
    let created = k.ok_stdin(&["create", "-f", "-", "-o", "name"], widget);
    assert!(
        created.trim().starts_with("widget.example.com/w-"),
        "{created}"
    );
    let listed = json(&k.ok(&["get", "widgets", "-l", "color=blue", "-o", "json"]));
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    assert_eq!(listed["items"][0]["anything"]["goes"], "here");
    assert!(listed["items"][0]["metadata"].get("namespace").is_none());
    let error = k.fails_stdin(
        &["apply", "-f", "-"],
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: wrong.example.com}\nspec:\n  group: example.com\n  scope: Cluster\n  names: {plural: gadgets, kind: Gadget}\n  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, properties: {spec: {type: object, properties: {a: {}}}}}}}]\n",
    );
    assert!(
        error.contains("metadata.name: Invalid value: \"wrong.example.com\": must be spec.names.plural+\".\"+spec.group"),
        "{error}"
    );
    assert!(
        error.contains("must not be empty for specified object fields"),
        "{error}"
    );
}

/// Defines the namespaced kind `kind` (`plural.example.com`, schemaless) and
/// waits until it is established.
fn define_namespaced(k: &support::Kubectl, plural: &str, kind: &str) {
    let singular = kind.to_lowercase();
    let definition = format!(
        "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {{name: {plural}.example.com}}
spec:
  group: example.com
  scope: Namespaced
  names: {{plural: {plural}, singular: {singular}, kind: {kind}}}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}
"
    );
    k.ok_stdin(&["apply", "-f", "-"], &definition);
    k.ok(&[
        "wait",
        "--for=condition=established",
        "--timeout=30s",
        &format!("crd/{plural}.example.com"),
    ]);
}

#[test]
fn custom_objects_are_garbage_collected_with_their_owner() {
    let server = Server::start();
    let k = server.kubectl(KUBECTL_1_33);
    define_namespaced(&k, "gadgets", "Gadget");
    k.ok(&["create", "configmap", "owner"]);
    let uid = k.jsonpath(&["get", "configmap", "owner"], "{.metadata.uid}");
    let gadget = format!(
        "apiVersion: example.com/v1\nkind: Gadget\nmetadata:\n  name: owned\n  ownerReferences:\n  - {{apiVersion: v1, kind: ConfigMap, name: owner, uid: {uid}}}\n"
    );
    k.ok_stdin(&["apply", "-f", "-"], &gadget);
    k.ok(&["delete", "configmap", "owner"]);
    eventually(Duration::from_secs(60), || {
        let out = k.run(&["get", "gadget", "owned"]);
        String::from_utf8_lossy(&out.stderr)
            .contains("NotFound")
            .then_some(())
    });
}

#[test]
fn creates_are_refused_while_the_definition_terminates() {
    let server = Server::start();
    let k = server.kubectl(KUBECTL_1_33);
    define_namespaced(&k, "things", "Thing");
    // A finalizer nobody releases keeps the definition terminating.
    k.ok_stdin(
        &["create", "-f", "-"],
        "apiVersion: example.com/v1\nkind: Thing\nmetadata: {name: held, finalizers: [example.com/hold]}\n",
    );
    k.ok(&["delete", "crd", "things.example.com", "--wait=false"]);
    let refused = eventually(Duration::from_secs(30), || {
        let out = k.run_stdin(
            &["create", "-f", "-"],
            "apiVersion: example.com/v1\nkind: Thing\nmetadata: {name: late}\n",
        );
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (!out.status.success() && stderr.contains("MethodNotAllowed")).then_some(stderr)
    });
    assert!(
        refused.contains("create not allowed while custom resource definition is terminating"),
        "{refused}"
    );
    let reason = eventually(Duration::from_secs(30), || {
        let reason = k.jsonpath(
            &["get", "crd", "things.example.com"],
            "{.status.conditions[?(@.type==\"Terminating\")].reason}",
        );
        (!reason.is_empty()).then_some(reason)
    });
    assert_eq!(reason, "InstanceDeletionInProgress");
    // Objects already there are still served: releasing the finalizer lets
    // the object, then the definition, go.
    k.ok(&[
        "patch",
        "things.example.com",
        "held",
        "--type",
        "merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    eventually(Duration::from_secs(60), || {
        let out = k.run(&["get", "crd", "things.example.com"]);
        String::from_utf8_lossy(&out.stderr)
            .contains("NotFound")
            .then_some(())
    });
}
