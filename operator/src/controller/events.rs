//! The Events a round publishes, built here so what keys them is in one place.
//!
//! kube-runtime's `Recorder` folds an Event into the one it published before (a series: count and
//! last time seen) when the type, reason, action, reporter, regarding and related object are all the
//! same, and the series keeps the earlier Event's note (kube-runtime 5.0 `events.rs`: `EventKey`
//! holds no note, and a repeat patches the cached Event, kept six minutes). With one action for
//! everything, "Scaled web from 3 to 5" and "Scaled web from 5 to 7" a round later (same reason)
//! became one Event saying 3 to 5, seen twice: the step to 7 was missing from `kubectl get events`.
//! So the action names what Trimtab did and what tells one occurrence from another, as the Events
//! API means it to: the step (`Scale3To5`), the condition and its new state (`SetSpotFallbackFalse`);
//! an evicted pod is the Event's related object. What still folds is a true repeat (the same step
//! or flip again within six minutes), counted.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType};

use crate::plan::{self, Act, PlannedEvent};

/// The Event's action (at most 128 characters, as the API asks: condition types are short).
fn action(act: &Act) -> String {
    match act {
        Act::Scale { from, to } => format!("Scale{from}To{to}"),
        Act::WouldScale { from, to } => format!("WouldScale{from}To{to}"),
        Act::Evict { .. } => "Evict".to_owned(),
        Act::Set { condition, status } => format!("Set{condition}{}", if *status { "True" } else { "False" }),
    }
}

/// An evicted pod is the Event's related object (`namespace` is the policy's, and so the pod's).
fn related(act: &Act, namespace: &str) -> Option<ObjectReference> {
    match act {
        Act::Evict { pod } => Some(ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            namespace: Some(namespace.to_owned()),
            name: Some(pod.clone()),
            ..ObjectReference::default()
        }),
        _ => None,
    }
}

/// The Event the Recorder publishes for a planned one, on a policy in `namespace`.
pub fn event(planned: PlannedEvent, namespace: &str) -> Event {
    let type_ = match planned.type_ {
        plan::EventType::Normal => EventType::Normal,
        plan::EventType::Warning => EventType::Warning,
    };
    let (action, secondary) = (action(&planned.act), related(&planned.act, namespace));
    Event { type_, reason: planned.reason.to_string(), note: Some(planned.note), action, secondary }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Reason;

    /// What kube-runtime's Recorder compares to fold an Event into an earlier one (its `EventKey`).
    fn series_key(event: &Event) -> (EventType, String, String, Option<ObjectReference>) {
        (event.type_, event.reason.clone(), event.action.clone(), event.secondary.clone())
    }

    #[test]
    fn successive_scale_steps_are_distinct_events_and_a_repeated_step_is_one_series() {
        let step = |from, to| {
            let note = format!("Scaled web from {from} to {to}: p99-latency above target");
            event(PlannedEvent::normal(Reason::DesiredWithinRange, Act::Scale { from, to }, note), "shop")
        };
        assert_ne!(series_key(&step(3, 5)), series_key(&step(5, 7)), "the step to 7 must not fold into the step to 5");
        assert_eq!(series_key(&step(3, 5)), series_key(&step(3, 5)), "the same step again is counted");
        assert_eq!(step(3, 5).action, "Scale3To5");
        let would = event(
            PlannedEvent::normal(Reason::DesiredWithinRange, Act::WouldScale { from: 3, to: 5 }, "Would scale".into()),
            "shop",
        );
        assert_ne!(series_key(&would), series_key(&step(3, 5)), "a DryRun announcement is not the real step");
    }

    #[test]
    fn a_condition_flipping_back_and_evictions_of_different_pods_are_distinct_events() {
        let flip = |status| {
            let (reason, act) = (
                if status { Reason::SpotUnavailable } else { Reason::SpotAvailable },
                Act::Set { condition: "SpotFallback", status },
            );
            event(PlannedEvent::warning(reason, act, format!("SpotFallback is {status}")), "shop")
        };
        assert_ne!(series_key(&flip(false)), series_key(&flip(true)));
        assert_eq!(flip(false).action, "SetSpotFallbackFalse");
        let evict = |pod: &str| {
            event(PlannedEvent::normal(Reason::Rebalanced, Act::Evict { pod: pod.into() }, format!("Evicted {pod}")), "shop")
        };
        assert_ne!(series_key(&evict("web-1")), series_key(&evict("web-2")));
        let related = evict("web-1").secondary.unwrap_or_default();
        assert_eq!((related.kind.as_deref(), related.name.as_deref()), (Some("Pod"), Some("web-1")));
    }
}
