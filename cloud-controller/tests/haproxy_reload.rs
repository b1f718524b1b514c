//! The `haproxy` provider against Debian's HAProxy in master-worker mode,
//! reloaded by `kill -USR2` as the README suggests: reloads a moment apart
//! all land (a signal that reaches the master while it re-executes itself
//! is lost, so the provider sends it again until `show info` on the stats
//! socket reports the new file), and a file HAProxy cannot run (a listener
//! that cannot bind: it logs `Loading failure!` and keeps the old one) is
//! an error. Listens on
//! loopback only; HAProxy is stopped even when the test fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::Duration;

use berth_cloud_controller::haproxy::config::{self, Settings};
use berth_cloud_controller::haproxy::pool::AddressPool;
use berth_cloud_controller::haproxy::target::LocalFile;
use berth_cloud_controller::haproxy::version;
use berth_cloud_controller::{HaproxyProvider, LoadBalancerProvider, ProviderError};
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};

const HAPROXY: &str = "/usr/sbin/haproxy";

/// HAProxy's master process, killed with its workers on drop.
struct Haproxy(Child);

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn service(name: &str, port: i32, requested: Option<&str>) -> Service {
    let mut service = Service::default();
    service.metadata.namespace = Some("reload".into());
    service.metadata.name = Some(name.into());
    service.spec = Some(ServiceSpec {
        type_: Some("LoadBalancer".into()),
        load_balancer_ip: requested.map(str::to_owned),
        ports: Some(vec![ServicePort {
            port,
            node_port: Some(30080),
            protocol: Some("TCP".into()),
            ..Default::default()
        }]),
        ..Default::default()
    });
    service
}

fn provider(dir: &Path, reload: &[&str], socket: &Path) -> HaproxyProvider {
    // 127.0.0.0/8 is all on `lo`; 192.0.2.10 (TEST-NET-1) is on no
    // interface, so HAProxy cannot bind it.
    let pool = AddressPool::new("reload", &["127.88.0.10-127.88.0.20", "192.0.2.10/32"]).unwrap();
    let settings = Settings {
        stats_socket: Some(socket.to_owned()),
        ..Settings::default()
    };
    let file = LocalFile::new(
        dir.join("haproxy.cfg"),
        Some(reload.iter().map(|s| s.to_string()).collect()),
    )
    .verified_through(socket.to_owned());
    HaproxyProvider::new(pool, settings, Arc::new(file))
}

async fn wait_for_socket(socket: &Path) {
    for _ in 0..100 {
        if version::running_stamp(socket).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("HAProxy's stats socket {} never answered", socket.display());
}

fn reload_error(result: Result<impl std::fmt::Debug, ProviderError>) -> String {
    match result {
        Err(ProviderError::Transient {
            operation: "reloading haproxy",
            reason,
        }) => reason,
        other => panic!("expected a failed reload, got {other:?}"),
    }
}

#[tokio::test]
async fn a_reload_that_kept_the_old_file_is_an_error() {
    if !Path::new(HAPROXY).exists() {
        eprintln!("{HAPROXY} is not installed (tests/run-all.sh installs it): skipping");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let socket: PathBuf = dir.path().join("admin.sock");
    let config = dir.path().join("haproxy.cfg");

    // HAProxy starts on a file the provider would write with no Service.
    let settings = Settings {
        stats_socket: Some(socket.clone()),
        ..Settings::default()
    };
    std::fs::write(&config, config::render(&settings, &[])).unwrap();
    let child = Command::new(HAPROXY)
        .arg("-W")
        .arg("-f")
        .arg(&config)
        .stdout(std::fs::File::create(dir.path().join("haproxy.log")).unwrap())
        .stderr(std::fs::File::create(dir.path().join("haproxy.err")).unwrap())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let _haproxy = Haproxy(child);
    wait_for_socket(&socket).await;
    let started = std::fs::read_to_string(&config).unwrap();
    assert_eq!(
        version::running_stamp(&socket).await.unwrap().as_deref(),
        version::stamp_of(&started)
    );

    // A real reload: verified.
    let lb = provider(dir.path(), &["kill", "-USR2", &pid], &socket);
    lb.ensure(&service("a", 18081, Some("127.88.0.10")), &[])
        .await
        .expect("the first reload");
    lb.ensure(&service("b", 18082, None), &[])
        .await
        .unwrap_or_else(|e| {
            panic!(
                "a reload HAProxy took: {e:?}\n{}",
                std::fs::read_to_string(dir.path().join("haproxy.err")).unwrap_or_default()
            )
        });
    let running = version::running_stamp(&socket).await.unwrap();
    let written = std::fs::read_to_string(&config).unwrap();
    assert_eq!(running.as_deref(), version::stamp_of(&written));

    // A file HAProxy cannot run (its listener cannot bind): it keeps the
    // old one, and the provider says so.
    let said = reload_error(
        lb.ensure(&service("unbindable", 18083, Some("192.0.2.10")), &[])
            .await,
    );
    assert!(said.contains("did not load the new file"), "{said}");
    assert_eq!(
        version::running_stamp(&socket).await.unwrap(),
        running,
        "the old file still runs"
    );
    lb.delete(&service("unbindable", 18083, Some("192.0.2.10")))
        .await
        .expect("without it the file loads again");

    // Changes a moment apart: each one runs before the next is made.
    for (index, name) in ["c", "d", "e"].into_iter().enumerate() {
        lb.ensure(&service(name, 18090 + index as i32, None), &[])
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "{name}: {e:?}\n{}",
                    std::fs::read_to_string(dir.path().join("haproxy.err")).unwrap_or_default()
                )
            });
        let written = std::fs::read_to_string(&config).unwrap();
        assert_eq!(
            version::running_stamp(&socket).await.unwrap().as_deref(),
            version::stamp_of(&written),
            "{name}"
        );
    }
}
