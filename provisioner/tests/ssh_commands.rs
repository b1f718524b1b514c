//! Commands on a machine over SSH: output and exit status, timeouts that
//! kill the remote process, and running one step on many machines at once.

#[path = "ssh/sshd.rs"]
mod sshd;

use std::time::{Duration, Instant};

use berth_provisioner::ssh::{Error, ExitStatus, Machine, Target};
use sshd::{connected, free_port, init_tracing, Sshd};

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
