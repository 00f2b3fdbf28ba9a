//! Stage 4: HPA autoscaling/v2 behavior, exactly as `horizontal.go` applies it: stabilization over
//! the recommendation history, then Pods/Percent rate policies over the scale-event history, with
//! minReplicas and maxReplicas. The history comes in as data (HPA keeps it in memory; Trimtab keeps
//! it in status), so the same inputs always give the same answer.
//!
//! HPA does not remember every scale event: `storeScaleEvent` writes a new event over the last
//! event of the same direction that is older than that direction's longest policy period. Such an
//! event can still fall inside a period of the other direction (the scale-up limit subtracts recent
//! scale-downs and the scale-down limit recent scale-ups), so the rate limits here replay that
//! storage over the history instead of summing every event ([`remembered_events`]).

use jiff::{SignedDuration, Timestamp};

use super::policy::{Policy, RatePolicy, Rules};
use crate::api::{History, PolicyType, Reason, ScaleEvent, SelectPolicy};

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
    let (ups, downs) = remembered_events(policy, history);
    let mut result: Option<i32> = None;
    for rate in &rules.policies {
        let cutoff = now - SignedDuration::from_secs(rate.period_seconds);
        let in_period =
            |events: &[Remembered]| events.iter().filter(|e| e.time > cutoff).fold(0i32, |sum, e| sum.saturating_add(e.replicas));
        let (added, removed) = (in_period(&ups), in_period(&downs));
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

/// A scale event as HPA remembers it: its size (replicas added, or removed) and when.
struct Remembered {
    time: Timestamp,
    replicas: i32,
    outdated: bool,
}

/// The scale-up and scale-down events HPA still holds after storing the history's events in order
/// (`storeScaleEvent`): each new event first marks the events of its direction older than that
/// direction's longest policy period as outdated (`markScaleEventsOutdated`), then overwrites the
/// last outdated one, or is appended when there is none. Outdated events that were not overwritten
/// still count.
fn remembered_events(policy: &Policy, history: &History) -> (Vec<Remembered>, Vec<Remembered>) {
    let longest = |rules: &Rules| SignedDuration::from_secs(rules.policies.iter().map(|p| p.period_seconds).max().unwrap_or(0));
    let (up_period, down_period) = (longest(&policy.scale_up), longest(&policy.scale_down));
    let mut events: Vec<&ScaleEvent> = history.scale_events.iter().filter(|e| e.change != 0).collect();
    events.sort_by_key(|e| e.time.0); // stable: events of one instant keep their order
    let (mut ups, mut downs): (Vec<Remembered>, Vec<Remembered>) = (Vec::new(), Vec::new());
    for event in events {
        let (stored, period) = if event.change > 0 { (&mut ups, up_period) } else { (&mut downs, down_period) };
        let time = event.time.0;
        for old in stored.iter_mut().filter(|old| old.time < time - period) {
            old.outdated = true;
        }
        let new = Remembered { time, replicas: event.change.saturating_abs(), outdated: false };
        match stored.iter().rposition(|e| e.outdated) {
            Some(i) => stored[i] = new,
            None => stored.push(new),
        }
    }
    (ups, downs)
}
