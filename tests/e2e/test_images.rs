//! The offline test images: `tests/images/build.sh` starts a local registry on
//! a free loopback port, builds the four busybox images and pushes them; this
//! checks them over plain HTTP and with skopeo. It never leaves the registry
//! running, even when an assertion fails.

mod support;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The images the script must push, as `(repository, tag)`.
const IMAGES: [(&str, &str); 4] = [
    ("pause", "3.10"),
    ("web", "1"),
    ("crash", "1"),
    ("done", "1"),
];

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/images")
        .join(name)
}

fn describe(output: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A registry started by `build.sh`, stopped with `stop.sh` when dropped.
struct Registry {
    dir: tempfile::TempDir,
    port: u16,
    stopped: bool,
}

impl Registry {
    /// Runs `build.sh` on a free port and a fresh directory.
    fn build() -> (Self, Output) {
        let dir = tempfile::Builder::new()
            .prefix("berth-images")
            .tempdir()
            .unwrap();
        let registry = Self {
            dir,
            port: support::free_port(),
            stopped: false,
        };
        let output = registry.run_build();
        (registry, output)
    }

    /// Runs `build.sh` against this registry's port and directory.
    fn run_build(&self) -> Output {
        Command::new(script("build.sh"))
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--dir")
            .arg(self.dir.path())
            .output()
            .expect("running tests/images/build.sh")
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `curl` against the registry: (HTTP status, body).
    fn get(&self, path: &str, accept: Option<&str>) -> (u16, String) {
        let mut cmd = Command::new("curl");
        cmd.args(["-s", "--max-time", "10", "-w", "\n%{http_code}"]);
        if let Some(accept) = accept {
            cmd.arg("-H").arg(format!("Accept: {accept}"));
        }
        let output = cmd
            .arg(format!("http://{}{path}", self.address()))
            .output()
            .expect("running curl");
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        (code.trim().parse().unwrap_or(0), body.to_owned())
    }

    fn stop(&mut self) -> Output {
        self.stopped = true;
        Command::new(script("stop.sh"))
            .arg("--dir")
            .arg(self.dir.path())
            .output()
            .expect("running tests/images/stop.sh")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if !self.stopped {
            let _ = self.stop();
        }
    }
}

#[test]
fn build_script_pushes_the_four_test_images_to_a_local_registry() {
    let started = Instant::now();
    let (mut registry, output) = Registry::build();
    assert!(
        output.status.success(),
        "build.sh failed: {}",
        describe(&output)
    );
    eprintln!("build.sh took {:?}", started.elapsed());

    let (code, catalog) = registry.get("/v2/_catalog", None);
    assert_eq!(code, 200, "catalog: {catalog}");
    let catalog: serde_json::Value = serde_json::from_str(&catalog).unwrap();
    let mut repositories: Vec<&str> = catalog["repositories"]
        .as_array()
        .unwrap_or_else(|| panic!("no repositories in {catalog}"))
        .iter()
        .filter_map(|name| name.as_str())
        .collect();
    repositories.sort_unstable();
    assert_eq!(repositories, ["crash", "done", "pause", "web"]);

    for (name, tag) in IMAGES {
        let (code, body) = registry.get(
            &format!("/v2/{name}/manifests/{tag}"),
            Some("application/vnd.oci.image.manifest.v1+json"),
        );
        assert_eq!(code, 200, "manifest of {name}:{tag}: {body}");
    }

    let inspect = Command::new("skopeo")
        .args(["inspect", "--config", "--tls-verify=false"])
        .arg(format!("docker://{}/web:1", registry.address()))
        .output()
        .expect("running skopeo");
    assert!(
        inspect.status.success(),
        "skopeo inspect: {}",
        describe(&inspect)
    );
    let config: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(
        config["config"]["Cmd"],
        serde_json::json!(["/bin/httpd", "-f", "-p", "80", "-h", "/www"])
    );
    assert!(
        config["config"]
            .get("Entrypoint")
            .is_none_or(|e| e.is_null()),
        "web:1 must have no entrypoint (CRI rejects [\"\"]): {config}"
    );

    // A second run reuses the registry and skips every image already pushed.
    let again = registry.run_build();
    assert!(
        again.status.success(),
        "second build.sh: {}",
        describe(&again)
    );
    let again_out = String::from_utf8_lossy(&again.stdout);
    assert_eq!(
        again_out.matches("already present").count(),
        4,
        "{again_out}"
    );

    let stop = registry.stop();
    assert!(stop.status.success(), "stop.sh: {}", describe(&stop));
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(("127.0.0.1", registry.port)).is_ok() {
        assert!(
            Instant::now() < deadline,
            "registry port {} still open after stop.sh",
            registry.port
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!registry.dir.path().join("registry.pid").exists());
}
