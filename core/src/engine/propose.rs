//! Stage 2: what each objective asks for on its own.
//!
//! AverageValue and Value follow HPA autoscaling/v2 (`replica_calculator.go`) exactly, down to its
//! milli-unit arithmetic: AverageValue proposes `ceil(total / target)`, Value `ceil(current × value /
//! target)`, and either keeps the current count while `value / (target × current)` (AverageValue) or
//! `value / target` (Value) is within the tolerance band `[1 − scaleDown.tolerance, 1 + scaleUp.tolerance]`.
//!
//! Ceiling (latency, error rate) is Trimtab's control law for objectives that must stay at or below
//! their target and do not say how many replicas they need:
//! - breached (value > target): scale up in proportion to the breach, from the Ready replicas:
//!   `ceil(ready × min(value / target, CEILING_MAX_STEP))`, at least one more than Ready, and never
//!   below the current count. Pods still starting are already on their way to relieve the breach,
//!   so while they cover the step Trimtab holds; and the step is capped, because a saturated service
//!   reads its timeout as latency (10× the target says "more", not "10× more"). Rate limits still
//!   apply;
//! - met with margin (value ≤ target × (1 − CEILING_MARGIN)): no objection to scaling down; the
//!   objective proposes nothing and leaves the count to the others;
//! - in between: hold the current count. The band between the margin and the target is the
//!   hysteresis that keeps a latency objective from flapping.

use super::decision::ObjectiveOutcome;
use super::observation::{Absence, Sample};
use super::policy::{ObjectiveRule, Policy};
use crate::api::{ObjectiveKind, ObjectiveState, WhenEmpty, milli_ceil_of};

/// A Ceiling objective under `target × (1 − CEILING_MARGIN)` does not object to scaling down.
pub const CEILING_MARGIN: f64 = 0.25;
/// The largest step one breach of a Ceiling objective proposes, as a multiple of the Ready replicas.
pub const CEILING_MAX_STEP: f64 = 1.5;

pub fn propose(policy: &Policy, rule: &ObjectiveRule, sample: Sample, current: i32, ready: i32) -> ObjectiveOutcome {
    let (sample, read_as_zero) = read(rule, sample);
    let outcome = |value, absent, state, proposal| ObjectiveOutcome {
        name: rule.name.clone(),
        kind: rule.kind,
        value,
        absent,
        read_as_zero,
        target: rule.target,
        state,
        proposal,
    };
    let value = match sample {
        Sample::Value(v) => v,
        Sample::Absent(absence) => return outcome(None, Some(absence), ObjectiveState::NoData, None),
    };
    let within = |ratio: f64| (1.0 - policy.scale_down.tolerance) <= ratio && ratio <= (1.0 + policy.scale_up.tolerance);
    let (state, proposal) = match rule.kind {
        ObjectiveKind::AverageValue => {
            let usage = milli_ceil_of(value) as f64;
            let target = rule.target_milli as f64;
            let ratio = usage / (target * f64::from(current));
            let state = if ratio > 1.0 + policy.scale_up.tolerance { ObjectiveState::Breached } else { ObjectiveState::Met };
            let proposal = if within(ratio) { current } else { saturating_ceil(usage / target) };
            (state, Some(proposal))
        }
        ObjectiveKind::Value => {
            let ratio = milli_ceil_of(value) as f64 / rule.target_milli as f64;
            let state = if ratio > 1.0 + policy.scale_up.tolerance { ObjectiveState::Breached } else { ObjectiveState::Met };
            let proposal = if within(ratio) { current } else { saturating_ceil(ratio * f64::from(current)) };
            (state, Some(proposal))
        }
        ObjectiveKind::Ceiling => {
            if value > rule.target {
                let ratio = (value / rule.target).min(CEILING_MAX_STEP);
                let step = saturating_ceil(f64::from(ready) * ratio).max(ready.saturating_add(1));
                (ObjectiveState::Breached, Some(step.max(current)))
            } else if value <= rule.target * (1.0 - CEILING_MARGIN) {
                (ObjectiveState::Met, None)
            } else {
                (ObjectiveState::Met, Some(current))
            }
        }
    };
    outcome(Some(value), None, state, proposal)
}

/// What the objective says an absence means: with `whenEmpty: Zero`, no series and NaN (0/0, no
/// traffic) are the value 0; every other absence stays missing data.
fn read(rule: &ObjectiveRule, sample: Sample) -> (Sample, Option<Absence>) {
    match (sample, rule.when_empty) {
        (Sample::Absent(absence @ (Absence::Empty | Absence::NaN)), WhenEmpty::Zero) => (Sample::Value(0.0), Some(absence)),
        (sample, _) => (sample, None),
    }
}

fn saturating_ceil(x: f64) -> i32 {
    x.ceil().clamp(0.0, f64::from(i32::MAX)) as i32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ScalingPolicySpec;

    fn latency_policy() -> Policy {
        let spec: ScalingPolicySpec = serde_json::from_value(serde_json::json!({
            "targetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 1, "maxReplicas": 100,
            "objectives": [{"name": "p99", "kind": "Ceiling", "query": "q", "target": "300m"}]
        }))
        .expect("valid spec");
        Policy::from_spec(&spec).expect("valid policy")
    }

    fn proposal(value: f64, current: i32, ready: i32) -> Option<i32> {
        let policy = latency_policy();
        propose(&policy, &policy.objectives[0], Sample::Value(value), current, ready).proposal
    }

    #[test]
    fn a_small_breach_adds_at_least_one_replica() {
        assert_eq!(proposal(0.31, 10, 10), Some(11));
    }

    #[test]
    fn a_saturated_breach_is_capped_at_one_step() {
        // 10 s of timeouts against 0.3 s says "more", not "33× more".
        assert_eq!(proposal(10.0, 10, 10), Some(15));
    }

    #[test]
    fn pods_still_starting_count_towards_the_breach() {
        // 10 Ready, 14 asked for already: a breach of 1.2× needs 12, so hold at 14.
        assert_eq!(proposal(0.36, 14, 10), Some(14));
    }

    #[test]
    fn a_ceiling_met_with_margin_does_not_object_and_between_holds() {
        assert_eq!(proposal(0.2, 10, 10), None);
        assert_eq!(proposal(0.28, 10, 10), Some(10));
    }
}
