//! Test support: starts a private single-member etcd (Debian's `etcd-server`)
//! on free loopback ports with its own data directory, for component and
//! end-to-end tests. It is killed and its directory removed when dropped; it
//! must never touch an etcd it did not start.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a fresh etcd gets to elect itself leader and answer `/health`.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running etcd started by a test, stopped (SIGKILL) and cleaned up on drop,
/// also when the test panics.
pub struct EtcdProcess {
    child: Child,
    dir: PathBuf,
    client_port: u16,
}

fn free_ports() -> (u16, u16) {
    // Both listeners stay open until both ports are known, so they differ.
    let a = TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
    let b = TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
    (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    )
}

fn fresh_dir() -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("berth-etcd-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating the etcd test directory");
    dir
}

/// A plain HTTP/1.0 GET (so the body is never chunked) against etcd's client
/// port; `None` unless it answers 200.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.lines().next()?;
    status.contains(" 200 ").then_some(response)
}

impl EtcdProcess {
    /// Starts etcd and waits until it reports itself healthy.
    ///
    /// # Panics
    ///
    /// When the `etcd` binary is missing (the message says to install Debian's
    /// `etcd-server`), or when etcd exits or stays unhealthy; the panic carries
    /// etcd's log. A test that needs etcd fails rather than skipping.
    pub fn start() -> Self {
        let (client_port, peer_port) = free_ports();
        let dir = fresh_dir();
        let log = std::fs::File::create(dir.join("etcd.log")).expect("creating etcd.log");
        let client_url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let spawned = Command::new("etcd")
            .arg("--name=test")
            .arg(format!("--data-dir={}", dir.join("data").display()))
            .arg(format!("--listen-client-urls={client_url}"))
            .arg(format!("--advertise-client-urls={client_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=test={peer_url}"))
            .arg("--initial-cluster-state=new")
            .arg("--logger=zap")
            .arg("--log-outputs=stderr")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("sharing etcd.log"))
            .stderr(log)
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let _ = std::fs::remove_dir_all(&dir);
                panic!(
                    "the `etcd` binary is not on PATH: install Debian's etcd-server \
                     (apt-get install -y etcd-server) to run the etcd tests"
                )
            }
            Err(e) => panic!("starting etcd: {e}"),
        };
        let mut process = Self {
            child,
            dir,
            client_port,
        };
        process.wait_healthy();
        process
    }

    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("polling etcd") {
                panic!("etcd exited early ({status}); log:\n{}", self.log());
            }
            let healthy = http_get(self.client_port, "/health")
                .is_some_and(|body| body.contains(r#""health":"true""#));
            if healthy {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "etcd not healthy within {START_TIMEOUT:?}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `127.0.0.1:PORT` of the client listener, as `EtcdStore::connect` and
    /// `--datastore etcd://…` take it.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    /// The directory holding etcd's data and log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// etcd's log so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("etcd.log")).unwrap_or_default()
    }

    /// The value of an unlabelled Prometheus metric from etcd's `/metrics`, so a
    /// test can check etcd's own view (e.g. how many watchers are open).
    pub fn metric(&self, name: &str) -> Option<f64> {
        let body = http_get(self.client_port, "/metrics")?;
        body.lines()
            .filter_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .find_map(|value| value.trim().parse().ok())
    }
}

impl Drop for EtcdProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
