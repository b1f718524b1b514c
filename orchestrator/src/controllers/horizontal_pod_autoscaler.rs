//! The HorizontalPodAutoscaler controller (upstream's
//! `pkg/controller/podautoscaler`): every sync period, for each HPA, reads
//! its target's `/scale`, the pods the Scale's selector picks and their
//! resource metrics from `metrics.k8s.io`, computes the replica count each
//! metric asks for (the largest wins), normalizes it with the `behavior`
//! (stabilization windows, rate policies) and min/maxReplicas, writes it
//! through `/scale`, and reports currentMetrics, conditions and events as
//! upstream. It never touches the target's pods; the workload controller does.

pub mod conditions;
pub mod metric_source;
pub mod metrics;
pub mod normalize;
pub mod replica_calculator;
pub mod target;

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::api::autoscaling::v2::{
    HorizontalPodAutoscaler, HorizontalPodAutoscalerCondition, HorizontalPodAutoscalerStatus,
    MetricSpec, MetricStatus,
};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::ResourceExt;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use self::conditions::set_condition;
use self::metric_source::{compute_metric, MetricFailure, MetricInput};
use self::normalize::{Bounds, History};
use self::replica_calculator::CalculatorConfig;
use self::target::Target;
use super::informers::Informers;
use super::ControllerError;
use berth_observability::events::{EventType, Recorder};
use berth_observability::workqueue;

pub(crate) use super::pod_control::api_message;

/// The autoscaler's knobs (kube-controller-manager's
/// `--horizontal-pod-autoscaler-*` flags).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HorizontalPodAutoscalerConfig {
    /// How often every HPA is evaluated (`--horizontal-pod-autoscaler-sync-period`, 15 s).
    pub sync_period: Duration,
    /// The scale-down window of HPAs without a `behavior`, and the default
    /// of those whose scaleDown leaves it unset (5 min).
    pub downscale_stabilization: Duration,
    /// Tolerance and readiness periods of the replica calculation.
    pub calculator: CalculatorConfig,
}

impl Default for HorizontalPodAutoscalerConfig {
    /// Upstream's defaults.
    fn default() -> Self {
        Self {
            sync_period: Duration::from_secs(15),
            downscale_stabilization: Duration::from_secs(300),
            calculator: CalculatorConfig::default(),
        }
    }
}

struct Context {
    client: kube::Client,
    config: HorizontalPodAutoscalerConfig,
    recorder: Recorder,
}

/// Runs the autoscaler until `cancel` fires.
pub async fn run(
    client: kube::Client,
    informers: Informers,
    config: HorizontalPodAutoscalerConfig,
    cancel: CancellationToken,
) -> Result<(), ControllerError> {
    let (hpas, events) = informers.watch::<HorizontalPodAutoscaler>();
    let mut events = std::pin::pin!(events);
    let context = Context {
        recorder: Recorder::new(client.clone(), "horizontal-pod-autoscaler"),
        client,
        config,
    };
    let mut ticks = tokio::time::interval(config.sync_period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut histories: HashMap<String, History> = HashMap::new();
    loop {
        tokio::select! {
            () = cancel.cancelled() => return Ok(()),
            event = events.next() => match event {
                None => return Ok(()),
                Some(Err(e)) => tracing::debug!(error = %e, "horizontal pod autoscaler watch"),
                Some(Ok(_)) => {}
            },
            _ = ticks.tick() => {
                // A cache not yet listed would look like "no HPAs".
                if !hpas.is_ready() {
                    continue;
                }
                let all = hpas.state();
                histories.retain(|key, _| all.iter().any(|h| &key_of(h) == key));
                for hpa in all {
                    let key = key_of(&hpa);
                    let _worker = workqueue::named("horizontalpodautoscaler").start(&key);
                    let span = tracing::info_span!("reconcile", hpa = %key);
                    let history = histories.entry(key).or_default();
                    tokio::select! {
                        () = cancel.cancelled() => return Ok(()),
                        () = reconcile(&context, &hpa, history).instrument(span) => {}
                    }
                }
            }
        }
    }
}

fn key_of(hpa: &HorizontalPodAutoscaler) -> String {
    format!("{}/{}", hpa.namespace().unwrap_or_default(), hpa.name_any())
}

/// The status the pass builds, with the conditions it sets.
struct Pass<'a> {
    context: &'a Context,
    hpa: &'a HorizontalPodAutoscaler,
    conditions: Vec<HorizontalPodAutoscalerCondition>,
    now: Timestamp,
}

impl Pass<'_> {
    fn set(&mut self, type_: &str, status: bool, reason: &str, message: &str) {
        set_condition(
            &mut self.conditions,
            type_,
            status,
            reason,
            message,
            self.now,
        );
    }

    async fn event(&self, event_type: EventType, reason: &str, message: &str) {
        self.context
            .recorder
            .record(self.hpa, event_type, reason, message)
            .await;
    }

    /// Writes the status when it differs from what the HPA has.
    async fn update_status(
        self,
        current_replicas: Option<i32>,
        desired_replicas: i32,
        current_metrics: Option<Vec<MetricStatus>>,
        last_scale_time: Option<Time>,
    ) {
        let old = self.hpa.status.clone().unwrap_or_default();
        let status = HorizontalPodAutoscalerStatus {
            conditions: Some(self.conditions),
            current_metrics,
            current_replicas,
            desired_replicas,
            last_scale_time,
            observed_generation: old.observed_generation,
        };
        if status == old {
            return;
        }
        let mut value = serde_json::to_value(&status).unwrap_or_default();
        if let Some(map) = value.as_object_mut() {
            for key in ["currentMetrics", "lastScaleTime", "currentReplicas"] {
                map.entry(key).or_insert(serde_json::Value::Null);
            }
        }
        let api: Api<HorizontalPodAutoscaler> = Api::namespaced(
            self.context.client.clone(),
            &self.hpa.namespace().unwrap_or_default(),
        );
        let patch = serde_json::json!({ "status": value });
        if let Err(e) = api
            .patch_status(
                &self.hpa.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            tracing::warn!(error = %e, "could not update the HPA's status");
        }
    }
}

/// One evaluation of `hpa` (upstream's `reconcileAutoscaler`).
async fn reconcile(context: &Context, hpa: &HorizontalPodAutoscaler, history: &mut History) {
    let Some(spec) = hpa.spec.as_ref() else {
        return;
    };
    let old = hpa.status.clone().unwrap_or_default();
    let mut pass = Pass {
        context,
        hpa,
        conditions: old.conditions.clone().unwrap_or_default(),
        now: Timestamp::now(),
    };
    let namespace = hpa.namespace().unwrap_or_default();
    let scaled = match Target::resolve(&context.client, &namespace, &spec.scale_target_ref).await {
        Ok(target) => target.scale().await.map(|scale| (target, scale)),
        Err(e) => Err(e),
    };
    let (target, scale) = match scaled {
        Ok(found) => found,
        Err(error) => {
            pass.event(EventType::Warning, "FailedGetScale", &error)
                .await;
            let message =
                format!("the HPA controller was unable to get the target's current scale: {error}");
            pass.set("AbleToScale", false, "FailedGetScale", &message);
            let (current, metrics) = (old.current_replicas, old.current_metrics.clone());
            pass.update_status(current, old.desired_replicas, metrics, old.last_scale_time)
                .await;
            return;
        }
    };
    pass.set(
        "AbleToScale",
        true,
        "SucceededGetScale",
        "the HPA controller was able to get the target's current scale",
    );
    let current = scale.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
    history.record_initial(current, pass.now);
    let min = spec.min_replicas.unwrap_or(1);
    let max = spec.max_replicas;
    let mut current_metrics = None;
    let mut desired;
    let mut reason = String::new();
    let rescale;
    if current == 0 && min != 0 {
        desired = 0;
        rescale = false;
        pass.set(
            "ScalingActive",
            false,
            "ScalingDisabled",
            "scaling is disabled since the replica count of the target is zero",
        );
    } else if current > max {
        reason = "Current number of replicas above Spec.MaxReplicas".into();
        desired = max;
        rescale = true;
    } else if current < min {
        reason = "Current number of replicas below Spec.MinReplicas".into();
        desired = min;
        rescale = true;
    } else {
        let metrics = spec.metrics.as_deref().unwrap_or_default();
        let computed = compute_replicas_for_metrics(&mut pass, &scale, metrics).await;
        let computed = match computed {
            Ok(computed) => computed,
            Err((statuses, error)) => {
                pass.event(EventType::Warning, "FailedComputeMetricsReplicas", &error)
                    .await;
                pass.update_status(
                    Some(current),
                    old.desired_replicas,
                    statuses,
                    old.last_scale_time,
                )
                .await;
                return;
            }
        };
        current_metrics = Some(computed.statuses);
        desired = computed.replicas.max(0);
        if desired > current {
            reason = format!("{} above target", computed.metric);
        } else if desired < current {
            reason = "All metrics below target".into();
        }
        let bounds = Bounds { current, min, max };
        let window = context.config.downscale_stabilization;
        let normalized = match spec.behavior.as_ref() {
            Some(behavior) => normalize::normalize_with_behavior(
                history, behavior, bounds, desired, window, pass.now,
            ),
            None => normalize::normalize_legacy(history, bounds, desired, window, pass.now),
        };
        let (able, limited) = (normalized.able_to_scale, normalized.scaling_limited);
        pass.set("AbleToScale", able.status, able.reason, able.message);
        pass.set(
            "ScalingLimited",
            limited.status,
            limited.reason,
            limited.message,
        );
        desired = normalized.replicas;
        rescale = desired != current;
    }
    let mut last_scale_time = old.last_scale_time.clone();
    if rescale {
        if let Err(error) = target.set_replicas(scale, desired).await {
            let message = format!("New size: {desired}; reason: {reason}; error: {error}");
            pass.event(EventType::Warning, "FailedRescale", &message)
                .await;
            let message =
                format!("the HPA controller was unable to update the target scale: {error}");
            pass.set("AbleToScale", false, "FailedUpdateScale", &message);
            pass.update_status(
                Some(current),
                old.desired_replicas,
                current_metrics,
                last_scale_time,
            )
            .await;
            return;
        }
        let message =
            format!("the HPA controller was able to update the target scale to {desired}");
        pass.set("AbleToScale", true, "SucceededRescale", &message);
        let message = format!("New size: {desired}; reason: {reason}");
        pass.event(EventType::Normal, "SuccessfulRescale", &message)
            .await;
        history.record_scale(spec.behavior.as_ref(), current, desired, pass.now);
        tracing::info!(current, desired, %reason, "rescaled");
        last_scale_time = Some(Time(pass.now));
    } else {
        desired = current;
    }
    pass.update_status(Some(current), desired, current_metrics, last_scale_time)
        .await;
}

/// What the metrics ask for together.
struct Computed {
    replicas: i32,
    metric: String,
    statuses: Vec<MetricStatus>,
}

/// Upstream's `computeReplicasForMetrics`: the largest proposal, unless
/// every metric failed or a failing one might veto a scale-down (then the
/// first failure's condition and an error).
async fn compute_replicas_for_metrics(
    pass: &mut Pass<'_>,
    scale: &Scale,
    specs: &[MetricSpec],
) -> Result<Computed, (Option<Vec<MetricStatus>>, String)> {
    let selector = scale
        .status
        .as_ref()
        .and_then(|s| s.selector.clone())
        .unwrap_or_default();
    if selector.is_empty() {
        let error = "selector is required";
        pass.event(EventType::Warning, "SelectorRequired", error)
            .await;
        let message = "the HPA target's scale is missing a selector";
        pass.set("ScalingActive", false, "InvalidSelector", message);
        return Err((None, error.into()));
    }
    if let Err(e) = berth_api::selector::LabelSelector::parse(&selector) {
        let error =
            format!("couldn't convert selector into a corresponding internal selector object: {e}");
        pass.event(EventType::Warning, "InvalidSelector", &error)
            .await;
        pass.set("ScalingActive", false, "InvalidSelector", &error);
        return Err((None, error));
    }
    let namespace = pass.hpa.namespace().unwrap_or_default();
    let pods_api: Api<Pod> = Api::namespaced(pass.context.client.clone(), &namespace);
    let pods = match pods_api
        .list(&ListParams::default().labels(&selector))
        .await
    {
        Ok(list) => list.items,
        Err(e) => {
            let error = format!(
                "unable to get pods while calculating replica count: {}",
                api_message(&e)
            );
            return Err((None, error));
        }
    };
    let spec_replicas = scale.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
    let mut statuses = vec![MetricStatus::default(); specs.len()];
    let (mut replicas, mut metric) = (0, String::new());
    let mut invalid = 0;
    let mut first_failure: Option<MetricFailure> = None;
    for (i, spec) in specs.iter().enumerate() {
        let source = MetricInput {
            client: &pass.context.client,
            namespace: &namespace,
            selector: &selector,
            pods: &pods,
            current: spec_replicas,
            config: &pass.context.config.calculator,
        };
        match compute_metric(&source, spec).await {
            Ok(proposal) => {
                statuses[i] = proposal.status;
                if replicas == 0 || proposal.replicas > replicas {
                    replicas = proposal.replicas;
                    metric = proposal.metric;
                }
            }
            Err(failure) => {
                pass.event(EventType::Warning, failure.reason, &failure.inner)
                    .await;
                invalid += 1;
                first_failure.get_or_insert(failure);
            }
        }
    }
    if let Some(failure) = first_failure {
        if invalid >= specs.len() || replicas < spec_replicas {
            let message = format!(
                "the HPA was unable to compute the replica count: {}",
                failure.inner
            );
            pass.set("ScalingActive", false, failure.reason, &message);
            let error = format!(
                "invalid metrics ({invalid} invalid out of {}), first error is: {}",
                specs.len(),
                failure.outer
            );
            return Err((Some(statuses), error));
        }
    }
    let message =
        format!("the HPA was able to successfully calculate a replica count from {metric}");
    pass.set("ScalingActive", true, "ValidMetricFound", &message);
    Ok(Computed {
        replicas,
        metric,
        statuses,
    })
}
