//! From the replica count the metrics ask for to the one the autoscaler
//! sets, as upstream's `normalizeDesiredReplicas*`: stabilization over the
//! recent recommendations, the scaling policies' rate limits (or, without a
//! `behavior`, the legacy limit of max(2×, 4) up and a 5-minute window down),
//! and min/maxReplicas — with the AbleToScale and ScalingLimited reasons that
//! explain the result. Pure: the per-HPA history is data the caller keeps.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::autoscaling::v2::{HPAScalingRules, HorizontalPodAutoscalerBehavior};

/// A recommendation the metrics made, and when.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Recommendation {
    replicas: i32,
    at: Timestamp,
}

/// A rescale the autoscaler made: how many replicas it added or removed.
#[derive(Debug, Clone, Copy, PartialEq)]
struct ScaleEvent {
    change: i32,
    at: Timestamp,
}

/// What the autoscaler remembers about one HPA between passes (upstream
/// keeps it in memory too, so a restart forgets it as upstream's does).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    recommendations: Vec<Recommendation>,
    scale_up_events: Vec<ScaleEvent>,
    scale_down_events: Vec<ScaleEvent>,
}

/// A condition's status, reason and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// `True` or `False`.
    pub status: bool,
    /// The CamelCase reason.
    pub reason: &'static str,
    /// The human message.
    pub message: &'static str,
}

/// The normalized count and the conditions that explain it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    /// The replica count to set.
    pub replicas: i32,
    /// The AbleToScale condition (always True here).
    pub able_to_scale: Verdict,
    /// The ScalingLimited condition.
    pub scaling_limited: Verdict,
}

/// The bounds a normalization keeps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// The target's current replicas.
    pub current: i32,
    /// spec.minReplicas (1 when unset).
    pub min: i32,
    /// spec.maxReplicas.
    pub max: i32,
}

fn after(at: Timestamp, seconds: i64) -> Timestamp {
    at.checked_sub(jiff::SignedDuration::from_secs(seconds))
        .unwrap_or(at)
}

impl History {
    /// Records the target's current size as a first recommendation, so the
    /// window starts from what was there (upstream's `recordInitialRecommendation`).
    pub fn record_initial(&mut self, current: i32, now: Timestamp) {
        if self.recommendations.is_empty() {
            self.recommendations.push(Recommendation {
                replicas: current,
                at: now,
            });
        }
    }

    /// Records a rescale from `previous` to `new`, forgetting events older
    /// than the longest policy period of that direction; kept only under a
    /// `behavior`, which is the only one that reads them.
    pub fn record_scale(
        &mut self,
        behavior: Option<&HorizontalPodAutoscalerBehavior>,
        previous: i32,
        new: i32,
        now: Timestamp,
    ) {
        let Some(behavior) = behavior else {
            return;
        };
        let (events, rules) = if new > previous {
            (&mut self.scale_up_events, behavior.scale_up.as_ref())
        } else {
            (&mut self.scale_down_events, behavior.scale_down.as_ref())
        };
        let longest = rules
            .and_then(|r| r.policies.as_deref())
            .unwrap_or_default()
            .iter()
            .map(|p| p.period_seconds)
            .max()
            .unwrap_or(0);
        let cutoff = after(now, i64::from(longest));
        events.retain(|e| e.at > cutoff);
        events.push(ScaleEvent {
            change: (new - previous).abs(),
            at: now,
        });
    }

    /// Replaces the oldest sample past `cutoff` with `replicas` or appends it.
    fn record_recommendation(&mut self, replicas: i32, stale: Option<usize>, now: Timestamp) {
        let sample = Recommendation { replicas, at: now };
        match stale {
            Some(i) => self.recommendations[i] = sample,
            None => self.recommendations.push(sample),
        }
    }
}

const READY: Verdict = Verdict {
    status: true,
    reason: "ReadyForNewScale",
    message: "recommended size matches current size",
};
const SCALE_DOWN_STABILIZED: Verdict = Verdict {
    status: true,
    reason: "ScaleDownStabilized",
    message: "recent recommendations were higher than current one, applying the highest recent recommendation",
};
const SCALE_UP_STABILIZED: Verdict = Verdict {
    status: true,
    reason: "ScaleUpStabilized",
    message: "recent recommendations were lower than current one, applying the lowest recent recommendation",
};
const WITHIN_RANGE: (&str, &str) = (
    "DesiredWithinRange",
    "the desired count is within the acceptable range",
);
const SCALE_UP_LIMIT: (&str, &str) = (
    "ScaleUpLimit",
    "the desired replica count is increasing faster than the maximum scale rate",
);
const SCALE_DOWN_LIMIT: (&str, &str) = (
    "ScaleDownLimit",
    "the desired replica count is decreasing faster than the maximum scale rate",
);
const TOO_MANY: (&str, &str) = (
    "TooManyReplicas",
    "the desired replica count is more than the maximum replica count",
);
const TOO_FEW: (&str, &str) = (
    "TooFewReplicas",
    "the desired replica count is less than the minimum replica count",
);

/// The ScalingLimited verdict: True when the limit changed the count.
fn limited(limited: bool, (reason, message): (&'static str, &'static str)) -> Verdict {
    Verdict {
        status: limited,
        reason,
        message,
    }
}

/// Without a `behavior`: the highest recommendation of the last
/// `downscale_window` (`--horizontal-pod-autoscaler-downscale-stabilization`),
/// then at most max(2×current, 4) and within min/max.
pub fn normalize_legacy(
    history: &mut History,
    bounds: Bounds,
    desired: i32,
    downscale_window: Duration,
    now: Timestamp,
) -> Normalized {
    let cutoff = after(now, downscale_window.as_secs() as i64);
    let mut stabilized = desired;
    let mut stale = None;
    for (i, rec) in history.recommendations.iter().enumerate() {
        if rec.at < cutoff {
            stale = Some(i);
        } else if rec.replicas > stabilized {
            stabilized = rec.replicas;
        }
    }
    history.record_recommendation(desired, stale, now);
    let able_to_scale = if stabilized != desired {
        SCALE_DOWN_STABILIZED
    } else {
        READY
    };
    let scale_up_limit = (2 * bounds.current).max(4);
    let (maximum, over) = if bounds.max > scale_up_limit {
        (scale_up_limit, SCALE_UP_LIMIT)
    } else {
        (bounds.max, TOO_MANY)
    };
    let (replicas, why) = if stabilized < bounds.min {
        (bounds.min, TOO_FEW)
    } else if stabilized > maximum {
        (maximum, over)
    } else {
        (stabilized, WITHIN_RANGE)
    };
    Normalized {
        replicas,
        able_to_scale,
        scaling_limited: limited(replicas != stabilized, why),
    }
}

/// The window of `rules` in seconds (0 when unset).
fn window(rules: Option<&HPAScalingRules>, default: i32) -> i64 {
    i64::from(
        rules
            .and_then(|r| r.stabilization_window_seconds)
            .unwrap_or(default),
    )
}

/// With a `behavior`: the recommendation held between the lowest of the
/// scale-up window and the highest of the scale-down window, then limited
/// by the policies' rates and min/max.
pub fn normalize_with_behavior(
    history: &mut History,
    behavior: &HorizontalPodAutoscalerBehavior,
    bounds: Bounds,
    desired: i32,
    downscale_window: Duration,
    now: Timestamp,
) -> Normalized {
    let up_cutoff = after(now, window(behavior.scale_up.as_ref(), 0));
    let down_window = downscale_window.as_secs() as i32;
    let down_cutoff = after(now, window(behavior.scale_down.as_ref(), down_window));
    let (mut up, mut down) = (desired, desired);
    let mut stale = None;
    for (i, rec) in history.recommendations.iter().enumerate() {
        if rec.at > up_cutoff {
            up = up.min(rec.replicas);
        }
        if rec.at > down_cutoff {
            down = down.max(rec.replicas);
        }
        if rec.at < up_cutoff && rec.at < down_cutoff {
            stale = Some(i);
        }
    }
    let stabilized = bounds.current.max(up).min(down);
    history.record_recommendation(desired, stale, now);
    let able_to_scale = if stabilized == desired {
        READY
    } else if desired >= bounds.current {
        SCALE_UP_STABILIZED
    } else {
        SCALE_DOWN_STABILIZED
    };
    let (replicas, why) = rate_limited(history, behavior, bounds, stabilized, now);
    Normalized {
        replicas,
        able_to_scale,
        scaling_limited: limited(replicas != stabilized, why),
    }
}

/// Upstream's `convertDesiredReplicasWithBehaviorRate`.
fn rate_limited(
    history: &History,
    behavior: &HorizontalPodAutoscalerBehavior,
    bounds: Bounds,
    desired: i32,
    now: Timestamp,
) -> (i32, (&'static str, &'static str)) {
    let Bounds { current, min, max } = bounds;
    if desired > current {
        let limit =
            scale_limit(history, behavior.scale_up.as_ref(), current, true, now).max(current);
        let (maximum, why) = if max > limit {
            (limit, SCALE_UP_LIMIT)
        } else {
            (max, TOO_MANY)
        };
        if desired > maximum {
            return (maximum, why);
        }
    } else if desired < current {
        let limit =
            scale_limit(history, behavior.scale_down.as_ref(), current, false, now).min(current);
        let (minimum, why) = if min < limit {
            (limit, SCALE_DOWN_LIMIT)
        } else {
            (min, TOO_FEW)
        };
        if desired < minimum {
            return (minimum, why);
        }
    }
    (desired, WITHIN_RANGE)
}

/// Replicas changed by the events of the last `period_seconds`.
fn change_in_period(events: &[ScaleEvent], period_seconds: i32, now: Timestamp) -> i32 {
    let cutoff = after(now, i64::from(period_seconds));
    events
        .iter()
        .filter(|e| e.at > cutoff)
        .map(|e| e.change)
        .sum()
}

/// The furthest the policies let the target go from `current` in the
/// direction `up`, counting from the size at the start of each policy's
/// period (upstream's `calculateScale{Up,Down}Limit*`).
fn scale_limit(
    history: &History,
    rules: Option<&HPAScalingRules>,
    current: i32,
    up: bool,
    now: Timestamp,
) -> i32 {
    let select = rules
        .and_then(|r| r.select_policy.as_deref())
        .unwrap_or("Max");
    if select == "Disabled" {
        return current;
    }
    // "Max" picks the largest change: the highest limit up, the lowest down.
    let largest_change = select != "Min";
    let pick_high = largest_change == up;
    let mut result: Option<i32> = None;
    for policy in rules
        .and_then(|r| r.policies.as_deref())
        .unwrap_or_default()
    {
        let added = change_in_period(&history.scale_up_events, policy.period_seconds, now);
        let removed = change_in_period(&history.scale_down_events, policy.period_seconds, now);
        let start = current - added + removed;
        let proposed = match (policy.type_.as_str(), up) {
            ("Pods", true) => start + policy.value,
            ("Pods", false) => start - policy.value,
            ("Percent", true) => {
                (f64::from(start) * (1.0 + f64::from(policy.value) / 100.0)).ceil() as i32
            }
            (_, _) => (f64::from(start) * (1.0 - f64::from(policy.value) / 100.0)) as i32,
        };
        result = Some(match result {
            None => proposed,
            Some(r) if pick_high => r.max(proposed),
            Some(r) => r.min(proposed),
        });
    }
    result.unwrap_or(if pick_high { i32::MIN } else { i32::MAX })
}

#[cfg(test)]
mod tests;
