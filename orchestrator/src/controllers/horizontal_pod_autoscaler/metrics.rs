//! Resource metrics for the autoscaler from `metrics.k8s.io/v1beta1`
//! PodMetrics, read as upstream's metrics client reads them: per pod the sum
//! over its containers (or one named container) in milli-units, with the
//! sample's timestamp and window. The parsing is pure; [`pod_metrics`] is
//! the thin I/O edge.

use std::time::Duration;

use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use serde_json::Value;

use super::replica_calculator::{PodMetric, PodMetricsInfo};

/// Why no metrics came back; the texts are upstream's.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The metrics API failed.
    #[error("unable to fetch metrics from resource metrics API: {0}")]
    Fetch(String),
    /// It answered with no pod.
    #[error("no metrics returned from resource metrics API")]
    Empty,
    /// A pod's metrics lack the container the metric names.
    #[error("container {container} not present in metrics for pod {namespace}/{pod}")]
    MissingContainer {
        /// The container.
        container: String,
        /// The pod's namespace.
        namespace: String,
        /// The pod.
        pod: String,
    },
}

/// Parses a Go duration (`15.012s`, `1m0.5s`, `500ms`).
pub fn go_duration(text: &str) -> Option<Duration> {
    let mut total = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += number * scale;
        rest = &rest[unit_len..];
    }
    Some(Duration::from_secs_f64(total))
}

/// One container's usage of `resource` in milli-units.
fn usage(container: &Value, resource: &str) -> Option<i64> {
    let text = container.pointer("/usage")?.get(resource)?.as_str()?;
    let quantity = berth_api::quantity::Quantity::parse(text).ok()?;
    Some(quantity.milli_value() as i64)
}

/// The metric of `resource` of each PodMetrics in `items`: summed over the
/// containers (a pod missing the resource in any container is left out),
/// or of `container` alone.
pub fn parse_pod_metrics(
    items: &[Value],
    resource: &str,
    container: Option<&str>,
) -> Result<PodMetricsInfo, MetricsError> {
    let mut info = PodMetricsInfo::new();
    for item in items {
        let name = item.pointer("/metadata/name").and_then(Value::as_str);
        let Some(name) = name else { continue };
        let timestamp = item
            .get("timestamp")
            .and_then(Value::as_str)
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(jiff::Timestamp::now);
        let window = item
            .get("window")
            .and_then(Value::as_str)
            .and_then(go_duration)
            .unwrap_or_default();
        let containers = item
            .get("containers")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let value = match container {
            Some(wanted) => {
                let found = containers
                    .iter()
                    .find(|c| c.get("name").and_then(Value::as_str) == Some(wanted))
                    .ok_or_else(|| MetricsError::MissingContainer {
                        container: wanted.to_owned(),
                        namespace: item
                            .pointer("/metadata/namespace")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                        pod: name.to_owned(),
                    })?;
                usage(found, resource)
            }
            None if containers.is_empty() => None,
            None => containers.iter().map(|c| usage(c, resource)).sum(),
        };
        if let Some(value) = value {
            let metric = PodMetric {
                timestamp,
                window,
                value,
            };
            info.insert(name.to_owned(), metric);
        }
    }
    Ok(info)
}

/// The PodMetrics resource of `metrics.k8s.io/v1beta1`.
fn pod_metrics_resource() -> ApiResource {
    ApiResource {
        group: "metrics.k8s.io".into(),
        version: "v1beta1".into(),
        api_version: "metrics.k8s.io/v1beta1".into(),
        kind: "PodMetrics".into(),
        plural: "pods".into(),
    }
}

/// Lists the PodMetrics of `namespace` that `selector` picks and reads
/// `resource` from them.
pub async fn pod_metrics(
    client: &kube::Client,
    namespace: &str,
    selector: &str,
    resource: &str,
    container: Option<&str>,
) -> Result<PodMetricsInfo, MetricsError> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &pod_metrics_resource());
    let list = api
        .list(&ListParams::default().labels(selector))
        .await
        .map_err(|e| MetricsError::Fetch(super::api_message(&e)))?;
    if list.items.is_empty() {
        return Err(MetricsError::Empty);
    }
    let items: Vec<Value> = list
        .items
        .iter()
        .filter_map(|o| serde_json::to_value(o).ok())
        .collect();
    parse_pod_metrics(&items, resource, container)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_durations() {
        let cases = [
            ("15s", Some(15_000)),
            ("15.012s", Some(15_012)),
            ("1m0.5s", Some(60_500)),
            ("500ms", Some(500)),
            ("1x", None),
        ];
        for (text, millis) in cases {
            assert_eq!(
                go_duration(text).map(|d| d.as_millis() as u64),
                millis,
                "{text}"
            );
        }
    }

    #[test]
    fn pods_sum_their_containers_and_skip_a_missing_resource() {
        let items = [
            json!({"metadata": {"name": "a", "namespace": "n"}, "timestamp": "2026-01-01T00:00:00Z",
                   "window": "15s", "containers": [
                {"name": "c1", "usage": {"cpu": "100m", "memory": "1Mi"}},
                {"name": "c2", "usage": {"cpu": "250m", "memory": "1Mi"}}]}),
            json!({"metadata": {"name": "b", "namespace": "n"}, "window": "15s", "containers": [
                {"name": "c1", "usage": {"memory": "1Mi"}}]}),
            json!({"metadata": {"name": "c", "namespace": "n"}, "containers": []}),
        ];
        let cpu = parse_pod_metrics(&items, "cpu", None).unwrap();
        assert_eq!(cpu.keys().collect::<Vec<_>>(), ["a"]);
        assert_eq!(cpu["a"].value, 350);
        assert_eq!(cpu["a"].window, Duration::from_secs(15));
        let memory = parse_pod_metrics(&items, "memory", None).unwrap();
        assert_eq!(memory["b"].value, 1024 * 1024 * 1000);
        let one = parse_pod_metrics(&items[..1], "cpu", Some("c2")).unwrap();
        assert_eq!(one["a"].value, 250);
        let err = parse_pod_metrics(&items, "cpu", Some("c2")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "container c2 not present in metrics for pod n/b"
        );
    }
}
