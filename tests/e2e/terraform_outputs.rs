//! `berth cluster create --from-terraform`, as a user runs it after
//! `terraform output -json > outputs.json`: the saved outputs of
//! terraform/examples/cluster print as a checked cluster.toml with
//! `--dry-run`; a broken outputs file is refused naming the output; and
//! outputs naming a namespace machine with its own OpenSSH server become a
//! cluster.toml beside them and a running cluster, deleted at the end.

mod cluster_support;
mod cri_node;
mod hosts;
mod ssh_hosts;
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cluster_support::{text, DeleteOnDrop};
use hosts::{Hosts, Topology};
use ssh_hosts::{keygen, Sshd};
use support::{berth_bin, Kubectl, KUBECTL_1_33};

/// The outputs file the provisioner's unit tests read too.
fn saved_outputs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../provisioner/tests/data/terraform-outputs.json")
}

/// `berth cluster create --from-terraform OUTPUTS ARGS`.
fn from_terraform(outputs: &Path, args: &[&str]) -> Output {
    Command::new(berth_bin())
        .args(["cluster", "create", "--from-terraform"])
        .arg(outputs)
        .args(args)
        .output()
        .expect("running berth cluster create")
}

#[test]
fn saved_outputs_print_as_a_cluster_toml_and_broken_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let outputs = dir.path().join("outputs.json");
    std::fs::copy(saved_outputs(), &outputs).unwrap();

    let printed = from_terraform(&outputs, &["--dry-run"]);
    assert!(printed.status.success(), "{}", text(&printed));
    let toml = String::from_utf8_lossy(&printed.stdout).into_owned();
    for line in [
        "name = \"prod\"",
        "datastore = \"etcd\"",
        "network_mode = \"vxlan\"",
        "api_endpoint = \"prod-api-0123456789abcdef.elb.eu-west-1.amazonaws.com\"",
        "user = \"admin\"",
        "jump_host = \"admin@bastion.prod.example.com\"",
        "  { host = \"10.0.12.13\", name = \"prod-master-3\" },",
        "# AWS region: eu-west-1",
    ] {
        assert!(toml.lines().any(|l| l == line), "{line:?} in\n{toml}");
    }
    assert!(
        !dir.path().join("cluster.toml").exists(),
        "--dry-run writes nothing"
    );
    // What it printed is a cluster.toml `cluster check` accepts.
    let file = dir.path().join("printed.toml");
    std::fs::write(&file, &toml).unwrap();
    let checked = Command::new(berth_bin())
        .args(["cluster", "check", "-f"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(checked.status.success(), "{}", text(&checked));
    assert!(
        String::from_utf8_lossy(&checked.stdout).contains("prod-master-2"),
        "{}",
        text(&checked)
    );

    let saved = std::fs::read_to_string(saved_outputs()).unwrap();
    let broken = saved.replace("\"masters\": {", "\"old_masters\": {");
    std::fs::write(&outputs, broken).unwrap();
    let refused = from_terraform(&outputs, &["--dry-run"]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("output \"masters\" is missing"),
        "{}",
        text(&refused)
    );
    let wrong = saved.replace("\"value\": \"prod\"", "\"value\": [\"prod\"]");
    std::fs::write(&outputs, wrong).unwrap();
    let refused = from_terraform(&outputs, &["--dry-run"]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("output \"cluster_name\": expected a string, found a list"),
        "{}",
        text(&refused)
    );
}

/// What `terraform output -json` prints for a one-master cluster on `host`,
/// with the test's key, known_hosts and data_dir.
fn outputs_json(dir: &Path, host: &str) -> String {
    let output = |value: serde_json::Value| serde_json::json!({"sensitive": false, "type": "string", "value": value});
    serde_json::json!({
        "cluster_name": output("tfe".into()),
        "region": output("eu-west-1".into()),
        "masters": output(serde_json::json!([{"name": "tfm1", "host": host, "private_ip": host}])),
        "cluster_cidr": output("10.189.0.0/16".into()),
        "data_dir": output(format!("{}/machines/tfm1", dir.display()).into()),
        "ssh_user": output("root".into()),
        "ssh_key_file": output(format!("{}/id", dir.display()).into()),
        "ssh_known_hosts": output(format!("{}/known_hosts", dir.display()).into()),
        "ssh_host_key_policy": output("accept-new".into()),
        "ssh_jump_host": output(serde_json::Value::Null),
        "api_endpoint": output(serde_json::Value::Null),
        "node_pools": output(serde_json::json!({})),
    })
    .to_string()
}

#[test]
fn outputs_of_a_fresh_machine_become_a_running_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let hosts = Hosts::up("tfh", 1, "10.89", Topology::OneLan);
    let machine = &hosts.hosts[0];
    let user_key = keygen(&dir.join("id"));
    let _sshd = Sshd::start(machine, &dir.join("sshd"), &user_key.with_extension("pub"));
    // A fresh instance: its host key is nowhere yet (accept-new records it).
    std::fs::write(dir.join("known_hosts"), "").unwrap();
    let outputs = dir.join("outputs.json");
    std::fs::write(&outputs, outputs_json(dir, &machine.address)).unwrap();
    let file = dir.join("cluster.toml");
    let state = dir.join("state");
    let _cluster = DeleteOnDrop {
        file: file.clone(),
        state: state.clone(),
    };

    let created = Command::new(berth_bin())
        .args(["cluster", "create", "--from-terraform"])
        .arg(&outputs)
        .arg("--state-dir")
        .arg(&state)
        .args(["--connect-timeout", "5s"])
        .output()
        .unwrap();
    assert!(created.status.success(), "{}", text(&created));
    assert!(
        String::from_utf8_lossy(&created.stdout).contains("cluster tfe is ready"),
        "{}",
        text(&created)
    );
    let written = std::fs::read_to_string(&file).unwrap();
    assert!(
        written.contains(&format!(
            "{{ host = \"{}\", name = \"tfm1\" }}",
            machine.address
        )),
        "{written}"
    );
    assert!(
        std::fs::read_to_string(dir.join("known_hosts"))
            .unwrap()
            .contains(&machine.address),
        "accept-new recorded the host key"
    );
    let kubectl = Kubectl::with_kubeconfig(
        KUBECTL_1_33,
        &state.join("admin.kubeconfig"),
        &dir.join("kubectl-cache"),
    );
    assert_eq!(kubectl.ok(&["get", "--raw", "/readyz"]).trim(), "ok");

    // The cluster.toml it wrote is the one every later command takes.
    let deleted = cluster_support::berth(&["delete"], &file, &state);
    assert!(deleted.status.success(), "{}", text(&deleted));
    assert!(!dir.join("machines/tfm1").exists(), "{}", text(&deleted));
}
