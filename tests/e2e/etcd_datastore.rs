//! `berth server --datastore etcd://…` against a real etcd started by the test:
//! kubectl applies and re-applies manifests, the objects are in etcd (not in a
//! SQLite file), and a restarted server serves them with the same uid and
//! resourceVersion. A wrong etcd address fails at start-up with a clear message.

mod support;

use std::process::Command;

use berth_orchestrator::store::etcd::testing::EtcdProcess;
use berth_orchestrator::store::etcd::EtcdStore;
use berth_orchestrator::store::{KeyValue, Store};
use support::{berth_bin, manifest, Server, KUBECTL_1_31};

/// Reads one key straight from etcd, bypassing the API server.
fn etcd_get(etcd: &EtcdProcess, key: &str) -> Option<KeyValue> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = EtcdStore::connect(&[etcd.endpoint()]).await.unwrap();
        store.get(key).await.unwrap()
    })
}

#[test]
fn kubectl_apply_stores_objects_in_etcd_and_they_survive_a_restart() {
    let etcd = EtcdProcess::start();
    let datastore = format!("etcd://{}", etcd.endpoint());
    let mut server = Server::start_with(&["--datastore", &datastore]);
    let k = server.kubectl(KUBECTL_1_31);
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

    let query = [
        "-n",
        "basics",
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.metadata.uid} {.metadata.resourceVersion} {.spec.replicas}",
    ];
    let before = k.ok(&query);
    let fields: Vec<&str> = before.split(' ').collect();
    assert_eq!(fields.len(), 3, "{before}");
    assert!(!fields[0].is_empty(), "no uid in {before:?}");
    assert_eq!(fields[2], "2", "{before}");

    // The object lives in etcd, at the revision the API reports as its resourceVersion.
    let stored = etcd_get(&etcd, "/registry/apps/deployments/basics/web")
        .unwrap_or_else(|| panic!("deployment not in etcd; server log:\n{}", server.log()));
    assert_eq!(stored.mod_revision.to_string(), fields[1]);
    assert!(
        !server.data_dir().join("state.db").exists(),
        "the etcd datastore must not write a SQLite file"
    );

    server.restart();
    let k = server.kubectl(KUBECTL_1_31);
    assert_eq!(k.ok(&query), before);
}

#[test]
fn an_etcd_address_nobody_answers_fails_at_start_with_a_clear_message() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(berth_bin())
        .arg("server")
        .arg("--data-dir")
        .arg(dir.path())
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--datastore")
        .arg(format!("etcd://127.0.0.1:{port}"))
        .output()
        .expect("running berth server");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "server started without etcd: {stderr}"
    );
    assert!(
        stderr.contains("no etcd endpoint answered") && stderr.contains(&port.to_string()),
        "{stderr}"
    );
}
