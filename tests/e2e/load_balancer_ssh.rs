//! The `haproxy` provider over SSH: a namespace host with OpenSSH (prefix
//! `lbs`, subnet 10.63) stands for the load-balancer host; it shares this
//! machine's filesystem, so its "remote" haproxy.cfg is a file of the
//! test's folder and the remote `haproxy -c` is Debian's haproxy run by
//! sshd. `berth cloud-controller --haproxy-ssh` gives a Service an address
//! and uploads its frontend, checked and moved into place, then runs the
//! reload command there; a restarted controller whose render haproxy
//! refuses (a stats socket path with a space) reports haproxy's error on
//! the Service and leaves the good file and HAProxy alone.

mod cluster_support;
mod cri_node;
mod hosts;
mod ssh_hosts;
mod support;

use std::path::Path;
use std::time::Duration;

use cluster_support::ssh_into;
use hosts::{Hosts, Topology};
use support::{wait_for, BerthProcess, Kubectl, Server, KUBECTL_1_33};

const NODE_AND_SERVICE: &str = r#"
apiVersion: v1
kind: Node
metadata:
  name: lbs-e2e-node
---
apiVersion: v1
kind: Namespace
metadata:
  name: lbs-e2e
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: lbs-e2e
spec:
  type: LoadBalancer
  selector:
    app: web
  ports:
  - port: 80
"#;

const TIMEOUT: Duration = Duration::from_secs(60);

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn svc_field(k: &Kubectl, template: &str) -> String {
    k.jsonpath(&["-n", "lbs-e2e", "get", "svc", "web"], template)
}

/// `berth cloud-controller` writing `config` on `host` over SSH, with
/// `extra` flags.
fn controller(server: &Server, name: &str, dir: &Path, host: &str, extra: &[&str]) -> BerthProcess {
    let config = dir.join("lb/haproxy.cfg").display().to_string();
    let reload = format!("echo reloaded >> {}", dir.join("lb/reloads").display());
    let key = dir.join("id").display().to_string();
    let known_hosts = dir.join("known_hosts").display().to_string();
    let ssh = format!("root@{host}");
    let mut args = vec![
        "cloud-controller",
        "--identity",
        name,
        "--haproxy-config",
        &config,
        "--address-pool",
        "198.18.233.10-198.18.233.11",
        "--haproxy-ssh",
        &ssh,
        "--haproxy-ssh-key-file",
        &key,
        "--haproxy-ssh-known-hosts",
        &known_hosts,
        "--haproxy-reload",
        &reload,
    ];
    args.extend(extra);
    server.spawn_berth(name, &args)
}

#[test]
fn haproxy_config_goes_over_ssh_checked_and_reloaded() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    std::fs::create_dir_all(dir.join("lb")).unwrap();
    let hosts = Hosts::up("lbs", 1, "10.63", Topology::OneLan);
    let (_sshds, _known_hosts) = ssh_into(&hosts.hosts, dir);
    let host = hosts.hosts[0].address.clone();
    let config = dir.join("lb/haproxy.cfg");
    let reloads = dir.join("lb/reloads");

    let server = Server::start();
    let k = server.kubectl(KUBECTL_1_33);
    k.ok_stdin(&["apply", "-f", "-"], NODE_AND_SERVICE);
    k.ok(&[
        "patch",
        "node",
        "lbs-e2e-node",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"addresses":[{"type":"InternalIP","address":"10.63.0.77"}]}}"#,
    ]);
    let mut first = controller(
        &server,
        "lbs-e2e-first",
        dir,
        &host,
        &["--haproxy-interface", "eth0"],
    );
    let ip = wait_for(
        "the Service's address",
        TIMEOUT,
        &server,
        &mut [&mut first],
        || Some(svc_field(&k, "{.status.loadBalancer.ingress[0].ip}")).filter(|ip| !ip.is_empty()),
    );
    assert_eq!(ip, "198.18.233.10");
    let node_port = svc_field(&k, "{.spec.ports[0].nodePort}");
    let server_line = format!("server lbs-e2e-node 10.63.0.77:{node_port} check");
    wait_for(
        "the frontend uploaded and haproxy reloaded",
        TIMEOUT,
        &server,
        &mut [&mut first],
        || {
            let text = read(&config);
            (text.contains("bind 198.18.233.10:80")
                && text.contains(&server_line)
                && !read(&reloads).is_empty())
            .then_some(())
        },
    );
    let lb_addresses = || {
        let shown = hosts.hosts[0].run(&["ip", "-o", "addr", "show", "dev", "eth0"]);
        String::from_utf8_lossy(&shown.stdout).into_owned()
    };
    assert!(
        lb_addresses().contains("inet 198.18.233.10/32 "),
        "{}",
        lb_addresses()
    );
    let good = read(&config);
    let check = std::process::Command::new("/usr/sbin/haproxy")
        .arg("-c")
        .arg("-f")
        .arg(&config)
        .output()
        .unwrap();
    assert!(check.status.success(), "haproxy -c: {check:?}\n{good}");
    let staged: Vec<_> = std::fs::read_dir(dir.join("lb"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(staged.len(), 2, "only haproxy.cfg and reloads: {staged:?}");
    first.terminate();
    let reloaded = read(&reloads);

    // A render haproxy refuses: the remote check keeps it out.
    let socket = dir.join("lb/admin socket").display().to_string();
    let mut second = controller(
        &server,
        "lbs-e2e-second",
        dir,
        &host,
        &["--haproxy-stats-socket", &socket],
    );
    let described = wait_for(
        "haproxy's refusal on the Service",
        TIMEOUT,
        &server,
        &mut [&mut second],
        || {
            let described = k.ok(&["-n", "lbs-e2e", "describe", "svc", "web"]);
            (described.contains("SyncLoadBalancerFailed") && described.contains("unknown keyword"))
                .then_some(described)
        },
    );
    assert!(described.contains("haproxy -c"), "{described}");
    assert_eq!(read(&config), good, "the good file stays");
    assert_eq!(read(&reloads), reloaded, "no reload for a refused file");
    assert!(!dir.join("lb/haproxy.cfg.berth-new").exists());
    second.terminate();

    // Deleted: the frontend and the address on eth0 go.
    let mut third = controller(
        &server,
        "lbs-e2e-third",
        dir,
        &host,
        &["--haproxy-interface", "eth0"],
    );
    k.ok(&["-n", "lbs-e2e", "delete", "svc", "web", "--wait=false"]);
    let emptied = wait_for(
        "the frontend and the address removed",
        TIMEOUT,
        &server,
        &mut [&mut third],
        || {
            let text = read(&config);
            (!text.contains("bind 198.18.233.10") && !lb_addresses().contains("198.18.233.10"))
                .then_some(text)
        },
    );
    // HAProxy refuses a file without a listener; the idle one keeps it valid.
    assert!(emptied.contains("frontend berth_idle"), "{emptied}");
    assert!(
        lb_addresses().contains("inet 10.63.0."),
        "the host's own address stays: {}",
        lb_addresses()
    );
    third.terminate();
}
