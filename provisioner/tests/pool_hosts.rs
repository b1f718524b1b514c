//! The markers that tie a NodePool SSH host to one claim, on a real sshd.

#[path = "ssh/sshd.rs"]
mod sshd;

use berth_api::nodepool::SshTemplate;
use berth_provisioner::pool_hosts::{read_marker, take, Marker, PoolHost};
use sshd::connected;

/// A NodePool host's marker is taken once: the same claim taking it again
/// keeps it, another claim is told who holds it (what `launch` relies on
/// to resume a half-joined host and to skip taken ones).
#[tokio::test]
async fn pool_host_markers_are_taken_once() {
    let (sshd, machine) = connected().await;
    let template = SshTemplate {
        hosts: vec![format!("127.0.0.1:{}", sshd.port)],
        user: None,
        data_dir: Some(sshd.path("berth").display().to_string()),
    };
    let host = PoolHost::new(&template, &template.hosts[0]).unwrap();
    let marker = |claim: &str| Marker {
        cluster: "c".into(),
        pool: "p".into(),
        claim: claim.into(),
    };
    assert_eq!(read_marker(&machine, &host).await.unwrap(), None);
    // Two claims racing for the free host: one wins, both are told which.
    let (a, b) = (marker("a"), marker("b"));
    let (first, second) = tokio::join!(take(&machine, &host, &a), take(&machine, &host, &b));
    let winner = first.unwrap();
    assert_eq!(second.unwrap(), winner);
    assert!(winner == a || winner == b, "{winner:?}");
    let loser = if winner == a { b } else { a };
    assert_eq!(take(&machine, &host, &winner).await.unwrap(), winner);
    assert_eq!(take(&machine, &host, &loser).await.unwrap(), winner);
    assert_eq!(read_marker(&machine, &host).await.unwrap(), Some(winner));
    assert!(host.marker_path().starts_with(sshd.path("berth")));
    machine.close().await;
}
