//! The NodePool controller's `ssh` provider end to end: three namespace
//! hosts with OpenSSH (prefix `bps`, subnet 10.93), a `berth server` on
//! their bridge with `--nodepool-ssh-*` settings, kubectl 1.33. A pool of 2
//! over the 3 hosts joins 2 of them over SSH (berth uploaded, agent started
//! with the pool's labels and taints; `--runtime simulated`, so the join is
//! real and the containers hollow) with markers on exactly 2 hosts; scaling
//! to 1 drains and removes one node and cleans its host; scaling to 3 uses
//! the free hosts; scaling to 4 reports that no host is free; deleting the
//! pool cleans every host.

mod cluster_support;
mod cri_node;
mod hosts;
mod ssh_hosts;
mod support;

use std::path::{Path, PathBuf};

use cluster_support::{processes_mentioning, ssh_into};
use hosts::{Hosts, Topology};
use support::nodepool::{all_ready, pool_nodes, waiter};
use support::{Datastore, Server, KUBECTL_1_33};

/// A host's berth folder in the test's directory (the hosts share this
/// machine's filesystem, so each gets its own through `{host}`).
fn host_dir(dir: &Path, address: &str) -> PathBuf {
    dir.join("hosts").join(address)
}

/// The hosts holding a marker.
fn marked(dir: &Path, hosts: &Hosts) -> Vec<String> {
    hosts
        .hosts
        .iter()
        .filter(|h| host_dir(dir, &h.address).join("nodepool-machine").exists())
        .map(|h| h.address.clone())
        .collect()
}

/// Whether nothing of berth is left on the host: no folder, no process.
fn clean(dir: &Path, address: &str) -> bool {
    let folder = host_dir(dir, address);
    !folder.exists() && processes_mentioning(&folder.display().to_string()).is_empty()
}

#[test]
fn an_ssh_pool_joins_scales_and_cleans_its_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let hosts = Hosts::up("bps", 3, "10.93", Topology::OneLan);
    let (_sshds, known_hosts) = ssh_into(&hosts.hosts, dir);
    let key = dir.join("id");
    let server = Server::start_listening(
        Datastore::Sqlite,
        &hosts.hosts[0].gateway,
        &[
            "--nodepool-ssh-key-file",
            &key.display().to_string(),
            "--nodepool-ssh-known-hosts",
            &known_hosts.display().to_string(),
            "--nodepool-ssh-runtime",
            "simulated",
            "--nodepool-ssh-agent-arg=--heartbeat-interval=2s",
        ],
    );
    let k = server.kubectl(KUBECTL_1_33);
    let wait = waiter(&server);
    let addresses: Vec<String> = hosts.hosts.iter().map(|h| h.address.clone()).collect();
    let pool = format!(
        "apiVersion: berth.dev/v1\nkind: NodePool\nmetadata:\n  name: bps\nspec:\n  provider: ssh\n  replicas: 2\n  labels:\n    tier: bps\n  taints:\n  - key: bps/dedicated\n    value: \"true\"\n    effect: NoSchedule\n  template:\n    capacity:\n      cpu: \"2\"\n    ssh:\n      hosts: [{}]\n      dataDir: {}/hosts/{{host}}\n",
        addresses.join(", "),
        dir.display()
    );
    k.ok_stdin(&["apply", "-f", "-"], &pool);

    // 2 of 3 hosts joined, with the pool's labels and taints, markers on them.
    wait("2 Ready nodes in bps", 240, &mut || all_ready(&k, "bps", 2));
    for line in pool_nodes(&k, "bps") {
        let node = line.split(' ').next().unwrap();
        let seen = k.jsonpath(
            &["get", "node", node],
            r#"{.metadata.labels.tier} {.metadata.labels.berth\.dev/nodeclaim} {.spec.taints[*].key} {.spec.providerID}"#,
        );
        assert!(
            seen.starts_with(&format!("bps {node} bps/dedicated")),
            "{node}: {seen}"
        );
    }
    let ids = k.jsonpath(&["get", "nodeclaims"], "{.items[*].status.providerId}");
    assert_eq!(ids.matches("ssh://10.93.").count(), 2, "{ids}");
    assert_eq!(marked(dir, &hosts).len(), 2);

    // Down to 1: one node drained and removed, its host clean.
    let before = marked(dir, &hosts);
    k.ok(&["scale", "nodepool", "bps", "--replicas=1"]);
    wait("bps down to 1 node and 1 marker", 120, &mut || {
        all_ready(&k, "bps", 1) && marked(dir, &hosts).len() == 1
    });
    let gone: Vec<&String> = before
        .iter()
        .filter(|a| !marked(dir, &hosts).contains(a))
        .collect();
    assert_eq!(gone.len(), 1);
    wait("the removed host is clean", 60, &mut || clean(dir, gone[0]));
    let reasons = k.jsonpath(&["get", "events", "-A"], "{.items[*].reason}");
    assert!(reasons.contains("Terminated"), "{reasons}");

    // Up to 3: the free hosts are used.
    k.ok(&["scale", "nodepool", "bps", "--replicas=3"]);
    wait("3 Ready nodes on 3 marked hosts", 240, &mut || {
        all_ready(&k, "bps", 3) && marked(dir, &hosts).len() == 3
    });

    // Up to 4: no host left, said as a Warning Event.
    k.ok(&["scale", "nodepool", "bps", "--replicas=4"]);
    wait("a Warning that no host is free", 120, &mut || {
        k.jsonpath(
            &["get", "events", "-A", "--field-selector", "type=Warning"],
            "{.items[*].message}",
        )
        .contains("no free host")
    });
    assert_eq!(pool_nodes(&k, "bps").len(), 3);

    // Deleting the pool cleans every host.
    k.ok(&["delete", "nodepool", "bps", "--wait=false"]);
    wait("no nodeclaims, nodes or markers left", 180, &mut || {
        k.ok(&["get", "nodeclaims", "-o", "name"]).trim().is_empty()
            && pool_nodes(&k, "bps").is_empty()
            && addresses.iter().all(|a| clean(dir, a))
    });
}
