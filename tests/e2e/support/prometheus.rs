//! Debian's Prometheus, run by the metrics end-to-end tests against a
//! berth server with the scrape jobs the README shows.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::{eventually, free_port, Server};

const PROMETHEUS: &str = "/usr/bin/prometheus";

/// A Prometheus process; killed and waited for however the test ends (its
/// storage lives in the test's temporary directory).
pub struct Prometheus {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Prometheus {
    /// Starts Prometheus with `config`, its files in `dir`; returns once it listens.
    pub fn start(dir: &Path, config: &str) -> Self {
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, config).expect("writing prometheus.yml");
        let port = free_port();
        let log = dir.join("prometheus.log");
        let child = Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("prometheus log"))
            .spawn()
            .expect("Debian's prometheus is installed");
        let prometheus = Self { child, port, log };
        eventually(Duration::from_secs(30), || {
            TcpStream::connect(("127.0.0.1", prometheus.port)).ok()
        });
        prometheus
    }

    /// GETs `path` of Prometheus' HTTP API as JSON; None on any failure.
    pub fn api(&self, path: &str) -> Option<Value> {
        let out = Command::new("curl")
            .args(["-sS", "--fail", "-g"])
            .arg(format!("http://127.0.0.1:{}{path}", self.port))
            .output()
            .ok()?;
        serde_json::from_slice(&out.stdout).ok()
    }

    /// Prometheus' log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Prometheus configuration scraping `server` every second with the admin
/// credentials, as the README's job `job_name` does; `extra` holds the job's
/// further settings (`metrics_path`, `honor_labels`), indented four spaces.
pub fn scrape_config(server: &Server, job_name: &str, extra: &str) -> String {
    let tls = server.data_dir().join("tls");
    let target = server.url().trim_start_matches("https://").to_owned();
    format!(
        r#"global:
  scrape_interval: 1s
scrape_configs:
  - job_name: {job_name}
{extra}    scheme: https
    tls_config:
      ca_file: {ca}
    authorization:
      credentials_file: {token}
    static_configs:
      - targets: ["{target}"]
"#,
        ca = tls.join("ca.crt").display(),
        token = tls.join("admin.token").display(),
    )
}
