//! A containerd that belongs to one node agent: its own config, root, state
//! and socket under the agent's data directory, so it never collides with
//! another containerd on the machine. The agent starts it and stops it on
//! exit; containers live on in their shims and are adopted next time.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::VersionRequest;

use super::connect;
use crate::runtime::RuntimeError;

/// Where a managed containerd keeps its files, all under one directory.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The directory everything lives in (`DATA_DIR/containerd`).
    pub dir: PathBuf,
}

impl Layout {
    /// The layout under the agent's data directory.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join("containerd"),
        }
    }

    /// The gRPC socket (CRI and containerd's own API).
    pub fn socket(&self) -> PathBuf {
        self.dir.join("containerd.sock")
    }

    /// The generated config file.
    pub fn config(&self) -> PathBuf {
        self.dir.join("config.toml")
    }

    /// Where the CNI conflist goes.
    pub fn cni_conf_dir(&self) -> PathBuf {
        self.dir.join("cni")
    }

    /// host-local's address store.
    pub fn ipam_dir(&self) -> PathBuf {
        self.dir.join("cni-ipam")
    }

    /// One `hosts.toml` directory per registry.
    pub fn certs_dir(&self) -> PathBuf {
        self.dir.join("certs.d")
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.join("containerd.pid")
    }

    fn log_file(&self) -> PathBuf {
        self.dir.join("containerd.log")
    }
}

/// What the generated containerd config says.
#[derive(Debug, Clone)]
pub struct ContainerdConfig {
    /// The pause image every sandbox runs (`registry.k8s.io/pause:3.10`).
    pub pause_image: String,
    /// Registries (`host:port`) reached over plain HTTP.
    pub insecure_registries: Vec<String>,
    /// Where the CNI plugin binaries are (Debian: `/usr/lib/cni`).
    pub cni_bin_dir: PathBuf,
}

fn toml_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}

/// The config file's text. `restrict_oom_score_adj` is on because machines
/// without CAP_SYS_RESOURCE (containers, some VMs) fail every container
/// start otherwise.
pub fn render_config(layout: &Layout, config: &ContainerdConfig) -> String {
    let dir = |p: PathBuf| toml_string(&p.display().to_string());
    format!(
        r#"version = 2
root = {root}
state = {state}
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = {socket}

[ttrpc]
  address = {ttrpc}

[plugins."io.containerd.internal.v1.opt"]
  path = {opt}

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = {pause}
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = {cni_bin}
    conf_dir = {cni_conf}
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = {certs}
"#,
        root = dir(layout.dir.join("root")),
        state = dir(layout.dir.join("state")),
        socket = dir(layout.socket()),
        ttrpc = dir(layout.dir.join("containerd.sock.ttrpc")),
        opt = dir(layout.dir.join("opt")),
        pause = toml_string(&config.pause_image),
        cni_bin = dir(config.cni_bin_dir.clone()),
        cni_conf = dir(layout.cni_conf_dir()),
        certs = dir(layout.certs_dir()),
    )
}

/// The `hosts.toml` that makes `registry` a plain-HTTP registry.
pub fn insecure_hosts_toml(registry: &str) -> String {
    let url = toml_string(&format!("http://{registry}"));
    format!(
        "server = {url}\n\n[host.{url}]\n  capabilities = [\"pull\", \"resolve\"]\n  skip_verify = true\n"
    )
}

fn io_error<'a>(what: &str, path: &'a Path) -> impl FnOnce(std::io::Error) -> RuntimeError + 'a {
    let what = what.to_owned();
    move |e| RuntimeError::Backend(format!("{what} {}: {e}", path.display()))
}

/// Writes the config and the registry hosts files.
pub fn write_files(layout: &Layout, config: &ContainerdConfig) -> Result<(), RuntimeError> {
    for dir in [
        layout.dir.clone(),
        layout.cni_conf_dir(),
        layout.certs_dir(),
    ] {
        std::fs::create_dir_all(&dir).map_err(io_error("creating", &dir))?;
    }
    let path = layout.config();
    std::fs::write(&path, render_config(layout, config)).map_err(io_error("writing", &path))?;
    for registry in &config.insecure_registries {
        let dir = layout.certs_dir().join(registry);
        std::fs::create_dir_all(&dir).map_err(io_error("creating", &dir))?;
        let path = dir.join("hosts.toml");
        std::fs::write(&path, insecure_hosts_toml(registry)).map_err(io_error("writing", &path))?;
    }
    Ok(())
}

/// A containerd process the agent started; [`ManagedContainerd::stop`]
/// ends it (its shims, and so the containers, keep running).
pub struct ManagedContainerd {
    layout: Layout,
    pid: u32,
}

fn process_alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks that the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

fn signal(pid: i32, signal: i32) {
    // SAFETY: sends a signal to a process this agent started; no memory is involved.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// Waits for `pid` to exit, up to `limit`; whether it did.
async fn wait_exit(pid: i32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if !process_alive(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    !process_alive(pid)
}

/// Stops the containerd a previous agent run left behind (it was killed
/// before it could stop it), so the new one starts with the current config.
async fn stop_leftover(layout: &Layout) {
    let Ok(text) = std::fs::read_to_string(layout.pid_file()) else {
        return;
    };
    let Ok(pid) = text.trim().parse::<i32>() else {
        return;
    };
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let ours = String::from_utf8_lossy(&cmdline).contains(&layout.config().display().to_string());
    if ours && process_alive(pid) {
        tracing::info!(pid, "stopping the containerd a previous agent left running");
        signal(pid, libc::SIGTERM);
        if !wait_exit(pid, Duration::from_secs(10)).await {
            signal(pid, libc::SIGKILL);
            wait_exit(pid, Duration::from_secs(5)).await;
        }
    }
}

impl ManagedContainerd {
    /// Writes the config, starts `containerd` (from `PATH`) and waits until
    /// its CRI service answers.
    pub async fn start(layout: Layout, config: &ContainerdConfig) -> Result<Self, RuntimeError> {
        write_files(&layout, config)?;
        stop_leftover(&layout).await;
        let _ = std::fs::remove_file(layout.socket());
        let log_path = layout.log_file();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io_error("opening", &log_path))?;
        let log_err = log.try_clone().map_err(io_error("opening", &log_path))?;
        let child = std::process::Command::new("containerd")
            .arg("--config")
            .arg(layout.config())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            // Its own process group: a Ctrl-C meant for the agent must not
            // reach containerd before the agent has finished with it.
            .process_group(0)
            .spawn()
            .map_err(|e| {
                RuntimeError::Backend(format!(
                    "starting containerd: {e}; install it with `apt-get install containerd runc containernetworking-plugins`"
                ))
            })?;
        let pid = child.id();
        let pid_file = layout.pid_file();
        std::fs::write(&pid_file, pid.to_string()).map_err(io_error("writing", &pid_file))?;
        let managed = Self { layout, pid };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(channel) = connect::channel(&managed.layout.socket()).await {
                let answered = RuntimeServiceClient::new(channel)
                    .version(VersionRequest::default())
                    .await;
                if answered.is_ok() {
                    break;
                }
            }
            if !process_alive(pid as i32) || Instant::now() > deadline {
                let tail = std::fs::read_to_string(&log_path).unwrap_or_default();
                let tail: Vec<&str> = tail.lines().rev().take(5).collect();
                return Err(RuntimeError::Backend(format!(
                    "containerd did not come up (log {}): {}",
                    log_path.display(),
                    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Reap it when it exits so it never lingers as a zombie.
        std::thread::spawn(move || {
            let mut child = child;
            let _ = child.wait();
        });
        tracing::info!(pid, socket = %managed.layout.socket().display(), "containerd started");
        Ok(managed)
    }

    /// The socket to connect to.
    pub fn socket(&self) -> PathBuf {
        self.layout.socket()
    }

    /// Stops containerd (SIGTERM, then SIGKILL after 10 s). Containers keep
    /// running under their shims.
    pub async fn stop(&self) {
        let pid = self.pid as i32;
        signal(pid, libc::SIGTERM);
        if !wait_exit(pid, Duration::from_secs(10)).await {
            signal(pid, libc::SIGKILL);
            wait_exit(pid, Duration::from_secs(5)).await;
        }
        let _ = std::fs::remove_file(self.layout.pid_file());
        tracing::info!(pid, "containerd stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_keeps_everything_under_the_node_directory() {
        let layout = Layout::new(Path::new("/var/lib/berth"));
        let text = render_config(
            &layout,
            &ContainerdConfig {
                pause_image: "127.0.0.1:5000/pause:3.10".into(),
                insecure_registries: vec!["127.0.0.1:5000".into()],
                cni_bin_dir: "/usr/lib/cni".into(),
            },
        );
        assert!(text.contains(r#"root = "/var/lib/berth/containerd/root""#));
        assert!(text.contains(r#"address = "/var/lib/berth/containerd/containerd.sock""#));
        assert!(text.contains(r#"sandbox_image = "127.0.0.1:5000/pause:3.10""#));
        assert!(text.contains("restrict_oom_score_adj = true"));
        assert!(text.contains(r#"conf_dir = "/var/lib/berth/containerd/cni""#));
        assert!(text.contains(r#"config_path = "/var/lib/berth/containerd/certs.d""#));
        let hosts = insecure_hosts_toml("127.0.0.1:5000");
        assert!(hosts.starts_with("server = \"http://127.0.0.1:5000\""));
        assert!(hosts.contains("[host.\"http://127.0.0.1:5000\"]"));
    }
}
