//! The `haproxy` provider for bare metal: addresses from a pool like
//! MetalLB's IPAddressPool, and an `haproxy.cfg` with one TCP frontend per
//! Service port, installed through a [`target::ConfigTarget`] (a file on
//! this host, or one over SSH from `berth`) only when it changes.

pub mod config;
pub mod pool;
pub mod target;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{LoadBalancerIngress, LoadBalancerStatus, Service};
use tokio::sync::Mutex;

use crate::nodes::TargetNode;
use crate::provider::{LoadBalancerProvider, ProviderError};
use crate::service::key;
use config::{render, Frontend, Settings};
use pool::{requested_address, AddressPool, PoolError};
use target::{ConfigTarget, InstallError};

/// Balances Services with one HAProxy, local or remote.
#[derive(Debug)]
pub struct HaproxyProvider {
    target: Arc<dyn ConfigTarget>,
    settings: Settings,
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
            state: Mutex::new(state),
        }
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
        self.target.install(&text).await.map_err(|e| {
            let (operation, reason) = match e {
                InstallError::Write(r) => ("writing haproxy.cfg", r),
                InstallError::Invalid(r) => ("checking haproxy.cfg with haproxy -c", r),
                InstallError::Reload(r) => ("reloading haproxy", r),
            };
            ProviderError::Transient { operation, reason }
        })?;
        state.written = Some(text);
        Ok(())
    }
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

    #[test]
    fn status_names_the_address_as_a_proxy() {
        let status = status("192.0.2.10".parse().unwrap());
        let ingress = &status.ingress.unwrap()[0];
        assert_eq!(ingress.ip.as_deref(), Some("192.0.2.10"));
        assert_eq!(ingress.ip_mode.as_deref(), Some("Proxy"));
        assert_eq!(ingress.hostname, None);
    }
}
