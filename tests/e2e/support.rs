//! Shared harness for end-to-end tests: starts the real `berth` binary on a
//! free loopback port with its own data directory, and drives it with the
//! real kubectl binaries installed on the machine.
#![allow(dead_code)]

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub mod nodepool;
pub mod prometheus;

/// A pinned kubectl that speaks JSON on the wire (1.27–1.31 never send protobuf).
pub const KUBECTL_1_31: &str = "/usr/lib/google-cloud-sdk/bin/kubectl.1.31";

/// A pinned kubectl that sends protobuf bodies from its typed commands (1.32+).
pub const KUBECTL_1_33: &str = "/usr/lib/google-cloud-sdk/bin/kubectl.1.33";

/// The berth binary under test.
pub fn berth_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_berth"))
}

/// A loopback port nothing listens on now, for a server a test starts.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Which state store a test server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Datastore {
    /// The embedded default.
    Sqlite,
    /// A real etcd process started for the test on loopback ports.
    Etcd,
}

/// A running `berth server`, stopped (SIGKILL) when dropped.
pub struct Server {
    child: Option<Child>,
    /// The etcd the server uses, when it runs on etcd; lives as long as the server.
    pub etcd: Option<berth_orchestrator::store::etcd::testing::EtcdProcess>,
    pub dir: tempfile::TempDir,
    pub port: u16,
    /// The address it listens on (loopback unless a test's own bridge).
    pub host: String,
    extra_args: Vec<String>,
    /// Extra environment of the server process (AWS credentials for moto).
    env: Vec<(String, String)>,
}

impl Server {
    /// Starts a server on a fresh data directory.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a server with extra `berth server` flags.
    pub fn start_with(extra: &[&str]) -> Self {
        Self::start_on(Datastore::Sqlite, extra)
    }

    /// Starts a server with extra flags and environment variables.
    pub fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("berth-e2e")
            .tempdir()
            .unwrap();
        Self::spawn_in(dir, extra, env)
    }

    /// Starts a server on the given store (etcd is started first when asked for).
    pub fn start_on(datastore: Datastore, extra: &[&str]) -> Self {
        Self::start_listening(datastore, "127.0.0.1", extra)
    }

    /// Starts a server listening on `host` (an address of this machine the
    /// test owns, such as its test hosts' bridge), on the given store.
    pub fn start_listening(datastore: Datastore, host: &str, extra: &[&str]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("berth-e2e")
            .tempdir()
            .unwrap();
        let mut extra_args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let etcd = match datastore {
            Datastore::Sqlite => None,
            Datastore::Etcd => {
                let etcd = berth_orchestrator::store::etcd::testing::EtcdProcess::start();
                extra_args.extend([
                    "--datastore".to_owned(),
                    format!("etcd://{}", etcd.endpoint()),
                ]);
                Some(etcd)
            }
        };
        let mut server = Self {
            child: None,
            etcd,
            dir,
            port: free_port(),
            host: host.to_owned(),
            extra_args,
            env: Vec::new(),
        };
        server.spawn();
        server
    }

    /// Starts a server on loopback on a data directory the test prepared
    /// (e.g. a shared cluster CA under `tls/`), with extra flags.
    pub fn start_in(dir: tempfile::TempDir, extra: &[&str]) -> Self {
        Self::spawn_in(dir, extra, &[])
    }

    fn spawn_in(dir: tempfile::TempDir, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let mut server = Self {
            child: None,
            etcd: None,
            dir,
            port: free_port(),
            host: "127.0.0.1".to_owned(),
            extra_args: extra.iter().map(|s| s.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        server.spawn();
        server
    }

    /// The server process's id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("admin.kubeconfig")
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("server.log"))
            .unwrap();
        let child = Command::new(berth_bin())
            .arg("server")
            .arg("--data-dir")
            .arg(self.dir.path())
            .arg("--listen")
            .arg(format!("{}:{}", self.host, self.port))
            .args(&self.extra_args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting berth server");
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("berth server exited early ({status}); log:\n{}", self.log());
            }
            let up = std::net::TcpStream::connect((self.host.as_str(), self.port)).is_ok();
            if up && self.kubeconfig().exists() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "berth server not ready in 30s; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Stops the server with SIGKILL (no chance to flush anything).
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops with SIGKILL and starts again on the same data directory and port.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// `GET path` with the admin token and this `Accept`, as a client library
    /// would send it; returns the HTTP status and the body bytes.
    pub fn get_raw(&self, path: &str, accept: &str) -> (u16, Vec<u8>) {
        let token = std::fs::read_to_string(self.dir.path().join("tls/admin.token")).unwrap();
        let out = Command::new("curl")
            .args(["-sS", "-o", "-", "-w", "\n%{http_code}", "--cacert"])
            .arg(self.dir.path().join("tls/ca.crt"))
            .args(["-H", &format!("Authorization: Bearer {}", token.trim())])
            .args(["-H", &format!("Accept: {accept}")])
            .arg(format!("https://{}:{}{path}", self.host, self.port))
            .output()
            .expect("curl is installed by tests/run-all.sh");
        let split = out.stdout.iter().rposition(|b| *b == b'\n').unwrap();
        let code = String::from_utf8_lossy(&out.stdout[split + 1..])
            .trim()
            .parse()
            .unwrap();
        (code, out.stdout[..split].to_vec())
    }

    /// A kubectl bound to this server.
    pub fn kubectl(&self, binary: &str) -> Kubectl {
        Kubectl::with_kubeconfig(
            binary,
            &self.kubeconfig(),
            &self.dir.path().join(format!(
                "kubectl-cache-{}",
                binary.rsplit('/').next().unwrap()
            )),
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Spawns `command` with piped output and `stdin` written to it and closed,
/// as kubectl reads a manifest or an exec's input.
pub fn spawn_with_stdin(command: &mut Command, stdin: &str) -> Child {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running kubectl");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child
}

/// Asserts that Debian's `promtool check metrics` accepts `text` (the
/// classic text format) without a single lint complaint.
#[allow(dead_code)]
pub fn assert_promtool_accepts(text: &str) {
    let out = spawn_with_stdin(
        Command::new("/usr/bin/promtool").args(["check", "metrics"]),
        text,
    )
    .wait_with_output()
    .expect("promtool");
    let verdict = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool: {verdict}");
    assert!(verdict.trim().is_empty(), "promtool complains: {verdict}");
}

/// A kubectl invocation helper with its own discovery cache.
pub struct Kubectl {
    pub binary: String,
    kubeconfig: PathBuf,
    cache_dir: PathBuf,
    /// A network namespace to run in (`ip netns exec`, which also gives it
    /// that namespace's `/etc/netns/NAME/hosts`).
    netns: Option<String>,
}

impl Kubectl {
    /// A kubectl `binary` using `kubeconfig`, caching discovery under `cache_dir`.
    pub fn with_kubeconfig(binary: &str, kubeconfig: &Path, cache_dir: &Path) -> Self {
        Self {
            binary: binary.to_owned(),
            kubeconfig: kubeconfig.to_owned(),
            cache_dir: cache_dir.to_owned(),
            netns: None,
        }
    }

    /// The same kubectl, run inside network namespace `netns` as a client
    /// machine there would (its own name resolution included).
    pub fn in_netns(mut self, netns: &str) -> Self {
        self.netns = Some(netns.to_owned());
        self
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = match &self.netns {
            Some(netns) => {
                let mut cmd = Command::new("ip");
                cmd.args(["netns", "exec", netns, &self.binary]);
                cmd
            }
            None => Command::new(&self.binary),
        };
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(&self.cache_dir)
            .args(args);
        cmd
    }

    /// Runs kubectl and returns its output, whatever the exit code.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("running kubectl")
    }

    /// Runs kubectl with `stdin` as input.
    pub fn run_stdin(&self, args: &[&str], stdin: &str) -> Output {
        spawn_with_stdin(&mut self.command(args), stdin)
            .wait_with_output()
            .unwrap()
    }

    /// Runs kubectl, asserts success, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        check_ok(args, self.run(args))
    }

    /// Like `ok`, feeding `stdin`.
    pub fn ok_stdin(&self, args: &[&str], stdin: &str) -> String {
        check_ok(args, self.run_stdin(args, stdin))
    }

    /// `kubectl ARGS -o jsonpath=TEMPLATE`, asserting success.
    pub fn jsonpath(&self, args: &[&str], template: &str) -> String {
        let output = format!("jsonpath={template}");
        let mut all = args.to_vec();
        all.extend(["-o", output.as_str()]);
        self.ok(&all)
    }

    /// Runs kubectl, asserts failure, returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "kubectl {args:?} succeeded unexpectedly: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Like `fails`, feeding `stdin`.
    pub fn fails_stdin(&self, args: &[&str], stdin: &str) -> String {
        let out = self.run_stdin(args, stdin);
        assert!(
            !out.status.success(),
            "kubectl {args:?} succeeded unexpectedly: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Starts a long-running kubectl (e.g. `get -w`) with piped stdout.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running kubectl")
    }
}

fn check_ok(args: &[&str], out: Output) -> String {
    assert!(
        out.status.success(),
        "kubectl {args:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The path of a manifest under `tests/manifests`.
pub fn manifest(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/manifests")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// Prints the server's and these processes' logs when the test fails, so a
/// failed assertion or kubectl call shows them as a `wait_for` timeout does.
/// Declare it after the processes: it must drop (and read) before them.
pub struct LogsOnFailure {
    logs: Vec<PathBuf>,
}

impl LogsOnFailure {
    /// Watches the logs of `server` and `processes`.
    pub fn new(server: &Server, processes: &[&BerthProcess]) -> Self {
        let mut logs = vec![server.dir.path().join("server.log")];
        logs.extend(processes.iter().map(|p| p.log_path()));
        Self { logs }
    }
}

impl Drop for LogsOnFailure {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        for log in &self.logs {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            eprintln!("---- {} ----\n{text}", log.display());
        }
    }
}

/// Polls `check` until it returns Some or `timeout` passes.
pub fn eventually<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "condition not met within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The holder of the Lease `kube-system/NAME`, or None while there is none;
/// `global` goes before the command (e.g. `--server URL`).
pub fn lease_holder(k: &Kubectl, global: &[&str], name: &str) -> Option<String> {
    let mut args = global.to_vec();
    args.extend(["-n", "kube-system", "get", "lease", name]);
    args.extend(["-o", "jsonpath={.spec.holderIdentity}"]);
    let out = k.run(&args);
    let holder = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (out.status.success() && !holder.is_empty()).then_some(holder)
}

/// Another berth process (`berth agent`, `berth sim`, …) pointed at a test
/// server, logging to a file in the server's directory; SIGKILLed when dropped.
pub struct BerthProcess {
    child: Option<Child>,
    log: PathBuf,
}

impl BerthProcess {
    /// The process's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Where the process logs (kept across restarts of the same process name).
    pub fn log_path(&self) -> PathBuf {
        self.log.clone()
    }

    /// Stops the process with SIGKILL.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the process with SIGTERM, as a service manager would, and waits
    /// for it to exit (SIGKILL after 30 s).
    pub fn terminate(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Panics with the log if the process has exited.
    pub fn assert_running(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("berth process exited ({status}); log:\n{}", self.log());
            }
        }
    }
}

impl Drop for BerthProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

impl Server {
    /// The server's HTTPS URL.
    pub fn url(&self) -> String {
        format!("https://{}:{}", self.host, self.port)
    }

    /// Starts `berth ARGS --server URL --kubeconfig ADMIN` with its log in
    /// `LOG_NAME.log` beside the server's.
    pub fn spawn_berth(&self, log_name: &str, args: &[&str]) -> BerthProcess {
        self.spawn_berth_in(None, log_name, args)
    }

    /// Like [`Self::spawn_berth`], inside network namespace `netns` when
    /// given (entered with nsenter, which keeps the cgroup mounts).
    pub fn spawn_berth_in(
        &self,
        netns: Option<&str>,
        log_name: &str,
        args: &[&str],
    ) -> BerthProcess {
        self.spawn_berth_with_env(netns, log_name, args, &[])
    }

    /// Like [`Self::spawn_berth_in`], with extra environment variables
    /// (credentials a process reads from its environment, as the AWS chain).
    pub fn spawn_berth_with_env(
        &self,
        netns: Option<&str>,
        log_name: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> BerthProcess {
        let mut command = match netns {
            Some(netns) => {
                let mut command = Command::new("nsenter");
                command
                    .arg(format!("--net=/var/run/netns/{netns}"))
                    .arg(berth_bin());
                command
            }
            None => Command::new(berth_bin()),
        };
        command
            .args(args)
            .arg("--server")
            .arg(self.url())
            .arg("--kubeconfig")
            .arg(self.kubeconfig())
            .envs(env.iter().copied());
        self.spawn_logged(log_name, command)
    }

    /// Starts `berth scheduler --identity IDENTITY EXTRA… --kubeconfig ADMIN`
    /// (the scheduler reads its server from the kubeconfig only).
    pub fn start_scheduler(&self, identity: &str, extra: &[&str]) -> BerthProcess {
        let mut command = Command::new(berth_bin());
        command
            .args(["scheduler", "--identity", identity])
            .args(extra)
            .arg("--kubeconfig")
            .arg(self.kubeconfig());
        self.spawn_logged(identity, command)
    }

    /// Spawns `command` with its log in `LOG_NAME.log` beside the server's.
    fn spawn_logged(&self, log_name: &str, mut command: Command) -> BerthProcess {
        let log = self.dir.path().join(format!("{log_name}.log"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        // The caller's RUST_LOG, when it sets one, wins.
        if command.get_envs().all(|(key, _)| key != "RUST_LOG") {
            command.env("RUST_LOG", "info");
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("starting berth");
        BerthProcess {
            child: Some(child),
            log,
        }
    }

    /// Starts `berth agent --runtime simulated --name NAME EXTRA…`.
    pub fn start_agent(&self, name: &str, extra: &[&str]) -> BerthProcess {
        let mut args = vec!["agent", "--runtime", "simulated", "--name", name];
        args.extend_from_slice(extra);
        self.spawn_berth(&format!("agent-{name}"), &args)
    }

    /// Starts `berth sim --nodes COUNT --name-prefix PREFIX EXTRA…`.
    pub fn start_sim(&self, count: usize, prefix: &str, extra: &[&str]) -> BerthProcess {
        let count = count.to_string();
        let mut args = vec!["sim", "--nodes", count.as_str(), "--name-prefix", prefix];
        args.extend_from_slice(extra);
        self.spawn_berth(&format!("sim-{prefix}"), &args)
    }
}

/// Polls `check` until it returns Some, checking that `processes` are still
/// running; on timeout, fails with their logs and the server's.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    server: &Server,
    processes: &mut [&mut BerthProcess],
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        for process in processes.iter_mut() {
            process.assert_running();
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = processes.iter().map(|p| p.log()).collect();
            panic!(
                "{what}: not within {timeout:?}\nprocess logs:\n{}\nserver log:\n{}",
                logs.join("\n----\n"),
                server.log()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits for the pod's Ready condition like `kubectl wait`, but a timeout
/// panics with `kubectl describe` and every process's log, so a pod that
/// is slow to start on a loaded CI host says why.
#[allow(dead_code)]
pub fn wait_pod_ready(
    kubectl: &Kubectl,
    server: &Server,
    processes: &mut [&mut BerthProcess],
    pod: &str,
    timeout: Duration,
) {
    let ready = || {
        let out = kubectl.run(&[
            "get",
            "pod",
            pod,
            "-o",
            r#"jsonpath={.status.conditions[?(@.type=="Ready")].status}"#,
        ]);
        (String::from_utf8_lossy(&out.stdout) == "True").then_some(())
    };
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if ready().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let described =
        String::from_utf8_lossy(&kubectl.run(&["describe", "pod", pod]).stdout).into_owned();
    wait_for(
        &format!("pod {pod} Ready\n{described}"),
        Duration::ZERO,
        server,
        processes,
        ready,
    );
}
