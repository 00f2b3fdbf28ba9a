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

use crate::api::Reason;

/// What an Event reports Trimtab did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act<'a> {
    /// Scaled the target (or failed to: the reason says which).
    Scale { from: i32, to: i32 },
    /// In DryRun, the scale a real round would have made.
    WouldScale { from: i32, to: i32 },
    /// Evicted a pod of the target.
    Evict { namespace: &'a str, pod: &'a str },
    /// Set a condition to a new status.
    Set { condition: &'a str, status: bool },
}

impl Act<'_> {
    /// The Event's action (at most 128 characters, as the API asks: condition types are short).
    fn action(&self) -> String {
        match self {
            Act::Scale { from, to } => format!("Scale{from}To{to}"),
            Act::WouldScale { from, to } => format!("WouldScale{from}To{to}"),
            Act::Evict { .. } => "Evict".to_owned(),
            Act::Set { condition, status } => format!("Set{condition}{}", if *status { "True" } else { "False" }),
        }
    }

    fn related(&self) -> Option<ObjectReference> {
        match self {
            Act::Evict { namespace, pod } => Some(ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                namespace: Some((*namespace).to_owned()),
                name: Some((*pod).to_owned()),
                ..ObjectReference::default()
            }),
            _ => None,
        }
    }
}

/// The Event for `act`, with `reason` and `note` as `kubectl get events` shows them.
pub fn event(type_: EventType, reason: Reason, act: Act<'_>, note: String) -> Event {
    Event { type_, reason: reason.to_string(), note: Some(note), action: act.action(), secondary: act.related() }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What kube-runtime's Recorder compares to fold an Event into an earlier one (its `EventKey`).
    fn series_key(event: &Event) -> (EventType, String, String, Option<ObjectReference>) {
        (event.type_, event.reason.clone(), event.action.clone(), event.secondary.clone())
    }

    #[test]
    fn successive_scale_steps_are_distinct_events_and_a_repeated_step_is_one_series() {
        let step = |from, to| {
            let note = format!("Scaled web from {from} to {to}: p99-latency above target");
            event(EventType::Normal, Reason::DesiredWithinRange, Act::Scale { from, to }, note)
        };
        assert_ne!(series_key(&step(3, 5)), series_key(&step(5, 7)), "the step to 7 must not fold into the step to 5");
        assert_eq!(series_key(&step(3, 5)), series_key(&step(3, 5)), "the same step again is counted");
        assert_eq!(step(3, 5).action, "Scale3To5");
        let would =
            event(EventType::Normal, Reason::DesiredWithinRange, Act::WouldScale { from: 3, to: 5 }, "Would scale".into());
        assert_ne!(series_key(&would), series_key(&step(3, 5)), "a DryRun announcement is not the real step");
    }

    #[test]
    fn a_condition_flipping_back_and_evictions_of_different_pods_are_distinct_events() {
        let flip = |status| {
            let (reason, act) = (
                if status { Reason::SpotUnavailable } else { Reason::SpotAvailable },
                Act::Set { condition: "SpotFallback", status },
            );
            event(EventType::Warning, reason, act, format!("SpotFallback is {status}"))
        };
        assert_ne!(series_key(&flip(false)), series_key(&flip(true)));
        assert_eq!(flip(false).action, "SetSpotFallbackFalse");
        let evict =
            |pod| event(EventType::Normal, Reason::Rebalanced, Act::Evict { namespace: "shop", pod }, format!("Evicted {pod}"));
        assert_ne!(series_key(&evict("web-1")), series_key(&evict("web-2")));
        let related = evict("web-1").secondary.unwrap_or_default();
        assert_eq!((related.kind.as_deref(), related.name.as_deref()), (Some("Pod"), Some("web-1")));
    }
}
