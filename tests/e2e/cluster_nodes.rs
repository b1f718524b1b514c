//! `berth cluster add-node` and `remove-node` on a running cluster, as a
//! user runs them: five namespace machines with OpenSSH; three masters on
//! etcd and pool `cpu` with one machine are created, a second machine is
//! added to the pool (and to cluster.toml, comments kept), the first is
//! removed with its pods drained to the second under a disruption budget,
//! then a master is removed (its etcd member first) while the API keeps
//! answering; `delete` leaves nothing.

mod cluster_support;
mod cri_node;
mod hosts;
mod ssh_hosts;
mod support;

use cluster_support::{berth, processes_mentioning, text, SshLab};

/// Three masters on etcd and pool `cpu` with its first machine, written as
/// a user would (comments, a multi-line list).
fn cluster_toml(lab: &SshLab) -> String {
    format!(
        "{}\n# the web tier\n[[pools]]\nname = \"cpu\"\nlabels = {{ \"example.com/tier\" = \"web\" }}\nmachines = [\n  {}, # first rack\n]\n",
        lab.etcd_masters_toml(
            "nodes",
            "service_cidr = \"10.45.0.0/16\"\ncluster_cidr = \"10.185.0.0/16\"\n"
        ),
        lab.machine(3, "n1"),
    )
}

#[test]
fn nodes_are_added_and_removed_with_drains_and_etcd_members_kept_right() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let lab = SshLab::up(dir, "bnd", 5, "10.85");
    let hosts = &lab.hosts;
    let (cluster, kubectl) = lab.create(&cluster_toml(&lab));
    let (file, state) = (cluster.file.clone(), cluster.state.clone());
    let n2 = &hosts.hosts[4].address;

    // Two replicas on n1 (the pool's only node), kept at one by a budget.
    lab.apply_web_on_cpu_pool(&kubectl);
    kubectl.ok(&[
        "create",
        "poddisruptionbudget",
        "web",
        "--selector=app=web",
        "--min-available=1",
    ]);
    kubectl.ok(&["rollout", "status", "deployment/web", "--timeout=120s"]);
    let placed = || {
        kubectl.jsonpath(
            &["get", "pods", "-l", "app=web"],
            "{.items[*].spec.nodeName}",
        )
    };
    assert_eq!(placed().trim(), "n1 n1");

    // add-node: n2 joins the pool, Ready with its labels; the file lists it.
    let added = berth(
        &[
            "add-node",
            "cpu",
            n2,
            "--name",
            "n2",
            "--data-dir",
            &format!("{}/machines/n2", dir.display()),
        ],
        &file,
        &state,
    );
    assert!(added.status.success(), "{}", text(&added));
    let nodes = kubectl.ok(&[
        "get",
        "nodes",
        "-l",
        "berth.dev/pool=cpu,example.com/tier=web",
        "-o",
        "name",
    ]);
    assert_eq!(nodes.trim(), "node/n1\nnode/n2", "{nodes}");
    let edited = std::fs::read_to_string(&file).unwrap();
    assert!(
        edited.contains(&format!("  {{ host = \"{n2}\", name = \"n2\", data_dir = "))
            && edited.contains("# the web tier\n")
            && edited.contains(" # first rack\n"),
        "{edited}"
    );
    // Again: found in the file, nothing changes.
    let again = berth(&["add-node", "cpu", n2, "--name", "n2"], &file, &state);
    assert!(again.status.success(), "{}", text(&again));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("berth agent unchanged"),
        "{}",
        text(&again)
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), edited);
    let unknown = berth(&["add-node", "gpu", n2], &file, &state);
    assert_eq!(unknown.status.code(), Some(1), "{}", text(&unknown));
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("no pool \"gpu\"; the pools are: cpu"),
        "{}",
        text(&unknown)
    );

    // remove-node n1: drained through evictions the budget paces, cleaned.
    let removed = berth(&["remove-node", "n1", "--timeout", "3m"], &file, &state);
    assert!(removed.status.success(), "{}", text(&removed));
    eprintln!("remove-node n1:\n{}", text(&removed));
    let stderr = String::from_utf8_lossy(&removed.stderr);
    assert!(
        stderr.contains("node/n1 cordoned")
            && stderr.contains("(will retry after 5s): Cannot evict pod as it would violate the pod's disruption budget.")
            && stderr.contains("node/n1 drained"),
        "{}",
        text(&removed)
    );
    kubectl.ok(&["rollout", "status", "deployment/web", "--timeout=120s"]);
    assert_eq!(placed().trim(), "n2 n2");
    let nodes = kubectl.ok(&["get", "nodes", "-o", "name"]);
    assert_eq!(nodes.trim(), "node/n2", "{nodes}");
    assert!(!dir.join("machines/n1").exists());
    assert_eq!(
        processes_mentioning(&dir.join("machines/n1").display().to_string()),
        Vec::<String>::new()
    );
    let edited = std::fs::read_to_string(&file).unwrap();
    assert!(
        !edited.contains(&hosts.hosts[3].address) && edited.contains("# the web tier\n"),
        "{edited}"
    );

    // remove-node m3: its etcd member goes first; two are left, the API answers.
    let removed = berth(&["remove-node", "m3"], &file, &state);
    assert!(removed.status.success(), "{}", text(&removed));
    assert!(
        String::from_utf8_lossy(&removed.stderr).contains("two masters are left"),
        "{}",
        text(&removed)
    );
    let status = berth(&["status"], &file, &state);
    assert!(status.status.success(), "{}", text(&status));
    let report = String::from_utf8_lossy(&status.stdout);
    assert!(report.contains("etcd members (2): m1, m2"), "{report}");
    assert_eq!(
        report.matches("etcd running, server running").count(),
        2,
        "{report}"
    );
    assert!(!dir.join("machines/m3").exists());
    assert_eq!(
        processes_mentioning(&dir.join("machines/m3").display().to_string()),
        Vec::<String>::new()
    );
    kubectl.ok(&["create", "namespace", "after-m3"]);
    assert_eq!(kubectl.ok(&["get", "--raw", "/readyz"]).trim(), "ok");
    let refused = berth(&["remove-node", "m2"], &file, &state);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("pass --force"),
        "{}",
        text(&refused)
    );

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
