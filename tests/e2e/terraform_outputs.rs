//! `berth cluster create --from-terraform`, as a user runs it after
//! `terraform output -json > outputs.json`: the saved outputs of
//! terraform/examples/cluster print as a checked cluster.toml with
//! `--dry-run`; a broken outputs file is refused naming the output; and
//! outputs naming a namespace machine with its own OpenSSH server become a
//! cluster.toml beside them and a running cluster whose aws node pool is a
//! NodePool object (updated by a re-run), deleted at the end.

mod cluster_support;
mod cri_node;
mod hosts;
// Only the server: this test's EC2 calls are berth's own.
#[allow(dead_code)]
#[path = "../../provisioner/tests/aws/moto.rs"]
mod moto;
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
        "[aws]",
        "region = \"eu-west-1\"",
        // node_pools.gpu: an aws pool the NodePool controller launches.
        "provider = \"aws\"",
        "ami = \"ami-0123456789abcdef0\"",
        "instance_types = [\"g5.xlarge\", \"g5.2xlarge\"]",
        "iam_instance_profile = \"prod-pool-gpu\"",
        "root_volume_gib = 100",
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
    let summary = String::from_utf8_lossy(&checked.stdout).into_owned();
    assert!(summary.contains("prod-master-2"), "{}", text(&checked));
    assert!(
        summary.contains("pool \"gpu\" (aws NodePool, autoscaled 0..limits, g5.xlarge/g5.2xlarge"),
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
/// with the test's key, known_hosts and data_dir, and one aws node pool
/// `tfgpu` launching `instance_types`.
fn outputs_json(dir: &Path, host: &str, instance_types: &[&str]) -> String {
    let output = |value: serde_json::Value| serde_json::json!({"sensitive": false, "type": "string", "value": value});
    serde_json::json!({
        "cluster_name": output("tfe".into()),
        "region": output("eu-west-1".into()),
        "berth_binary_url": output("http://127.0.0.1:9/berth".into()),
        "masters": output(serde_json::json!([{"name": "tfm1", "host": host, "private_ip": host}])),
        "cluster_cidr": output("10.189.0.0/16".into()),
        "data_dir": output(format!("{}/machines/tfm1", dir.display()).into()),
        "ssh_user": output("root".into()),
        "ssh_key_file": output(format!("{}/id", dir.display()).into()),
        "ssh_known_hosts": output(format!("{}/known_hosts", dir.display()).into()),
        "ssh_host_key_policy": output("accept-new".into()),
        "ssh_jump_host": output(serde_json::Value::Null),
        "api_endpoint": output(serde_json::Value::Null),
        "node_pools": output(serde_json::json!({"tfgpu": {
            "name": "tfgpu", "ami": "ami-0e2e0000000000001", "instance_types": instance_types,
            "subnet_ids": ["subnet-0e2e0001"], "security_group_ids": ["sg-0e2e0001"],
            "instance_profile": "tfe-pool-tfgpu", "key_name": null, "root_volume_size": 60,
            "gpu": true, "spot": true, "tags": {"berth.dev/cluster": "tfe"},
        }})),
    })
    .to_string()
}

#[test]
fn outputs_of_a_fresh_machine_become_a_running_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let hosts = Hosts::up("tfh", 1, "10.89", Topology::OneLan);
    let machine = &hosts.hosts[0];
    // The server runs the aws provider (the outputs name a binary_url): its
    // credential chain must not reach the instance metadata service.
    let blackhole = machine.run(&["ip", "route", "add", "blackhole", "169.254.169.254/32"]);
    assert!(blackhole.status.success(), "{}", text(&blackhole));
    let user_key = keygen(&dir.join("id"));
    let _sshd = Sshd::start(machine, &dir.join("sshd"), &user_key.with_extension("pub"));
    // A fresh instance: its host key is nowhere yet (accept-new records it).
    std::fs::write(dir.join("known_hosts"), "").unwrap();
    let outputs = dir.join("outputs.json");
    std::fs::write(
        &outputs,
        outputs_json(dir, &machine.address, &["g5.xlarge"]),
    )
    .unwrap();
    let file = dir.join("cluster.toml");
    let state = dir.join("state");
    let _cluster = DeleteOnDrop {
        file: file.clone(),
        state: state.clone(),
    };

    let create = || {
        Command::new(berth_bin())
            .args(["cluster", "create", "--from-terraform"])
            .arg(&outputs)
            .arg("--state-dir")
            .arg(&state)
            .args(["--connect-timeout", "5s"])
            .output()
            .unwrap()
    };
    let created = create();
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

    // node_pools.tfgpu became an aws pool, and create applied its NodePool.
    let pool = kubectl.ok(&["get", "nodepool", "tfgpu", "-o", "yaml"]);
    for line in [
        "    berth.dev/pool: tfgpu",
        "  provider: aws",
        "      ami: ami-0e2e0000000000001",
        "      capacityType: spot",
        "      iamInstanceProfile: tfe-pool-tfgpu",
        "      - g5.xlarge",
        "        sizeGiB: 60",
        "      - subnet-0e2e0001",
        "      - sg-0e2e0001",
        "  - effect: NoSchedule",
        "    key: nvidia.com/gpu",
    ] {
        assert!(pool.lines().any(|l| l == line), "{line:?} in\n{pool}");
    }
    let listed = kubectl.ok(&[
        "get",
        "nodepools",
        "-l",
        "berth.dev/pool=tfgpu",
        "-o",
        "name",
    ]);
    assert_eq!(listed.trim(), "nodepool.berth.dev/tfgpu");

    // A re-run with changed outputs updates the NodePool in place.
    std::fs::write(
        &outputs,
        outputs_json(dir, &machine.address, &["g5.2xlarge", "g6.xlarge"]),
    )
    .unwrap();
    let again = create();
    assert!(again.status.success(), "{}", text(&again));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("nodepool tfgpu: applied"),
        "{}",
        text(&again)
    );
    let types = kubectl.ok(&[
        "get",
        "nodepool",
        "tfgpu",
        "-o",
        "jsonpath={.spec.template.aws.instanceTypes}",
    ]);
    assert_eq!(types.trim(), r#"["g5.2xlarge","g6.xlarge"]"#);
    let status = cluster_support::berth(&["status"], &file, &state);
    assert!(status.status.success(), "{}", text(&status));
    let status_text = String::from_utf8_lossy(&status.stdout);
    assert!(
        status_text.lines().any(|l| l.starts_with("nodepool tfgpu")
            && l.contains("aws")
            && l.contains("autoscaled 0..limits")),
        "{}",
        text(&status)
    );

    // The cluster.toml it wrote is the one every later command takes.
    // delete also ends the pool's instances, asking EC2 (here a moto on
    // loopback, named by the SDK's own AWS_ENDPOINT_URL).
    let moto = moto::Moto::start();
    let aws_env = [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_ENDPOINT_URL", moto.url.as_str()),
    ];
    let deleted = cluster_support::berth_with_env(&["delete"], &file, &state, &aws_env);
    assert!(deleted.status.success(), "{}", text(&deleted));
    assert!(!dir.join("machines/tfm1").exists(), "{}", text(&deleted));
}
