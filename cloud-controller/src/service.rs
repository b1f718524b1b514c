//! The service controller's decisions, as plain functions over Services:
//! which Services are ours, what to do with each (ensure or clean up), the
//! finalizer and status patches, and which changes need the provider. The
//! loop that watches and patches calls these; they never do I/O.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{LoadBalancerStatus, Service, ServicePort};
use serde_json::{json, Value};

/// Keeps a Service in the API until its load balancer is gone, so deleting
/// it never leaks one (upstream's name, so tools that know it still work).
pub const FINALIZER: &str = "service.kubernetes.io/load-balancer-cleanup";

/// The prefix of the `spec.loadBalancerClass` values this controller
/// answers: `berth.dev/haproxy`, `berth.dev/aws`.
pub const CLASS_PREFIX: &str = "berth.dev/";

/// Which Services this controller answers, and through which provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classes {
    /// The provider for Services without `spec.loadBalancerClass`; None when
    /// another controller is the cluster's default.
    pub default: Option<String>,
    /// Every provider configured, by name.
    pub providers: Vec<String>,
}

impl Classes {
    /// The provider that owns `service`, or None when it belongs to another
    /// load-balancer controller (or to none). The type is not looked at, so
    /// a Service changed away from LoadBalancer still finds its provider.
    pub fn provider_for(&self, service: &Service) -> Option<&str> {
        let class = service
            .spec
            .as_ref()
            .and_then(|s| s.load_balancer_class.as_deref());
        match class {
            None => self.default.as_deref(),
            Some(class) => {
                let name = class.strip_prefix(CLASS_PREFIX)?;
                self.providers
                    .iter()
                    .find(|p| *p == name)
                    .map(String::as_str)
            }
        }
    }
}

/// What the controller must do for one Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action<'a> {
    /// Not ours, or nothing left to do.
    Ignore,
    /// Add the finalizer, then create or update its load balancer.
    Ensure {
        /// The provider to call.
        provider: &'a str,
    },
    /// Delete its load balancer, clear its status, then drop the finalizer.
    Cleanup {
        /// The provider to call.
        provider: &'a str,
    },
}

/// Whether `service` asks for a load balancer at all.
pub fn is_load_balancer(service: &Service) -> bool {
    service.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("LoadBalancer")
}

/// Whether `service` carries the cleanup finalizer.
pub fn has_finalizer(service: &Service) -> bool {
    service
        .metadata
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == FINALIZER)
}

/// Upstream's `wantsLoadBalancer` / `needsCleanup` split: a Service of ours
/// that is being deleted or is no longer of type LoadBalancer is cleaned up
/// while it still has the finalizer; one that wants a balancer is ensured.
pub fn action<'a>(classes: &'a Classes, service: &Service) -> Action<'a> {
    let Some(provider) = classes.provider_for(service) else {
        return Action::Ignore;
    };
    let deleting = service.metadata.deletion_timestamp.is_some();
    if has_finalizer(service) && (deleting || !is_load_balancer(service)) {
        Action::Cleanup { provider }
    } else if is_load_balancer(service) && !deleting {
        Action::Ensure { provider }
    } else {
        Action::Ignore
    }
}

/// The merge patch that adds the finalizer, guarded by the resourceVersion
/// read so a concurrent writer makes it fail (409) instead of being
/// overwritten; None when it is already there.
pub fn add_finalizer_patch(service: &Service) -> Option<Value> {
    if has_finalizer(service) {
        return None;
    }
    let mut finalizers = service.metadata.finalizers.clone().unwrap_or_default();
    finalizers.push(FINALIZER.into());
    Some(finalizers_patch(service, finalizers))
}

/// The merge patch that removes the finalizer (only after the load
/// balancer is gone), guarded the same way; None when it is not there.
pub fn remove_finalizer_patch(service: &Service) -> Option<Value> {
    if !has_finalizer(service) {
        return None;
    }
    let finalizers = service
        .metadata
        .finalizers
        .iter()
        .flatten()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    Some(finalizers_patch(service, finalizers))
}

/// A merge patch replacing the whole list: a JSON Patch `test` of an absent
/// list is answered differently by different API servers.
fn finalizers_patch(service: &Service, finalizers: Vec<String>) -> Value {
    json!({"metadata": {"finalizers": finalizers, "resourceVersion": service.metadata.resource_version}})
}

/// The merge patch for the `status` subresource that sets
/// `status.loadBalancer` to `desired`; None when it already says that, so
/// a resync writes nothing.
pub fn status_patch(service: &Service, desired: &LoadBalancerStatus) -> Option<Value> {
    let current = service
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.clone())
        .unwrap_or_default();
    let normalise = |s: &LoadBalancerStatus| s.ingress.clone().unwrap_or_default();
    if normalise(&current) == normalise(desired) {
        return None;
    }
    // An empty list, not null: a merge patch with null would leave some
    // servers' defaulted `{}` in place, and kubectl shows `<pending>` for both.
    let ingress = desired.ingress.clone().unwrap_or_default();
    Some(json!({"status": {"loadBalancer": {"ingress": ingress}}}))
}

/// Whether a change from `old` to `new` changes what the provider must
/// build (upstream's `needsUpdate`): type or class, ports, requested
/// address, source ranges, traffic policy and its health-check NodePort,
/// annotations (provider options), identity, deletion.
pub fn needs_update(old: &Service, new: &Service) -> bool {
    let spec = |s: &Service| s.spec.clone().unwrap_or_default();
    let (o, n) = (spec(old), spec(new));
    is_load_balancer(old) != is_load_balancer(new)
        || o.load_balancer_class != n.load_balancer_class
        || lb_ports(&o.ports) != lb_ports(&n.ports)
        || o.load_balancer_ip != n.load_balancer_ip
        || sorted(&o.load_balancer_source_ranges) != sorted(&n.load_balancer_source_ranges)
        || sorted(&o.external_ips) != sorted(&n.external_ips)
        || o.session_affinity != n.session_affinity
        || o.external_traffic_policy != n.external_traffic_policy
        || o.health_check_node_port != n.health_check_node_port
        || o.ip_families.as_ref().map(Vec::len) != n.ip_families.as_ref().map(Vec::len)
        || annotations(old) != annotations(new)
        || old.metadata.uid != new.metadata.uid
        || old.metadata.deletion_timestamp.is_some() != new.metadata.deletion_timestamp.is_some()
        || has_finalizer(old) != has_finalizer(new)
}

/// The port fields a load balancer is built from: name, protocol, port and
/// NodePort (a port's target port only matters to kube-proxy).
type LbPort<'a> = (Option<&'a str>, Option<&'a str>, i32, Option<i32>);

fn lb_ports(ports: &Option<Vec<ServicePort>>) -> Vec<LbPort<'_>> {
    ports
        .iter()
        .flatten()
        .map(|p| {
            (
                p.name.as_deref(),
                p.protocol.as_deref(),
                p.port,
                p.node_port,
            )
        })
        .collect()
}

fn sorted(list: &Option<Vec<String>>) -> Vec<String> {
    let mut list = list.clone().unwrap_or_default();
    list.sort();
    list
}

fn annotations(service: &Service) -> BTreeMap<String, String> {
    service.metadata.annotations.clone().unwrap_or_default()
}

/// The health-check NodePort a load balancer must probe (`/healthz`) when
/// the Service keeps traffic on nodes with a local endpoint
/// (`externalTrafficPolicy: Local`); None for `Cluster`.
pub fn health_check_node_port(service: &Service) -> Option<u16> {
    let spec = service.spec.as_ref()?;
    if spec.external_traffic_policy.as_deref() != Some("Local") {
        return None;
    }
    spec.health_check_node_port
        .and_then(|p| u16::try_from(p).ok())
}

/// Why no provider can balance `service`: every provider forwards to the
/// nodes' NodePorts, and some of its ports have none (upstream's providers
/// with instance targets need them too). None when each port has one.
pub fn missing_node_ports(service: &Service) -> Option<String> {
    let spec = service.spec.as_ref()?;
    let missing: Vec<String> = spec
        .ports
        .iter()
        .flatten()
        .filter(|p| p.node_port.is_none())
        .map(|p| p.port.to_string())
        .collect();
    if missing.is_empty() {
        return None;
    }
    let ports = missing.join(", ");
    let why = if spec.allocate_load_balancer_node_ports == Some(false) {
        "spec.allocateLoadBalancerNodePorts is false, so none was allocated"
    } else {
        "none is allocated yet"
    };
    Some(format!(
        "cannot create a load balancer: port(s) {ports} have no NodePort ({why}), and this \
         cluster's load balancers forward to NodePorts on the nodes; set \
         spec.allocateLoadBalancerNodePorts to true (or a nodePort on every port)"
    ))
}

/// `namespace/name`, the key of logs, events and load-balancer names.
pub fn key(service: &Service) -> String {
    format!(
        "{}/{}",
        service.metadata.namespace.as_deref().unwrap_or("default"),
        service.metadata.name.as_deref().unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::lb_service;
    use k8s_openapi::api::core::v1::{LoadBalancerIngress, ServiceSpec, ServiceStatus};

    #[test]
    fn ports_without_a_node_port_are_named_with_the_fix() {
        let mut svc = lb_service("web", &[(80, 30080), (443, 30443)]);
        assert_eq!(missing_node_ports(&svc), None);
        let spec = svc.spec.as_mut().unwrap();
        spec.allocate_load_balancer_node_ports = Some(false);
        spec.ports.as_mut().unwrap()[1].node_port = None;
        let reason = missing_node_ports(&svc).expect("a reason");
        assert!(reason.contains("port(s) 443 have no NodePort"), "{reason}");
        assert!(
            reason.contains("allocateLoadBalancerNodePorts is false"),
            "{reason}"
        );
        assert!(
            reason.contains("set spec.allocateLoadBalancerNodePorts to true"),
            "{reason}"
        );
    }

    fn service(type_: &str, class: Option<&str>) -> Service {
        let mut service = lb_service("web", &[(80, 30080)]);
        let spec = service.spec.as_mut().unwrap();
        spec.type_ = Some(type_.into());
        spec.load_balancer_class = class.map(Into::into);
        spec.ports.as_mut().unwrap()[0].name = Some("http".into());
        service
    }
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn classes() -> Classes {
        Classes {
            default: Some("haproxy".into()),
            providers: vec!["haproxy".into(), "aws".into()],
        }
    }

    fn finalized(mut service: Service) -> Service {
        service.metadata.finalizers = Some(vec![FINALIZER.into()]);
        service
    }

    fn deleting(mut service: Service) -> Service {
        service.metadata.deletion_timestamp = Some(Time(Default::default()));
        service
    }

    #[test]
    fn action_follows_type_class_finalizer_and_deletion() {
        let classes = classes();
        let haproxy = "haproxy";
        let cases = [
            (
                "LB without class, default ours",
                service("LoadBalancer", None),
                Action::Ensure { provider: haproxy },
            ),
            (
                "LB with our class",
                service("LoadBalancer", Some("berth.dev/aws")),
                Action::Ensure { provider: "aws" },
            ),
            (
                "LB with a class we lack",
                service("LoadBalancer", Some("berth.dev/gce")),
                Action::Ignore,
            ),
            (
                "LB of another controller",
                service("LoadBalancer", Some("service.k8s.aws/nlb")),
                Action::Ignore,
            ),
            (
                "ClusterIP never had one",
                service("ClusterIP", None),
                Action::Ignore,
            ),
            (
                "changed to ClusterIP",
                finalized(service("ClusterIP", None)),
                Action::Cleanup { provider: haproxy },
            ),
            (
                "deleted with finalizer",
                deleting(finalized(service("LoadBalancer", None))),
                Action::Cleanup { provider: haproxy },
            ),
            (
                "deleted, finalizer gone",
                deleting(service("LoadBalancer", None)),
                Action::Ignore,
            ),
            (
                "ensured already",
                finalized(service("LoadBalancer", None)),
                Action::Ensure { provider: haproxy },
            ),
            (
                "another class keeps its shared finalizer",
                deleting(finalized(service("LoadBalancer", Some("example.com/lb")))),
                Action::Ignore,
            ),
        ];
        for (case, service, want) in cases {
            assert_eq!(action(&classes, &service), want, "{case}");
        }
        let not_default = Classes {
            default: None,
            ..classes.clone()
        };
        assert_eq!(
            action(&not_default, &service("LoadBalancer", None)),
            Action::Ignore
        );
    }

    #[test]
    fn finalizer_patches_keep_other_finalizers_and_guard_the_version() {
        let mut bare = service("LoadBalancer", None);
        bare.metadata.resource_version = Some("7".into());
        assert_eq!(
            add_finalizer_patch(&bare),
            Some(json!({"metadata": {"finalizers": [FINALIZER], "resourceVersion": "7"}}))
        );
        let mut other = bare.clone();
        other.metadata.finalizers = Some(vec!["example.com/keep".into()]);
        assert_eq!(
            add_finalizer_patch(&other),
            Some(
                json!({"metadata": {"finalizers": ["example.com/keep", FINALIZER], "resourceVersion": "7"}})
            )
        );
        assert_eq!(add_finalizer_patch(&finalized(bare.clone())), None);

        other
            .metadata
            .finalizers
            .as_mut()
            .unwrap()
            .push(FINALIZER.into());
        assert_eq!(
            remove_finalizer_patch(&other),
            Some(json!({"metadata": {"finalizers": ["example.com/keep"], "resourceVersion": "7"}}))
        );
        assert_eq!(
            remove_finalizer_patch(&finalized(bare.clone())),
            Some(json!({"metadata": {"finalizers": [], "resourceVersion": "7"}}))
        );
        assert_eq!(remove_finalizer_patch(&bare), None);
    }

    #[test]
    fn status_patch_writes_only_a_change() {
        let ingress = |ip: &str| LoadBalancerStatus {
            ingress: Some(vec![LoadBalancerIngress {
                ip: Some(ip.into()),
                ip_mode: Some("Proxy".into()),
                ..Default::default()
            }]),
        };
        let mut svc = service("LoadBalancer", None);
        let patch = status_patch(&svc, &ingress("192.0.2.10")).unwrap();
        assert_eq!(
            patch,
            json!({"status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.10", "ipMode": "Proxy"}]}}})
        );
        svc.status = Some(ServiceStatus {
            load_balancer: Some(ingress("192.0.2.10")),
            ..Default::default()
        });
        assert_eq!(
            status_patch(&svc, &ingress("192.0.2.10")),
            None,
            "unchanged"
        );
        assert_eq!(
            status_patch(&svc, &LoadBalancerStatus::default()),
            Some(json!({"status": {"loadBalancer": {"ingress": []}}})),
            "cleanup clears it"
        );
        assert_eq!(
            status_patch(
                &service("LoadBalancer", None),
                &LoadBalancerStatus {
                    ingress: Some(vec![])
                }
            ),
            None,
            "empty equals absent"
        );
    }

    #[test]
    fn needs_update_sees_what_the_balancer_is_built_from() {
        let old = finalized(service("LoadBalancer", None));
        let change = |f: &dyn Fn(&mut Service)| {
            let mut new = old.clone();
            f(&mut new);
            needs_update(&old, &new)
        };
        fn spec(s: &mut Service) -> &mut ServiceSpec {
            s.spec.as_mut().unwrap()
        }
        assert!(!change(&|_| {}), "no change");
        assert!(
            !change(&|s| s.metadata.labels = Some([("a".into(), "b".into())].into())),
            "labels"
        );
        assert!(
            !change(&|s| spec(s).selector = Some([("app".into(), "v2".into())].into())),
            "selector"
        );
        assert!(
            change(&|s| spec(s).ports.as_mut().unwrap()[0].port = 8080),
            "port"
        );
        assert!(
            change(&|s| spec(s).ports.as_mut().unwrap()[0].node_port = Some(30081)),
            "nodePort"
        );
        assert!(change(&|s| spec(s).ports.as_mut().unwrap().push(
            ServicePort {
                port: 443,
                ..Default::default()
            }
        )));
        assert!(change(&|s| spec(s).type_ = Some("NodePort".into())), "type");
        assert!(
            change(&|s| spec(s).external_traffic_policy = Some("Local".into())),
            "policy"
        );
        assert!(
            change(&|s| spec(s).health_check_node_port = Some(32000)),
            "health-check port"
        );
        assert!(
            change(&|s| spec(s).load_balancer_ip = Some("192.0.2.9".into())),
            "requested address"
        );
        assert!(change(
            &|s| spec(s).load_balancer_source_ranges = Some(vec!["10.0.0.0/8".into()])
        ));
        assert!(change(
            &|s| s.metadata.annotations = Some([("berth.dev/x".into(), "1".into())].into())
        ));
        assert!(
            change(&|s| s.metadata.uid = Some("other".into())),
            "recreated"
        );
        assert!(
            change(&|s| s.metadata.deletion_timestamp = Some(Time(Default::default()))),
            "deleted"
        );
    }

    #[test]
    fn health_check_port_only_for_local_traffic_policy() {
        let mut svc = service("LoadBalancer", None);
        svc.spec.as_mut().unwrap().health_check_node_port = Some(32000);
        svc.spec.as_mut().unwrap().external_traffic_policy = Some("Cluster".into());
        assert_eq!(health_check_node_port(&svc), None);
        svc.spec.as_mut().unwrap().external_traffic_policy = Some("Local".into());
        assert_eq!(health_check_node_port(&svc), Some(32000));
        assert_eq!(key(&svc), "shop/web");
    }
}
