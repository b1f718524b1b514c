//! Logging in over SSH: key files of each type, ssh-agent, and the errors a
//! wrong, missing or locked key gives.

#[path = "ssh/sshd.rs"]
mod sshd;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_provisioner::ssh::{Auth, Error, Machine};
use sshd::{init_tracing, ssh_keygen, Sshd};

#[tokio::test]
async fn rsa_user_keys_authenticate() {
    init_tracing();
    let sshd = Sshd::start();
    let mut options = sshd.options();
    options.auth = Auth::KeyFile(sshd.path("user_rsa"));
    let machine = Machine::connect(sshd.target(), &options).await.unwrap();
    assert!(machine.run("true").await.unwrap().status.success());
    machine.close().await;
}

#[tokio::test]
async fn agent_keys_authenticate() {
    init_tracing();
    let sshd = Sshd::start();
    let socket = sshd.path("agent.sock");
    struct Stop(Child);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _agent = Stop(
        Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdout(Stdio::null())
            .spawn()
            .expect("ssh-agent (Debian openssh-client)"),
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "ssh-agent did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let added = Command::new("ssh-add")
        .arg(sshd.path("user_rsa"))
        .env("SSH_AUTH_SOCK", &socket)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(added.success());
    let mut options = sshd.options();
    options.auth = Auth::Agent { socket };
    let machine = Machine::connect(sshd.target(), &options).await.unwrap();
    assert!(machine.run("true").await.unwrap().status.success());
    machine.close().await;
}

#[tokio::test]
async fn wrong_user_key_is_an_auth_error_naming_the_machine() {
    init_tracing();
    let sshd = Sshd::start();
    let mut options = sshd.options();
    options.auth = Auth::KeyFile(sshd.path("stranger"));
    let error = Machine::connect(sshd.target(), &options).await.unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, Error::AuthRejected { .. }), "{text}");
    assert!(
        text.starts_with(&format!("root@127.0.0.1:{}", sshd.port)),
        "{text}"
    );
    assert!(
        text.contains(sshd.path("stranger").to_str().unwrap()),
        "{text}"
    );
    options.auth = Auth::KeyFile(sshd.path("no-such-key"));
    let error = Machine::connect(sshd.target(), &options).await.unwrap_err();
    assert!(matches!(error, Error::KeyFile { .. }), "{error}");
    // A key with a passphrase: pointed at the agent.
    let locked = sshd.path("locked");
    let made = ssh_keygen(
        &["-q", "-t", "ed25519", "-N", "secret", "-C", "", "-f"],
        &locked,
    );
    assert!(made.status.success());
    options.auth = Auth::KeyFile(locked);
    let error = Machine::connect(sshd.target(), &options).await.unwrap_err();
    assert!(matches!(error, Error::KeyFile { .. }), "{error}");
    assert!(error.to_string().contains("ssh-agent"), "{error}");
}
