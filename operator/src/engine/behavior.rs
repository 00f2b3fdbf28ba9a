//! Stage 4: HPA autoscaling/v2 behavior, exactly as `horizontal.go` applies it: stabilization over
//! the recommendation history, then Pods/Percent rate policies over the scale-event history, with
//! minReplicas and maxReplicas. The history comes in as data (HPA keeps it in memory; Trimtab keeps
//! it in status), so the same inputs always give the same answer.

use jiff::{SignedDuration, Timestamp};

use super::policy::{Policy, RatePolicy, Rules};
use crate::api::{History, PolicyType, Reason, SelectPolicy};

pub struct Bounded {
    pub replicas: i32,
    pub reason: Reason,
    pub message: String,
}

/// `stabilizeRecommendationWithBehaviors`: the current count, raised to the lowest recommendation of
/// the scale-up window and lowered to the highest of the scale-down window (each window including
/// this round's recommendation).
pub fn stabilize(policy: &Policy, history: &History, now: Timestamp, current: i32, recommendation: i32) -> Bounded {
    let up_cutoff = now - SignedDuration::from_secs(policy.scale_up.stabilization_window_seconds);
    let down_cutoff = now - SignedDuration::from_secs(policy.scale_down.stabilization_window_seconds);
    let mut up = recommendation;
    let mut down = recommendation;
    for past in &history.recommendations {
        if past.time.0 > up_cutoff {
            up = up.min(past.replicas);
        }
        if past.time.0 > down_cutoff {
            down = down.max(past.replicas);
        }
    }
    let stabilized = current.max(up).min(down);
    let (reason, message) = if recommendation >= current {
        (
            Reason::ScaleUpStabilized,
            format!(
                "recent recommendations were lower: holding at {stabilized} instead of {recommendation} (scale-up window {}s)",
                policy.scale_up.stabilization_window_seconds
            ),
        )
    } else {
        (
            Reason::ScaleDownStabilized,
            format!(
                "recent recommendations were higher: holding at {stabilized} instead of {recommendation} (scale-down window {}s)",
                policy.scale_down.stabilization_window_seconds
            ),
        )
    };
    Bounded { replicas: stabilized, reason, message }
}

/// `convertDesiredReplicasWithBehaviorRate`: rate policies and min/max.
pub fn limit_rate(policy: &Policy, history: &History, now: Timestamp, current: i32, desired: i32) -> Bounded {
    if desired > current {
        let rate_limit = scale_up_limit(&policy.scale_up, history, now, current).max(current);
        let (allowed, reason, message) = if policy.max_replicas > rate_limit {
            (rate_limit, Reason::ScaleUpLimit, format!("scale-up rate limit allows at most {rate_limit} replicas now"))
        } else {
            (policy.max_replicas, Reason::TooManyReplicas, format!("maxReplicas is {}", policy.max_replicas))
        };
        if desired > allowed {
            return Bounded { replicas: allowed, reason, message };
        }
    } else if desired < current {
        let rate_limit = scale_down_limit(&policy.scale_down, history, now, current).min(current);
        let (allowed, reason, message) = if policy.min_replicas < rate_limit {
            (rate_limit, Reason::ScaleDownLimit, format!("scale-down rate limit allows at least {rate_limit} replicas now"))
        } else {
            (policy.min_replicas, Reason::TooFewReplicas, format!("minReplicas is {}", policy.min_replicas))
        };
        if desired < allowed {
            return Bounded { replicas: allowed, reason, message };
        }
    }
    Bounded {
        replicas: desired,
        reason: Reason::DesiredWithinRange,
        message: "the desired count is within the acceptable range".into(),
    }
}

/// `calculateScaleUpLimitWithScalingRules`.
fn scale_up_limit(rules: &Rules, history: &History, now: Timestamp, current: i32) -> i32 {
    select(rules, history, now, current, true, |start, policy| match policy.kind {
        PolicyType::Pods => start.saturating_add(policy.value),
        // Rounded up so that a small percentage still allows one more replica.
        PolicyType::Percent => (f64::from(start) * (1.0 + f64::from(policy.value) / 100.0)).ceil() as i32,
    })
}

/// `calculateScaleDownLimitWithBehaviors`.
fn scale_down_limit(rules: &Rules, history: &History, now: Timestamp, current: i32) -> i32 {
    select(rules, history, now, current, false, |start, policy| match policy.kind {
        PolicyType::Pods => start.saturating_sub(policy.value),
        PolicyType::Percent => (f64::from(start) * (1.0 - f64::from(policy.value) / 100.0)) as i32,
    })
}

/// Applies each policy to the replica count at the start of its period and picks per selectPolicy:
/// Max means the biggest change (highest limit up, lowest limit down), Min the smallest.
fn select(
    rules: &Rules,
    history: &History,
    now: Timestamp,
    current: i32,
    up: bool,
    proposed: impl Fn(i32, &RatePolicy) -> i32,
) -> i32 {
    let biggest_change = match rules.select_policy {
        SelectPolicy::Disabled => return current,
        SelectPolicy::Max => true,
        SelectPolicy::Min => false,
    };
    let take_highest = biggest_change == up;
    let mut result: Option<i32> = None;
    for policy in &rules.policies {
        let cutoff = now - SignedDuration::from_secs(policy.period_seconds);
        let (mut added, mut removed) = (0i32, 0i32);
        for event in history.scale_events.iter().filter(|e| e.time.0 > cutoff) {
            if event.change > 0 {
                added = added.saturating_add(event.change);
            } else {
                removed = removed.saturating_add(event.change.saturating_neg());
            }
        }
        let period_start = current.saturating_sub(added).saturating_add(removed);
        let limit = proposed(period_start, policy);
        result = Some(match result {
            None => limit,
            Some(r) if take_highest => r.max(limit),
            Some(r) => r.min(limit),
        });
    }
    // No policies in a direction that is not Disabled: HPA's loop yields MinInt32 / MaxInt32, which
    // the caller's clamp to the current count turns into "no change allowed".
    result.unwrap_or(current)
}
