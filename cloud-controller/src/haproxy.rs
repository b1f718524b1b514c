//! The `haproxy` provider for bare metal: addresses from a pool like
//! MetalLB's IPAddressPool, and an `haproxy.cfg` with one TCP frontend per
//! Service port, installed through a [`target::ConfigTarget`] (a file on
//! this host, or one over SSH from `berth`) only when it changes.

pub mod config;
pub mod interface;
pub mod pool;
pub mod target;
pub mod version;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{LoadBalancerIngress, LoadBalancerStatus, Service};
use tokio::sync::Mutex;

use crate::nodes::TargetNode;
use crate::provider::{LoadBalancerProvider, ProviderError};
use crate::service::key;
use config::{render, Frontend, Settings};
use interface::PoolInterface;
use pool::{requested_address, AddressPool, PoolError};
use target::{ConfigTarget, InstallError};

/// Balances Services with one HAProxy, local or remote.
#[derive(Debug)]
pub struct HaproxyProvider {
    target: Arc<dyn ConfigTarget>,
    settings: Settings,
    interface: Option<PoolInterface>,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    pool: AddressPool,
    frontends: BTreeMap<String, Frontend>,
    /// What the file holds, so an unchanged render writes nothing.
    written: Option<String>,
}

impl HaproxyProvider {
    /// A provider installing its configuration through `target`, giving
    /// addresses from `pool`.
    pub fn new(pool: AddressPool, settings: Settings, target: Arc<dyn ConfigTarget>) -> Self {
        let state = State {
            pool,
            frontends: BTreeMap::new(),
            written: None,
        };
        HaproxyProvider {
            target,
            settings,
            interface: None,
            state: Mutex::new(state),
        }
    }

    /// Keeps every assigned address on `interface` of the load-balancer
    /// host (`--haproxy-interface`), added before HAProxy is reloaded to
    /// bind it and removed after it let go.
    pub fn with_interface(mut self, interface: PoolInterface) -> Self {
        self.interface = Some(interface);
        self
    }

    /// Renders every frontend and, when the text changed, installs it
    /// through the target; after a failure the next call installs again.
    async fn write(&self, state: &mut State) -> Result<(), ProviderError> {
        let frontends: Vec<Frontend> = state.frontends.values().cloned().collect();
        let text = render(&self.settings, &frontends);
        if state.written.as_deref() == Some(text.as_str()) {
            return Ok(());
        }
        state.written = None;
        let changes = match &self.interface {
            Some(interface) => {
                let wanted: BTreeSet<IpAddr> =
                    state.frontends.values().map(|f| f.address).collect();
                let shown = self.target.run(&[interface.show()]).await;
                let shown = shown.map_err(|e| transient("listing the interface's addresses", e))?;
                let shown = shown.concat();
                interface.changes(&shown, &state.pool, &wanted)
            }
            None => Default::default(),
        };
        if !changes.add.is_empty() {
            self.target
                .run(&changes.add)
                .await
                .map_err(|e| transient("adding the pool's addresses to the interface", e))?;
        }
        self.target.install(&text).await.map_err(|e| {
            let operation = match e {
                InstallError::Write(_) => "writing haproxy.cfg",
                InstallError::Invalid(_) => "checking haproxy.cfg with haproxy -c",
                InstallError::Reload(_) => "reloading haproxy",
                InstallError::Command(_) => "running a command on the load-balancer host",
            };
            transient(operation, e)
        })?;
        if !changes.remove.is_empty() {
            self.target
                .run(&changes.remove)
                .await
                .map_err(|e| transient("removing released addresses from the interface", e))?;
        }
        state.written = Some(text);
        Ok(())
    }
}

/// A failed step on the load-balancer host, retried by the controller.
fn transient(operation: &'static str, error: InstallError) -> ProviderError {
    let reason = match error {
        InstallError::Write(r)
        | InstallError::Invalid(r)
        | InstallError::Reload(r)
        | InstallError::Command(r) => r,
    };
    ProviderError::Transient { operation, reason }
}

fn pool_error(service: &str, pool: &str, error: PoolError) -> ProviderError {
    match error {
        PoolError::Exhausted => ProviderError::PoolExhausted {
            service: service.into(),
            pool: pool.into(),
        },
        other => ProviderError::Invalid {
            service: service.into(),
            reason: other.to_string(),
        },
    }
}

/// The address the Service's status already shows, so a restarted
/// controller hands every Service back the address it had.
fn status_address(service: &Service) -> Option<IpAddr> {
    let ingress = service
        .status
        .as_ref()?
        .load_balancer
        .as_ref()?
        .ingress
        .as_ref()?;
    ingress.iter().find_map(|i| i.ip.as_ref()?.parse().ok())
}

#[async_trait::async_trait]
impl LoadBalancerProvider for HaproxyProvider {
    fn name(&self) -> &'static str {
        "haproxy"
    }

    async fn get(&self, service: &Service) -> Result<Option<LoadBalancerStatus>, ProviderError> {
        let state = self.state.lock().await;
        Ok(state
            .frontends
            .get(&key(service))
            .map(|f| status(f.address)))
    }

    async fn ensure(
        &self,
        service: &Service,
        nodes: &[TargetNode],
    ) -> Result<LoadBalancerStatus, ProviderError> {
        let service_key = key(service);
        let mut state = self.state.lock().await;
        let pool_name = state.pool.name().to_owned();
        let requested =
            requested_address(service).map_err(|e| pool_error(&service_key, &pool_name, e))?;
        if state.pool.assigned(&service_key).is_none() {
            if let Some(previous) = status_address(service) {
                state.pool.restore(&service_key, previous);
            }
        }
        let address = state
            .pool
            .assign(&service_key, requested)
            .map_err(|e| pool_error(&service_key, &pool_name, e))?;
        let frontend =
            Frontend::for_service(service, address, nodes).map_err(|e| ProviderError::Invalid {
                service: service_key.clone(),
                reason: e.to_string(),
            })?;
        state.frontends.insert(service_key, frontend);
        self.write(&mut state).await?;
        Ok(status(address))
    }

    async fn update(&self, service: &Service, nodes: &[TargetNode]) -> Result<(), ProviderError> {
        let mut state = self.state.lock().await;
        let Some(frontend) = state.frontends.get_mut(&key(service)) else {
            return Ok(());
        };
        let mut nodes = nodes.to_vec();
        nodes.sort();
        frontend.nodes = nodes;
        self.write(&mut state).await
    }

    async fn adopt(&self, services: &[Service], nodes: &[TargetNode]) -> Result<(), ProviderError> {
        let mut state = self.state.lock().await;
        for service in services {
            let service_key = key(service);
            let Some(address) = status_address(service) else {
                continue;
            };
            if !state.pool.restore(&service_key, address) {
                continue;
            }
            // A Service that cannot be rendered any more gets its error
            // from its own ensure.
            if let Ok(frontend) = Frontend::for_service(service, address, nodes) {
                state.frontends.insert(service_key, frontend);
            }
        }
        Ok(())
    }

    async fn delete(&self, service: &Service) -> Result<(), ProviderError> {
        let service_key = key(service);
        let mut state = self.state.lock().await;
        state.frontends.remove(&service_key);
        state.pool.release(&service_key);
        self.write(&mut state).await
    }
}

/// The status of a Service balanced at `address`. `ipMode: Proxy` because
/// HAProxy terminates the connection: in-cluster clients must go through
/// it too rather than be short-cut to the endpoints by the service proxy.
pub fn status(address: IpAddr) -> LoadBalancerStatus {
    LoadBalancerStatus {
        ingress: Some(vec![LoadBalancerIngress {
            ip: Some(address.to_string()),
            ip_mode: Some("Proxy".into()),
            ..Default::default()
        }]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{lb_service, target as node};
    use k8s_openapi::api::core::v1::ServiceStatus;

    fn service(name: &str) -> Service {
        lb_service(name, &[(80, 30080)])
    }

    fn provider(dir: &std::path::Path, reload: Option<Vec<String>>) -> HaproxyProvider {
        let pool = AddressPool::new("test", &["192.0.2.10-192.0.2.11"]).unwrap();
        let file = target::LocalFile::new(dir.join("haproxy.cfg"), reload);
        HaproxyProvider::new(pool, Settings::default(), Arc::new(file))
    }

    fn ip(status: &LoadBalancerStatus) -> String {
        status.ingress.as_ref().unwrap()[0].ip.clone().unwrap()
    }

    #[tokio::test]
    async fn ensure_update_and_delete_rewrite_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let lb = provider(dir.path(), None);
        let path = dir.path().join("haproxy.cfg");
        let web = service("web");
        let status = lb.ensure(&web, &[node("a", "10.0.0.1")]).await.unwrap();
        assert_eq!(ip(&status), "192.0.2.10");
        assert_eq!(lb.get(&web).await.unwrap(), Some(status.clone()));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("bind 192.0.2.10:80") && text.contains("server a 10.0.0.1:30080"),
            "{text}"
        );
        assert_eq!(
            ip(&lb.ensure(&web, &[node("a", "10.0.0.1")]).await.unwrap()),
            "192.0.2.10",
            "stable"
        );

        lb.update(&web, &[node("b", "10.0.0.2")]).await.unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("server b 10.0.0.2:30080") && !text.contains("server a "),
            "{text}"
        );

        lb.delete(&web).await.unwrap();
        assert!(!std::fs::read_to_string(&path).unwrap().contains("frontend"));
        assert_eq!(lb.get(&web).await.unwrap(), None);
        lb.delete(&web).await.unwrap();
    }

    #[tokio::test]
    async fn a_restarted_provider_gives_back_the_address_in_the_status() {
        let dir = tempfile::tempdir().unwrap();
        let lb = provider(dir.path(), None);
        let mut web = service("web");
        web.status = Some(ServiceStatus {
            load_balancer: Some(status("192.0.2.11".parse().unwrap())),
            ..Default::default()
        });
        assert_eq!(ip(&lb.ensure(&web, &[]).await.unwrap()), "192.0.2.11");
        assert_eq!(
            ip(&lb.ensure(&service("api"), &[]).await.unwrap()),
            "192.0.2.10"
        );
        assert!(matches!(
            lb.ensure(&service("more"), &[]).await,
            Err(ProviderError::PoolExhausted { .. })
        ));
    }

    #[tokio::test]
    async fn adopted_services_keep_their_addresses_and_their_frontends() {
        let dir = tempfile::tempdir().unwrap();
        let lb = provider(dir.path(), None);
        let mut web = service("web");
        web.status = Some(ServiceStatus {
            load_balancer: Some(status("192.0.2.10".parse().unwrap())),
            ..Default::default()
        });
        lb.adopt(std::slice::from_ref(&web), &[node("a", "10.0.0.1")])
            .await
            .unwrap();
        let fresh = lb
            .ensure(&service("new"), &[node("a", "10.0.0.1")])
            .await
            .unwrap();
        assert_eq!(
            ip(&fresh),
            "192.0.2.11",
            "the adopted address is not handed out"
        );
        let text = std::fs::read_to_string(dir.path().join("haproxy.cfg")).unwrap();
        assert!(
            text.contains("bind 192.0.2.10:80") && text.contains("bind 192.0.2.11:80"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_failed_reload_is_an_error_and_retried() {
        let dir = tempfile::tempdir().unwrap();
        let lb = provider(dir.path(), Some(vec!["false".into()]));
        let web = service("web");
        assert!(matches!(
            lb.ensure(&web, &[]).await,
            Err(ProviderError::Transient { .. })
        ));
        assert!(
            matches!(
                lb.ensure(&web, &[]).await,
                Err(ProviderError::Transient { .. })
            ),
            "reloads again"
        );
        let ok = provider(dir.path(), Some(vec!["true".into()]));
        ok.ensure(&web, &[]).await.unwrap();
    }

    /// A load-balancer host whose interface holds what the provider's `ip`
    /// commands put there, and which records every step.
    #[derive(Debug, Default)]
    struct RecordingHost {
        addresses: std::sync::Mutex<BTreeSet<String>>,
        steps: std::sync::Mutex<Vec<String>>,
    }

    #[async_trait::async_trait]
    impl ConfigTarget for RecordingHost {
        async fn install(&self, text: &str) -> Result<(), InstallError> {
            let binds = text.lines().filter(|l| l.contains("bind ")).count();
            self.steps
                .lock()
                .unwrap()
                .push(format!("install {binds} binds"));
            Ok(())
        }

        async fn run(&self, commands: &[Vec<String>]) -> Result<Vec<String>, InstallError> {
            let mut addresses = self.addresses.lock().unwrap();
            let mut outputs = Vec::new();
            for command in commands {
                self.steps.lock().unwrap().push(command.join(" "));
                match command[2].as_str() {
                    "add" => drop(addresses.insert(command[3].clone())),
                    "del" => drop(addresses.remove(&command[3])),
                    _ => outputs.push(
                        addresses
                            .iter()
                            .map(|a| format!("2: eth0    inet {a} scope global eth0\n"))
                            .collect(),
                    ),
                }
            }
            Ok(outputs)
        }
    }

    #[tokio::test]
    async fn assigned_addresses_are_put_on_the_interface_before_the_reload_and_removed_after() {
        let host = Arc::new(RecordingHost::default());
        let pool = AddressPool::new("test", &["192.0.2.10-192.0.2.11"]).unwrap();
        let lb = HaproxyProvider::new(pool, Settings::default(), host.clone())
            .with_interface(PoolInterface::new("eth0"));
        lb.ensure(&service("web"), &[]).await.unwrap();
        lb.ensure(&service("api"), &[]).await.unwrap();
        lb.delete(&service("web")).await.unwrap();
        assert_eq!(
            *host.steps.lock().unwrap(),
            [
                "ip -o addr show dev eth0",
                "ip addr add 192.0.2.10/32 dev eth0",
                "install 1 binds",
                "ip -o addr show dev eth0",
                "ip addr add 192.0.2.11/32 dev eth0",
                "install 2 binds",
                "ip -o addr show dev eth0",
                "install 1 binds",
                "ip addr del 192.0.2.10/32 dev eth0",
            ]
        );
        assert_eq!(
            *host.addresses.lock().unwrap(),
            BTreeSet::from(["192.0.2.11/32".to_owned()])
        );
    }

    #[test]
    fn status_names_the_address_as_a_proxy() {
        let status = status("192.0.2.10".parse().unwrap());
        let ingress = &status.ingress.unwrap()[0];
        assert_eq!(ingress.ip.as_deref(), Some("192.0.2.10"));
        assert_eq!(ingress.ip_mode.as_deref(), Some("Proxy"));
        assert_eq!(ingress.hostname, None);
    }
}
