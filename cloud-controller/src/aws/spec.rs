//! What a Service asks of its network load balancer: scheme, subnets,
//! cross-zone, health check and one listener and target group per port,
//! read from its spec and upstream's `service.beta.kubernetes.io/aws-*`
//! annotations. Pure: a bad annotation is an [`ProviderError::Invalid`]
//! before anything is called.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Service;

use super::names;
use crate::provider::ProviderError;
use crate::service::{health_check_node_port, key};

const PREFIX: &str = "service.beta.kubernetes.io/aws-load-balancer-";

/// The scheme a load balancer is made with (it cannot change afterwards).
pub const INTERNAL: &str = "internal";
/// The default scheme.
pub const INTERNET_FACING: &str = "internet-facing";

/// A target group's health check, as ELBv2 takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// `TCP`, `HTTP` or `HTTPS`.
    pub protocol: String,
    /// A port number or `traffic-port`.
    pub port: String,
    /// The HTTP(S) path; None for TCP.
    pub path: Option<String>,
    /// Seconds between checks.
    pub interval: i32,
    /// Seconds before a check fails.
    pub timeout: i32,
    /// Successes before a target is healthy.
    pub healthy: i32,
    /// Failures before a target is unhealthy.
    pub unhealthy: i32,
}

/// One Service port: a TCP listener on `port` forwarding to a target group
/// of the nodes' `node_port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    /// The listener's port.
    pub port: i32,
    /// The targets' port.
    pub node_port: i32,
    /// The target group's name.
    pub target_group: String,
}

/// Everything the provider builds for one Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LbSpec {
    /// The Service's UID, the key of its tags.
    pub uid: String,
    /// The load balancer's name.
    pub name: String,
    /// [`INTERNAL`] or [`INTERNET_FACING`].
    pub scheme: &'static str,
    /// Subnet ids, used when the load balancer is made.
    pub subnets: Vec<String>,
    /// `load_balancing.cross_zone.enabled`.
    pub cross_zone: bool,
    /// The health check of every target group.
    pub health: HealthCheck,
    /// One per Service port, in the Service's order.
    pub ports: Vec<PortSpec>,
    /// The tags of the load balancer and its target groups.
    pub tags: BTreeMap<String, String>,
}

impl LbSpec {
    /// The spec of `service` in `cluster`, with `subnets` unless the
    /// Service names its own.
    pub fn of(service: &Service, cluster: &str, subnets: &[String]) -> Result<Self, ProviderError> {
        let invalid = |reason: String| ProviderError::Invalid {
            service: key(service),
            reason,
        };
        let annotations = service.metadata.annotations.clone().unwrap_or_default();
        let get = |name: &str| annotation(&annotations, name);
        let uid = service
            .metadata
            .uid
            .clone()
            .ok_or_else(|| invalid("the Service has no UID yet".into()))?;
        let scheme = scheme(get("scheme"), get("internal")).map_err(invalid)?;
        let subnets: Vec<String> = match get("subnets") {
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            None => subnets.to_vec(),
        };
        if subnets.is_empty() {
            return Err(invalid(format!(
                "no subnets: set {PREFIX}subnets or the provider's --aws-subnets"
            )));
        }
        let cross_zone = match get("cross-zone-load-balancing-enabled") {
            None => false,
            Some(v) => v.parse().map_err(|_| {
                invalid(format!(
                    "{PREFIX}cross-zone-load-balancing-enabled: {v:?} is not true or false"
                ))
            })?,
        };
        let health = health_check(service, &annotations).map_err(invalid)?;
        let mut ports = Vec::new();
        for p in service.spec.iter().flat_map(|s| s.ports.iter().flatten()) {
            let protocol = p.protocol.as_deref().unwrap_or("TCP");
            if protocol != "TCP" {
                return Err(invalid(format!(
                    "port {}: protocol {protocol}: the aws provider balances TCP only",
                    p.port
                )));
            }
            let node_port = p
                .node_port
                .ok_or_else(|| invalid(format!("port {} has no NodePort", p.port)))?;
            ports.push(PortSpec {
                port: p.port,
                node_port,
                target_group: names::target_group(cluster, &uid, p.port, node_port),
            });
        }
        Ok(LbSpec {
            name: names::load_balancer(cluster, &uid),
            tags: names::tags(cluster, &key(service), &uid),
            uid,
            scheme,
            subnets,
            cross_zone,
            health,
            ports,
        })
    }
}

/// The value of the annotation `PREFIX` + `name`, trimmed.
fn annotation<'a>(annotations: &'a BTreeMap<String, String>, name: &str) -> Option<&'a str> {
    annotations
        .get(&format!("{PREFIX}{name}"))
        .map(|v| v.trim())
}

/// Upstream: `-scheme` wins; else `-internal` set to anything but false
/// (`true`, `0.0.0.0/0`) makes it internal.
fn scheme(scheme: Option<&str>, internal: Option<&str>) -> Result<&'static str, String> {
    match (scheme, internal) {
        (Some(INTERNAL), _) => Ok(INTERNAL),
        (Some(INTERNET_FACING), _) => Ok(INTERNET_FACING),
        (Some(other), _) => Err(format!(
            "{PREFIX}scheme: {other:?} is not {INTERNAL} or {INTERNET_FACING}"
        )),
        (None, Some(v)) if !v.is_empty() && v != "false" => Ok(INTERNAL),
        (None, _) => Ok(INTERNET_FACING),
    }
}

/// TCP on the traffic port by default; HTTP `/healthz` on the health-check
/// NodePort for `externalTrafficPolicy: Local`; the `-healthcheck-*`
/// annotations override either (upstream's NLB defaults: 10 s, 3 and 3).
fn health_check(
    service: &Service,
    annotations: &BTreeMap<String, String>,
) -> Result<HealthCheck, String> {
    let get = |name: &str| annotation(annotations, name);
    let mut health = match health_check_node_port(service) {
        Some(port) => HealthCheck {
            protocol: "HTTP".into(),
            port: port.to_string(),
            path: Some("/healthz".into()),
            ..tcp_default()
        },
        None => tcp_default(),
    };
    if let Some(protocol) = get("healthcheck-protocol") {
        let protocol = protocol.to_ascii_uppercase();
        if !["TCP", "HTTP", "HTTPS"].contains(&protocol.as_str()) {
            return Err(format!(
                "{PREFIX}healthcheck-protocol: {protocol:?} is not TCP, HTTP or HTTPS"
            ));
        }
        health.protocol = protocol;
    }
    if let Some(port) = get("healthcheck-port") {
        if port != "traffic-port" && port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(format!(
                "{PREFIX}healthcheck-port: {port:?} is not a port or traffic-port"
            ));
        }
        health.port = port.to_owned();
    }
    health.path = match health.protocol.as_str() {
        "TCP" => None,
        _ => Some(
            get("healthcheck-path")
                .map(str::to_owned)
                .or(health.path)
                .unwrap_or_else(|| "/".into()),
        ),
    };
    let number = |name: &str, range: std::ops::RangeInclusive<i32>, default: i32| {
        let Some(value) = get(name) else {
            return Ok(default);
        };
        value
            .parse()
            .ok()
            .filter(|n| range.contains(n))
            .ok_or_else(|| format!("{PREFIX}{name}: {value:?} is not a number in {range:?}"))
    };
    health.interval = number("healthcheck-interval", 5..=300, health.interval)?;
    health.timeout = number("healthcheck-timeout", 2..=120, health.timeout)?;
    health.healthy = number("healthcheck-healthy-threshold", 2..=10, health.healthy)?;
    health.unhealthy = number("healthcheck-unhealthy-threshold", 2..=10, health.unhealthy)?;
    Ok(health)
}

fn tcp_default() -> HealthCheck {
    HealthCheck {
        protocol: "TCP".into(),
        port: "traffic-port".into(),
        path: None,
        interval: 10,
        timeout: 10,
        healthy: 3,
        unhealthy: 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::lb_service;

    fn service(annotations: &[(&str, &str)]) -> Service {
        let mut service = lb_service("web", &[(80, 30080), (443, 30443)]);
        service.metadata.uid = Some("6f1c2b0e-7d7a-4c1e-9a55-0b3d2f9e8a11".into());
        service.metadata.annotations = Some(
            annotations
                .iter()
                .map(|(k, v)| (format!("{PREFIX}{k}"), (*v).to_owned()))
                .collect(),
        );
        service
    }

    fn spec(annotations: &[(&str, &str)]) -> Result<LbSpec, ProviderError> {
        LbSpec::of(&service(annotations), "prod", &["subnet-1".into()])
    }

    #[test]
    fn defaults_are_internet_facing_tcp_checks_and_a_group_per_port() {
        let spec = spec(&[]).unwrap();
        assert_eq!(spec.scheme, INTERNET_FACING);
        assert_eq!(spec.subnets, ["subnet-1"]);
        assert!(!spec.cross_zone);
        assert_eq!(spec.health, tcp_default());
        let ports: Vec<_> = spec.ports.iter().map(|p| (p.port, p.node_port)).collect();
        assert_eq!(ports, [(80, 30080), (443, 30443)]);
        assert_ne!(spec.ports[0].target_group, spec.ports[1].target_group);
        assert_eq!(spec.tags[names::SERVICE_NAME_TAG], "shop/web");
    }

    #[test]
    fn annotations_choose_scheme_subnets_cross_zone_and_checks() {
        let cases: [(&[(&str, &str)], &str); 5] = [
            (&[("internal", "true")], INTERNAL),
            (&[("internal", "0.0.0.0/0")], INTERNAL),
            (&[("internal", "false")], INTERNET_FACING),
            (&[("scheme", "internal")], INTERNAL),
            (
                &[("scheme", "internet-facing"), ("internal", "true")],
                INTERNET_FACING,
            ),
        ];
        for (annotations, want) in cases {
            assert_eq!(spec(annotations).unwrap().scheme, want, "{annotations:?}");
        }
        let spec = spec(&[
            ("subnets", "subnet-a, subnet-b"),
            ("cross-zone-load-balancing-enabled", "true"),
            ("healthcheck-protocol", "http"),
            ("healthcheck-path", "/ready"),
            ("healthcheck-interval", "30"),
            ("healthcheck-unhealthy-threshold", "5"),
        ])
        .unwrap();
        assert_eq!(spec.subnets, ["subnet-a", "subnet-b"]);
        assert!(spec.cross_zone);
        assert_eq!(spec.health.protocol, "HTTP");
        assert_eq!(spec.health.path.as_deref(), Some("/ready"));
        assert_eq!(spec.health.port, "traffic-port");
        assert_eq!((spec.health.interval, spec.health.unhealthy), (30, 5));
    }

    #[test]
    fn local_traffic_policy_checks_healthz_on_the_health_check_node_port() {
        let mut svc = service(&[]);
        let s = svc.spec.as_mut().unwrap();
        s.external_traffic_policy = Some("Local".into());
        s.health_check_node_port = Some(32100);
        let spec = LbSpec::of(&svc, "prod", &["subnet-1".into()]).unwrap();
        assert_eq!(spec.health.protocol, "HTTP");
        assert_eq!(spec.health.port, "32100");
        assert_eq!(spec.health.path.as_deref(), Some("/healthz"));
    }

    #[test]
    fn bad_annotations_and_ports_are_invalid() {
        let bad: [&[(&str, &str)]; 5] = [
            &[("scheme", "public")],
            &[("cross-zone-load-balancing-enabled", "yes")],
            &[("healthcheck-protocol", "UDP")],
            &[("healthcheck-port", "70000")],
            &[("healthcheck-interval", "1")],
        ];
        for annotations in bad {
            assert!(
                matches!(spec(annotations), Err(ProviderError::Invalid { .. })),
                "{annotations:?}"
            );
        }
        let no_subnets = LbSpec::of(&service(&[]), "prod", &[]);
        assert!(matches!(no_subnets, Err(ProviderError::Invalid { .. })));
        let mut udp = service(&[]);
        udp.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].protocol = Some("UDP".into());
        assert!(LbSpec::of(&udp, "prod", &["s".into()]).is_err());
    }
}
