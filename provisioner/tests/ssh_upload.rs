//! Uploading files over SSH: identical files skipped, modes kept, and a
//! machine that stops taking the upload failing it at once.

#[path = "ssh/sshd.rs"]
mod sshd;

use std::process::Command;
use std::time::{Duration, Instant};

use berth_provisioner::ssh::{Error, Machine, Source, Uploaded};
use sshd::{connected, init_tracing, Sshd};

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
