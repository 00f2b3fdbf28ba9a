//! metav1.Condition semantics: one condition per type; lastTransitionTime changes only when the
//! status flips (apimachinery's `SetStatusCondition`).

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::api::Reason;

pub const READY: &str = "Ready";
pub const METRICS_AVAILABLE: &str = "MetricsAvailable";
pub const SCALING_ACTIVE: &str = "ScalingActive";
pub const SCALING_LIMITED: &str = "ScalingLimited";
pub const BUDGET_LIMITED: &str = "BudgetLimited";
pub const SPOT_FALLBACK: &str = "SpotFallback";
pub const CONFLICT: &str = "Conflict";
pub const EXTERNAL_WRITE_DETECTED: &str = "ExternalWriteDetected";

/// A condition as the controller wants it this round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub type_: &'static str,
    pub status: bool,
    pub reason: Reason,
    pub message: String,
}

/// A condition whose status flipped (or appeared) this round: each gets an Event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flip {
    pub type_: &'static str,
    /// The condition was not there before (a new policy), rather than changed.
    pub appeared: bool,
    pub status: bool,
    pub reason: Reason,
    pub message: String,
}

/// Sets each wanted condition; returns the flips.
pub fn apply(conditions: &mut Vec<Condition>, wanted: &[Wanted], generation: Option<i64>, now: Timestamp) -> Vec<Flip> {
    let mut flips = Vec::new();
    for w in wanted {
        let status = if w.status { "True" } else { "False" }.to_owned();
        let next = |last_transition_time| Condition {
            type_: w.type_.to_owned(),
            status: status.clone(),
            reason: w.reason.as_str().to_owned(),
            message: truncate(&w.message, 32_768),
            observed_generation: generation,
            last_transition_time,
        };
        match conditions.iter_mut().find(|c| c.type_ == w.type_) {
            Some(existing) if existing.status == status => *existing = next(existing.last_transition_time.clone()),
            Some(existing) => {
                *existing = next(Time(now));
                flips.push(Flip {
                    type_: w.type_,
                    appeared: false,
                    status: w.status,
                    reason: w.reason,
                    message: w.message.clone(),
                });
            }
            None => {
                conditions.push(next(Time(now)));
                flips.push(Flip {
                    type_: w.type_,
                    appeared: true,
                    status: w.status,
                    reason: w.reason,
                    message: w.message.clone(),
                });
            }
        }
    }
    flips
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// Whether a flip is bad news (a Warning Event) or good news (Normal).
pub fn is_warning(flip: &Flip) -> bool {
    match flip.type_ {
        READY | METRICS_AVAILABLE | SCALING_ACTIVE => !flip.status,
        SCALING_LIMITED => false,
        _ => flip.status,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    fn ready(status: bool, reason: Reason, message: &str) -> Wanted {
        Wanted { type_: READY, status, reason, message: message.into() }
    }

    #[test]
    fn transition_time_changes_only_when_the_status_flips() {
        let mut conditions = Vec::new();
        let flips = apply(&mut conditions, &[ready(true, Reason::Active, "ok")], Some(1), at("2026-01-01T00:00:00Z"));
        assert_eq!(flips.len(), 1);
        let flips = apply(&mut conditions, &[ready(true, Reason::DryRun, "still ok")], Some(2), at("2026-01-01T00:01:00Z"));
        assert!(flips.is_empty(), "same status, new reason: no flip");
        assert_eq!(conditions[0].last_transition_time, Time(at("2026-01-01T00:00:00Z")));
        assert_eq!(conditions[0].reason, "DryRun");
        assert_eq!(conditions[0].observed_generation, Some(2));
        let flips = apply(&mut conditions, &[ready(false, Reason::TargetNotFound, "gone")], Some(2), at("2026-01-01T00:02:00Z"));
        assert_eq!(flips.len(), 1);
        assert_eq!(conditions[0].last_transition_time, Time(at("2026-01-01T00:02:00Z")));
    }
}
