//! The SSH backend against a real OpenSSH server: each test starts its own
//! `sshd` on 127.0.0.1 with host and user keys generated into a temporary
//! folder, and a guard stops it and removes the folder even on failure.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_provisioner::ssh::{
    Auth, ConnectOptions, Error, ExitStatus, HostKeyPolicy, Machine, Source, Target, Uploaded,
};

const SSHD: &str = "/usr/sbin/sshd";

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("berth_provisioner=debug")
        .with_test_writer()
        .try_init();
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn keygen(path: &Path, kind: &str) {
    let mut args = vec!["-q", "-t", kind, "-N", "", "-C", "", "-f"];
    if kind == "rsa" {
        args.splice(1..1, ["-b", "2048"]);
    }
    let out = ssh_keygen(&args, path);
    assert!(out.status.success(), "ssh-keygen -t {kind}: {out:?}");
}

/// `ssh-keygen ARGS FILE`.
fn ssh_keygen(args: &[&str], file: &Path) -> std::process::Output {
    Command::new("ssh-keygen")
        .args(args)
        .arg(file)
        .output()
        .expect("ssh-keygen (Debian openssh-client)")
}

/// `ssh-keygen -l`'s fingerprint of a public key file.
fn fingerprint_of(public: &Path) -> String {
    let out = ssh_keygen(&["-lf"], public);
    let text = String::from_utf8(out.stdout).unwrap();
    text.split_whitespace().nth(1).unwrap().to_string()
}

/// The `type base64` part of a public key file.
fn public_key(public: &Path) -> String {
    let text = std::fs::read_to_string(public).unwrap();
    text.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A running sshd with its own keys; stopped and removed on drop.
struct Sshd {
    dir: tempfile::TempDir,
    port: u16,
    child: Child,
}

impl Sshd {
    /// A server with an ed25519 host key.
    fn start() -> Sshd {
        Sshd::start_with_host_key("ed25519")
    }

    /// A server whose only host key is of type `kind`.
    fn start_with_host_key(kind: &str) -> Sshd {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} is missing: install Debian's openssh-server (tests/run-all.sh does)"
        );
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        keygen(&d.join("host_key"), kind);
        keygen(&d.join("user_ed25519"), "ed25519");
        keygen(&d.join("user_rsa"), "rsa");
        keygen(&d.join("stranger"), "ed25519");
        let authorized = format!(
            "{}\n{}\n",
            public_key(&d.join("user_ed25519.pub")),
            public_key(&d.join("user_rsa.pub"))
        );
        std::fs::write(d.join("authorized_keys"), authorized).unwrap();
        // sshd's privilege separation folder (normally made by its unit).
        std::fs::create_dir_all("/run/sshd").unwrap();
        let port = free_port();
        let config = format!(
            "ListenAddress 127.0.0.1\nPort {port}\nHostKey {d}/host_key\n\
             AuthorizedKeysFile {d}/authorized_keys\nPidFile {d}/sshd.pid\nUsePAM no\n\
             StrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             PermitRootLogin prohibit-password\nAllowTcpForwarding yes\nLogLevel DEBUG1\n",
            d = d.display()
        );
        std::fs::write(d.join("sshd_config"), config).unwrap();
        let child = Command::new(SSHD)
            .arg("-D")
            .arg("-E")
            .arg(d.join("sshd.log"))
            .arg("-f")
            .arg(d.join("sshd_config"))
            .stdin(Stdio::null())
            .spawn()
            .expect("start sshd");
        let mut sshd = Sshd { dir, port, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = sshd.child.try_wait() {
                panic!("sshd exited ({status}): {}", sshd.log());
            }
            assert!(
                Instant::now() < deadline,
                "sshd did not listen: {}",
                sshd.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        sshd
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path("sshd.log")).unwrap_or_default()
    }

    fn target(&self) -> Target {
        Target::new("root", "127.0.0.1", self.port)
    }

    /// The known_hosts line for this server.
    fn known_hosts_line(&self) -> String {
        format!(
            "[127.0.0.1]:{} {}\n",
            self.port,
            public_key(&self.path("host_key.pub"))
        )
    }

    /// Options with the ed25519 user key and a known_hosts that has this
    /// server's key, strict.
    fn options(&self) -> ConnectOptions {
        let known_hosts = self.path("known_hosts");
        std::fs::write(&known_hosts, self.known_hosts_line()).unwrap();
        let mut options =
            ConnectOptions::new(Auth::KeyFile(self.path("user_ed25519")), known_hosts);
        options.connect_timeout = Duration::from_secs(10);
        options
    }
}

impl Sshd {
    /// Two servers that trust the first one's user key, and options whose
    /// known_hosts has both host keys.
    fn pair() -> (Sshd, Sshd, ConnectOptions) {
        let first = Sshd::start();
        let second = Sshd::start();
        let options = first.options();
        let authorized = public_key(&first.path("user_ed25519.pub"));
        std::fs::write(second.path("authorized_keys"), authorized + "\n").unwrap();
        let known = format!("{}{}", first.known_hosts_line(), second.known_hosts_line());
        std::fs::write(&options.known_hosts, known).unwrap();
        (first, second, options)
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh sshd and a session to it with the default options.
async fn connected() -> (Sshd, Machine) {
    init_tracing();
    let sshd = Sshd::start();
    let machine = Machine::connect(sshd.target(), &sshd.options())
        .await
        .unwrap();
    (sshd, machine)
}

#[tokio::test]
async fn run_returns_output_and_exit_status() {
    let (sshd, machine) = connected().await;
    assert_eq!(machine.name(), format!("root@127.0.0.1:{}", sshd.port));
    let output = machine
        .run("echo out; echo line2; echo err >&2; printf partial; exit 3")
        .await
        .unwrap();
    assert_eq!(output.status, ExitStatus::Code(3));
    assert_eq!(output.stdout, "out\nline2\npartial");
    assert_eq!(output.stderr, "err\n");
    let ok = machine.run_ok("id -u").await.unwrap();
    assert_eq!(ok.stdout.trim(), "0");
    let failed = machine.run_ok("echo nope >&2; exit 4").await.unwrap_err();
    assert!(matches!(failed, Error::CommandFailed { .. }), "{failed}");
    assert!(failed.to_string().contains("exit status 4"), "{failed}");
    assert!(failed.to_string().contains("nope"), "{failed}");
    machine.close().await;
}

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
async fn upload_skips_identical_files() {
    let (sshd, machine) = connected().await;
    let remote = sshd.path("remote/bin/berth");
    let remote_text = remote.to_str().unwrap();
    // 32 MiB that do not compress to nothing.
    let content: Vec<u8> = (0..32u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let local = sshd.path("berth-local");
    std::fs::write(&local, &content).unwrap();

    let started = Instant::now();
    let first = machine
        .upload(Source::File(&local), remote_text, 0o755)
        .await
        .unwrap();
    let took = started.elapsed();
    eprintln!(
        "uploaded 32 MiB in {:.2} s ({:.0} MiB/s)",
        took.as_secs_f64(),
        32.0 / took.as_secs_f64()
    );
    assert_eq!(first, Uploaded::Copied { bytes: 32 << 20 });
    // The floor: OpenSSH's own client pushing the same file, in this run.
    let started = Instant::now();
    let floor = Command::new("ssh")
        .arg("-i")
        .arg(sshd.path("user_ed25519"))
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            sshd.path("known_hosts").display()
        ))
        .args([
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-p",
        ])
        .arg(sshd.port.to_string())
        .arg("root@127.0.0.1")
        .arg(format!("cat > {}", sshd.path("floor").display()))
        .stdin(std::fs::File::open(&local).unwrap())
        .status()
        .expect("ssh (Debian openssh-client)");
    assert!(floor.success());
    let floor = started.elapsed();
    eprintln!(
        "OpenSSH client: {:.2} s; russh upload / OpenSSH = {:.2}",
        floor.as_secs_f64(),
        took.as_secs_f64() / floor.as_secs_f64()
    );
    assert!(std::fs::read(&remote).unwrap() == content);
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&remote).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o755);

    let started = Instant::now();
    let second = machine
        .upload(Source::File(&local), remote_text, 0o755)
        .await
        .unwrap();
    eprintln!(
        "identical upload skipped in {:.3} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(second, Uploaded::Unchanged);

    let third = machine
        .upload(Source::File(&local), remote_text, 0o700)
        .await
        .unwrap();
    assert_eq!(third, Uploaded::ModeChanged);
    let mode = std::fs::metadata(&remote).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o700);

    let config = b"kind: Config\n";
    let fourth = machine
        .upload(Source::Bytes(config), remote_text, 0o600)
        .await
        .unwrap();
    assert_eq!(
        fourth,
        Uploaded::Copied {
            bytes: config.len() as u64
        }
    );
    assert_eq!(std::fs::read(&remote).unwrap(), config);
    // No temporary files are left beside the target.
    let left: Vec<_> = std::fs::read_dir(sshd.path("remote/bin"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["berth"]);
    machine.close().await;
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
    assert!(
        text.contains(&fingerprint_of(&sshd.path("host_key.pub"))),
        "{text}"
    );
    assert!(
        text.contains(options.known_hosts.to_str().unwrap()),
        "{text}"
    );
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
        assert!(
            text.contains(&fingerprint_of(&sshd.path("host_key.pub"))),
            "{text}"
        );
        assert!(
            text.contains(options.known_hosts.to_str().unwrap()),
            "{text}"
        );
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
async fn an_upload_the_machine_stops_taking_fails_at_once() {
    init_tracing();
    let sshd = Sshd::start();
    let mut options = sshd.options();
    options.command_timeout = Duration::from_secs(15);
    let machine = Machine::connect(sshd.target(), &options).await.unwrap();
    // More than the channel's window, to a folder that cannot be made: the
    // machine exits before reading its input (as on a full disk).
    let content = vec![7u8; 16 << 20];
    let started = Instant::now();
    let error = machine
        .upload(Source::Bytes(&content), "/proc/berth-refused/berth", 0o755)
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::CommandFailed { .. }),
        "{error} after {:?}",
        started.elapsed()
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    machine.close().await;
}

#[tokio::test]
async fn commands_past_their_timeout_are_killed() {
    let (sshd, machine) = connected().await;
    // A duration no other test uses, to find the process by.
    let seconds = format!("3{}", sshd.port);
    let started = Instant::now();
    let error = machine
        .run_with_timeout(&format!("exec sleep {seconds}"), Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(matches!(error, Error::CommandTimeout { .. }), "{error}");
    assert!(error
        .to_string()
        .contains(&format!("root@127.0.0.1:{}", sshd.port)));
    // The session is still usable, and the command is gone.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = machine
            .run(&format!("pgrep -x -f 'sleep {seconds}' || true"))
            .await
            .unwrap();
        if left.stdout.trim().is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still running: {}; sshd log: {}",
            left.stdout,
            sshd.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    machine.close().await;
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

#[tokio::test]
async fn for_each_reports_every_machine() {
    init_tracing();
    let (first, second, mut options) = Sshd::pair();
    options.connect_timeout = Duration::from_secs(3);
    let closed = free_port();
    let targets = [
        first.target(),
        Target::new("root", "127.0.0.1", closed),
        second.target(),
    ];
    let summary =
        berth_provisioner::ssh::for_each(&targets, Target::to_string, |target, progress| {
            let options = options.clone();
            let target = target.clone();
            async move {
                progress.step("connecting");
                let machine = Machine::connect(target, &options).await?;
                progress.step("running");
                machine.run_ok("true").await?;
                machine.close().await;
                Ok::<(), Error>(())
            }
        })
        .await;
    eprintln!("{summary}");
    let outcomes: Vec<_> = summary
        .outcomes
        .iter()
        .map(|(m, o)| {
            (
                m.clone(),
                matches!(o, berth_provisioner::ssh::Outcome::Done),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            (first.target().to_string(), true),
            (format!("root@127.0.0.1:{closed}"), false),
            (second.target().to_string(), true),
        ]
    );
    let failures: Vec<_> = summary.failures().collect();
    assert!(failures[0].1.contains("cannot connect"), "{summary}");
}

/// A NodePool host's marker is taken once: the same claim taking it again
/// keeps it, another claim is told who holds it (what `launch` relies on
/// to resume a half-joined host and to skip taken ones).
#[tokio::test]
async fn pool_host_markers_are_taken_once() {
    use berth_api::nodepool::SshTemplate;
    use berth_provisioner::pool_hosts::{read_marker, take, Marker, PoolHost};

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
