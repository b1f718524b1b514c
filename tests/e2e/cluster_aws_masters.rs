//! `berth cluster create` with `[aws.masters]`: the master is launched as an
//! EC2 instance in moto (on loopback), and the namespace host standing at
//! the private address moto gives it is provisioned over SSH as a listed
//! machine is; a run that fails after the launch leaves the instance tagged
//! and the next run finds it. moto hands out a subnet's addresses in order after the three
//! AWS reserves, so the test makes a VPC and subnet whose CIDR is the
//! namespace hosts' network and puts the host at the first free address
//! before `create` runs. Checked: the instance's tags, the server's `aws`
//! provider flags, the API through kubectl 1.33, a re-run launching
//! nothing, `status` naming the instance, `delete` terminating it.

#[path = "../../provisioner/tests/aws/moto.rs"]
mod moto;

mod cluster_support;
mod cri_node;
mod hosts;
mod ssh_hosts;
mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use berth_provisioner::aws::{Ec2, Instance, CLUSTER_TAG, NAME_TAG, ROLE_TAG};
use cluster_support::{berth_with_env, kill_processes_mentioning, text};
use hosts::{Host, Hosts, Topology};
use moto::Moto;
use ssh_hosts::{keygen, Sshd};
use support::{berth_bin, Kubectl, KUBECTL_1_33};

const CLUSTER: &str = "bam";
/// The hosts' network: `10.96.0.0/24`, this machine at `.1`.
const SUBNET: &str = "10.96";
/// The first address moto gives out in `SUBNET.0.0/24` (`.1`–`.3` are reserved).
const FIRST_ADDRESS: &str = "10.96.0.4";
/// An AMI moto ships by default.
const AMI: &str = "ami-03cf127a";
/// moto's static credentials, for this test's calls and `berth cluster`'s.
const AWS_ENV: [(&str, &str); 3] = [
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
];

/// Kills whatever still runs from the test's folder, even when it fails.
struct Leftovers(PathBuf);

impl Drop for Leftovers {
    fn drop(&mut self) {
        kill_processes_mentioning(&self.0.display().to_string());
    }
}

/// `berth cluster ARGS -f FILE --state-dir STATE` with moto's credentials.
fn berth(args: &[&str], file: &Path, state: &Path) -> Output {
    berth_with_env(args, file, state, &AWS_ENV)
}

fn cluster_toml(dir: &Path, moto: &str, subnet_id: &str, known_hosts: &Path) -> String {
    format!(
        r#"name = "{CLUSTER}"
binary = "{binary}"
data_dir = "{dir}/machines/master"
cluster_cidr = "10.196.0.0/16"

[ssh]
user = "root"
key_file = "{dir}/id"
known_hosts = "{known_hosts}"

[aws]
region = "us-east-1"
endpoint_url = "{moto}"
binary_url = "https://example.invalid/berth"

[aws.masters]
count = 1
instance_types = ["m5.large"]
ami = "{AMI}"
subnet_ids = ["{subnet_id}"]
"#,
        binary = berth_bin().display(),
        dir = dir.display(),
        known_hosts = known_hosts.display(),
    )
}

/// A VPC and a subnet whose CIDR is the hosts' network; the subnet's id.
async fn hosts_subnet(ec2: &Ec2) -> String {
    let vpc = ec2
        .sdk()
        .create_vpc()
        .cidr_block(format!("{SUBNET}.0.0/16"))
        .send()
        .await
        .expect("CreateVpc");
    let vpc_id = vpc.vpc().and_then(|v| v.vpc_id()).expect("a VPC id");
    let subnet = ec2
        .sdk()
        .create_subnet()
        .vpc_id(vpc_id)
        .cidr_block(format!("{SUBNET}.0.0/24"))
        .send()
        .await
        .expect("CreateSubnet");
    subnet
        .subnet()
        .and_then(|s| s.subnet_id())
        .expect("a subnet id")
        .to_owned()
}

/// The host `host` also answering at `address`, with SSH listening there.
/// The instance metadata address goes nowhere: the server's `aws` provider
/// must not look for credentials outside the namespace.
fn stand_at(host: &Host, address: &str, dir: &Path, user_key: &Path) -> Sshd {
    let added = host.run(&["ip", "addr", "add", &format!("{address}/24"), "dev", "eth0"]);
    assert!(added.status.success(), "{}", text(&added));
    let blackhole = host.run(&["ip", "route", "add", "blackhole", "169.254.169.254/32"]);
    assert!(blackhole.status.success(), "{}", text(&blackhole));
    let at = Host {
        address: address.to_owned(),
        ..host.clone()
    };
    Sshd::start(&at, &dir.join("sshd"), &user_key.with_extension("pub"))
}

/// `output` is a success whose stderr says `needle`.
fn succeeded_saying(output: &Output, needle: &str) {
    assert!(output.status.success(), "{}", text(output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(needle), "{needle:?} in {}", text(output));
}

/// Every live (not terminating) instance tagged with the cluster.
fn live(runtime: &tokio::runtime::Runtime, ec2: &Ec2) -> Vec<Instance> {
    let instances = runtime
        .block_on(ec2.list_tagged(&[]))
        .expect("DescribeInstances");
    instances.into_iter().filter(Instance::live).collect()
}

#[test]
fn masters_launched_in_moto_are_provisioned_over_ssh_and_terminated_on_delete() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let _leftovers = Leftovers(dir.to_owned());
    let moto = Moto::start();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let ec2 = runtime.block_on(moto::ec2(&moto.url, CLUSTER));
    let subnet_id = runtime.block_on(hosts_subnet(&ec2));
    let hosts = Hosts::up(CLUSTER, 1, SUBNET, Topology::OneLan);
    let user_key = keygen(&dir.join("id"));
    let sshd = stand_at(&hosts.hosts[0], FIRST_ADDRESS, dir, &user_key);
    let known_hosts = dir.join("known_hosts");
    std::fs::write(&known_hosts, "").unwrap();
    let file = dir.join("cluster.toml");
    std::fs::write(
        &file,
        cluster_toml(dir, &moto.url, &subnet_id, &known_hosts),
    )
    .unwrap();
    let state = dir.join("state");
    let data_dir = dir.join("machines/master");

    // Fails after the launch (the host key is unknown, the policy strict):
    // the instance is left tagged, named in the error, and found again.
    let failed = berth(&["create"], &file, &state);
    assert_eq!(failed.status.code(), Some(1), "{}", text(&failed));
    assert!(
        String::from_utf8_lossy(&failed.stderr).contains(&format!("root@{FIRST_ADDRESS}:22")),
        "{}",
        text(&failed)
    );
    let launched = live(&runtime, &ec2);
    assert_eq!(launched.len(), 1, "{launched:?}");
    std::fs::write(&known_hosts, format!("{}\n", sshd.known_hosts_line)).unwrap();

    // Created: the instance launched, the host at its address provisioned.
    let created = berth(&["create"], &file, &state);
    succeeded_saying(
        &created,
        &format!("master instance {CLUSTER}-master-1 at {FIRST_ADDRESS}"),
    );
    let masters = runtime.block_on(ec2.masters()).expect("DescribeInstances");
    let [master] = masters.as_slice() else {
        panic!("one master instance: {masters:?}");
    };
    let name = format!("{CLUSTER}-master-1");
    assert_eq!(master.instance.id, launched[0].id, "launched once");
    assert_eq!(master.instance.private_ip.as_deref(), Some(FIRST_ADDRESS));
    assert_eq!(master.instance.tag(CLUSTER_TAG), Some(CLUSTER));
    assert_eq!(master.instance.tag(ROLE_TAG), Some("master"));
    assert_eq!(master.instance.tag(NAME_TAG), Some(name.as_str()));
    let command = std::fs::read_to_string(data_dir.join("run/server.cmd")).unwrap();
    // The command file holds the server's arguments, each shell-quoted.
    for (flag, value) in [
        ("--aws-cluster", CLUSTER),
        ("--aws-region", "us-east-1"),
        ("--aws-endpoint-url", moto.url.as_str()),
        ("--aws-binary-url", "https://example.invalid/berth"),
    ] {
        let wanted = format!("'{flag}' '{value}'");
        assert!(command.contains(&wanted), "{wanted} in {command}");
    }

    let kubeconfig = state.join("admin.kubeconfig");
    let kubectl = Kubectl::with_kubeconfig(KUBECTL_1_33, &kubeconfig, &dir.join("kubectl-cache"));
    assert_eq!(kubectl.ok(&["get", "--raw", "/readyz"]).trim(), "ok");
    kubectl.ok(&["create", "namespace", "from-ec2-master"]);
    assert!(std::fs::read_to_string(&kubeconfig)
        .unwrap()
        .contains(&format!("server: https://{FIRST_ADDRESS}:6443")));

    // Again: the same instance found by its Name tag, nothing launched.
    let again = berth(&["create"], &file, &state);
    succeeded_saying(&again, "berth server unchanged");
    let all = live(&runtime, &ec2);
    assert_eq!(
        all.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        [master.instance.id.as_str()]
    );

    let status = berth(&["status"], &file, &state);
    assert!(status.status.success(), "{}", text(&status));
    let report = String::from_utf8_lossy(&status.stdout);
    assert!(
        report.contains(&format!(
            "{name} {} m5.large running {FIRST_ADDRESS}",
            master.instance.id
        )),
        "{report}"
    );

    // Deleted: the host cleaned over SSH, then the instance terminated.
    let deleted = berth(&["delete"], &file, &state);
    succeeded_saying(
        &deleted,
        &format!("terminated instance {}", master.instance.id),
    );
    assert!(!data_dir.exists(), "{}", text(&deleted));
    assert!(!state.exists());
    let left = live(&runtime, &ec2);
    assert!(left.is_empty(), "{left:?}");
}
