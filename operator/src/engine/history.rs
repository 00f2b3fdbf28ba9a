//! Keeping `status.history`: exactly what HPA keeps in memory, so that every decision after a
//! restart is the one HPA would have made.
//!
//! Recommendations: HPA only ever reads those inside a stabilization window, so older ones can go.
//!
//! Scale events: HPA does not remember every event, and it never forgets one by age. Its
//! `storeScaleEvent` marks the events of the new event's direction that are older than that
//! direction's longest policy period as outdated (`markScaleEventsOutdated`), then overwrites the
//! last outdated one, or appends when there is none. An outdated event still counts wherever its
//! time falls inside a period (the scale-up limit subtracts recent scale-downs, and the scale-down
//! limit recent scale-ups, whose periods may be longer), and which slot the next event overwrites
//! depends on events of any age. So the history keeps HPA's slots themselves, flags included: the
//! list is bounded as HPA's is (a direction grows only when all of its slots are within its
//! longest period, so by the events one period can hold), and no pruning rule can drift from it.

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::policy::{Policy, Rules};
use crate::api::{History, Recommendation, ScaleEvent};

/// Appends this round's recommendation and applied change (if any): recommendations that no
/// stabilization window can see any more are dropped, the change is stored in HPA's slots.
pub fn remember(history: &History, policy: &Policy, now: Timestamp, recommendation: i32, applied_change: i32) -> History {
    let window = policy.scale_up.stabilization_window_seconds.max(policy.scale_down.stabilization_window_seconds);
    let recommendations_cutoff = now - SignedDuration::from_secs(window);
    let mut recommendations: Vec<Recommendation> =
        history.recommendations.iter().filter(|r| r.time.0 > recommendations_cutoff).cloned().collect();
    recommendations.push(Recommendation { time: Time(now), replicas: recommendation });
    let mut scale_events = slots(policy, &history.scale_events);
    store(policy, &mut scale_events, &ScaleEvent::applied(Time(now), applied_change));
    History { recommendations, scale_events }
}

/// HPA's scale-event slots for a history: its slots (entries with `outdated` set) as they are, and
/// each applied change without it stored as HPA would, in list order. Every entry returned is a slot.
pub fn slots(policy: &Policy, events: &[ScaleEvent]) -> Vec<ScaleEvent> {
    let mut slots = Vec::with_capacity(events.len());
    for event in events {
        if event.outdated.is_some() {
            slots.push(event.clone());
        } else {
            store(policy, &mut slots, event);
        }
    }
    slots
}

/// `storeScaleEvent` over the slots of both directions (a direction's slots are the entries of its
/// sign, in list order). A zero change is no event.
fn store(policy: &Policy, slots: &mut Vec<ScaleEvent>, event: &ScaleEvent) {
    if event.change == 0 {
        return;
    }
    let up = event.change > 0;
    let rules = if up { &policy.scale_up } else { &policy.scale_down };
    let cutoff = event.time.0 - SignedDuration::from_secs(longest_period(rules));
    let same_direction = |slot: &ScaleEvent| (slot.change > 0) == up;
    for slot in slots.iter_mut().filter(|slot| same_direction(slot)) {
        if slot.time.0 < cutoff {
            slot.outdated = Some(true);
        }
    }
    let new = ScaleEvent { time: event.time.clone(), change: event.change, outdated: Some(false) };
    match slots.iter().rposition(|slot| same_direction(slot) && slot.outdated == Some(true)) {
        Some(i) => slots[i] = new,
        None => slots.push(new),
    }
}

/// `getLongestPolicyPeriod`.
fn longest_period(rules: &Rules) -> i64 {
    rules.policies.iter().map(|p| p.period_seconds).max().unwrap_or(0)
}
