//! Small upstream behaviours every client meets: the namespaces a cluster
//! cannot lose, a `default` ServiceAccount in every namespace and on every
//! pod, the `kubernetes` Service's endpoints, fields upstream always returns,
//! line-wrapped base64, and metadata-only (PartialObjectMetadata) answers in
//! JSON and protobuf. Driven with kubectl 1.33 and raw requests.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{eventually, Server, KUBECTL_1_33};

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn the_cluster_namespaces_cannot_be_deleted_and_terminating_ones_take_nothing_new() {
    let server = Server::start();
    let k = server.kubectl(KUBECTL_1_33);
    for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let error = k.fails(&["delete", "namespace", name]);
        assert!(
            error.contains(&format!(
                "namespaces \"{name}\" is forbidden: this namespace may not be deleted"
            )),
            "{error}"
        );
    }
    k.ok(&["create", "namespace", "going"]);
    k.ok(&["create", "configmap", "keep", "-n", "going"]);
    k.ok(&[
        "patch",
        "configmap",
        "keep",
        "-n",
        "going",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":["example.com/hold"]}}"#,
    ]);
    k.ok(&["delete", "namespace", "going", "--wait=false"]);
    let error = eventually(Duration::from_secs(20), || {
        let out = k.run(&["create", "configmap", "late", "-n", "going"]);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        stderr.contains("being terminated").then_some(stderr)
    });
    assert!(
        error.contains("configmaps \"late\" is forbidden: unable to create new content in namespace going because it is being terminated"),
        "{error}"
    );
    k.ok(&[
        "patch",
        "configmap",
        "keep",
        "-n",
        "going",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
}

#[test]
fn every_namespace_and_pod_gets_the_default_service_account() {
    let server = Server::start();
    let k = server.kubectl(KUBECTL_1_33);
    k.ok(&["create", "namespace", "team"]);
    eventually(Duration::from_secs(20), || {
        k.run(&["get", "serviceaccount", "default", "-n", "team"])
            .status
            .success()
            .then_some(())
    });
    k.ok(&["delete", "serviceaccount", "default", "-n", "team"]);
    eventually(Duration::from_secs(20), || {
        k.run(&["get", "serviceaccount", "default", "-n", "team"])
            .status
            .success()
            .then_some(())
    });
    k.ok(&["run", "web", "-n", "team", "--image=127.0.0.1:5000/web:1"]);
    let pod = json(&k.ok(&["get", "pod", "web", "-n", "team", "-o", "json"]));
    assert_eq!(pod["spec"]["serviceAccountName"], "default");
    assert_eq!(pod["spec"]["serviceAccount"], "default");
}

#[test]
fn the_kubernetes_service_has_endpoints_and_services_a_load_balancer_status() {
    let server = Server::start();
    let k = server.kubectl(KUBECTL_1_33);
    let service = json(&k.ok(&["get", "service", "kubernetes", "-o", "json"]));
    assert_eq!(service["status"], serde_json::json!({"loadBalancer": {}}));
    let endpoints = eventually(Duration::from_secs(20), || {
        let out = k.run(&["get", "endpoints", "kubernetes", "-o", "json"]);
        out.status
            .success()
            .then(|| json(&String::from_utf8_lossy(&out.stdout)))
    });
    assert_eq!(endpoints["subsets"][0]["addresses"][0]["ip"], "127.0.0.1");
    assert_eq!(
        endpoints["subsets"][0]["ports"][0],
        serde_json::json!({"name": "https", "port": server.port, "protocol": "TCP"})
    );
    let slice = json(&k.ok(&["get", "endpointslice", "kubernetes", "-o", "json"]));
    assert_eq!(slice["endpoints"][0]["addresses"][0], "127.0.0.1");
    assert_eq!(slice["ports"][0]["port"], server.port);
    k.ok(&["create", "service", "clusterip", "web", "--tcp=80:8080"]);
    let web = json(&k.ok(&["get", "service", "web", "-o", "json"]));
    assert_eq!(web["status"], serde_json::json!({"loadBalancer": {}}));
}

#[test]
fn line_wrapped_base64_is_read_as_go_reads_it() {
    let server = Server::start();
    let k = server.kubectl(KUBECTL_1_33);
    // A value written the way `base64` (76 columns) wraps it, as in many manifests.
    // base64 of 100 × "a".
    let encoded = format!("{}YQ==", "YWFh".repeat(33));
    let wrapped = format!("{}\n{}", &encoded[..76], &encoded[76..]);
    let manifest = serde_json::json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "wrapped"},
        "data": {"value": wrapped},
    });
    k.ok_stdin(&["apply", "-f", "-"], &manifest.to_string());
    let secret = json(&k.ok(&["get", "secret", "wrapped", "-o", "json"]));
    assert_eq!(secret["data"]["value"], encoded);
}

#[test]
fn metadata_only_requests_get_partial_object_metadata_in_json_and_protobuf() {
    let server = Server::start();
    let k = server.kubectl(KUBECTL_1_33);
    k.ok(&["create", "configmap", "one", "--from-literal=a=b"]);
    let (code, body) = server.get_raw(
        "/api/v1/namespaces/default/configmaps",
        "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json",
    );
    assert_eq!(code, 200);
    let list = json(&String::from_utf8_lossy(&body));
    assert_eq!(list["kind"], "PartialObjectMetadataList");
    assert_eq!(list["apiVersion"], "meta.k8s.io/v1");
    let item = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["metadata"]["name"] == "one")
        .unwrap();
    assert_eq!(item["kind"], "PartialObjectMetadata");
    assert!(item.get("data").is_none(), "{item}");
    let (code, body) = server.get_raw(
        "/api/v1/namespaces/default/configmaps/one",
        "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
    );
    assert_eq!(code, 200);
    let one = json(&String::from_utf8_lossy(&body));
    assert_eq!(one["kind"], "PartialObjectMetadata");
    assert_eq!(one["metadata"]["name"], "one");
    let (code, body) = server.get_raw(
        "/api/v1/namespaces/default/configmaps",
        "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
    );
    assert_eq!(code, 200);
    let decoded = berth_api::protobuf::decode_object(&body).unwrap();
    assert_eq!(decoded["kind"], "PartialObjectMetadataList");
    assert!(decoded["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["metadata"]["name"] == "one"));
}

#[test]
fn server_side_apply_of_the_main_resource_leaves_status_alone() {
    let server = Server::start();
    let k = server.kubectl(KUBECTL_1_33);
    let service = "\
apiVersion: v1
kind: Service
metadata: {name: applied}
spec:
  ports: [{port: 80}]
status:
  loadBalancer:
    ingress: [{ip: 192.0.2.10}]
";
    k.ok_stdin(&["apply", "--server-side", "-f", "-"], service);
    k.ok_stdin(&["apply", "--server-side", "-f", "-"], service);
    let applied = json(&k.ok(&["get", "service", "applied", "-o", "json"]));
    assert_eq!(applied["status"], serde_json::json!({"loadBalancer": {}}));
}
