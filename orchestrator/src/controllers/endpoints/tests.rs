//! Tables of cases for the pure part: which pods a Service's Endpoints list,
//! under which port, ready or not, and how subsets are packed.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, PodCondition, PodIP, PodSpec, PodStatus, ServiceSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::*;

/// A pod `name` labelled app=web with IP `ip` (None: no IP yet), Ready or
/// not, with a container port named `http` on 8080 and `metrics` on 9090.
pub(crate) fn pod(name: &str, ip: Option<&str>, ready: bool) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("ns".into()),
            uid: Some(format!("uid-{name}")),
            labels: Some(BTreeMap::from([("app".into(), "web".into())])),
            ..Default::default()
        },
        spec: Some(PodSpec {
            node_name: Some("node-1".into()),
            containers: vec![Container {
                name: "c".into(),
                ports: Some(vec![
                    ContainerPort {
                        name: Some("http".into()),
                        container_port: 8080,
                        ..Default::default()
                    },
                    ContainerPort {
                        name: Some("metrics".into()),
                        container_port: 9090,
                        ..Default::default()
                    },
                ]),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: Some(PodStatus {
            phase: Some("Running".into()),
            pod_ip: ip.map(str::to_owned),
            pod_ips: ip.map(|ip| vec![PodIP { ip: ip.into() }]),
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                ..Default::default()
            }]),
            ..Default::default()
        }),
    }
}

/// A Service `web` selecting app=web with the given ports (name, port, targetPort).
pub(crate) fn service(ports: &[(&str, i32, IntOrString)]) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("ns".into()),
            uid: Some("uid-svc".into()),
            labels: Some(BTreeMap::from([("team".into(), "a".into())])),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            cluster_ip: Some("10.43.0.10".into()),
            selector: Some(BTreeMap::from([("app".into(), "web".into())])),
            ports: Some(
                ports
                    .iter()
                    .map(|(name, port, target)| ServicePort {
                        name: Some(name.to_string()).filter(|n| !n.is_empty()),
                        port: *port,
                        target_port: Some(target.clone()),
                        protocol: Some("TCP".into()),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }),
        status: None,
    }
}

fn terminating(mut pod: Pod) -> Pod {
    pod.metadata.deletion_timestamp = Some(Time(jiff::Timestamp::UNIX_EPOCH));
    pod
}

/// A subset as (ready IPs, not-ready IPs, ports) for compact expectations.
type Shape = (Vec<String>, Vec<String>, Vec<(Option<String>, i32)>);

fn shape(subsets: &[EndpointSubset]) -> Vec<Shape> {
    let ips = |a: &Option<Vec<EndpointAddress>>| {
        a.iter().flatten().map(|a| a.ip.clone()).collect::<Vec<_>>()
    };
    subsets
        .iter()
        .map(|s| {
            (
                ips(&s.addresses),
                ips(&s.not_ready_addresses),
                s.ports
                    .iter()
                    .flatten()
                    .map(|p| (p.name.clone(), p.port))
                    .collect(),
            )
        })
        .collect()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn desired_subsets_follow_readiness_ports_and_pod_state() {
    let http = || IntOrString::String("http".into());
    struct Case {
        name: &'static str,
        service: Service,
        pods: Vec<Pod>,
        want: Vec<Shape>,
    }
    let mut publish = service(&[("", 80, IntOrString::Int(8080))]);
    publish.spec.as_mut().unwrap().publish_not_ready_addresses = Some(true);
    let mut headless = service(&[]);
    headless.spec.as_mut().unwrap().cluster_ip = Some("None".into());
    let mut db = pod("db", Some("10.42.0.9"), true);
    db.metadata.labels = Some(BTreeMap::from([("app".into(), "db".into())]));
    let mut unnamed = pod("b", Some("10.42.0.2"), true);
    unnamed.spec.as_mut().unwrap().containers[0].ports = None;
    let cases = vec![
        Case {
            name: "numeric targetPort, ready pods in addresses, sorted by IP",
            service: service(&[("", 80, IntOrString::Int(8080))]),
            pods: vec![
                pod("b", Some("10.42.0.2"), true),
                pod("a", Some("10.42.0.1"), true),
            ],
            want: vec![(
                strings(&["10.42.0.1", "10.42.0.2"]),
                vec![],
                vec![(None, 8080)],
            )],
        },
        Case {
            name: "not-ready pods go to notReadyAddresses in the same subset",
            service: service(&[("", 80, IntOrString::Int(8080))]),
            pods: vec![
                pod("a", Some("10.42.0.1"), true),
                pod("b", Some("10.42.0.2"), false),
            ],
            want: vec![(
                strings(&["10.42.0.1"]),
                strings(&["10.42.0.2"]),
                vec![(None, 8080)],
            )],
        },
        Case {
            name: "pods without an IP, terminating pods and unselected pods are left out",
            service: service(&[("", 80, IntOrString::Int(8080))]),
            pods: vec![
                pod("a", Some("10.42.0.1"), true),
                pod("noip", None, true),
                terminating(pod("gone", Some("10.42.0.3"), true)),
                db,
            ],
            want: vec![(strings(&["10.42.0.1"]), vec![], vec![(None, 8080)])],
        },
        Case {
            name: "publishNotReadyAddresses lists not-ready and terminating pods as ready",
            service: publish,
            pods: vec![
                pod("a", Some("10.42.0.1"), false),
                terminating(pod("b", Some("10.42.0.2"), true)),
            ],
            want: vec![(
                strings(&["10.42.0.1", "10.42.0.2"]),
                vec![],
                vec![(None, 8080)],
            )],
        },
        Case {
            name: "named targetPort resolves per pod; pods with other ports get their own subset",
            service: service(&[("web", 80, http())]),
            pods: vec![pod("a", Some("10.42.0.1"), true), {
                let mut p = pod("c", Some("10.42.0.3"), true);
                p.spec.as_mut().unwrap().containers[0]
                    .ports
                    .as_mut()
                    .unwrap()[0]
                    .container_port = 8443;
                p
            }],
            want: vec![
                (
                    strings(&["10.42.0.1"]),
                    vec![],
                    vec![(Some("web".into()), 8080)],
                ),
                (
                    strings(&["10.42.0.3"]),
                    vec![],
                    vec![(Some("web".into()), 8443)],
                ),
            ],
        },
        Case {
            name: "a pod where a named port does not resolve offers only the others",
            service: service(&[
                ("web", 80, http()),
                ("metrics", 9090, IntOrString::Int(9090)),
            ]),
            pods: vec![pod("a", Some("10.42.0.1"), true), unnamed],
            want: vec![
                (
                    strings(&["10.42.0.1"]),
                    vec![],
                    vec![(Some("web".into()), 8080)],
                ),
                (
                    strings(&["10.42.0.1", "10.42.0.2"]),
                    vec![],
                    vec![(Some("metrics".into()), 9090)],
                ),
            ],
        },
        Case {
            name: "headless Service without ports lists addresses with no ports",
            service: headless,
            pods: vec![pod("a", Some("10.42.0.1"), true)],
            want: vec![(strings(&["10.42.0.1"]), vec![], vec![])],
        },
    ];
    for case in cases {
        let pods: Vec<&Pod> = case.pods.iter().collect();
        let got = desired_subsets(&case.service, &pods);
        assert_eq!(shape(&got), case.want, "{}", case.name);
    }
}

#[test]
fn addresses_carry_node_name_and_pod_reference() {
    let svc = service(&[("", 80, IntOrString::Int(8080))]);
    let p = pod("a", Some("10.42.0.1"), true);
    let subsets = desired_subsets(&svc, &[&p]);
    let address = &subsets[0].addresses.as_ref().unwrap()[0];
    assert_eq!(address.node_name.as_deref(), Some("node-1"));
    let target = address.target_ref.as_ref().unwrap();
    assert_eq!(target.kind.as_deref(), Some("Pod"));
    assert_eq!(target.name.as_deref(), Some("a"));
    assert_eq!(target.namespace.as_deref(), Some("ns"));
    assert_eq!(target.uid.as_deref(), Some("uid-a"));
    assert_eq!(
        subsets[0].ports.as_ref().unwrap()[0].protocol.as_deref(),
        Some("TCP")
    );
}

#[test]
fn endpoints_get_service_labels_manager_and_headless_marker() {
    let mut svc = service(&[("", 80, IntOrString::Int(8080))]);
    let ep = desired_endpoints(&svc, &[], None);
    let labels = ep.metadata.labels.clone().unwrap();
    assert_eq!(labels.get("team").map(String::as_str), Some("a"));
    assert_eq!(
        labels.get(LABEL_MANAGED_BY).map(String::as_str),
        Some(CONTROLLER_NAME)
    );
    assert!(!labels.contains_key(LABEL_HEADLESS));
    assert_eq!(ep.metadata.name.as_deref(), Some("web"));
    assert!(ep.subsets.is_none());
    svc.spec.as_mut().unwrap().cluster_ip = Some("None".into());
    let headless = desired_endpoints(&svc, &[], None);
    assert!(headless
        .metadata
        .labels
        .unwrap()
        .contains_key(LABEL_HEADLESS));
}

#[test]
fn an_unchanged_world_needs_no_write() {
    let svc = service(&[("", 80, IntOrString::Int(8080))]);
    let (a, b) = (
        pod("a", Some("10.42.0.1"), true),
        pod("b", Some("10.42.0.2"), false),
    );
    let mut current = desired_endpoints(&svc, &[&a, &b], None);
    current.metadata.resource_version = Some("7".into());
    // The same pods in another order: nothing to write.
    let again = desired_endpoints(&svc, &[&b, &a], Some(&current));
    assert!(!endpoints_differ(&current, &again));
    assert_eq!(again.metadata.resource_version.as_deref(), Some("7"));
    // Empty lists read back from a server compare equal to absent ones.
    let mut read_back = current.clone();
    read_back.subsets.as_mut().unwrap()[0]
        .ports
        .as_mut()
        .unwrap()[0]
        .app_protocol = None;
    assert!(!endpoints_differ(&read_back, &again));
    // b turning ready is a change.
    let b_ready = pod("b", Some("10.42.0.2"), true);
    let changed = desired_endpoints(&svc, &[&a, &b_ready], Some(&current));
    assert!(endpoints_differ(&current, &changed));
}

#[test]
fn services_without_selector_or_external_name_are_not_managed() {
    let mut svc = service(&[]);
    assert!(service_is_managed(&svc));
    svc.spec.as_mut().unwrap().type_ = Some("ExternalName".into());
    assert!(!service_is_managed(&svc));
    let mut manual = service(&[]);
    manual.spec.as_mut().unwrap().selector = None;
    assert!(!service_is_managed(&manual));
    assert!(!service_selects(
        &manual,
        &pod("a", Some("10.42.0.1"), true)
    ));
}

#[test]
fn finished_pods_leave_by_restart_policy() {
    let cases = [
        (Some("Never"), "Succeeded", false),
        (Some("Never"), "Failed", false),
        (Some("OnFailure"), "Succeeded", false),
        (Some("OnFailure"), "Failed", true),
        (None, "Failed", true),
    ];
    for (policy, phase, want) in cases {
        let mut p = pod("a", Some("10.42.0.1"), true);
        p.spec.as_mut().unwrap().restart_policy = policy.map(str::to_owned);
        p.status.as_mut().unwrap().phase = Some(phase.into());
        assert_eq!(
            pod_should_be_in_endpoints(&p, false),
            want,
            "{policy:?} {phase}"
        );
    }
}
