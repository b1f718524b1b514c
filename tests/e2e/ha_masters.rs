//! HA masters, server side: three `berth server --leader-elect` sharing one
//! cluster CA and admin token, on a three-member etcd cluster reached over
//! mutual TLS (certificates from berth-pki). One kubeconfig works against
//! every master, exactly one server runs the controllers, another takes over
//! when it dies, and the API keeps answering when an etcd member dies.
//! Everything it starts lives on loopback and is killed and removed on drop.

mod support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use berth_orchestrator::store::etcd::{EtcdStore, EtcdTls};
use berth_pki::{etcd_api_client, etcd_peer, etcd_server, CertifiedKey, ClusterAuthorities};
use support::{eventually, Server, KUBECTL_1_33};

const NAMESPACE: &str = "ha-masters";

/// One etcd member started by the test.
struct Member {
    name: String,
    client_port: u16,
    child: Option<Child>,
}

/// A three-member etcd cluster with TLS on loopback; every member is killed
/// and the directory removed on drop, also when the test fails.
struct EtcdCluster {
    dir: tempfile::TempDir,
    members: Vec<Member>,
}

/// `n` distinct free loopback ports (all listeners stay open until every port is known).
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

fn write_pair(dir: &Path, name: &str, pair: &CertifiedKey) -> (PathBuf, PathBuf) {
    let (cert, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&cert, &pair.cert_pem).unwrap();
    std::fs::write(&key, &pair.key_pem).unwrap();
    (cert, key)
}

impl EtcdCluster {
    /// Starts the members with certificates from `authorities`' etcd CA and
    /// waits until the cluster answers over TLS.
    fn start(authorities: &ClusterAuthorities, ca_file: &Path, tls: &EtcdTls) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("berth-ha-etcd")
            .tempdir()
            .unwrap();
        let ports = free_ports(6);
        let names = ["ha-etcd-0", "ha-etcd-1", "ha-etcd-2"];
        let peer_url = |i: usize| format!("https://127.0.0.1:{}", ports[2 * i + 1]);
        let initial_cluster = names
            .iter()
            .enumerate()
            .map(|(i, name)| format!("{name}={}", peer_url(i)))
            .collect::<Vec<_>>()
            .join(",");
        let now = SystemTime::now();
        let mut members = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let server = authorities
                .etcd
                .issue(&etcd_server(name, "127.0.0.1"), now)
                .unwrap();
            let peer = authorities
                .etcd
                .issue(&etcd_peer(name, "127.0.0.1"), now)
                .unwrap();
            let (cert, key) = write_pair(dir.path(), &format!("{name}-server"), &server);
            let (peer_cert, peer_key) = write_pair(dir.path(), &format!("{name}-peer"), &peer);
            let client_url = format!("https://127.0.0.1:{}", ports[2 * i]);
            let log = std::fs::File::create(dir.path().join(format!("{name}.log"))).unwrap();
            let child = Command::new("etcd")
                .arg(format!("--name={name}"))
                .arg(format!("--data-dir={}", dir.path().join(name).display()))
                .arg(format!("--listen-client-urls={client_url}"))
                .arg(format!("--advertise-client-urls={client_url}"))
                .arg(format!("--listen-peer-urls={}", peer_url(i)))
                .arg(format!("--initial-advertise-peer-urls={}", peer_url(i)))
                .arg(format!("--initial-cluster={initial_cluster}"))
                .arg("--initial-cluster-state=new")
                .arg("--initial-cluster-token=berth-ha-masters")
                .arg("--client-cert-auth")
                .arg(format!("--trusted-ca-file={}", ca_file.display()))
                .arg(format!("--cert-file={}", cert.display()))
                .arg(format!("--key-file={}", key.display()))
                .arg("--peer-client-cert-auth")
                .arg(format!("--peer-trusted-ca-file={}", ca_file.display()))
                .arg(format!("--peer-cert-file={}", peer_cert.display()))
                .arg(format!("--peer-key-file={}", peer_key.display()))
                .arg("--logger=zap")
                .arg("--log-outputs=stderr")
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("starting etcd (install Debian's etcd-server)");
            members.push(Member {
                name: name.to_string(),
                client_port: ports[2 * i],
                child: Some(child),
            });
        }
        let cluster = Self { dir, members };
        let endpoints = cluster.endpoints();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let connected = runtime.block_on(EtcdStore::connect_with(&endpoints, Some(tls)));
            match connected {
                Ok(_) => break,
                Err(e) if Instant::now() > deadline => {
                    panic!("etcd cluster not ready over TLS: {e}\n{}", cluster.logs())
                }
                Err(_) => std::thread::sleep(Duration::from_millis(500)),
            }
        }
        cluster
    }

    fn endpoints(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|m| format!("127.0.0.1:{}", m.client_port))
            .collect()
    }

    fn kill(&mut self, index: usize) {
        if let Some(mut child) = self.members[index].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The member that won the first election (its log says it became leader).
    fn leader(&self) -> Option<usize> {
        self.members.iter().position(|m| {
            std::fs::read_to_string(self.dir.path().join(format!("{}.log", m.name)))
                .is_ok_and(|log| log.contains("became leader"))
        })
    }

    fn logs(&self) -> String {
        self.members
            .iter()
            .map(|m| {
                let log = std::fs::read_to_string(self.dir.path().join(format!("{}.log", m.name)))
                    .unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(20).collect();
                format!(
                    "--- {}\n{}",
                    m.name,
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}

/// A data directory holding the shared cluster CA and admin token, as the
/// provisioner puts them on every master before the first start.
fn master_dir(authorities: &ClusterAuthorities, admin_token: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("berth-ha-master")
        .tempdir()
        .unwrap();
    let tls = dir.path().join("tls");
    std::fs::create_dir_all(&tls).unwrap();
    std::fs::write(tls.join("ca.crt"), &authorities.cluster.cert_pem).unwrap();
    std::fs::write(tls.join("ca.key"), &authorities.cluster.key_pem).unwrap();
    std::fs::write(tls.join("admin.token"), admin_token).unwrap();
    dir
}

/// `kubectl ARGS` through `via`'s kubeconfig against `target`'s URL.
fn kubectl(via: &Server, target: &Server, args: &[&str]) -> std::process::Output {
    let url = target.url();
    let mut all = vec!["--server", url.as_str()];
    all.extend_from_slice(args);
    via.kubectl(KUBECTL_1_33).run(&all)
}

fn kubectl_ok(via: &Server, target: &Server, args: &[&str]) -> String {
    let out = kubectl(via, target, args);
    assert!(
        out.status.success(),
        "kubectl {args:?} against {}: {}",
        target.url(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn lease_holder(via: &Server, target: &Server) -> Option<String> {
    let url = target.url();
    support::lease_holder(
        &via.kubectl(KUBECTL_1_33),
        &["--server", &url],
        "berth-controller-manager",
    )
}

/// Scales the Deployment through `s` and waits until that many pods exist.
fn scale_and_wait(s: &Server, replicas: usize) {
    let flag = format!("--replicas={replicas}");
    kubectl_ok(
        s,
        s,
        &["-n", NAMESPACE, "scale", "deployment", "web", &flag],
    );
    eventually(Duration::from_secs(30), || {
        (pod_count(s, s) == Some(replicas)).then_some(())
    });
}

fn pod_count(via: &Server, target: &Server) -> Option<usize> {
    let out = kubectl(
        via,
        target,
        &[
            "-n", NAMESPACE, "get", "pods", "-l", "app=web", "-o", "name",
        ],
    );
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).lines().count())
}

/// Index of the server whose pid is in the Lease's holder identity (`HOST_PID_SUFFIX`).
fn holder_index(servers: &[Server], holder: &str) -> Option<usize> {
    servers.iter().position(|s| {
        s.pid()
            .is_some_and(|pid| holder.contains(&format!("_{pid}_")))
    })
}

/// How many servers' logs say they became leader of `lease`.
fn leaders_in_logs(servers: &[Server], lease: &str) -> usize {
    servers
        .iter()
        .filter(|s| {
            s.log()
                .lines()
                .any(|l| l.contains("became leader") && l.contains(lease))
        })
        .count()
}

#[test]
fn three_masters_share_one_ca_elect_one_controller_manager_and_survive_failures() {
    let pki_dir = tempfile::Builder::new()
        .prefix("berth-ha-pki")
        .tempdir()
        .unwrap();
    let authorities =
        ClusterAuthorities::load_or_create(pki_dir.path(), SystemTime::now()).unwrap();
    let client = authorities
        .etcd
        .issue(&etcd_api_client(), SystemTime::now())
        .unwrap();
    let (client_cert, client_key) = write_pair(pki_dir.path(), "apiserver-etcd-client", &client);
    let etcd_ca = pki_dir.path().join("etcd/ca.crt");
    let tls = EtcdTls {
        ca_pem: authorities.etcd.cert_pem.clone(),
        cert_pem: client.cert_pem.clone(),
        key_pem: client.key_pem.clone(),
    };
    let mut etcd = EtcdCluster::start(&authorities, &etcd_ca, &tls);
    let datastore = format!("etcd://{}", etcd.endpoints().join(","));
    let admin_token = "ha-masters-shared-admin-token";
    let mut servers: Vec<Server> = (0..3)
        .map(|i| {
            let san = format!("master-{i}.ha-masters.test");
            Server::start_in(
                master_dir(&authorities, admin_token),
                &[
                    "--datastore",
                    &datastore,
                    "--etcd-cafile",
                    etcd_ca.to_str().unwrap(),
                    "--etcd-certfile",
                    client_cert.to_str().unwrap(),
                    "--etcd-keyfile",
                    client_key.to_str().unwrap(),
                    "--leader-elect",
                    "--tls-san",
                    &san,
                ],
            )
        })
        .collect();

    // One CA kept on every master; each serves its own certificate from it.
    let read =
        |s: &Server, f: &str| std::fs::read_to_string(s.data_dir().join("tls").join(f)).unwrap();
    for server in &servers {
        assert_eq!(read(server, "ca.crt"), authorities.cluster.cert_pem);
        assert_eq!(read(server, "admin.token").trim(), admin_token);
    }
    assert_ne!(
        read(&servers[0], "serving.crt"),
        read(&servers[1], "serving.crt")
    );

    // Written through master 0, read through master 2 with master 0's kubeconfig.
    let (first, third) = (&servers[0], &servers[2]);
    kubectl_ok(first, first, &["create", "namespace", NAMESPACE]);
    kubectl_ok(
        first,
        first,
        &[
            "-n",
            NAMESPACE,
            "create",
            "deployment",
            "web",
            "--image=busybox",
            "--replicas=3",
        ],
    );
    let replicas = kubectl_ok(
        first,
        third,
        &[
            "-n",
            NAMESPACE,
            "get",
            "deployment",
            "web",
            "-o",
            "jsonpath={.spec.replicas}",
        ],
    );
    assert_eq!(replicas, "3");

    // One holder of the controllers' Lease, and one controller manager acting:
    // exactly three pods, one ReplicaSet, and they stay so.
    let holder = eventually(Duration::from_secs(30), || lease_holder(first, third));
    let leader = holder_index(&servers, &holder)
        .unwrap_or_else(|| panic!("lease holder {holder:?} is none of the three servers"));
    eventually(Duration::from_secs(30), || {
        (pod_count(first, third) == Some(3)).then_some(())
    });
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        pod_count(first, third),
        Some(3),
        "pods created more than once"
    );
    let replica_sets = kubectl_ok(first, third, &["-n", NAMESPACE, "get", "rs", "-o", "name"]);
    assert_eq!(replica_sets.lines().count(), 1, "{replica_sets}");
    assert_eq!(leaders_in_logs(&servers, "berth-controller-manager"), 1);
    assert_eq!(leaders_in_logs(&servers, "berth-scheduler"), 1);
    eprintln!("controller-manager leader: server {leader} ({holder})");

    // The leader dies: another server takes the Lease and reconciles a scale-up.
    servers[leader].kill9();
    let survivor = (leader + 1) % 3;
    let killed_at = Instant::now();
    let new_holder = eventually(Duration::from_secs(40), || {
        lease_holder(&servers[survivor], &servers[survivor]).filter(|h| *h != holder)
    });
    let takeover = killed_at.elapsed();
    let new_leader = holder_index(&servers, &new_holder)
        .unwrap_or_else(|| panic!("new holder {new_holder:?} is no live server"));
    assert_ne!(new_leader, leader);
    eprintln!("lease taken over by server {new_leader} after {takeover:?}");
    assert!(
        takeover < Duration::from_secs(30),
        "takeover took {takeover:?}"
    );
    let s = &servers[survivor];
    scale_and_wait(s, 5);

    // The etcd leader dies: reads and writes keep working through the others
    // once they have elected a new one.
    let etcd_leader = etcd.leader().unwrap_or(0);
    eprintln!("killing etcd member {etcd_leader} (the leader)");
    etcd.kill(etcd_leader);
    let started = Instant::now();
    for (i, server) in servers.iter().enumerate().filter(|(i, _)| *i != leader) {
        let name = format!("after-member-loss-{i}");
        // Until the members have elected a new leader, etcd may time a write
        // out (as upstream's API server reports it too); the write goes
        // through once they have, within etcd's election time. A write that
        // timed out but was applied shows as AlreadyExists on the retry.
        eventually(Duration::from_secs(30), || {
            let out = kubectl(
                server,
                server,
                &["-n", NAMESPACE, "create", "configmap", &name],
            );
            let stderr = String::from_utf8_lossy(&out.stderr);
            (out.status.success() || stderr.contains("already exists")).then_some(())
        });
        kubectl_ok(
            server,
            server,
            &["-n", NAMESPACE, "get", "configmap", &name],
        );
    }
    scale_and_wait(s, 6);
    eprintln!(
        "with one etcd member down: writes, reads and a scale-up took {:?}",
        started.elapsed()
    );
    drop(servers);
    drop(etcd);
}
