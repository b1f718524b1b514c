//! `berth cluster upgrade --binary PATH` on a cluster built over SSH (three
//! masters on etcd, a pool of one node): while the upgrade rolls through,
//! a client asks the API every 100 ms (a new connection each time, the next
//! master when one refuses) and the longest gap between answers stays
//! short; afterwards every machine runs the new binary, the workload runs
//! again and the Node is Ready and schedulable; a re-run skips every machine.

mod cluster_support;
mod cri_node;
mod hosts;
mod ssh_hosts;
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster_support::{berth, create_in, ssh_into, text};
use hosts::{Hosts, Topology};
use support::berth_bin;

/// The longest the API may go unanswered during the upgrade.
const MAX_GAP: Duration = Duration::from_secs(2);

fn cluster_toml(dir: &Path, hosts: &[hosts::Host], known_hosts: &Path, registry: &str) -> String {
    let machine = |i: usize, name: &str| {
        format!(
            "{{ host = \"{}\", name = \"{name}\", data_dir = \"{}/machines/{name}\" }}",
            hosts[i].address,
            dir.display()
        )
    };
    format!(
        r#"name = "upgrade"
binary = "{binary}"
datastore = "etcd"
cluster_cidr = "10.186.0.0/16"
service_cidr = "10.46.0.0/16"
insecure_registries = ["{registry}"]

[ssh]
key_file = "{dir}/id"
known_hosts = "{known_hosts}"

[masters]
machines = [{m1}, {m2}, {m3}]

[[pools]]
name = "cpu"
machines = [{n1}]
"#,
        binary = berth_bin().display(),
        dir = dir.display(),
        known_hosts = known_hosts.display(),
        m1 = machine(0, "m1"),
        m2 = machine(1, "m2"),
        m3 = machine(2, "m3"),
        n1 = machine(3, "n1"),
    )
}

fn sha256(path: &Path) -> String {
    let output = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// The checksum of the executable of every process started from `binary`.
fn running_checksums(binary: &Path) -> Vec<String> {
    let needle = binary.display().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let first = cmdline.split(|b| *b == 0).next().unwrap_or_default();
        if first == needle.as_bytes() {
            found.push(sha256(&entry.path().join("exe")));
        }
    }
    found
}

/// What the poller saw.
#[derive(Debug, Default)]
struct Polled {
    answered: usize,
    longest_gap: Duration,
}

/// Asks `GET /api/v1/namespaces/default` every 100 ms until `stop`, each
/// time on a new connection, trying the masters in order until one answers.
fn poll_api(masters: Vec<String>, ca: PathBuf, token: String, stop: Arc<AtomicBool>) -> Polled {
    let mut polled = Polled::default();
    let mut last_answer = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        let tick = Instant::now();
        for master in &masters {
            let output = Command::new("curl")
                .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
                .args(["--connect-timeout", "1", "-m", "1"])
                .arg("--cacert")
                .arg(&ca)
                .args(["-H", &format!("Authorization: Bearer {token}")])
                .arg(format!("https://{master}:6443/api/v1/namespaces/default"))
                .output()
                .expect("curl is installed by tests/run-all.sh");
            if String::from_utf8_lossy(&output.stdout) == "200" {
                let now = Instant::now();
                polled.longest_gap = polled.longest_gap.max(now - last_answer);
                last_answer = now;
                polled.answered += 1;
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(100).saturating_sub(tick.elapsed()));
    }
    polled
}

#[test]
fn a_rolling_upgrade_keeps_the_api_answering_and_moves_every_machine_to_the_new_binary() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let hosts = Hosts::up("bup", 4, "10.86", Topology::OneLan);
    let registry = cri_node::Registry::start();
    let mirror = hosts::RegistryMirror::start(&registry, &hosts.hosts[0].gateway);
    let (_sshds, known_hosts) = ssh_into(&hosts.hosts, dir);
    let known_hosts = &known_hosts;
    let (cluster, kubectl) = create_in(
        dir,
        &cluster_toml(dir, &hosts.hosts, known_hosts, &mirror.host),
    );
    let (file, state) = (cluster.file.clone(), cluster.state.clone());
    let manifest = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web}}\nspec:\n  replicas: 2\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec:\n      nodeSelector: {{berth.dev/pool: cpu}}\n      containers:\n      - name: web\n        image: {}\n",
        mirror.image("web:1")
    );
    kubectl.ok_stdin(&["apply", "-f", "-"], &manifest);
    kubectl.ok(&["rollout", "status", "deployment/web", "--timeout=120s"]);

    // A binary whose checksum differs: the same berth with bytes appended.
    let new_binary = dir.join("berth-new");
    let mut bytes = std::fs::read(berth_bin()).unwrap();
    bytes.extend_from_slice(b"\nberth cluster upgrade test\n");
    std::fs::write(&new_binary, bytes).unwrap();
    std::fs::set_permissions(
        &new_binary,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let new_sha = sha256(&new_binary);
    assert_ne!(new_sha, sha256(&berth_bin()));

    // A binary that is not there: refused before any machine is touched.
    let missing = berth(
        &["upgrade", "--binary", "/nonexistent/berth"],
        &file,
        &state,
    );
    assert_eq!(missing.status.code(), Some(1), "{}", text(&missing));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("reading /nonexistent/berth"),
        "{}",
        text(&missing)
    );

    let stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let masters: Vec<String> = hosts.hosts[..3].iter().map(|h| h.address.clone()).collect();
        let ca = state.join("server-seed/tls/ca.crt");
        let token = std::fs::read_to_string(state.join("server-seed/tls/admin.token"))
            .unwrap()
            .trim()
            .to_owned();
        let stop = stop.clone();
        std::thread::spawn(move || poll_api(masters, ca, token, stop))
    };
    let started = Instant::now();
    let upgraded = berth(
        &["upgrade", "--binary", &new_binary.display().to_string()],
        &file,
        &state,
    );
    let took = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    let polled = poller.join().unwrap();
    println!(
        "upgrade took {took:.1?}; the API answered {} requests; longest gap between answers: {:.0?}",
        polled.answered, polled.longest_gap
    );
    assert!(upgraded.status.success(), "{}", text(&upgraded));
    assert!(
        polled.longest_gap < MAX_GAP,
        "longest gap {:?}\n{}",
        polled.longest_gap,
        text(&upgraded)
    );
    let report = String::from_utf8_lossy(&upgraded.stdout);
    let short = &new_sha[..12];
    for name in ["m1", "m2", "m3", "n1"] {
        assert!(
            report.lines().any(|l| l.starts_with(&format!("{name}: "))
                && l.ends_with(&format!("(sha256 {short})"))),
            "{name}: {report}"
        );
        // Every process started from the machine's berth runs the new file.
        let sums = running_checksums(&dir.join("machines").join(name).join("bin/berth"));
        assert!(!sums.is_empty(), "{name}: no berth process");
        assert!(sums.iter().all(|s| *s == new_sha), "{name}: {sums:?}");
    }

    // The workload runs again on the node, which is Ready and schedulable.
    kubectl.ok(&["rollout", "status", "deployment/web", "--timeout=120s"]);
    let node = kubectl.jsonpath(
        &["get", "node", "n1"],
        "{.status.conditions[?(@.type==\"Ready\")].status} {.spec.unschedulable} {.metadata.annotations.berth\\.dev/cordoned-by-upgrade}",
    );
    assert_eq!(node.trim(), "True", "{node}");
    let status = berth(&["status"], &file, &state);
    let status_report = String::from_utf8_lossy(&status.stdout);
    assert_eq!(
        status_report.matches(" healthy, ").count(),
        3,
        "{status_report}"
    );

    // Again: every machine is already on the new binary.
    let again = berth(
        &["upgrade", "--binary", &new_binary.display().to_string()],
        &file,
        &state,
    );
    assert!(again.status.success(), "{}", text(&again));
    assert_eq!(
        String::from_utf8_lossy(&again.stdout)
            .matches("(skipped)")
            .count(),
        4,
        "{}",
        text(&again)
    );

    let deleted = berth(&["delete"], &file, &state);
    assert!(deleted.status.success(), "{}", text(&deleted));
}
