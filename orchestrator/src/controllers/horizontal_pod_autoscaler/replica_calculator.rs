//! Upstream's replica calculation (`replica_calculator.go`): from the pods a
//! target selects and their metrics, how many replicas bring the average to
//! the target — with the 10 % tolerance, pods without metrics assumed at 0 %
//! on a scale-up and 100 % on a scale-down, and unready pods (or pods still
//! in their CPU initialization period) ignored except as 0 % on a scale-up.
//! Pure functions over pods and metrics; nothing here does I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;

/// One pod's metric: the sum over its containers (milli-units), and when
/// and over which window it was measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PodMetric {
    /// The end of the measured window.
    pub timestamp: Timestamp,
    /// How long the window was.
    pub window: Duration,
    /// The value in milli-units (millicores, millibytes).
    pub value: i64,
}

/// Metrics by pod name.
pub type PodMetricsInfo = BTreeMap<String, PodMetric>;

/// Knobs of the calculation (kube-controller-manager's flags).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CalculatorConfig {
    /// Ratios within 1 ± tolerance do not rescale (`--horizontal-pod-autoscaler-tolerance`, 0.1).
    pub tolerance: f64,
    /// How long after start a pod's CPU samples may still be start-up noise (5 min).
    pub cpu_initialization_period: Duration,
    /// How long after start an unready pod is taken as still starting (30 s).
    pub initial_readiness_delay: Duration,
}

impl Default for CalculatorConfig {
    /// Upstream's defaults.
    fn default() -> Self {
        Self {
            tolerance: 0.1,
            cpu_initialization_period: Duration::from_secs(300),
            initial_readiness_delay: Duration::from_secs(30),
        }
    }
}

impl CalculatorConfig {
    fn within_tolerance(&self, ratio: f64) -> bool {
        (1.0 - ratio).abs() <= self.tolerance
    }
}

/// Why no replica count could be computed; the texts are upstream's.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CalculationError {
    /// The selector matched no pod.
    #[error("no pods returned by selector while calculating replica count")]
    NoPods,
    /// Every pod was unready, being deleted or without metrics.
    #[error("did not receive metrics for targeted pods (pods might be unready)")]
    NoMetrics,
    /// A container has no request for the resource, so utilization means nothing.
    #[error("missing request for {resource} in container {container} of Pod {pod}")]
    MissingRequest {
        /// The resource (`cpu`).
        resource: String,
        /// The container without a request.
        container: String,
        /// Its pod.
        pod: String,
    },
    /// No metric belonged to a pod with requests.
    #[error("no metrics returned matched known pods")]
    NoMatchingMetrics,
}

/// The pods split as upstream's `groupPods` splits them.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct PodGroups {
    /// Running, ready pods with metrics.
    pub ready_count: usize,
    /// Pending pods, and (for CPU) pods whose sample may be start-up noise.
    pub unready: BTreeSet<String>,
    /// Pods without metrics.
    pub missing: BTreeSet<String>,
    /// Pods being deleted or failed.
    pub ignored: BTreeSet<String>,
}

/// Splits `pods` into ready, unready, missing and ignored ones.
pub fn group_pods(
    pods: &[Pod],
    metrics: &PodMetricsInfo,
    resource: &str,
    config: &CalculatorConfig,
    now: Timestamp,
) -> PodGroups {
    let mut groups = PodGroups::default();
    for pod in pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let status = pod.status.as_ref();
        let phase = status.and_then(|s| s.phase.as_deref());
        if pod.metadata.deletion_timestamp.is_some() || phase == Some("Failed") {
            groups.ignored.insert(name);
            continue;
        }
        if phase == Some("Pending") {
            groups.unready.insert(name);
            continue;
        }
        let Some(metric) = metrics.get(&name) else {
            groups.missing.insert(name);
            continue;
        };
        if resource == "cpu" && cpu_sample_unready(pod, metric, config, now) {
            groups.unready.insert(name);
            continue;
        }
        groups.ready_count += 1;
    }
    groups
}

/// Whether a pod's CPU sample should be ignored: it is not ready, or it
/// is young and the sample may cover its start-up.
fn cpu_sample_unready(
    pod: &Pod,
    metric: &PodMetric,
    config: &CalculatorConfig,
    now: Timestamp,
) -> bool {
    let status = pod.status.as_ref();
    let condition = status
        .and_then(|s| s.conditions.as_deref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"));
    let start = status.and_then(|s| s.start_time.as_ref()).map(|t| t.0);
    let (Some(condition), Some(start)) = (condition, start) else {
        return true;
    };
    let transition = condition
        .last_transition_time
        .as_ref()
        .map(|t| t.0)
        .unwrap_or(start);
    let not_ready = condition.status == "False";
    if add(start, config.cpu_initialization_period) > now {
        not_ready || metric.timestamp < add(transition, metric.window)
    } else {
        not_ready && add(start, config.initial_readiness_delay) > transition
    }
}

fn add(at: Timestamp, by: Duration) -> Timestamp {
    at.checked_add(jiff::SignedDuration::try_from(by).unwrap_or_default())
        .unwrap_or(at)
}

/// Each pod's request for `resource` in milli-units, summed over its
/// containers (restartable init containers included), or over `container`
/// alone when given.
pub fn pod_requests(
    pods: &[Pod],
    container: Option<&str>,
    resource: &str,
) -> Result<BTreeMap<String, i64>, CalculationError> {
    let mut requests = BTreeMap::new();
    for pod in pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let spec = pod.spec.as_ref();
        let sidecars = spec
            .and_then(|s| s.init_containers.as_deref())
            .unwrap_or_default()
            .iter()
            .filter(|c| c.restart_policy.as_deref() == Some("Always"));
        let containers = spec.map(|s| s.containers.as_slice()).unwrap_or_default();
        let mut sum = 0i64;
        for c in containers.iter().chain(sidecars) {
            if container.is_some_and(|wanted| wanted != c.name) {
                continue;
            }
            let request = c
                .resources
                .as_ref()
                .and_then(|r| r.requests.as_ref())
                .and_then(|r| r.get(resource));
            match request.and_then(|q| berth_api::quantity::Quantity::parse(&q.0).ok()) {
                Some(q) => sum += q.milli_value() as i64,
                None => {
                    return Err(CalculationError::MissingRequest {
                        resource: resource.to_owned(),
                        container: c.name.clone(),
                        pod: name,
                    })
                }
            }
        }
        requests.insert(name, sum);
    }
    Ok(requests)
}

/// The utilization the metrics show against the requests, as a ratio to
/// `target_utilization` (percent), the utilization itself and the average
/// raw value (upstream's `GetResourceUtilizationRatio`).
pub fn utilization_ratio(
    metrics: &PodMetricsInfo,
    requests: &BTreeMap<String, i64>,
    target_utilization: i32,
) -> Result<(f64, i32, i64), CalculationError> {
    let (mut metrics_total, mut requests_total, mut entries) = (0i64, 0i64, 0i64);
    for (pod, metric) in metrics {
        let Some(request) = requests.get(pod) else {
            continue;
        };
        metrics_total += metric.value;
        requests_total += request;
        entries += 1;
    }
    if requests_total == 0 {
        return Err(CalculationError::NoMatchingMetrics);
    }
    let utilization = (metrics_total * 100 / requests_total) as i32;
    Ok((
        f64::from(utilization) / f64::from(target_utilization),
        utilization,
        metrics_total / entries,
    ))
}

/// The average of the metrics as a ratio to `target` and the average
/// itself (upstream's `GetMetricUsageRatio`).
pub fn usage_ratio(metrics: &PodMetricsInfo, target: i64) -> (f64, i64) {
    let total: i64 = metrics.values().map(|m| m.value).sum();
    let average = total / (metrics.len().max(1) as i64);
    (average as f64 / target as f64, average)
}

/// A proposal from a utilization target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UtilizationProposal {
    /// The replica count the metric asks for.
    pub replicas: i32,
    /// The current utilization in percent of the requests.
    pub utilization: i32,
    /// The current average usage in milli-units.
    pub raw_average: i64,
}

/// The pods grouped, and the metrics the calculation goes on once unready
/// and ignored pods are out; an error when no pod or no usable metric is left.
fn grouped(
    pods: &[Pod],
    mut metrics: PodMetricsInfo,
    resource: &str,
    config: &CalculatorConfig,
    now: Timestamp,
) -> Result<(PodGroups, PodMetricsInfo), CalculationError> {
    if pods.is_empty() {
        return Err(CalculationError::NoPods);
    }
    let groups = group_pods(pods, &metrics, resource, config, now);
    metrics.retain(|name, _| !groups.ignored.contains(name) && !groups.unready.contains(name));
    if metrics.is_empty() {
        return Err(CalculationError::NoMetrics);
    }
    Ok((groups, metrics))
}

/// Fills in the assumed values for missing and unready pods and decides
/// the final count from the re-computed ratio, as upstream does after its
/// first pass: no change when within tolerance or when the assumptions
/// would turn the direction of the change.
fn replicas_with_assumptions(
    current: i32,
    ratio: f64,
    new_ratio: f64,
    counted: usize,
    config: &CalculatorConfig,
) -> i32 {
    if config.within_tolerance(new_ratio)
        || (ratio < 1.0 && new_ratio > 1.0)
        || (ratio > 1.0 && new_ratio < 1.0)
    {
        return current;
    }
    let replicas = (new_ratio * counted as f64).ceil() as i32;
    if (new_ratio < 1.0 && replicas > current) || (new_ratio > 1.0 && replicas < current) {
        return current;
    }
    replicas
}

/// Replicas for a utilization target (percent of the requests) of `resource`.
#[allow(clippy::too_many_arguments)]
pub fn resource_replicas(
    current: i32,
    target_utilization: i32,
    resource: &str,
    container: Option<&str>,
    pods: &[Pod],
    metrics: PodMetricsInfo,
    config: &CalculatorConfig,
    now: Timestamp,
) -> Result<UtilizationProposal, CalculationError> {
    let (groups, mut metrics) = grouped(pods, metrics, resource, config, now)?;
    let requests = pod_requests(pods, container, resource)?;
    let (ratio, utilization, raw_average) =
        utilization_ratio(&metrics, &requests, target_utilization)?;
    let proposal = |replicas| UtilizationProposal {
        replicas,
        utilization,
        raw_average,
    };
    let scale_up_with_unready = !groups.unready.is_empty() && ratio > 1.0;
    if !scale_up_with_unready && groups.missing.is_empty() {
        if config.within_tolerance(ratio) {
            return Ok(proposal(current));
        }
        return Ok(proposal((ratio * groups.ready_count as f64).ceil() as i32));
    }
    let fallback = i64::from(target_utilization.max(100));
    for pod in &groups.missing {
        let value = if ratio < 1.0 {
            requests.get(pod).copied().unwrap_or_default() * fallback / 100
        } else {
            0
        };
        if ratio != 1.0 {
            metrics.insert(pod.clone(), zero_metric(now, value));
        }
    }
    if scale_up_with_unready {
        for pod in &groups.unready {
            metrics.insert(pod.clone(), zero_metric(now, 0));
        }
    }
    let (new_ratio, _, _) = utilization_ratio(&metrics, &requests, target_utilization)?;
    Ok(proposal(replicas_with_assumptions(
        current,
        ratio,
        new_ratio,
        metrics.len(),
        config,
    )))
}

fn zero_metric(now: Timestamp, value: i64) -> PodMetric {
    PodMetric {
        timestamp: now,
        window: Duration::ZERO,
        value,
    }
}

/// Replicas for an average-value target (milli-units per pod) of
/// `resource`, and the current average (upstream's `GetRawResourceReplicas`).
pub fn raw_resource_replicas(
    current: i32,
    target: i64,
    resource: &str,
    pods: &[Pod],
    metrics: PodMetricsInfo,
    config: &CalculatorConfig,
    now: Timestamp,
) -> Result<(i32, i64), CalculationError> {
    let (groups, mut metrics) = grouped(pods, metrics, resource, config, now)?;
    let (ratio, usage) = usage_ratio(&metrics, target);
    let scale_up_with_unready = !groups.unready.is_empty() && ratio > 1.0;
    if !scale_up_with_unready && groups.missing.is_empty() {
        if config.within_tolerance(ratio) {
            return Ok((current, usage));
        }
        return Ok(((ratio * groups.ready_count as f64).ceil() as i32, usage));
    }
    for pod in &groups.missing {
        let value = if ratio < 1.0 { target } else { 0 };
        metrics.insert(pod.clone(), zero_metric(now, value));
    }
    if scale_up_with_unready {
        for pod in &groups.unready {
            metrics.insert(pod.clone(), zero_metric(now, 0));
        }
    }
    let (new_ratio, _) = usage_ratio(&metrics, target);
    Ok((
        replicas_with_assumptions(current, ratio, new_ratio, metrics.len(), config),
        usage,
    ))
}

#[cfg(test)]
mod tests;
