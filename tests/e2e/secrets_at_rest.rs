//! Secrets encrypted at rest (`--encryption-provider-config`): a Secret's
//! value is absent from the raw SQLite file and from the raw etcd value,
//! kubectl reads it back, and it stays readable through upstream's key
//! rotation (new key second → first → re-encrypt → old key removed, with a
//! restart at each step); a bad file stops the server with a clear message.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use support::{berth_bin, Datastore, Kubectl, Server, KUBECTL_1_33};

/// A value nobody else writes, so finding it anywhere means a leak.
const PLAINTEXT: &str = "berth-at-rest-4f2a9c1e";
const KEY1: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const KEY2: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

/// Writes an EncryptionConfiguration with these aesgcm keys, in order.
fn write_config(path: &Path, keys: &[(&str, &str)]) {
    let keys: String = keys
        .iter()
        .map(|(name, secret)| {
            format!("            - name: {name}\n              secret: {secret}\n")
        })
        .collect();
    std::fs::write(
        path,
        format!(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [secrets]\n    providers:\n      - aesgcm:\n          keys:\n{keys}      - identity: {{}}\n"
        ),
    )
    .unwrap();
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Every byte SQLite keeps for the server: the database and its WAL.
fn raw_sqlite(server: &Server) -> Vec<u8> {
    let mut bytes = Vec::new();
    for name in ["state.db", "state.db-wal"] {
        if let Ok(more) = std::fs::read(server.data_dir().join(name)) {
            bytes.extend(more);
        }
    }
    assert!(
        !bytes.is_empty(),
        "no SQLite file in {:?}",
        server.data_dir()
    );
    bytes
}

/// The value etcd holds for `key`, read with etcdctl.
fn raw_etcd(server: &Server, key: &str) -> Vec<u8> {
    let etcd = server.etcd.as_ref().expect("an etcd-backed server");
    let out = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints=http://{}", etcd.endpoint()))
        .args(["get", key, "--print-value-only"])
        .output()
        .expect("etcdctl (Debian's etcd-client)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Asserts `raw` holds an encrypted Secret and nothing of its value.
fn assert_encrypted(raw: &[u8], prefix: &str) {
    let encoded = base64::engine::general_purpose::STANDARD.encode(PLAINTEXT);
    assert!(!contains(raw, PLAINTEXT), "the plaintext is stored");
    assert!(!contains(raw, &encoded), "the base64 value is stored");
    assert!(contains(raw, prefix), "no {prefix} value stored");
}

/// The Secrets' data as kubectl shows them.
fn read_all(k: &Kubectl) -> String {
    let data = k.jsonpath(
        &["-n", "default", "get", "secret", "db"],
        "{.data.password}",
    );
    assert_eq!(
        data,
        base64::engine::general_purpose::STANDARD.encode(PLAINTEXT)
    );
    k.jsonpath(
        &["get", "secrets", "-A", "--sort-by=.metadata.name"],
        "{range .items[*]}{.metadata.namespace}/{.metadata.name}={.data}{\"\\n\"}{end}",
    )
}

fn create_secrets(k: &Kubectl) {
    k.ok(&[
        "-n",
        "default",
        "create",
        "secret",
        "generic",
        "db",
        &format!("--from-literal=password={PLAINTEXT}"),
    ]);
    k.ok(&["create", "namespace", "team"]);
    k.ok(&[
        "-n",
        "team",
        "create",
        "secret",
        "generic",
        "api",
        "--from-literal=token=t0k3n",
    ]);
}

/// Rotates from key1 to key2 as upstream documents it, restarting at each
/// step and checking every Secret still reads the same; `reencrypt` is the
/// re-encryption step (berth's command or kubectl's recipe).
fn rotate(server: &mut Server, config: &Path, reencrypt: impl Fn(&Server)) {
    let k = server.kubectl(KUBECTL_1_33);
    let before = read_all(&k);
    for keys in [
        &[("key1", KEY1), ("key2", KEY2)][..],
        &[("key2", KEY2), ("key1", KEY1)][..],
    ] {
        write_config(config, keys);
        server.restart();
        assert_eq!(read_all(&k), before);
    }
    reencrypt(server);
    assert_eq!(read_all(&k), before, "re-encryption changed the data");
    write_config(config, &[("key2", KEY2)]);
    server.restart();
    assert_eq!(read_all(&k), before, "log:\n{}", server.log());
}

/// A server on `datastore` encrypting with key1 (its configuration file in
/// the returned folder), with the test's Secrets created.
fn start_with_secrets(datastore: Datastore) -> (tempfile::TempDir, PathBuf, Server) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("encryption.yaml");
    write_config(&config, &[("key1", KEY1)]);
    let server = Server::start_on(
        datastore,
        &[
            "--encryption-provider-config",
            config.to_str().unwrap(),
            "--disable",
            "controllers,scheduler,nodepool,cloud-controller",
        ],
    );
    create_secrets(&server.kubectl(KUBECTL_1_33));
    (dir, config, server)
}

#[test]
fn secrets_are_encrypted_in_sqlite_and_readable_after_rotation_and_reencrypt() {
    let (_dir, config, mut server) = start_with_secrets(Datastore::Sqlite);
    read_all(&server.kubectl(KUBECTL_1_33));
    assert_encrypted(&raw_sqlite(&server), "k8s:enc:aesgcm:v1:key1:");
    rotate(&mut server, &config, |server| {
        let out = Command::new(berth_bin())
            .args(["secrets", "reencrypt", "--kubeconfig"])
            .arg(server.kubeconfig())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let count: usize = stdout
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{stdout}"));
        assert!(count >= 2, "{stdout}");
        assert!(
            stdout.contains("secrets rewritten with the first encryption provider"),
            "{stdout}"
        );
    });
    let raw = raw_sqlite(&server);
    assert_encrypted(&raw, "k8s:enc:aesgcm:v1:key2:");
}

#[test]
fn secrets_are_encrypted_in_etcd_and_kubectl_replace_reencrypts_them() {
    let (_dir, config, mut server) = start_with_secrets(Datastore::Etcd);
    let key = "/registry/core/secrets/default/db";
    assert_encrypted(&raw_etcd(&server, key), "k8s:enc:aesgcm:v1:key1:");
    rotate(&mut server, &config, |server| {
        let k = server.kubectl(KUBECTL_1_33);
        let all = k.ok(&["get", "secrets", "-A", "-o", "json"]);
        k.ok_stdin(&["replace", "-f", "-"], &all);
    });
    assert_encrypted(&raw_etcd(&server, key), "k8s:enc:aesgcm:v1:key2:");
    let other = raw_etcd(&server, "/registry/core/secrets/team/api");
    assert!(other.starts_with(b"k8s:enc:aesgcm:v1:key2:"));
}

#[test]
fn a_bad_encryption_config_stops_the_server_naming_the_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("encryption.yaml");
    write_config(&config, &[("key1", "c2hvcnQ=")]);
    let out = Command::new(berth_bin())
        .arg("server")
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--listen", "127.0.0.1:0", "--encryption-provider-config"])
        .arg(&config)
        .output()
        .expect("running berth server");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "server started: {stderr}");
    assert!(
        stderr.contains(&config.display().to_string())
            && stderr.contains("resources[0].providers[0].aesgcm.keys[0].secret")
            && stderr.contains("secret is not of the expected length, got 5"),
        "{stderr}"
    );
}
