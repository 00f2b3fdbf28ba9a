//! Stage 2: what each objective asks for on its own.
//!
//! AverageValue and Value follow HPA autoscaling/v2 (`replica_calculator.go`) exactly, down to its
//! milli-unit arithmetic: AverageValue proposes `ceil(total / target)`, Value `ceil(current × value /
//! target)`, and either keeps the current count while `value / (target × current)` (AverageValue) or
//! `value / target` (Value) is within the tolerance band `[1 − scaleDown.tolerance, 1 + scaleUp.tolerance]`.
//!
//! Ceiling (latency, error rate) is Trimtab's control law for objectives that must stay at or below
//! their target and do not say how many replicas they need:
//! - breached (value > target): scale up in proportion to the breach, `ceil(current × value / target)`,
//!   at least one more replica; rate limits still apply;
//! - met with margin (value ≤ target × (1 − CEILING_MARGIN)): no objection to scaling down; the
//!   objective proposes nothing and leaves the count to the others;
//! - in between: hold the current count. The band between the margin and the target is the
//!   hysteresis that keeps a latency objective from flapping.

use super::decision::ObjectiveOutcome;
use super::observation::Sample;
use super::policy::{ObjectiveRule, Policy};
use crate::api::{ObjectiveKind, ObjectiveState, milli_ceil_of};

/// A Ceiling objective under `target × (1 − CEILING_MARGIN)` does not object to scaling down.
pub const CEILING_MARGIN: f64 = 0.25;

pub fn propose(policy: &Policy, rule: &ObjectiveRule, sample: Sample, current: i32) -> ObjectiveOutcome {
    let outcome = |value, absent, state, proposal| ObjectiveOutcome {
        name: rule.name.clone(),
        kind: rule.kind,
        value,
        absent,
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
                let proportional = saturating_ceil(f64::from(current) * value / rule.target);
                (ObjectiveState::Breached, Some(proportional.max(current.saturating_add(1))))
            } else if value <= rule.target * (1.0 - CEILING_MARGIN) {
                (ObjectiveState::Met, None)
            } else {
                (ObjectiveState::Met, Some(current))
            }
        }
    };
    outcome(Some(value), None, state, proposal)
}

fn saturating_ceil(x: f64) -> i32 {
    x.ceil().clamp(0.0, f64::from(i32::MAX)) as i32
}
