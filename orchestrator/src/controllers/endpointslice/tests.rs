//! Tables of cases for the pure part: which slices a Service gets, what their
//! endpoints say, and that slices are reused in place and left alone when
//! nothing changed.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::*;
use crate::controllers::endpoints::tests::{pod, service};

fn terminating(mut pod: Pod) -> Pod {
    pod.metadata.deletion_timestamp = Some(Time(jiff::Timestamp::UNIX_EPOCH));
    pod
}

/// Applies `plan` to `existing` as a server would (created slices get names).
fn applied(existing: &[EndpointSlice], plan: &SlicePlan) -> Vec<EndpointSlice> {
    let mut slices: Vec<EndpointSlice> = existing
        .iter()
        .filter(|s| {
            !plan
                .delete
                .iter()
                .any(|d| d.metadata.name == s.metadata.name)
        })
        .map(|s| {
            plan.update
                .iter()
                .find(|u| u.metadata.name == s.metadata.name)
                .cloned()
                .unwrap_or_else(|| s.clone())
        })
        .collect();
    for (i, slice) in plan.create.iter().enumerate() {
        let mut slice = slice.clone();
        slice.metadata.name = Some(format!("web-{}{i}", existing.len()));
        slices.push(slice);
    }
    slices
}

/// (address, ready, serving, terminating) of every endpoint of a slice.
fn conditions(slice: &EndpointSlice) -> Vec<(String, bool, bool, bool)> {
    slice
        .endpoints
        .iter()
        .map(|e| {
            let c = e.conditions.clone().unwrap();
            (
                e.addresses[0].clone(),
                c.ready.unwrap(),
                c.serving.unwrap(),
                c.terminating.unwrap(),
            )
        })
        .collect()
}

#[test]
fn endpoints_carry_ready_serving_and_terminating() {
    let svc = service(&[("", 80, IntOrString::Int(8080))]);
    let mut publish = svc.clone();
    publish.spec.as_mut().unwrap().publish_not_ready_addresses = Some(true);
    let cases = [
        (
            "ready",
            &svc,
            pod("a", Some("10.42.0.1"), true),
            Some((true, true, false)),
        ),
        (
            "not ready",
            &svc,
            pod("a", Some("10.42.0.1"), false),
            Some((false, false, false)),
        ),
        (
            "terminating but still ready",
            &svc,
            terminating(pod("a", Some("10.42.0.1"), true)),
            Some((false, true, true)),
        ),
        (
            "publishNotReadyAddresses",
            &publish,
            pod("a", Some("10.42.0.1"), false),
            Some((true, false, false)),
        ),
        ("no IP", &svc, pod("a", None, true), None),
    ];
    for (name, service, p, want) in cases {
        let plan = plan_slices(service, &[&p], &[], MAX_ENDPOINTS_PER_SLICE);
        assert_eq!(plan.create.len(), 1, "{name}");
        let got = conditions(&plan.create[0])
            .into_iter()
            .map(|(_, r, s, t)| (r, s, t))
            .next();
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn a_new_slice_has_name_labels_owner_ports_and_references() {
    let svc = service(&[("web", 80, IntOrString::String("http".into()))]);
    let p = pod("a", Some("10.42.0.1"), true);
    let plan = plan_slices(&svc, &[&p], &[], MAX_ENDPOINTS_PER_SLICE);
    let slice = &plan.create[0];
    assert_eq!(slice.metadata.generate_name.as_deref(), Some("web-"));
    let labels = slice.metadata.labels.clone().unwrap();
    assert_eq!(labels[LABEL_SERVICE_NAME], "web");
    assert_eq!(labels[LABEL_MANAGED_BY], CONTROLLER_NAME);
    assert_eq!(labels["team"], "a");
    let owner = &slice.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        ("Service", "uid-svc")
    );
    assert_eq!(owner.controller, Some(true));
    assert_eq!(slice.address_type, "IPv4");
    let port = &slice.ports.as_ref().unwrap()[0];
    assert_eq!(
        (port.name.as_deref(), port.port, port.protocol.as_deref()),
        (Some("web"), Some(8080), Some("TCP"))
    );
    let endpoint = &slice.endpoints[0];
    assert_eq!(endpoint.node_name.as_deref(), Some("node-1"));
    assert_eq!(
        endpoint.target_ref.as_ref().unwrap().uid.as_deref(),
        Some("uid-a")
    );
}

#[test]
fn slices_follow_port_sets_and_the_size_limit() {
    struct Case {
        name: &'static str,
        pods: usize,
        other_port_pods: usize,
        max: usize,
        want_sizes: Vec<usize>,
    }
    let cases = [
        Case {
            name: "one slice",
            pods: 3,
            other_port_pods: 0,
            max: 100,
            want_sizes: vec![3],
        },
        Case {
            name: "split at the limit",
            pods: 5,
            other_port_pods: 0,
            max: 2,
            want_sizes: vec![2, 2, 1],
        },
        Case {
            name: "a slice per port set",
            pods: 2,
            other_port_pods: 1,
            max: 100,
            want_sizes: vec![2, 1],
        },
        Case {
            name: "placeholder when empty",
            pods: 0,
            other_port_pods: 0,
            max: 100,
            want_sizes: vec![0],
        },
    ];
    let svc = service(&[("web", 80, IntOrString::String("http".into()))]);
    for case in cases {
        let mut pods: Vec<Pod> = (0..case.pods)
            .map(|i| pod(&format!("p{i}"), Some(&format!("10.42.0.{}", i + 1)), true))
            .collect();
        for i in 0..case.other_port_pods {
            let mut p = pod(&format!("q{i}"), Some(&format!("10.42.1.{}", i + 1)), true);
            p.spec.as_mut().unwrap().containers[0]
                .ports
                .as_mut()
                .unwrap()[0]
                .container_port = 8443;
            pods.push(p);
        }
        let refs: Vec<&Pod> = pods.iter().collect();
        let plan = plan_slices(&svc, &refs, &[], case.max);
        let sizes: Vec<usize> = plan.create.iter().map(|s| s.endpoints.len()).collect();
        assert_eq!(sizes, case.want_sizes, "{}", case.name);
        // Applied, the same world needs nothing more.
        let slices = applied(&[], &plan);
        let existing: Vec<&EndpointSlice> = slices.iter().collect();
        let again = plan_slices(&svc, &refs, &existing, case.max);
        assert!(again.is_empty(), "{}: {again:?}", case.name);
    }
}

#[test]
fn changes_update_slices_in_place() {
    let svc = service(&[("", 80, IntOrString::Int(8080))]);
    let (a, b) = (
        pod("a", Some("10.42.0.1"), true),
        pod("b", Some("10.42.0.2"), true),
    );
    let first = plan_slices(&svc, &[&a, &b], &[], 100);
    let mut slices = applied(&[], &first);
    slices[0].metadata.resource_version = Some("5".into());
    let existing: Vec<&EndpointSlice> = slices.iter().collect();

    // A third pod joins the existing slice.
    let c = pod("c", Some("10.42.0.3"), true);
    let plan = plan_slices(&svc, &[&a, &b, &c], &existing, 100);
    assert!(plan.create.is_empty() && plan.delete.is_empty(), "{plan:?}");
    assert_eq!(plan.update.len(), 1);
    assert_eq!(
        plan.update[0].metadata.resource_version.as_deref(),
        Some("5")
    );
    assert_eq!(plan.update[0].endpoints.len(), 3);

    // b turning not ready is an in-place update of its endpoint.
    let b_down = pod("b", Some("10.42.0.2"), false);
    let plan = plan_slices(&svc, &[&a, &b_down], &existing, 100);
    assert_eq!(plan.update.len(), 1);
    assert_eq!(
        conditions(&plan.update[0]),
        vec![
            ("10.42.0.1".into(), true, true, false),
            ("10.42.0.2".into(), false, false, false)
        ]
    );

    // Every pod gone: the slice stays, emptied, as the placeholder.
    let plan = plan_slices(&svc, &[], &existing, 100);
    assert!(plan.create.is_empty() && plan.delete.is_empty(), "{plan:?}");
    assert!(plan.update[0].endpoints.is_empty() && plan.update[0].ports.is_none());
}

#[test]
fn foreign_and_stale_slices_are_deleted() {
    let svc = service(&[("", 80, IntOrString::Int(8080))]);
    let a = pod("a", Some("10.42.0.1"), true);
    let mut stale = applied(&[], &plan_slices(&svc, &[&a], &[], 100)).remove(0);
    stale.metadata.owner_references.as_mut().unwrap()[0].uid = "old-service".into();
    stale.metadata.name = Some("web-old".into());
    let plan = plan_slices(&svc, &[&a], &[&stale], 100);
    assert_eq!(plan.delete.len(), 1);
    assert_eq!(plan.create.len(), 1);
    assert!(slice_is_managed_for(&plan.create[0], "web"));
}
