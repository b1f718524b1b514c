//! Every pinned kubectl that speaks JSON (1.27–1.31) drives berth the same way:
//! apply with validation, get, explain, scale, delete. kubectl 1.27 and 1.28
//! validate and explain from `/openapi/v2` in protobuf; later ones from `/openapi/v3`.

mod support;

use support::{manifest, Server};

fn drive(kubectl: &str) {
    let server = Server::start();
    let k = server.kubectl(kubectl);
    let out = k.ok(&["apply", "-f", &manifest("basics.yaml")]);
    assert!(
        out.contains("deployment.apps/web created"),
        "{kubectl}: {out}"
    );
    let typo = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: typo}\ndatta: {a: b}\n";
    let err = k.fails_stdin(&["apply", "-f", "-"], typo);
    assert!(
        err.contains("datta"),
        "{kubectl} must reject the unknown field: {err}"
    );
    let table = k.ok(&["-n", "basics", "get", "deploy"]);
    assert!(
        table.starts_with("NAME") && table.contains("web"),
        "{kubectl}: {table}"
    );
    let explained = k.ok(&["explain", "deployment.spec.replicas"]);
    assert!(explained.contains("replicas"), "{kubectl}: {explained}");
    k.ok(&["-n", "basics", "scale", "deploy", "web", "--replicas=3"]);
    assert_eq!(
        k.jsonpath(
            &["-n", "basics", "get", "deploy", "web"],
            "{.spec.replicas}"
        ),
        "3"
    );
    let deleted = k.ok(&["-n", "basics", "delete", "deploy", "web"]);
    assert!(deleted.contains("deleted"), "{kubectl}: {deleted}");
}

macro_rules! kubectl_versions {
    ($($name:ident => $minor:literal),* $(,)?) => {
        $(#[test]
        fn $name() {
            drive(concat!("/usr/lib/google-cloud-sdk/bin/kubectl.1.", $minor));
        })*
    };
}

kubectl_versions!(
    kubectl_1_27 => "27",
    kubectl_1_28 => "28",
    kubectl_1_29 => "29",
    kubectl_1_30 => "30",
    kubectl_1_31 => "31",
);
