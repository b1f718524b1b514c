//! One metric of an HPA turned into a replica proposal (upstream's
//! `computeReplicasForMetric` and `computeStatusForResourceMetricGeneric`):
//! Resource and ContainerResource metrics from the resource metrics API,
//! with the status and error texts upstream reports; the custom and
//! external metrics APIs are not served, so those metrics fail as upstream's
//! do without them.

use jiff::Timestamp;
use k8s_openapi::api::autoscaling::v2::{
    ContainerResourceMetricStatus, MetricSpec, MetricStatus, MetricTarget, MetricValueStatus,
    ResourceMetricStatus,
};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::metrics;
use super::replica_calculator::{self, CalculatorConfig};

/// Why one metric gave no proposal: the event reason, the event text and
/// the error the HPA reports for it.
pub(super) struct MetricFailure {
    pub(super) reason: &'static str,
    pub(super) inner: String,
    pub(super) outer: String,
}

/// One metric's proposal.
pub(super) struct Proposal {
    pub(super) replicas: i32,
    pub(super) metric: String,
    pub(super) status: MetricStatus,
}

/// What every metric of one pass is computed from.
pub(super) struct MetricInput<'a> {
    pub(super) client: &'a kube::Client,
    pub(super) namespace: &'a str,
    pub(super) selector: &'a str,
    pub(super) pods: &'a [Pod],
    pub(super) current: i32,
    pub(super) config: &'a CalculatorConfig,
}

/// One metric's proposal (upstream's `computeReplicasForMetric`); only
/// resource metrics are served, the custom and external metrics APIs are not.
pub(super) async fn compute_metric(
    input: &MetricInput<'_>,
    spec: &MetricSpec,
) -> Result<Proposal, MetricFailure> {
    let unserved = |reason, kind: &str, api: &str| {
        MetricFailure {
        reason,
        inner: format!("unable to get {kind} metric: unable to fetch metrics from {api} API: the server could not find the requested resource"),
        outer: format!("failed to get {kind} metric value: unable to fetch metrics from {api} API: the server could not find the requested resource"),
    }
    };
    match spec.type_.as_str() {
        "Resource" => {
            let source = spec.resource.clone().unwrap_or_default();
            resource_metric(input, &source.name, None, &source.target)
                .await
                .map(|(replicas, metric, current)| Proposal {
                    replicas,
                    metric,
                    status: MetricStatus {
                        type_: "Resource".into(),
                        resource: Some(ResourceMetricStatus {
                            name: source.name.clone(),
                            current,
                        }),
                        ..Default::default()
                    },
                })
                .map_err(|inner| MetricFailure {
                    reason: "FailedGetResourceMetric",
                    outer: format!(
                        "failed to get {} resource metric value: {inner}",
                        source.name
                    ),
                    inner,
                })
        }
        "ContainerResource" => {
            let source = spec.container_resource.clone().unwrap_or_default();
            resource_metric(input, &source.name, Some(&source.container), &source.target)
                .await
                .map(|(replicas, metric, current)| Proposal {
                    replicas,
                    metric,
                    status: MetricStatus {
                        type_: "ContainerResource".into(),
                        container_resource: Some(ContainerResourceMetricStatus {
                            name: source.name.clone(),
                            container: source.container.clone(),
                            current,
                        }),
                        ..Default::default()
                    },
                })
                .map_err(|inner| MetricFailure {
                    reason: "FailedGetContainerResourceMetric",
                    outer: format!(
                        "failed to get {} container metric value: {inner}",
                        source.name
                    ),
                    inner,
                })
        }
        "Pods" => Err(unserved("FailedGetPodsMetric", "pods", "custom metrics")),
        "Object" => Err(unserved(
            "FailedGetObjectMetric",
            "object",
            "custom metrics",
        )),
        "External" => Err(unserved(
            "FailedGetExternalMetric",
            "external",
            "external metrics",
        )),
        other => {
            let inner = format!("unknown metric source type \"{other}\"");
            Err(MetricFailure {
                reason: "InvalidMetricSourceType",
                outer: inner.clone(),
                inner,
            })
        }
    }
}

/// A milli-unit amount as a Quantity (upstream's `NewMilliQuantity(v, DecimalSI)`).
fn milli_quantity(milli: i64) -> Quantity {
    let q = berth_api::quantity::Quantity::new_milli(milli, berth_api::quantity::Format::DecimalSI);
    Quantity(q.to_string())
}

/// A resource metric's proposal (upstream's
/// `computeStatusForResourceMetricGeneric`): the count, the metric's name
/// for messages, and its current value.
async fn resource_metric(
    input: &MetricInput<'_>,
    resource: &str,
    container: Option<&str>,
    target: &MetricTarget,
) -> Result<(i32, String, MetricValueStatus), String> {
    let now = Timestamp::now();
    let fetch = || async {
        metrics::pod_metrics(
            input.client,
            input.namespace,
            input.selector,
            resource,
            container,
        )
        .await
        .map_err(|e| format!("unable to get metrics for resource {resource}: {e}"))
    };
    if let Some(value) = target.average_value.as_ref() {
        let wrap = |e: String| format!("failed to get {resource} usage: {e}");
        let target_milli = berth_api::quantity::Quantity::parse(&value.0)
            .map(|q| q.milli_value() as i64)
            .map_err(|e| wrap(e.to_string()))?;
        let metrics = fetch().await.map_err(wrap)?;
        let (replicas, usage) = replica_calculator::raw_resource_replicas(
            input.current,
            target_milli,
            resource,
            input.pods,
            metrics,
            input.config,
            now,
        )
        .map_err(|e| wrap(e.to_string()))?;
        let status = MetricValueStatus {
            average_value: Some(milli_quantity(usage)),
            ..Default::default()
        };
        return Ok((replicas, format!("{resource} resource"), status));
    }
    let Some(utilization) = target.average_utilization else {
        return Err("invalid resource metric source: neither an average utilization target nor an average value (usage) target was set".into());
    };
    let wrap = |e: String| format!("failed to get {resource} utilization: {e}");
    let metrics = fetch().await.map_err(wrap)?;
    let proposal = replica_calculator::resource_replicas(
        input.current,
        utilization,
        resource,
        container,
        input.pods,
        metrics,
        input.config,
        now,
    )
    .map_err(|e| wrap(e.to_string()))?;
    let name = match container {
        Some(_) => format!("{resource} container resource utilization (percentage of request)"),
        None => format!("{resource} resource utilization (percentage of request)"),
    };
    let status = MetricValueStatus {
        average_utilization: Some(proposal.utilization),
        average_value: Some(milli_quantity(proposal.raw_average)),
        value: None,
    };
    Ok((proposal.replicas, name, status))
}
