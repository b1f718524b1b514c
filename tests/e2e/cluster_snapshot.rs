//! `berth cluster etcd-snapshot save|restore` and `berth cluster
//! renew-certs` on three masters on etcd, as an operator runs them: a
//! snapshot taken from the live cluster, the certificates renewed under it
//! with kubectl still answering, the snapshot restored into the running
//! cluster, then the cluster deleted and the snapshot restored into the bare
//! machines, its objects back each time.

mod cluster_support;
mod cri_node;
mod hosts;
mod ssh_hosts;
mod support;

use std::path::Path;

use cluster_support::{berth, create_in, processes_mentioning, ssh_into, text};
use hosts::{Hosts, Topology};
use support::berth_bin;

/// Three masters on etcd, no pool.
fn cluster_toml(dir: &Path, hosts: &[hosts::Host], known_hosts: &Path) -> String {
    let machine = |i: usize| {
        format!(
            "{{ host = \"{}\", name = \"m{n}\", data_dir = \"{}/machines/m{n}\" }}",
            hosts[i].address,
            dir.display(),
            n = i + 1
        )
    };
    format!(
        r#"name = "snap"
binary = "{binary}"
datastore = "etcd"
service_cidr = "10.44.0.0/16"
cluster_cidr = "10.184.0.0/16"

[ssh]
key_file = "{dir}/id"
known_hosts = "{known_hosts}"

[masters]
machines = [{m1}, {m2}, {m3}]
"#,
        binary = berth_bin().display(),
        dir = dir.display(),
        known_hosts = known_hosts.display(),
        m1 = machine(0),
        m2 = machine(1),
        m3 = machine(2),
    )
}

/// The `certificate NAME expires …` line of a status report.
fn expiry_line(report: &str, name: &str) -> String {
    report
        .lines()
        .find(|l| l.starts_with(&format!("certificate {name} ")))
        .unwrap_or_else(|| panic!("no {name} in:\n{report}"))
        .to_owned()
}

#[test]
fn a_snapshot_of_three_masters_restores_into_fresh_machines_and_certificates_renew() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let hosts = Hosts::up("bsn", 3, "10.84", Topology::OneLan);
    let (_sshds, known_hosts) = ssh_into(&hosts.hosts, dir);
    let (cluster, kubectl) = create_in(dir, &cluster_toml(dir, &hosts.hosts, &known_hosts));
    let (file, state) = (cluster.file.clone(), cluster.state.clone());
    kubectl.ok(&["create", "namespace", "kept"]);
    kubectl.ok(&[
        "create",
        "configmap",
        "settings",
        "-n",
        "kept",
        "--from-literal=colour=teal",
    ]);

    // Saved outside the state directory, which `cluster delete` removes.
    let snapshot = dir.join("backup/snap.db");
    let saved = berth(
        &[
            "etcd-snapshot",
            "save",
            "--output",
            &snapshot.display().to_string(),
        ],
        &file,
        &state,
    );
    assert!(saved.status.success(), "{}", text(&saved));
    let size = std::fs::metadata(&snapshot).unwrap().len();
    let printed = String::from_utf8_lossy(&saved.stdout);
    assert!(
        printed.contains(&snapshot.display().to_string())
            && printed.contains(&format!("{size} bytes"))
            && printed.contains("revision "),
        "{}",
        text(&saved)
    );
    assert!(!dir.join("backup/snap.db.part").exists());
    eprintln!("{}", text(&saved));

    // Renewed: new certificates from the same CA, on the machines, later
    // expiry in status, the admin's kubeconfig still good.
    let before = berth(&["status"], &file, &state);
    let before = String::from_utf8_lossy(&before.stdout).into_owned();
    let ca = std::fs::read_to_string(state.join("etcd/ca.crt")).unwrap();
    let renewed = berth(&["renew-certs"], &file, &state);
    assert!(renewed.status.success(), "{}", text(&renewed));
    eprintln!("{}", text(&renewed));
    let printed = String::from_utf8_lossy(&renewed.stdout);
    assert!(
        printed.contains("renewed etcd/m2-peer.crt") && printed.contains("now expires"),
        "{}",
        text(&renewed)
    );
    assert_eq!(
        std::fs::read_to_string(state.join("etcd/ca.crt")).unwrap(),
        ca
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("machines/m2/pki/etcd/peer.crt")).unwrap(),
        std::fs::read_to_string(state.join("etcd/m2-peer.crt")).unwrap()
    );
    let after = berth(&["status"], &file, &state);
    assert!(after.status.success(), "{}", text(&after));
    let after = String::from_utf8_lossy(&after.stdout).into_owned();
    for name in ["etcd/m2-peer.crt", "etcd/apiserver-etcd-client.crt"] {
        assert!(
            expiry_line(&after, name) > expiry_line(&before, name),
            "{name}: before\n{before}\nafter\n{after}"
        );
    }
    assert_eq!(after.matches(" healthy, leader").count(), 1, "{after}");
    assert_eq!(
        kubectl.jsonpath(
            &["get", "configmap", "settings", "-n", "kept"],
            "{.data.colour}"
        ),
        "teal"
    );

    // Restored into the running cluster: what was deleted since is back.
    kubectl.ok(&["delete", "configmap", "settings", "-n", "kept"]);
    let restored = berth(
        &["etcd-snapshot", "restore", &snapshot.display().to_string()],
        &file,
        &state,
    );
    assert!(restored.status.success(), "{}", text(&restored));
    assert_eq!(
        kubectl.jsonpath(
            &["get", "configmap", "settings", "-n", "kept"],
            "{.data.colour}"
        ),
        "teal"
    );

    // Deleted, then restored into the bare machines.
    let deleted = berth(&["delete"], &file, &state);
    assert!(deleted.status.success(), "{}", text(&deleted));
    assert!(!dir.join("machines/m1").exists());
    let restored = berth(
        &["etcd-snapshot", "restore", &snapshot.display().to_string()],
        &file,
        &state,
    );
    assert!(restored.status.success(), "{}", text(&restored));
    eprintln!("{}", text(&restored));
    assert_eq!(
        kubectl.jsonpath(
            &["get", "configmap", "settings", "-n", "kept"],
            "{.data.colour}"
        ),
        "teal"
    );
    for name in ["m1", "m2", "m3"] {
        let machine = dir.join("machines").join(name);
        assert!(machine.join("etcd/member").is_dir(), "{name}");
        let left: Vec<String> = std::fs::read_dir(&machine)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("etcd."))
            .collect();
        assert!(left.is_empty(), "{name}: {left:?}");
    }
    let status = berth(&["status"], &file, &state);
    let report = String::from_utf8_lossy(&status.stdout);
    assert_eq!(
        report.matches("etcd running, server running").count(),
        3,
        "{report}"
    );

    let deleted = berth(&["delete"], &file, &state);
    assert!(deleted.status.success(), "{}", text(&deleted));
    assert_eq!(
        processes_mentioning(&dir.join("machines").display().to_string()),
        Vec::<String>::new()
    );
    for name in ["m1", "m2", "m3"] {
        assert!(!dir.join("machines").join(name).exists(), "{name}");
    }
}
