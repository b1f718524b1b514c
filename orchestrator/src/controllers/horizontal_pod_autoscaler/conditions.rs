//! The HPA's status conditions (AbleToScale, ScalingActive, ScalingLimited)
//! set as upstream's `setCondition` sets them: one entry per type, in the
//! order first set, whose lastTransitionTime moves only when the status
//! flips. Pure.

use jiff::Timestamp;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscalerCondition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// Sets condition `type_` in `conditions` to `status` with `reason` and `message`.
pub fn set_condition(
    conditions: &mut Vec<HorizontalPodAutoscalerCondition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    now: Timestamp,
) {
    let status = if status { "True" } else { "False" };
    let index = match conditions.iter().position(|c| c.type_ == type_) {
        Some(i) => i,
        None => {
            conditions.push(HorizontalPodAutoscalerCondition {
                type_: type_.to_owned(),
                ..Default::default()
            });
            conditions.len() - 1
        }
    };
    let condition = &mut conditions[index];
    if condition.status != status {
        condition.last_transition_time = Some(Time(now));
    }
    condition.status = status.to_owned();
    condition.reason = Some(reason.to_owned());
    condition.message = Some(message.to_owned());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_moves_only_when_the_status_flips() {
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let t1: Timestamp = "2026-01-01T00:01:00Z".parse().unwrap();
        let t2: Timestamp = "2026-01-01T00:02:00Z".parse().unwrap();
        let mut conditions = Vec::new();
        // (type, status, reason, now, expected transition time)
        let cases = [
            ("AbleToScale", true, "SucceededGetScale", t0, t0),
            ("ScalingActive", false, "FailedGetResourceMetric", t0, t0),
            ("AbleToScale", true, "ReadyForNewScale", t1, t0),
            ("ScalingActive", true, "ValidMetricFound", t2, t2),
        ];
        for (type_, status, reason, now, transition) in cases {
            set_condition(&mut conditions, type_, status, reason, "m", now);
            let c = conditions.iter().find(|c| c.type_ == type_).unwrap();
            assert_eq!(c.reason.as_deref(), Some(reason));
            assert_eq!(
                c.last_transition_time.as_ref().unwrap().0,
                transition,
                "{reason}"
            );
        }
        let types: Vec<_> = conditions.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, ["AbleToScale", "ScalingActive"]);
    }
}
