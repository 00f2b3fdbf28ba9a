//! Stage 4: HPA autoscaling/v2 behavior, exactly as `horizontal.go` applies it: stabilization over
//! the recommendation history, then Pods/Percent rate policies over the scale-event history, with
//! minReplicas and maxReplicas. The history comes in as data (HPA keeps it in memory; Trimtab keeps
//! it in status), so the same inputs always give the same answer.
//!
//! The scale events count as HPA holds them: its slots, which [`super::history::slots`] keeps.

use jiff::{SignedDuration, Timestamp};

use super::history::slots;
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
    // A run counts when its last round is inside the window (see `history`).
    for past in &history.recommendations {
        let last = past.last_seen().0;
        if last > up_cutoff {
            up = up.min(past.replicas);
        }
        if last > down_cutoff {
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
        let rate_limit = scale_up_limit(policy, history, now, current).max(current);
        let (allowed, reason, message) = if policy.max_replicas > rate_limit {
            (rate_limit, Reason::ScaleUpLimit, format!("scale-up rate limit allows at most {rate_limit} replicas now"))
        } else {
            (policy.max_replicas, Reason::TooManyReplicas, format!("maxReplicas is {}", policy.max_replicas))
        };
        if desired > allowed {
            return Bounded { replicas: allowed, reason, message };
        }
    } else if desired < current {
        let rate_limit = scale_down_limit(policy, history, now, current).min(current);
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
fn scale_up_limit(policy: &Policy, history: &History, now: Timestamp, current: i32) -> i32 {
    select(policy, &policy.scale_up, history, now, current, true, |start, rate| match rate.kind {
        PolicyType::Pods => start.saturating_add(rate.value),
        // Rounded up so that a small percentage still allows one more replica.
        PolicyType::Percent => (f64::from(start) * (1.0 + f64::from(rate.value) / 100.0)).ceil() as i32,
    })
}

/// `calculateScaleDownLimitWithBehaviors`.
fn scale_down_limit(policy: &Policy, history: &History, now: Timestamp, current: i32) -> i32 {
    select(policy, &policy.scale_down, history, now, current, false, |start, rate| match rate.kind {
        PolicyType::Pods => start.saturating_sub(rate.value),
        PolicyType::Percent => (f64::from(start) * (1.0 - f64::from(rate.value) / 100.0)) as i32,
    })
}

/// Applies each policy to the replica count at the start of its period and picks per selectPolicy:
/// Max means the biggest change (highest limit up, lowest limit down), Min the smallest.
fn select(
    policy: &Policy,
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
    let slots = slots(policy, &history.scale_events);
    let mut result: Option<i32> = None;
    for rate in &rules.policies {
        let cutoff = now - SignedDuration::from_secs(rate.period_seconds);
        // `getReplicasChangePerPeriod`: every slot inside the period counts, outdated or not.
        let (added, removed) = slots.iter().filter(|e| e.time.0 > cutoff).fold((0i32, 0i32), |(added, removed), e| {
            if e.change > 0 {
                (added.saturating_add(e.change), removed)
            } else {
                (added, removed.saturating_add(e.change.saturating_abs()))
            }
        });
        let period_start = current.saturating_sub(added).saturating_add(removed);
        let limit = proposed(period_start, rate);
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
