//! Reaching a machine over SSH: the connect timeout for machines that do not
//! answer, and tunnels through a jump host.

#[path = "ssh/sshd.rs"]
mod sshd;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use berth_provisioner::ssh::{Auth, ConnectOptions, Error, Machine, Target};
use sshd::{free_port, init_tracing, Sshd};

#[tokio::test]
async fn unreachable_machines_fail_within_the_connect_timeout() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let mut options = ConnectOptions::new(
        Auth::KeyFile(dir.path().join("key")),
        dir.path().join("known_hosts"),
    );
    options.connect_timeout = Duration::from_secs(2);
    // Nothing listens: refused at once.
    let closed = free_port();
    let started = Instant::now();
    let error = Machine::connect(Target::new("root", "127.0.0.1", closed), &options)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Connect { .. }), "{error}");
    assert!(error
        .to_string()
        .contains(&format!("root@127.0.0.1:{closed}")));
    assert!(started.elapsed() < Duration::from_secs(2));
    // Something accepts but never speaks SSH: the timeout ends it.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let started = Instant::now();
    let error = Machine::connect(Target::new("root", "127.0.0.1", port), &options)
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(matches!(error, Error::ConnectTimeout { .. }), "{error}");
    assert!(error
        .to_string()
        .contains(&format!("root@127.0.0.1:{port}")));
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(4),
        "{took:?}"
    );
}

#[tokio::test]
async fn jump_host_tunnels_to_the_machine() {
    init_tracing();
    // The jump host is checked and logged in to like any machine.
    let (jump, inner, mut options) = Sshd::pair();
    options.jump = Some(jump.target());
    let machine = Machine::connect(inner.target(), &options).await.unwrap();
    let output = machine.run("echo $SSH_CONNECTION").await.unwrap();
    assert!(
        output.stdout.ends_with(&format!(" {}\n", inner.port)),
        "{}",
        output.stdout
    );
    machine.close().await;
    let log = jump.log();
    assert!(
        log.contains(&format!("target 127.0.0.1 port {}", inner.port)),
        "the jump sshd did not forward: {log}"
    );
    // A jump host that cannot reach the machine says so.
    let closed = free_port();
    let error = Machine::connect(Target::new("root", "127.0.0.1", closed), &options)
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, Error::Connect { .. }), "{text}");
    assert!(
        text.contains(&format!("jump host root@127.0.0.1:{}", jump.port)),
        "{text}"
    );
}
