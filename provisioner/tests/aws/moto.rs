//! A moto server (`moto_server`, PyPI `moto[server]`) on a free loopback
//! port, killed on drop. `BERTH_MOTO_SERVER` names the executable
//! (tests/run-all.sh installs it in the test venv); `moto_server` on PATH
//! otherwise.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_provisioner::aws::{self, AwsSettings, Credentials, Ec2};

/// A running moto server.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl Moto {
    /// Starts moto and waits until it accepts connections.
    pub fn start() -> Self {
        let program = std::env::var("BERTH_MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {program} (set BERTH_MOTO_SERVER): {e}"));
        let moto = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto did not listen on {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }
}

/// The region every test's moto calls use.
pub const REGION: &str = "us-east-1";

/// EC2 for `cluster` at `url` (a moto, or a proxy in front of one) with
/// moto's test credentials.
pub async fn ec2(url: &str, cluster: &str) -> Ec2 {
    let settings = AwsSettings {
        region: Some(REGION.into()),
        endpoint_url: Some(url.into()),
        cluster: cluster.into(),
    };
    let config = aws::loader(&settings)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .load()
        .await;
    Ec2::new(&config, cluster)
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
