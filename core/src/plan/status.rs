//! Report: the status a round leaves behind, built by pure functions from what was observed and
//! decided, so it can be tested without a cluster.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::SpotReport;
use super::conditions::{self, Flip, Wanted};
use crate::api::{
    ForecastStatus, LastDecision, ObjectiveState, ObjectiveStatus, PlacementStatus, Reason, ScalingPolicyStatus, format_decimal,
};
use crate::engine::{Arbitration, DataCompleteness, Decision};

/// Why writes are held back this round, if they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hold {
    /// Writes go through.
    None,
    DryRun,
    Paused,
    Conflict(String),
    /// Another field manager set the target's replicas: no write until this time (R12).
    External(Timestamp),
}

/// What a decided round reports.
pub struct Round<'a> {
    pub generation: Option<i64>,
    pub now: Timestamp,
    pub current: i32,
    pub decision: &'a Decision,
    pub hold: &'a Hold,
    pub spot: SpotReport,
    pub has_budget: bool,
    /// The target's replicas were changed this round.
    pub scaled: bool,
    /// What Trimtab makes of other writers of the target's replicas (see `engine::arbitrate`).
    pub external: &'a Arbitration,
}

/// The status after a decided round, and the conditions that flipped.
pub fn decided(previous: &ScalingPolicyStatus, round: &Round, history: crate::api::History) -> (ScalingPolicyStatus, Vec<Flip>) {
    let decision = round.decision;
    let mut status = previous.clone();
    status.observed_generation = round.generation;
    status.current_replicas = Some(round.current);
    status.desired_replicas = Some(decision.desired_replicas);
    status.placement = decision.placement.map(|p| {
        let actual = round.spot.actual.unwrap_or(crate::engine::Split { spot: 0, on_demand: 0 });
        PlacementStatus {
            spot: p.spot,
            on_demand: p.on_demand,
            actual_spot: actual.spot,
            actual_on_demand: actual.on_demand,
            spot_healthy: round.spot.healthy,
            spot_available_since: round.spot.available_since.map(Time),
        }
    });
    status.cost_per_hour = decision.cost_per_hour.map(|c| format_decimal(c, 4));
    status.objectives = decision
        .objectives
        .iter()
        .map(|o| {
            let fresh = ObjectiveStatus {
                name: o.name.clone(),
                value: o.value.map(|v| format_decimal(v, 4)),
                target: format_decimal(o.target, 4),
                state: o.state,
            };
            let shown = previous.objectives.iter().find(|p| p.name == o.name);
            match shown {
                Some(shown) if close_enough(shown, &fresh, o.value) => shown.clone(),
                _ => fresh,
            }
        })
        .collect();
    let fresh_forecast = decision.plan.as_ref().map(|plan| ForecastStatus {
        demand: format_decimal(plan.forecast.demand, 4),
        capacity_per_replica: format_decimal(plan.capacity.per_replica, 4),
        objective: plan.capacity.objective.clone(),
        replicas: plan.replicas,
    });
    status.forecast = match (&previous.forecast, fresh_forecast) {
        (Some(shown), Some(fresh)) if forecast_close_enough(shown, &fresh) => Some(shown.clone()),
        (_, fresh) => fresh,
    };
    status.consecutive_failures =
        if decision.data == DataCompleteness::Complete { 0 } else { previous.consecutive_failures.saturating_add(1) };
    status.history = history;
    status.targets = targets_line(&status.objectives);
    if round.scaled {
        status.last_scale_time = Some(Time(round.now));
    }
    status.external_write = round.external.external_write.clone();

    let fresh_message = decision.reasons.first().map(|s| s.message.clone()).unwrap_or_default();
    let last = LastDecision {
        time: Time(round.now),
        from: round.current,
        to: decision.desired_replicas,
        reason: decision.reason,
        message: fresh_message,
        limited_by: decision.limited_by,
    };
    // The time and message of a decision are those of when it was first made: the same decision
    // again (its numbers moving a little, say) keeps them, so a quiet loop leaves status alone. The
    // values of every round are in the objectives' metrics.
    let kept = previous
        .last_decision
        .as_ref()
        .filter(|p| p.from == last.from && p.to == last.to && p.reason == last.reason && p.limited_by == last.limited_by);
    let message = match kept {
        Some(kept) => kept.message.clone(),
        None => {
            let message = last.message.clone();
            status.last_decision = Some(last);
            message
        }
    };

    let wanted = wanted_conditions(round, &message);
    let flips = conditions::apply(&mut status.conditions, &wanted, round.generation, round.now);
    (status, flips)
}

/// An objective's value shown in status moves when the value read moves by more than this share
/// of it (finer than HPA's 10 % tolerance band, which is what decides) or when its state, target or
/// absence changes: noise in a flat load does not rewrite status every round.
pub const VALUE_REFRESH: f64 = 0.05;

fn close_enough(shown: &ObjectiveStatus, fresh: &ObjectiveStatus, value: Option<f64>) -> bool {
    if shown.state != fresh.state || shown.target != fresh.target {
        return false;
    }
    match (shown.value.as_deref().and_then(|v| v.parse::<f64>().ok()), value) {
        (Some(old), Some(new)) => (new - old).abs() <= VALUE_REFRESH * old.abs(),
        (None, None) => shown.value.is_none(),
        _ => false,
    }
}

/// A plan shown in status stays while its count and objective are the same and its figures are
/// within [`VALUE_REFRESH`] of what is shown.
fn forecast_close_enough(shown: &ForecastStatus, fresh: &ForecastStatus) -> bool {
    let near = |old: &str, new: &str| match (old.parse::<f64>(), new.parse::<f64>()) {
        (Ok(old), Ok(new)) => (new - old).abs() <= VALUE_REFRESH * old.abs(),
        _ => old == new,
    };
    shown.replicas == fresh.replicas
        && shown.objective == fresh.objective
        && near(&shown.demand, &fresh.demand)
        && near(&shown.capacity_per_replica, &fresh.capacity_per_replica)
}

/// How many objectives the one-line summary names before "+N more".
const TARGETS_SHOWN: usize = 2;

/// "p99-latency 0.41/0.3, rps 412/50 +1 more"; "<none>" for a value not read.
fn targets_line(objectives: &[ObjectiveStatus]) -> Option<String> {
    if objectives.is_empty() {
        return None;
    }
    let shown: Vec<String> = objectives
        .iter()
        .take(TARGETS_SHOWN)
        .map(|o| format!("{} {}/{}", o.name, o.value.as_deref().unwrap_or("<none>"), o.target))
        .collect();
    let more = objectives.len().saturating_sub(TARGETS_SHOWN);
    let mut line = shown.join(", ");
    if more > 0 {
        line.push_str(&format!(" +{more} more"));
    }
    Some(line)
}

fn wanted_conditions(round: &Round, decision_message: &str) -> Vec<Wanted> {
    let decision = round.decision;
    let wanted = |type_, status, reason, message: String| Wanted { type_, status, reason, message };
    let (active_reason, active_message) = match round.hold {
        Hold::None => (Reason::Active, format!("scaling the target: {decision_message}")),
        Hold::DryRun => {
            (Reason::DryRun, format!("mode is DryRun: would scale to {} ({decision_message})", decision.desired_replicas))
        }
        Hold::Paused => {
            (Reason::Paused, format!("paused by the trimtab.dev/paused annotation: would scale to {}", decision.desired_replicas))
        }
        Hold::Conflict(message) => (Reason::ConflictingAutoscaler, format!("not scaling: {message}")),
        Hold::External(until) => {
            (Reason::ExternalWrite, format!("another field manager set the replicas: not writing until {until}"))
        }
    };
    // A hold for an external write is a pause in scaling, not a stop: it keeps ScalingActive (and
    // Ready) True, so a writer that comes back every cycle flips nothing.
    let scaling_active = match (round.hold, decision.reason) {
        (Hold::None | Hold::External(_), Reason::ScalingDisabled) => false,
        (Hold::None | Hold::External(_), _) => true,
        _ => false,
    };
    let scaling_reason = if decision.reason == Reason::ScalingDisabled && matches!(round.hold, Hold::None | Hold::External(_)) {
        Reason::ScalingDisabled
    } else {
        active_reason
    };
    let metrics = match decision.data {
        DataCompleteness::Complete => {
            wanted(conditions::METRICS_AVAILABLE, true, Reason::ObjectivesRead, "every objective was read".into())
        }
        DataCompleteness::Partial => wanted(conditions::METRICS_AVAILABLE, false, Reason::PartialMetrics, missing(decision)),
        DataCompleteness::Missing => wanted(conditions::METRICS_AVAILABLE, false, Reason::MetricsUnavailable, missing(decision)),
    };
    let limited = decision.limited_by != Reason::DesiredWithinRange;
    let limited_message =
        decision.message_for(decision.limited_by).unwrap_or("the desired count is within the acceptable range").to_owned();
    let budget_step = decision
        .reasons
        .iter()
        .find(|s| matches!(s.reason, Reason::BudgetLimited | Reason::MinReplicasOverBudget | Reason::BudgetExceeded));
    let budget = match budget_step {
        Some(step) => wanted(conditions::BUDGET_LIMITED, true, step.reason, step.message.clone()),
        None if round.has_budget => {
            wanted(conditions::BUDGET_LIMITED, false, Reason::WithinBudget, "the desired replicas fit the budget".into())
        }
        None => wanted(conditions::BUDGET_LIMITED, false, Reason::WithinBudget, "no budget is set".into()),
    };
    let spot = if round.spot.healthy {
        wanted(conditions::SPOT_FALLBACK, false, Reason::SpotAvailable, "the spot pool is available".into())
    } else {
        let why = match (&round.spot.problem, round.spot.available_since) {
            (Some(problem), _) => problem.clone(),
            (None, Some(since)) => {
                format!("spot has looked usable since {since}; waiting placement.returnAfter before moving back")
            }
            (None, None) => "the spot pool is unavailable".into(),
        };
        wanted(conditions::SPOT_FALLBACK, true, Reason::SpotUnavailable, format!("{why}: new replicas go on-demand"))
    };
    let conflict = match round.hold {
        Hold::Conflict(message) => wanted(conditions::CONFLICT, true, Reason::ConflictingAutoscaler, message.clone()),
        _ => wanted(conditions::CONFLICT, false, Reason::NoConflict, "no other autoscaler scales the target".into()),
    };
    let external = match &round.external.message {
        Some(message) => wanted(conditions::EXTERNAL_WRITE_DETECTED, true, Reason::ExternalWrite, message.clone()),
        None => wanted(
            conditions::EXTERNAL_WRITE_DETECTED,
            false,
            Reason::NoExternalWrite,
            "no other field manager has set the target's replicas since Trimtab did".into(),
        ),
    };
    let ready = match round.hold {
        Hold::Conflict(message) => wanted(conditions::READY, false, Reason::ConflictingAutoscaler, message.clone()),
        _ => wanted(conditions::READY, true, active_reason, active_message.clone()),
    };
    vec![
        ready,
        metrics,
        wanted(conditions::SCALING_ACTIVE, scaling_active, scaling_reason, active_message),
        wanted(conditions::SCALING_LIMITED, limited, decision.limited_by, limited_message),
        budget,
        spot,
        conflict,
        external,
    ]
}

fn missing(decision: &Decision) -> String {
    let parts: Vec<String> = decision
        .objectives
        .iter()
        .filter(|o| o.state == ObjectiveState::NoData)
        .map(|o| format!("{}: {}", o.name, o.absent.map_or("no value", |a| a.as_str())))
        .collect();
    format!("cannot read {}; never scaling down on missing data", parts.join(", "))
}

/// What a policy keeps when its target was deleted and created again under the same name: nothing
/// that belongs to the old workload (its history, its last scale, its other writers).
pub fn for_new_target(previous: &ScalingPolicyStatus) -> ScalingPolicyStatus {
    ScalingPolicyStatus {
        history: crate::api::History::default(),
        last_scale_time: None,
        external_write: None,
        target_uid: None,
        ..previous.clone()
    }
}

/// The status of a round that could not decide (an invalid policy, a missing target).
pub fn blocked(
    previous: &ScalingPolicyStatus,
    generation: Option<i64>,
    now: Timestamp,
    reason: Reason,
    message: &str,
) -> (ScalingPolicyStatus, Vec<Flip>) {
    let mut status = previous.clone();
    status.observed_generation = generation;
    let wanted = [
        Wanted { type_: conditions::READY, status: false, reason, message: message.to_owned() },
        Wanted { type_: conditions::SCALING_ACTIVE, status: false, reason, message: message.to_owned() },
    ];
    let flips = conditions::apply(&mut status.conditions, &wanted, generation, now);
    (status, flips)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{History, ObjectiveKind};
    use crate::engine::{ObjectiveOutcome, Step};

    static NO_EXTERNAL_WRITE: Arbitration = Arbitration { external_write: None, hold_until: None, message: None };

    fn decision(desired: i32, reason: Reason, limited_by: Reason) -> Decision {
        Decision {
            plan: None,
            desired_replicas: desired,
            recommendation: desired,
            placement: None,
            cost_per_hour: None,
            reason,
            limited_by,
            reasons: vec![Step { reason, message: "p99-latency 0.41 > 0.3".into() }],
            objectives: vec![ObjectiveOutcome {
                name: "p99-latency".into(),
                kind: ObjectiveKind::Ceiling,
                value: Some(0.41),
                absent: None,
                read_as_zero: None,
                target: 0.3,
                state: ObjectiveState::Breached,
                proposal: Some(desired),
            }],
            data: DataCompleteness::Complete,
        }
    }

    fn round<'a>(decision: &'a Decision, hold: &'a Hold, second: i64) -> Round<'a> {
        Round {
            generation: Some(1),
            now: Timestamp::from_second(1_700_000_000 + second).expect("timestamp"),
            current: 4,
            decision,
            hold,
            spot: SpotReport { healthy: true, ..SpotReport::default() },
            has_budget: false,
            scaled: false,
            external: &NO_EXTERNAL_WRITE,
        }
    }

    #[test]
    fn the_targets_line_reads_like_kubectl_get_hpa_and_a_scale_sets_the_last_scale_time() {
        let d = decision(7, Reason::ObjectiveBreached, Reason::DesiredWithinRange);
        let mut scaled = round(&d, &Hold::None, 30);
        scaled.scaled = true;
        let (status, _) = decided(&ScalingPolicyStatus::default(), &scaled, History::default());
        assert_eq!(status.targets.as_deref(), Some("p99-latency 0.41/0.3"));
        assert_eq!(status.last_scale_time.as_ref().map(|t| t.0.as_second()), Some(1_700_000_030));
        let (quiet, _) = decided(&status, &round(&d, &Hold::None, 45), History::default());
        assert_eq!(quiet.last_scale_time, status.last_scale_time, "a round that does not scale keeps it");

        let objective = |name: &str, value: Option<&str>| ObjectiveStatus {
            name: name.into(),
            value: value.map(str::to_owned),
            target: "1".into(),
            state: ObjectiveState::Met,
        };
        let four = [objective("a", Some("2")), objective("b", None), objective("c", Some("1")), objective("d", Some("1"))];
        assert_eq!(targets_line(&four).as_deref(), Some("a 2/1, b <none>/1 +2 more"));
        assert_eq!(targets_line(&[]), None);
    }

    #[test]
    fn the_same_decision_again_keeps_its_time_so_a_quiet_loop_changes_nothing_but_history() {
        let d = decision(7, Reason::ObjectiveBreached, Reason::DesiredWithinRange);
        let (first, flips) = decided(&ScalingPolicyStatus::default(), &round(&d, &Hold::None, 0), History::default());
        assert!(!flips.is_empty(), "a new policy's conditions appear");
        let (second, flips) = decided(&first, &round(&d, &Hold::None, 15), History::default());
        assert!(flips.is_empty());
        assert_eq!(second, first, "nothing changed, so status is not patched");
    }

    /// Flat load, nothing to do: the rounds the operator plans leave a status that serializes to
    /// the same bytes, so no round after the first writes.
    #[test]
    fn a_flat_load_policys_status_is_byte_identical_across_many_rounds() {
        use crate::engine::{LoadHistory, Observations, Policy, Pricing, ReplicasOwner, Sample};
        use crate::plan::{Observation, RoundInput, Spot, Target, plan};
        let spec = serde_json::from_value(serde_json::json!({
            "targetRef": {"kind": "Deployment", "name": "web"},
            "minReplicas": 2, "maxReplicas": 20,
            "objectives": [{"name": "rps", "kind": "AverageValue", "query": "sum(rate(x[2m]))", "target": "50"},
                           {"name": "p99", "kind": "Ceiling", "query": "p99", "target": "300m"}]
        }))
        .expect("a spec");
        let rules = Policy::from_spec(&spec).expect("a valid spec");
        let samples: Observations =
            [("rps".to_owned(), Sample::Value(200.0)), ("p99".to_owned(), Sample::Value(0.2))].into_iter().collect();
        let load = LoadHistory::default();
        let observed = Observation {
            rules: &rules,
            target: Target {
                name: "web",
                replicas: 4,
                ready_replicas: Some(4),
                uid: None,
                replicas_owner: ReplicasOwner::Trimtab,
            },
            spot: Spot::Observed(None),
            pricing: Pricing::default(),
            samples: &samples,
            load: &load,
            conflict: None,
            paused: false,
        };
        let mut status = ScalingPolicyStatus::default();
        let mut last_round = None;
        let mut written = Vec::new();
        for i in 0..500 {
            let now = Timestamp::from_second(1_700_000_000 + 15 * i).expect("timestamp");
            let round = plan(&RoundInput { now, generation: Some(1), previous: &status, last_round }, &observed);
            assert_eq!(round.decision.desired_replicas, 4);
            assert!(round.scale.is_none());
            if i > 0 {
                assert!(round.flips.is_empty(), "round {i}: {:?}", round.flips);
            }
            status = serde_json::from_value(serde_json::to_value(&round.status).expect("serializes")).expect("reads back");
            written.push(serde_json::to_string(&status).expect("serializes"));
            last_round = Some(now);
        }
        assert!(written.iter().all(|w| *w == written[0]), "status changed during a flat load:\n{}\n{}", written[0], written[499]);
    }

    #[test]
    fn a_value_moving_within_five_percent_keeps_status_as_it_was_and_a_bigger_move_shows() {
        let mut d = decision(7, Reason::ObjectiveBreached, Reason::DesiredWithinRange);
        let (first, _) = decided(&ScalingPolicyStatus::default(), &round(&d, &Hold::None, 0), History::default());
        d.objectives[0].value = Some(0.42);
        d.reasons[0].message = "p99-latency 0.42 > 0.3".into();
        let (noisy, _) = decided(&first, &round(&d, &Hold::None, 15), History::default());
        assert_eq!(noisy, first, "0.41 -> 0.42 is noise: nothing to write");
        d.objectives[0].value = Some(0.5);
        let (moved, _) = decided(&first, &round(&d, &Hold::None, 30), History::default());
        assert_eq!(moved.objectives[0].value.as_deref(), Some("0.5"));
        assert_eq!(moved.targets.as_deref(), Some("p99-latency 0.5/0.3"));
        let mut other = decision(9, Reason::ObjectiveBreached, Reason::DesiredWithinRange);
        other.reasons[0].message = "p99-latency 0.6 > 0.3".into();
        let (decided_again, _) = decided(&moved, &round(&other, &Hold::None, 45), History::default());
        let last = decided_again.last_decision.expect("a last decision");
        assert_eq!((last.to, last.message.as_str()), (9, "p99-latency 0.6 > 0.3"), "a new decision brings its own message");
    }

    fn plan(demand: f64, per_replica: f64, replicas: i32) -> crate::engine::Plan {
        use crate::engine::{CapacityBasis, LearnedCapacity, LoadForecast, Plan};
        Plan {
            forecast: LoadForecast {
                now: demand,
                trend_per_minute: 0.0,
                noise: 1.0,
                lag: 0.0,
                window_minutes: 10,
                demand,
                step_up_demand: demand,
            },
            capacity: LearnedCapacity { objective: "p99-latency".into(), per_replica, basis: CapacityBasis::Fitted, pairs: 30 },
            replicas,
            bought: 0,
            stepped_ahead: false,
        }
    }

    #[test]
    fn the_forecast_plan_shows_in_status_and_is_rewritten_only_when_it_moves() {
        let mut d = decision(9, Reason::ObjectiveBreached, Reason::DesiredWithinRange);
        d.plan = Some(plan(412.0, 48.5, 9));
        let (first, _) = decided(&ScalingPolicyStatus::default(), &round(&d, &Hold::None, 0), History::default());
        let shown = first.forecast.clone().expect("the plan is in status");
        assert_eq!(
            (shown.demand.as_str(), shown.capacity_per_replica.as_str(), shown.objective.as_str(), shown.replicas),
            ("412", "48.5", "p99-latency", 9)
        );
        d.plan = Some(plan(420.0, 48.0, 9));
        let (noisy, _) = decided(&first, &round(&d, &Hold::None, 15), History::default());
        assert_eq!(noisy, first, "a forecast moving by 2 %: nothing to write");
        d.plan = Some(plan(470.0, 48.0, 10));
        let (moved, _) = decided(&first, &round(&d, &Hold::None, 30), History::default());
        assert_eq!(moved.forecast.map(|f| (f.demand, f.replicas)), Some(("470".into(), 10)));
        d.plan = None;
        let (without, _) = decided(&first, &round(&d, &Hold::None, 45), History::default());
        assert_eq!(without.forecast, None, "no plan, nothing shown");
    }

    #[test]
    fn another_autoscaler_makes_the_policy_not_ready_with_a_conflict() {
        let d = decision(7, Reason::ObjectiveBreached, Reason::DesiredWithinRange);
        let hold = Hold::Conflict("HorizontalPodAutoscaler shop/web also scales Deployment web".into());
        let (status, _) = decided(&ScalingPolicyStatus::default(), &round(&d, &hold, 0), History::default());
        let condition = |t: &str| status.conditions.iter().find(|c| c.type_ == t).map(|c| (c.status.clone(), c.reason.clone()));
        assert_eq!(condition("Conflict"), Some(("True".into(), "ConflictingAutoscaler".into())));
        assert_eq!(condition("Ready"), Some(("False".into(), "ConflictingAutoscaler".into())));
        assert_eq!(condition("ScalingActive"), Some(("False".into(), "ConflictingAutoscaler".into())));
    }

    #[test]
    fn a_recreated_target_starts_without_the_old_ones_history_last_scale_or_writers() {
        let at = |s: i64| Time(Timestamp::from_second(1_700_000_000 + s).expect("timestamp"));
        let old = ScalingPolicyStatus {
            target_uid: Some("old-uid".into()),
            last_scale_time: Some(at(0)),
            external_write: Some(crate::api::ExternalWrite { manager: "kubectl".into(), replicas: 3, since: at(5) }),
            history: History {
                recommendations: vec![crate::api::Recommendation::at(at(0), 4)],
                scale_events: vec![crate::api::ScaleEvent::applied(at(0), 2)],
            },
            desired_replicas: Some(4),
            ..ScalingPolicyStatus::default()
        };
        let fresh = for_new_target(&old);
        assert_eq!(fresh.history, History::default());
        assert_eq!((fresh.last_scale_time, fresh.external_write, fresh.target_uid), (None, None, None));
        assert_eq!(fresh.desired_replicas, Some(4), "what describes the policy itself stays until the round replaces it");
    }

    #[test]
    fn an_external_write_is_a_true_condition_naming_the_manager_while_scaling_stays_active() {
        let d = decision(7, Reason::ObjectiveBreached, Reason::DesiredWithinRange);
        let until = Timestamp::from_second(1_700_000_300).expect("timestamp");
        let external = Arbitration {
            external_write: None,
            hold_until: Some(until),
            message: Some("spec.replicas was set to 3 by gitops-fighter, not Trimtab".into()),
        };
        let hold = Hold::External(until);
        let mut held = round(&d, &hold, 0);
        held.external = &external;
        let (status, flips) = decided(&ScalingPolicyStatus::default(), &held, History::default());
        let condition = |t: &str| status.conditions.iter().find(|c| c.type_ == t).expect(t).clone();
        let detected = condition("ExternalWriteDetected");
        assert_eq!((detected.status.as_str(), detected.reason.as_str()), ("True", "ExternalWrite"));
        assert!(detected.message.contains("gitops-fighter"));
        assert_eq!(condition("ScalingActive").status, "True", "a hold is a pause, not a stop");
        assert_eq!(condition("Ready").status, "True");
        let flip = flips.iter().find(|f| f.type_ == "ExternalWriteDetected").expect("it appeared");
        assert!(conditions::is_warning(flip), "an external write is a Warning Event");
        let (quiet, _) = decided(&ScalingPolicyStatus::default(), &round(&d, &Hold::None, 0), History::default());
        let none = quiet.conditions.iter().find(|c| c.type_ == "ExternalWriteDetected").expect("always reported");
        assert_eq!((none.status.as_str(), none.reason.as_str()), ("False", "NoExternalWrite"));
    }

    #[test]
    fn a_limited_decision_sets_scaling_limited_with_the_stage_as_reason() {
        let mut d = decision(6, Reason::ObjectiveBreached, Reason::ScaleUpLimit);
        d.reasons
            .push(Step { reason: Reason::ScaleUpLimit, message: "scale-up rate limit allows at most 6 replicas now".into() });
        let (status, _) = decided(&ScalingPolicyStatus::default(), &round(&d, &Hold::None, 0), History::default());
        let limited = status.conditions.iter().find(|c| c.type_ == "ScalingLimited").expect("ScalingLimited");
        assert_eq!((limited.status.as_str(), limited.reason.as_str()), ("True", "ScaleUpLimit"));
        assert!(limited.message.contains("at most 6"));
    }
}
