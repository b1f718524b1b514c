//! `berth cluster create` over SSH, as a user runs it: machines are network
//! namespaces each running its own OpenSSH server; the cluster.toml names
//! them, the berth binary under test is installed on them, the API comes up
//! and answers through the kubeconfig it writes; a second run changes
//! nothing; a wrong host key and an unreachable machine are refused naming
//! the machine; `cluster delete` leaves nothing behind.

mod cluster_support;
mod cri_node;
mod hosts;
mod ssh_hosts;
mod support;

use std::path::Path;

use cluster_support::{berth, kill_processes_mentioning, processes_mentioning, text, SshLab};
use hosts::{Hosts, Topology};
use ssh_hosts::{keygen, Sshd};
use support::{berth_bin, Kubectl, KUBECTL_1_33};

fn cluster_toml(dir: &Path, host: &str, known_hosts: &Path) -> String {
    format!(
        r#"name = "edge"
binary = "{binary}"
data_dir = "{dir}/machines/default"
service_cidr = "10.43.0.0/16"
cluster_cidr = "10.182.0.0/16"

[ssh]
user = "root"
key_file = "{dir}/id"
known_hosts = "{known_hosts}"

[masters]
machines = [{{ host = "{host}", name = "m1", data_dir = "{dir}/machines/m1" }}]
"#,
        binary = berth_bin().display(),
        dir = dir.display(),
        known_hosts = known_hosts.display(),
    )
}

#[test]
fn a_single_master_cluster_is_created_kept_and_deleted_over_ssh() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let hosts = Hosts::up("bcc", 2, "10.81", Topology::OneLan);
    let (machine, silent) = (&hosts.hosts[0], &hosts.hosts[1]);
    let user_key = keygen(&dir.join("id"));
    let sshd = Sshd::start(machine, &dir.join("sshd"), &user_key.with_extension("pub"));
    let known_hosts = dir.join("known_hosts");
    std::fs::write(&known_hosts, format!("{}\n", sshd.known_hosts_line)).unwrap();
    let file = dir.join("cluster.toml");
    std::fs::write(&file, cluster_toml(dir, &machine.address, &known_hosts)).unwrap();
    let state = dir.join("state");
    let data_dir = dir.join("machines/m1");

    // Fails half-way (berth uploaded, certificates in place, but the
    // server cannot start: a file stands where its log folder goes): the
    // error names the machine and the step; fixed, a re-run finishes.
    std::fs::create_dir_all(&data_dir).unwrap();
    std::fs::write(data_dir.join("logs"), "in the way").unwrap();
    let failed = berth(&["create"], &file, &state);
    assert_eq!(failed.status.code(), Some(1), "{}", text(&failed));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains("m1") && stderr.contains("setting up masters"),
        "{}",
        text(&failed)
    );
    assert!(data_dir.join("bin/berth").exists(), "{}", text(&failed));
    std::fs::remove_file(data_dir.join("logs")).unwrap();

    // Created: berth installed and running there, the API answering here.
    let created = berth(&["create"], &file, &state);
    assert!(created.status.success(), "{}", text(&created));
    assert!(
        String::from_utf8_lossy(&created.stdout).contains("cluster edge is ready"),
        "{}",
        text(&created)
    );
    assert!(
        !String::from_utf8_lossy(&created.stderr).contains('\u{1b}'),
        "no colour codes in logs that are not a terminal: {}",
        text(&created)
    );
    let kubeconfig = state.join("admin.kubeconfig");
    let kubectl = Kubectl::with_kubeconfig(KUBECTL_1_33, &kubeconfig, &dir.join("kubectl-cache"));
    assert_eq!(kubectl.ok(&["get", "--raw", "/readyz"]).trim(), "ok");
    kubectl.ok(&["create", "namespace", "from-create"]);
    assert!(kubectl
        .ok(&["get", "namespaces", "-o", "name"])
        .contains("namespace/from-create"));
    assert!(std::fs::read_to_string(&kubeconfig)
        .unwrap()
        .contains(&format!("server: https://{}:6443", machine.address)));
    let pid = std::fs::read_to_string(data_dir.join("run/server.pid")).unwrap();
    let status = berth(&["status"], &file, &state);
    assert!(status.status.success(), "{}", text(&status));
    let report = String::from_utf8_lossy(&status.stdout);
    let line = report
        .lines()
        .find(|l| l.starts_with("m1 "))
        .unwrap_or_default();
    assert!(
        line.contains("master") && line.contains("server running") && line.contains("berth "),
        "{report}"
    );
    assert!(
        report.contains("certificate server-seed/tls/ca.crt"),
        "{report}"
    );

    // Run again: nothing changes, the server keeps running, the data stays.
    let again = berth(&["create"], &file, &state);
    assert!(again.status.success(), "{}", text(&again));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("berth server unchanged"),
        "{}",
        text(&again)
    );
    assert_eq!(
        std::fs::read_to_string(data_dir.join("run/server.pid")).unwrap(),
        pid
    );
    assert!(kubectl
        .ok(&["get", "namespaces", "-o", "name"])
        .contains("namespace/from-create"));

    // A host key other than the recorded one is refused, naming the machine.
    std::fs::write(
        &known_hosts,
        format!(
            "{} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOf9M0xE7o6Yq1bzQ8j3Vq3hZxkQ4yVQ2m1N1pQw6a8F\n",
            machine.address
        ),
    )
    .unwrap();
    let refused = berth(&["create"], &file, &state);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains(&format!("root@{}:22", machine.address))
            && stderr.contains("HOST KEY CHANGED"),
        "{}",
        text(&refused)
    );
    std::fs::write(&known_hosts, format!("{}\n", sshd.known_hosts_line)).unwrap();

    // A machine with no SSH server: refused within the timeout, named.
    let unreachable = dir.join("unreachable.toml");
    std::fs::write(
        &unreachable,
        cluster_toml(dir, &silent.address, &known_hosts)
            .replace("name = \"edge\"", "name = \"nowhere\""),
    )
    .unwrap();
    let failed = berth(&["create"], &unreachable, &dir.join("state-nowhere"));
    assert_eq!(failed.status.code(), Some(1), "{}", text(&failed));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains("m1") && stderr.contains(&format!("root@{}:22", silent.address)),
        "{}",
        text(&failed)
    );

    // Deleted: no berth process and no data left on the machine.
    let deleted = berth(&["delete"], &file, &state);
    assert!(deleted.status.success(), "{}", text(&deleted));
    assert!(!data_dir.exists(), "{}", text(&deleted));
    assert!(!state.exists());
    assert_eq!(
        processes_mentioning(&data_dir.display().to_string()),
        Vec::<String>::new()
    );
}

/// The HA cluster's `api_endpoint`: a name the client machine resolves to every master.
const API_ENDPOINT: &str = "api.ha.test";

/// A cluster.toml for three masters on etcd and a pool of two nodes.
fn ha_cluster_toml(lab: &SshLab) -> String {
    format!(
        "{}\n[[pools]]\nname = \"cpu\"\nlabels = {{ \"example.com/tier\" = \"web\" }}\nreserved_cpu = \"500m\"\nreserved_memory = \"256Mi\"\nmachines = [{}, {}]\n",
        lab.etcd_masters_toml(
            "ha",
            &format!("api_endpoint = \"{API_ENDPOINT}\"\ncluster_cidr = \"10.183.0.0/16\"\n"),
        ),
        lab.machine(3, "n1"),
        lab.machine(4, "n2"),
    )
}

#[test]
fn three_masters_on_etcd_and_a_pool_joined_by_csr_over_ssh() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let lab = SshLab::up(dir, "bch", 5, "10.82");
    let hosts = &lab.hosts;
    let (cluster, _) = lab.create(&ha_cluster_toml(&lab));
    let (file, state) = (cluster.file.clone(), cluster.state.clone());
    // The admin works from a machine where the endpoint's name resolves to
    // every master, as a DNS name with three A records does.
    let client = &hosts.hosts[4];
    let masters: Vec<&str> = hosts.hosts[..3]
        .iter()
        .map(|h| h.address.as_str())
        .collect();
    let _resolving = client.resolving(&[(API_ENDPOINT, masters.clone())]);
    assert!(std::fs::read_to_string(state.join("admin.kubeconfig"))
        .unwrap()
        .contains(&format!("server: https://{API_ENDPOINT}:6443")));
    let kubectl = Kubectl::with_kubeconfig(
        KUBECTL_1_33,
        &state.join("admin.kubeconfig"),
        &dir.join("kubectl-cache"),
    )
    .in_netns(&client.netns);
    // Both pool nodes joined through a CSR the cluster approved and signed.
    let nodes = kubectl.ok(&[
        "get",
        "nodes",
        "-l",
        "berth.dev/pool=cpu,example.com/tier=web",
        "-o",
        "name",
    ]);
    assert_eq!(nodes.trim(), "node/n1\nnode/n2", "{nodes}");
    // The pool's reserved CPU and memory are kept back from pods.
    let (capacity, allocatable) = (
        kubectl.jsonpath(&["get", "node", "n1"], "{.status.capacity.cpu}"),
        kubectl.jsonpath(&["get", "node", "n1"], "{.status.allocatable.cpu}"),
    );
    let cores: i64 = capacity.trim().parse().unwrap();
    assert_eq!(allocatable.trim(), format!("{}m", cores * 1000 - 500));
    let csrs = kubectl.ok(&["get", "csr"]);
    assert_eq!(csrs.matches("Approved,Issued").count(), 2, "{csrs}");
    assert!(csrs.contains("system:bootstrap:"), "{csrs}");
    // One etcd member per master, the API answering through every master.
    for (i, master) in hosts.hosts[..3].iter().enumerate() {
        assert!(
            std::fs::read_to_string(dir.join(format!("machines/m{}/run/etcd.cmd", i + 1)))
                .unwrap()
                .contains("--initial-cluster"),
        );
        let other = Kubectl::with_kubeconfig(
            KUBECTL_1_33,
            &state.join("admin.kubeconfig"),
            &dir.join(format!("kubectl-cache-{i}")),
        );
        assert_eq!(
            other
                .ok(&[
                    "--server",
                    &format!("https://{}:6443", master.address),
                    "get",
                    "--raw",
                    "/readyz"
                ])
                .trim(),
            "ok"
        );
    }
    // A Deployment lands on the pool by its label, with pods running there.
    lab.apply_web_on_cpu_pool(&kubectl);
    kubectl.ok(&["rollout", "status", "deployment/web", "--timeout=120s"]);
    let placed = kubectl.jsonpath(
        &["get", "pods", "-l", "app=web"],
        "{.items[*].spec.nodeName}",
    );
    assert!(
        placed.split_whitespace().all(|n| n == "n1" || n == "n2") && !placed.trim().is_empty(),
        "{placed}"
    );

    // Status: every service running, one etcd leader, both nodes Ready.
    let status = berth(&["status"], &file, &state);
    assert!(status.status.success(), "{}", text(&status));
    let report = String::from_utf8_lossy(&status.stdout);
    assert_eq!(
        report.matches("etcd running, server running").count(),
        3,
        "{report}"
    );
    assert_eq!(report.matches("agent running").count(), 2, "{report}");
    assert_eq!(report.matches(" healthy, leader").count(), 1, "{report}");
    assert_eq!(report.matches(" healthy, follower").count(), 2, "{report}");
    assert!(
        report.contains("node n1") && report.matches(" Ready ").count() >= 2,
        "{report}"
    );
    assert!(report.contains("certificate etcd/m1-peer.crt"), "{report}");

    // Again: nothing changes anywhere.
    let again = berth(&["create"], &file, &state);
    assert!(again.status.success(), "{}", text(&again));
    let stderr = String::from_utf8_lossy(&again.stderr);
    let progress = |step: &str| {
        stderr
            .lines()
            .filter(|line| !line.contains(" INFO ") && line.ends_with(step))
            .count()
    };
    assert_eq!(progress(": berth server unchanged"), 3, "{}", text(&again));
    assert_eq!(progress(": berth agent unchanged"), 2, "{}", text(&again));

    // The first master dies (its etcd member, API server and supervisors):
    // the API keeps serving through the endpoint, the nodes keep renewing
    // their leases through their agents' failover, the pods keep running.
    let renewed = |node: &str| {
        kubectl.jsonpath(
            &["get", "lease", "-n", "kube-node-lease", node],
            "{.spec.renewTime}",
        )
    };
    let before = (renewed("n1"), renewed("n2"));
    kill_processes_mentioning(&dir.join("machines/m1/").display().to_string());
    assert_eq!(
        kubectl.ok(&["get", "--raw", "/readyz"]).trim(),
        "ok",
        "the API answers through the endpoint with m1 gone"
    );
    // When m1 led etcd, the first writes time out until the others elect a
    // new leader (upstream's API server answers the same); then they land.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let written = kubectl.run(&["create", "configmap", "after-m1", "--from-literal=a=b"]);
        let stderr = String::from_utf8_lossy(&written.stderr);
        if written.status.success() || stderr.contains("already exists") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline && stderr.contains("timed out"),
            "writing with m1 gone: {stderr}"
        );
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let now = (renewed("n1"), renewed("n2"));
        if now.0 != before.0 && now.1 != before.1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "node leases not renewed after m1 died: {before:?}"
        );
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    let phases = kubectl.jsonpath(
        &["get", "pods", "-l", "app=web"],
        "{.items[*].status.phase}",
    );
    assert_eq!(phases.trim(), "Running Running", "{phases}");

    // Restarted (a re-run of create), m1 rejoins: three healthy members again.
    let rejoined = berth(&["create"], &file, &state);
    assert!(rejoined.status.success(), "{}", text(&rejoined));
    let stderr = String::from_utf8_lossy(&rejoined.stderr);
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("m1") && l.ends_with(": berth server started")),
        "{}",
        text(&rejoined)
    );
    let status = berth(&["status"], &file, &state);
    let report = String::from_utf8_lossy(&status.stdout);
    assert_eq!(
        report.matches("etcd running, server running").count(),
        3,
        "{report}"
    );
    assert_eq!(report.matches(" healthy, ").count(), 3, "{report}");
    assert!(kubectl
        .ok(&["get", "configmap", "after-m1", "-o", "name"])
        .contains("after-m1"));

    let deleted = berth(&["delete"], &file, &state);
    assert!(deleted.status.success(), "{}", text(&deleted));
    assert_eq!(
        processes_mentioning(&dir.join("machines").display().to_string()),
        Vec::<String>::new()
    );
    for name in ["m1", "m2", "m3", "n1", "n2"] {
        assert!(!dir.join("machines").join(name).exists(), "{name}");
    }
}
