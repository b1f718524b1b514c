//! `kube_service_*`, `kube_namespace_*`, `kube_persistentvolumeclaim_*`
//! and `kube_horizontalpodautoscaler_*`: the smaller kinds
//! kube-state-metrics reports, labelled as it labels them.

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, Service};

use super::family::{bool_value, MetricFamily};

/// The Service families.
pub fn services(items: &[Service]) -> Vec<MetricFamily> {
    let mut info = MetricFamily::gauge("kube_service_info", "Information about service.");
    let mut kind = MetricFamily::gauge("kube_service_spec_type", "Type about service.");
    let mut ingress = MetricFamily::gauge(
        "kube_service_status_load_balancer_ingress",
        "Service load balancer ingress status",
    );
    for s in items {
        let m = &s.metadata;
        let base = [
            ("namespace", m.namespace.as_deref().unwrap_or_default()),
            ("service", m.name.as_deref().unwrap_or_default()),
            ("uid", m.uid.as_deref().unwrap_or_default()),
        ];
        let spec = s.spec.clone().unwrap_or_default();
        info.push(
            &base,
            &[
                ("cluster_ip", spec.cluster_ip.as_deref().unwrap_or_default()),
                (
                    "external_name",
                    spec.external_name.as_deref().unwrap_or_default(),
                ),
                (
                    "load_balancer_ip",
                    spec.load_balancer_ip.as_deref().unwrap_or_default(),
                ),
            ],
            1.0,
        );
        kind.push(
            &base,
            &[("type", spec.type_.as_deref().unwrap_or("ClusterIP"))],
            1.0,
        );
        let entries = s
            .status
            .as_ref()
            .and_then(|st| st.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref());
        for entry in entries.into_iter().flatten() {
            ingress.push(
                &base,
                &[
                    ("ip", entry.ip.as_deref().unwrap_or_default()),
                    ("hostname", entry.hostname.as_deref().unwrap_or_default()),
                ],
                1.0,
            );
        }
    }
    vec![info, kind, ingress]
}

/// `kube_namespace_status_phase`: `Active` and `Terminating` per namespace.
pub fn namespaces(items: &[Namespace]) -> Vec<MetricFamily> {
    let mut phase = MetricFamily::gauge(
        "kube_namespace_status_phase",
        "kubernetes namespace status phase.",
    );
    for n in items {
        let current = n
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .unwrap_or("Active");
        let base = [("namespace", n.metadata.name.as_deref().unwrap_or_default())];
        for candidate in ["Active", "Terminating"] {
            phase.push(
                &base,
                &[("phase", candidate)],
                bool_value(candidate == current),
            );
        }
    }
    vec![phase]
}

/// `kube_persistentvolumeclaim_status_phase`: `Lost`, `Bound`, `Pending`.
pub fn persistent_volume_claims(items: &[PersistentVolumeClaim]) -> Vec<MetricFamily> {
    let mut phase = MetricFamily::gauge(
        "kube_persistentvolumeclaim_status_phase",
        "The phase the persistent volume claim is currently in.",
    );
    for c in items {
        let Some(current) = c.status.as_ref().and_then(|s| s.phase.as_deref()) else {
            continue;
        };
        let base = [
            (
                "namespace",
                c.metadata.namespace.as_deref().unwrap_or_default(),
            ),
            (
                "persistentvolumeclaim",
                c.metadata.name.as_deref().unwrap_or_default(),
            ),
        ];
        for candidate in ["Lost", "Bound", "Pending"] {
            phase.push(
                &base,
                &[("phase", candidate)],
                bool_value(candidate == current),
            );
        }
    }
    vec![phase]
}

/// The HorizontalPodAutoscaler families.
pub fn horizontal_pod_autoscalers(items: &[HorizontalPodAutoscaler]) -> Vec<MetricFamily> {
    let mut min = MetricFamily::gauge(
        "kube_horizontalpodautoscaler_spec_min_replicas",
        "Lower limit for the number of pods that can be set by the autoscaler, default 1.",
    );
    let mut max = MetricFamily::gauge(
        "kube_horizontalpodautoscaler_spec_max_replicas",
        "Upper limit for the number of pods that can be set by the autoscaler; cannot be smaller than MinReplicas.",
    );
    let mut current = MetricFamily::gauge(
        "kube_horizontalpodautoscaler_status_current_replicas",
        "Current number of replicas of pods managed by this autoscaler.",
    );
    let mut desired = MetricFamily::gauge(
        "kube_horizontalpodautoscaler_status_desired_replicas",
        "Desired number of replicas of pods managed by this autoscaler.",
    );
    for h in items {
        let base = [
            (
                "namespace",
                h.metadata.namespace.as_deref().unwrap_or_default(),
            ),
            (
                "horizontalpodautoscaler",
                h.metadata.name.as_deref().unwrap_or_default(),
            ),
        ];
        if let Some(spec) = &h.spec {
            min.push(&base, &[], f64::from(spec.min_replicas.unwrap_or(1)));
            max.push(&base, &[], f64::from(spec.max_replicas));
        }
        if let Some(status) = &h.status {
            current.push(&base, &[], f64::from(status.current_replicas.unwrap_or(0)));
            desired.push(&base, &[], f64::from(status.desired_replicas));
        }
    }
    vec![min, max, current, desired]
}

#[cfg(test)]
mod tests {
    use super::super::family::value_of;
    use super::*;
    use serde_json::json;

    #[test]
    fn a_load_balancer_service_shows_its_ingress() {
        let s: Service = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "u"},
            "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.9"},
            "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}},
        }))
        .expect("a service");
        let families = services(&[s]);
        let get = |name: &str, labels: &[(&str, &str)]| value_of(&families, name, labels);
        assert_eq!(
            get("kube_service_info", &[("cluster_ip", "10.96.0.9")]),
            Some(1.0)
        );
        assert_eq!(
            get("kube_service_spec_type", &[("type", "LoadBalancer")]),
            Some(1.0)
        );
        assert_eq!(
            get(
                "kube_service_status_load_balancer_ingress",
                &[("service", "web"), ("ip", "192.0.2.1")]
            ),
            Some(1.0)
        );
    }

    #[test]
    fn claims_and_autoscalers_report_phase_and_replicas() {
        let claim: PersistentVolumeClaim = serde_json::from_value(json!({
            "metadata": {"name": "data", "namespace": "ns"}, "status": {"phase": "Bound"},
        }))
        .expect("a claim");
        let hpa: HorizontalPodAutoscaler = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns"},
            "spec": {"maxReplicas": 10, "scaleTargetRef": {"kind": "Deployment", "name": "web"}},
            "status": {"currentReplicas": 3, "desiredReplicas": 4},
        }))
        .expect("an autoscaler");
        let mut families = persistent_volume_claims(&[claim]);
        families.extend(horizontal_pod_autoscalers(&[hpa]));
        let get = |name: &str, labels: &[(&str, &str)]| value_of(&families, name, labels);
        let claim = |phase| [("persistentvolumeclaim", "data"), ("phase", phase)];
        assert_eq!(
            get("kube_persistentvolumeclaim_status_phase", &claim("Bound")),
            Some(1.0)
        );
        assert_eq!(
            get("kube_persistentvolumeclaim_status_phase", &claim("Pending")),
            Some(0.0)
        );
        let hpa = [("horizontalpodautoscaler", "web")];
        assert_eq!(
            get("kube_horizontalpodautoscaler_spec_min_replicas", &hpa),
            Some(1.0)
        );
        assert_eq!(
            get("kube_horizontalpodautoscaler_spec_max_replicas", &hpa),
            Some(10.0)
        );
        assert_eq!(
            get("kube_horizontalpodautoscaler_status_current_replicas", &hpa),
            Some(3.0)
        );
        assert_eq!(
            get("kube_horizontalpodautoscaler_status_desired_replicas", &hpa),
            Some(4.0)
        );
    }

    #[test]
    fn a_terminating_namespace_reads_1_on_terminating_only() {
        let n: Namespace = serde_json::from_value(json!({
            "metadata": {"name": "gone"}, "status": {"phase": "Terminating"},
        }))
        .expect("a namespace");
        let families = namespaces(&[n]);
        assert_eq!(families[0].value(&[("phase", "Terminating")]), Some(1.0));
        assert_eq!(families[0].value(&[("phase", "Active")]), Some(0.0));
    }
}
