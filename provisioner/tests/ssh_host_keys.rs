//! Host-key checking against known_hosts as OpenSSH does it: unknown keys
//! refused or recorded by policy, changed keys always refused, hashed entries
//! and RSA host keys recognised.

#[path = "ssh/sshd.rs"]
mod sshd;

use berth_provisioner::ssh::{ConnectOptions, Error, HostKeyPolicy, Machine};
use sshd::{fingerprint_of, init_tracing, keygen, public_key, ssh_keygen, Sshd};

/// A host-key error must let the user act: it names the server's key by
/// its fingerprint and the known_hosts file it was checked against.
fn assert_names_key_and_file(text: &str, sshd: &Sshd, options: &ConnectOptions) {
    assert!(
        text.contains(&fingerprint_of(&sshd.path("host_key.pub"))),
        "{text}"
    );
    assert!(
        text.contains(options.known_hosts.to_str().unwrap()),
        "{text}"
    );
}

#[tokio::test]
async fn strict_policy_refuses_unknown_host_keys() {
    init_tracing();
    let sshd = Sshd::start();
    let mut options = sshd.options();
    std::fs::write(&options.known_hosts, "").unwrap();
    let error = Machine::connect(sshd.target(), &options).await.unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, Error::UnknownHostKey { .. }), "{text}");
    let machine = format!("root@127.0.0.1:{}", sshd.port);
    assert!(text.starts_with(&machine), "{text}");
    assert_names_key_and_file(&text, &sshd, &options);
    // A missing file is the same as an empty one.
    options.known_hosts = sshd.path("no/such/known_hosts");
    let error = Machine::connect(sshd.target(), &options).await.unwrap_err();
    assert!(matches!(error, Error::UnknownHostKey { .. }), "{error}");
    assert!(!options.known_hosts.exists());
}

#[tokio::test]
async fn changed_host_keys_are_refused_under_every_policy() {
    init_tracing();
    let sshd = Sshd::start();
    let mut options = sshd.options();
    keygen(&sshd.path("other_host"), "ed25519");
    let recorded = format!(
        "# another machine\nexample.org {}\n[127.0.0.1]:{} {}\n",
        public_key(&sshd.path("other_host.pub")),
        sshd.port,
        public_key(&sshd.path("other_host.pub"))
    );
    std::fs::write(&options.known_hosts, &recorded).unwrap();
    for policy in [HostKeyPolicy::Strict, HostKeyPolicy::AcceptNew] {
        options.policy = policy;
        let error = Machine::connect(sshd.target(), &options).await.unwrap_err();
        let text = error.to_string();
        assert!(
            matches!(error, Error::ChangedHostKey { line: 3, .. }),
            "{policy:?}: {text}"
        );
        assert!(
            text.contains(&format!("root@127.0.0.1:{}", sshd.port)),
            "{text}"
        );
        assert_names_key_and_file(&text, &sshd, &options);
        assert_eq!(
            std::fs::read_to_string(&options.known_hosts).unwrap(),
            recorded
        );
    }
}

#[tokio::test]
async fn hashed_known_hosts_entries_are_recognised() {
    init_tracing();
    let sshd = Sshd::start();
    let options = sshd.options();
    assert!(ssh_keygen(&["-H", "-f"], &options.known_hosts)
        .status
        .success());
    let text = std::fs::read_to_string(&options.known_hosts).unwrap();
    assert!(text.starts_with("|1|"), "{text}");
    let machine = Machine::connect(sshd.target(), &options).await.unwrap();
    machine.close().await;
}

#[tokio::test]
async fn accept_new_records_unknown_host_keys() {
    init_tracing();
    let sshd = Sshd::start();
    let mut options = sshd.options();
    options.known_hosts = sshd.path("fresh/known_hosts");
    options.policy = HostKeyPolicy::AcceptNew;
    let machine = Machine::connect(sshd.target(), &options).await.unwrap();
    machine.close().await;
    let recorded = std::fs::read_to_string(&options.known_hosts).unwrap();
    assert_eq!(recorded, sshd.known_hosts_line());
    // OpenSSH itself agrees with what was recorded.
    let name = format!("[127.0.0.1]:{}", sshd.port);
    let found = ssh_keygen(&["-F", &name, "-f"], &options.known_hosts);
    assert!(found.status.success());
    // Now known: strict accepts it, and nothing more is appended.
    options.policy = HostKeyPolicy::Strict;
    let machine = Machine::connect(sshd.target(), &options).await.unwrap();
    machine.close().await;
    assert_eq!(
        std::fs::read_to_string(&options.known_hosts).unwrap(),
        recorded
    );
}

#[tokio::test]
async fn rsa_host_keys_are_recorded_and_checked_as_ssh_rsa() {
    init_tracing();
    let sshd = Sshd::start_with_host_key("rsa");
    let mut options = sshd.options();
    std::fs::write(&options.known_hosts, "").unwrap();
    options.policy = HostKeyPolicy::AcceptNew;
    Machine::connect(sshd.target(), &options)
        .await
        .unwrap()
        .close()
        .await;
    let recorded = std::fs::read_to_string(&options.known_hosts).unwrap();
    assert_eq!(recorded, sshd.known_hosts_line());
    assert!(recorded.contains(" ssh-rsa "), "{recorded}");
    // Another RSA key recorded for it: changed, not unknown.
    keygen(&sshd.path("other_rsa"), "rsa");
    let other = format!(
        "[127.0.0.1]:{} {}\n",
        sshd.port,
        public_key(&sshd.path("other_rsa.pub"))
    );
    std::fs::write(&options.known_hosts, other).unwrap();
    let error = Machine::connect(sshd.target(), &options).await.unwrap_err();
    assert!(matches!(error, Error::ChangedHostKey { .. }), "{error}");
}
