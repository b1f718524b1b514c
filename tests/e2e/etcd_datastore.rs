//! What only the etcd datastore has to prove (every kubectl scenario already
//! runs on etcd too, in `kubectl_basics`): objects live in etcd at the
//! revision the API reports, and a wrong etcd address fails at start-up with
//! a clear message.

mod support;

use std::process::Command;

use berth_orchestrator::store::etcd::testing::EtcdProcess;
use berth_orchestrator::store::etcd::EtcdStore;
use berth_orchestrator::store::{KeyValue, Store};
use support::{berth_bin, manifest, Datastore, Server, KUBECTL_1_31};

/// Reads one key straight from etcd, bypassing the API server.
fn etcd_get(etcd: &EtcdProcess, key: &str) -> Option<KeyValue> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = EtcdStore::connect(&[etcd.endpoint()]).await.unwrap();
        store.get(key).await.unwrap()
    })
}

#[test]
fn objects_live_in_etcd_at_the_reported_resource_version() {
    // No controllers: the deployment controller's status writes would move the revision.
    let server = Server::start_on(Datastore::Etcd, &["--disable", "controllers,scheduler"]);
    let k = server.kubectl(KUBECTL_1_31);
    k.ok(&["apply", "-f", &manifest("basics.yaml")]);
    let rv = k.ok(&[
        "-n",
        "basics",
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.metadata.resourceVersion}",
    ]);
    let etcd = server.etcd.as_ref().expect("an etcd-backed server");
    let stored = etcd_get(etcd, "/registry/apps/deployments/basics/web")
        .unwrap_or_else(|| panic!("deployment not in etcd; server log:\n{}", server.log()));
    assert_eq!(stored.mod_revision.to_string(), rv);
    assert!(
        !server.data_dir().join("state.db").exists(),
        "the etcd datastore must not write a SQLite file"
    );
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
