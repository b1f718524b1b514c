//! kubectl 1.33 sends protobuf bodies from its typed commands and asks for
//! protobuf responses; berth stores exactly what the JSON path stores, and
//! answers malformed or unsupported protobuf with upstream's statuses while
//! leaving the store unchanged.

mod support;

use std::process::Command;

use serde_json::Value;
use support::{Server, KUBECTL_1_31, KUBECTL_1_33};

/// The generator commands kubectl 1.32+ sends as protobuf, by namespace-relative args.
const GENERATORS: &[&[&str]] = &[
    &[
        "create",
        "configmap",
        "settings",
        "--from-literal=color=blue",
        "--from-literal=size=L",
    ],
    &[
        "create",
        "secret",
        "generic",
        "creds",
        "--from-literal=user=admin",
    ],
    &[
        "create",
        "deployment",
        "web",
        "--image=127.0.0.1:5000/web:v1",
        "--replicas=2",
        "--port=8080",
    ],
    &["create", "serviceaccount", "robot"],
    &["create", "service", "clusterip", "web", "--tcp=80:8080"],
];

/// An object with the fields that differ between any two creations removed;
/// `status` goes too, since controllers fill it in on their own schedule
/// (a Deployment's condition times may differ by a second).
fn normalized(mut object: Value) -> Value {
    if let Some(object) = object.as_object_mut() {
        object.remove("status");
    }
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "namespace",
            "managedFields",
        ] {
            meta.remove(field);
        }
    }
    if let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) {
        spec.remove("clusterIP");
        spec.remove("clusterIPs");
    }
    object
}

#[test]
fn typed_commands_over_protobuf_store_what_the_json_path_stores() {
    let server = Server::start();
    let proto = server.kubectl(KUBECTL_1_33);
    let json = server.kubectl(KUBECTL_1_31);
    let traced = proto.run(&["create", "namespace", "proto", "-v=8"]);
    assert!(
        traced.status.success(),
        "{}",
        String::from_utf8_lossy(&traced.stderr)
    );
    let trace = String::from_utf8_lossy(&traced.stderr);
    assert!(
        trace.contains("application/vnd.kubernetes.protobuf"),
        "kubectl 1.33 must send protobuf:\n{trace}"
    );
    json.ok(&["create", "namespace", "json"]);
    assert_eq!(
        normalized(serde_json::from_str(&proto.ok(&["get", "ns", "proto", "-o", "json"])).unwrap())
            ["spec"],
        normalized(serde_json::from_str(&json.ok(&["get", "ns", "json", "-o", "json"])).unwrap())
            ["spec"],
    );
    for generator in GENERATORS {
        proto.ok(&[&["-n", "proto"], *generator].concat());
        json.ok(&[&["-n", "json"], *generator].concat());
        let (kind, name) = match generator[1] {
            "secret" | "service" => (generator[1], generator[3]),
            other => (other, generator[2]),
        };
        let read = |k: &support::Kubectl, ns: &str| -> Value {
            normalized(
                serde_json::from_str(&k.ok(&["-n", ns, "get", kind, name, "-o", "json"])).unwrap(),
            )
        };
        // Read each with the other client too: protobuf and JSON responses must agree.
        assert_eq!(read(&proto, "proto"), read(&json, "json"), "{generator:?}");
        assert_eq!(read(&json, "proto"), read(&proto, "json"), "{generator:?}");
    }
    // Lists and watches in protobuf: kubectl 1.33 reads them as usual.
    let listed = proto.ok(&[
        "-n",
        "proto",
        "get",
        "deploy,svc,cm,secret,sa",
        "-o",
        "name",
    ]);
    for name in [
        "deployment.apps/web",
        "service/web",
        "configmap/settings",
        "secret/creds",
        "serviceaccount/robot",
    ] {
        assert!(listed.contains(name), "{listed}");
    }
}

/// GET with `Accept: application/vnd.kubernetes.protobuf`; returns the raw body.
fn get_protobuf(server: &Server, path: &str) -> Vec<u8> {
    let dir = server.data_dir();
    let token = std::fs::read_to_string(dir.join("tls/admin.token")).unwrap();
    let out = Command::new("curl")
        .args(["-sSf", "--cacert"])
        .arg(dir.join("tls/ca.crt"))
        .args(["-H", &format!("Authorization: Bearer {}", token.trim())])
        .args([
            "-H",
            "Accept: application/vnd.kubernetes.protobuf, application/json",
        ])
        .arg(format!("https://127.0.0.1:{}{path}", server.port))
        .output()
        .expect("curl is installed by tests/run-all.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn lists_and_watches_stream_protobuf_that_decodes_to_the_stored_objects() {
    let server = Server::start();
    let k = server.kubectl(KUBECTL_1_31);
    k.ok(&["create", "configmap", "one", "--from-literal=a=1"]);
    k.ok(&["create", "configmap", "two", "--from-literal=b=2"]);
    let body = get_protobuf(&server, "/api/v1/namespaces/default/configmaps");
    let list = berth_api::protobuf::decode_object(&body).unwrap();
    assert_eq!(list["kind"], "ConfigMapList");
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["one", "two"]);

    let stream = get_protobuf(
        &server,
        "/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=1",
    );
    let mut seen = Vec::new();
    let mut at = 0;
    while at < stream.len() {
        let length = u32::from_be_bytes(stream[at..at + 4].try_into().unwrap()) as usize;
        let event = berth_api::protobuf::decode_watch_event(&stream[at..at + 4 + length]).unwrap();
        seen.push((event.event_type, event.object["data"].to_string()));
        at += 4 + length;
    }
    assert_eq!(
        seen,
        [
            ("ADDED".to_owned(), r#"{"a":"1"}"#.to_owned()),
            ("ADDED".to_owned(), r#"{"b":"2"}"#.to_owned())
        ]
    );
}

/// curl against the server with the admin token; returns (HTTP code, body).
fn curl(
    server: &Server,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> (u16, String) {
    let dir = server.data_dir();
    let body_file = dir.join("body.bin");
    std::fs::write(&body_file, body).unwrap();
    let token = std::fs::read_to_string(dir.join("tls/admin.token")).unwrap();
    let out = Command::new("curl")
        .args(["-sS", "-o", "-", "-w", "\n%{http_code}", "--cacert"])
        .arg(dir.join("tls/ca.crt"))
        .args([
            "-X",
            method,
            "-H",
            &format!("Authorization: Bearer {}", token.trim()),
        ])
        .args([
            "-H",
            &format!("Content-Type: {content_type}"),
            "--data-binary",
        ])
        .arg(format!("@{}", body_file.display()))
        .arg(format!("https://127.0.0.1:{}{path}", server.port))
        .output()
        .expect("curl is installed by tests/run-all.sh");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.trim().parse().unwrap(), body.to_owned())
}

#[test]
fn corrupted_protobuf_bodies_get_statuses_and_change_nothing() {
    let server = Server::start();
    let k = server.kubectl(KUBECTL_1_31);
    let configmap = serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "probe"}, "data": {"a": "b"},
    });
    let valid = berth_api::protobuf::encode_object(&configmap).unwrap();
    let url = "/api/v1/namespaces/default/configmaps";
    let pb = berth_api::protobuf::CONTENT_TYPE;
    let before = k.ok(&["get", "cm", "-o", "name"]);

    let truncated = &valid[..valid.len() - 3];
    let (code, body) = curl(&server, "POST", url, pb, truncated);
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("BadRequest"), "{body}");

    let mut wrong_magic = valid.clone();
    wrong_magic[0] = b'x';
    assert_eq!(curl(&server, "POST", url, pb, &wrong_magic).0, 400);

    let (code, body) = curl(&server, "POST", "/api/v1/namespaces", pb, &valid);
    assert_eq!(code, 400, "a ConfigMap body posted to namespaces: {body}");

    let nodepool = berth_api::protobuf::encode_envelope("berth.dev/v1", "NodePool", b"");
    let (code, body) = curl(
        &server,
        "POST",
        "/apis/berth.dev/v1/nodepools",
        pb,
        &nodepool,
    );
    assert_eq!(code, 415, "{body}");
    assert!(body.contains("UnsupportedMediaType"), "{body}");

    let oversized = vec![0u8; 4 * 1024 * 1024];
    assert_eq!(curl(&server, "POST", url, pb, &oversized).0, 413);

    for seed in 0..64usize {
        let mut mutated = valid.clone();
        let at = 4 + (seed * 7) % (mutated.len() - 4);
        mutated[at] ^= 0x5a;
        let (code, _) = curl(&server, "POST", url, pb, &mutated);
        assert!(
            matches!(code, 201 | 400 | 409 | 415 | 422),
            "mutation {seed} gave {code}"
        );
        if code == 201 {
            // A flip that still decodes (e.g. inside a value) created an object: remove it.
            k.run(&["delete", "cm", "--all"]);
        }
    }
    assert_eq!(
        k.ok(&["get", "cm", "-o", "name"]),
        before,
        "nothing malformed was stored"
    );

    let (code, body) = curl(&server, "POST", url, pb, &valid);
    assert_eq!(code, 201, "the untouched body still works: {body}");
}
