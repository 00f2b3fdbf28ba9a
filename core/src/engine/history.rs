//! Keeping `status.history`: exactly what HPA keeps in memory, so that every decision after a
//! restart is the one HPA would have made.
//!
//! Recommendations: HPA keeps one entry per round and only ever reads those inside a stabilization
//! window (an entry counts when its round is later than `now − window`). Writing one entry per round
//! would make every round a status write, so the history keeps runs instead: one entry per
//! recommended count, from its first round (`time`) to its last (`until`). A run counts exactly when
//! its last round does, which is what HPA's per-round entries say, so a run is as good as the rounds
//! it stands for. A quiet round (the same count again) changes nothing: the newest run is still
//! open, and its last round so far is not written. It is not needed either: while the count stays
//! the same, that count is also this round's recommendation, so whether the older rounds of it are
//! inside a window changes no minimum or maximum. It is needed when a new count supersedes the run:
//! then the run is closed at the last round that recommended it, which the operator keeps in memory
//! ([`recall`]). After a restart that memory is gone; the run is then taken to have been recommended
//! until the first round of the new process, which holds a superseded count at most that much longer
//! than HPA would (never shorter: a restart never lets a scale-down through early).
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

/// The history to decide with at `now`: the stored one, with its newest run recommended through
/// `last_round` (the policy's previous round, as this process remembers it). Without a memory (the
/// first round of a process), through `now`: see the module comment.
pub fn recall(history: &History, last_round: Option<Timestamp>, now: Timestamp) -> History {
    let mut recalled = history.clone();
    if let Some(open) = recalled.recommendations.last_mut() {
        let through = last_round.unwrap_or(now);
        if through > open.last_seen().0 {
            open.until = Some(Time(through));
        }
    }
    recalled
}

/// The history after this round: `history` as stored, `last_round` as for [`recall`]. The same
/// count as the newest run's leaves the recommendations as they are; a new count closes that run at
/// its last round, drops the runs no stabilization window can see any more and starts a run. The
/// applied change (if any) is stored in HPA's slots.
pub fn remember(
    history: &History,
    last_round: Option<Timestamp>,
    policy: &Policy,
    now: Timestamp,
    recommendation: i32,
    applied_change: i32,
) -> History {
    let recommendations = match history.recommendations.last() {
        Some(open) if open.replicas == recommendation => history.recommendations.clone(),
        _ => {
            // `spec.forecast.singleStepDownWindow` reads further back than the stabilization windows.
            let single_step = policy.forecast.as_ref().map_or(0, |f| f.single_step_down_window.as_secs() as i64);
            let window =
                policy.scale_up.stabilization_window_seconds.max(policy.scale_down.stabilization_window_seconds).max(single_step);
            let cutoff = now - SignedDuration::from_secs(window);
            let closed = recall(history, last_round, now).recommendations;
            let mut recommendations: Vec<Recommendation> = closed.into_iter().filter(|r| r.last_seen().0 > cutoff).collect();
            recommendations.push(Recommendation::at(Time(now), recommendation));
            recommendations
        }
    };
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
