//! The decision: one pure function. Policy, observations, current state, history and `now` in; a
//! decision with its reasons out. No kube client, no HTTP, no clock, no randomness: the same input
//! always gives the same decision, so the operator, `trimtab decide` and the simulator agree.
//!
//! Stages, in order: observe (typed samples), propose per objective, combine, bound (HPA behavior),
//! budget, place.

mod behavior;
mod budget;
mod decision;
mod external;
mod forecast;
mod history;
mod observation;
mod placement;
mod policy;
mod pools;
mod propose;

use jiff::Timestamp;

pub use budget::cost_per_hour;
pub use decision::*;
pub use external::{Arbitration, MIN_HOLD_SECONDS, ReplicasOwner, arbitrate, hold_window};
pub use forecast::{CapacityBasis, LearnedCapacity, LoadForecast, LoadHistory, Plan, plan};
pub use history::{recall, remember};
pub use observation::{Absence, Sample};
pub use placement::split;
pub use policy::*;
pub use pools::{GIB, PolicyPools, UnknownPool, policy_pools};
pub use propose::{CEILING_MARGIN, CEILING_MAX_STEP};

use crate::api::{Enforcement, History, ObjectiveState, Reason, format_decimal};

/// When every objective is a ceiling met with margin, nothing says how many replicas are needed:
/// shed this share of the current count (at least one replica) per round, paced by the scale-down
/// stabilization window and rate limits.
pub const IDLE_STEP_DOWN: f64 = 0.1;

/// One decision without the predictive law's inputs: what every policy without `spec.forecast`
/// needs (and all HPA-exact ones have).
pub fn decide(policy: &Policy, observations: &Observations, current: &Current, history: &History, now: Timestamp) -> Decision {
    decide_with(policy, observations, current, history, now, &LoadHistory::default())
}

/// One decision, with what range queries returned for the predictive law (`spec.forecast`);
/// ignored by a policy without it.
pub fn decide_with(
    policy: &Policy,
    observations: &Observations,
    current: &Current,
    history: &History,
    now: Timestamp,
    load: &LoadHistory,
) -> Decision {
    let replicas = current.replicas;
    let ready = current.ready_replicas.unwrap_or(replicas).clamp(0, replicas.max(0));

    // 1-2. Observe and propose per objective.
    let objectives: Vec<ObjectiveOutcome> = policy
        .objectives
        .iter()
        .map(|rule| {
            let sample = observations.get(&rule.name).copied().map_or(Sample::Absent(Absence::Empty), Sample::checked);
            propose::propose(policy, rule, sample, replicas, ready)
        })
        .collect();
    // The predictive law: a Ceiling met asks for the plan (up or down), a Ceiling breached for at
    // least the plan and at least its reactive step.
    let plan = forecast::plan(policy, load, replicas);
    let mut objectives = objectives;
    if let Some(plan) = &plan {
        for outcome in objectives.iter_mut().filter(|o| o.kind == crate::api::ObjectiveKind::Ceiling && o.value.is_some()) {
            // A breach the plan did not foresee is one minute's burst that the noise margin
            // prices in, or capacity the fit overstates, which the next fit corrects; either way
            // the reactive step (up to 1.5×, held by the scale-down window) would overshoot, so a
            // breach only stops the count from going down.
            outcome.proposal = Some(match outcome.state {
                ObjectiveState::Breached => plan.replicas.max(replicas),
                _ => plan.replicas,
            });
        }
    }
    let with_data = objectives.iter().filter(|o| o.value.is_some()).count();
    let data = match with_data {
        n if n == objectives.len() => DataCompleteness::Complete,
        0 => DataCompleteness::Missing,
        _ => DataCompleteness::Partial,
    };

    let mut reasons = Vec::new();
    let mut limited_by = Reason::DesiredWithinRange;
    let (recommendation, reason, desired) = if replicas == 0 {
        // HPA's rule: a target scaled to zero by someone else is left alone.
        let message = "the target has 0 replicas; scale it up to hand it back to Trimtab".to_owned();
        reasons.push(Step { reason: Reason::ScalingDisabled, message });
        (0, Reason::ScalingDisabled, 0)
    } else if replicas > policy.max_replicas || replicas < policy.min_replicas {
        // HPA's rule: out of range goes straight to the range, without rate limits.
        let (bound, reason) = if replicas > policy.max_replicas {
            (policy.max_replicas, Reason::TooManyReplicas)
        } else {
            (policy.min_replicas, Reason::TooFewReplicas)
        };
        let message = format!("{replicas} replicas is outside [{}, {}]", policy.min_replicas, policy.max_replicas);
        reasons.push(Step { reason, message });
        limited_by = reason;
        (bound, reason, bound)
    } else {
        // 3. Combine.
        let (recommendation, reason, mut message) = combine(policy, &objectives, data, current);
        if let Some(plan) = &plan {
            message = format!("{message}; {}", plan.describe());
        }
        reasons.push(Step { reason, message });
        // 4. Bound: HPA behavior.
        let stabilized = behavior::stabilize(policy, history, now, replicas, recommendation);
        let stabilized = match &policy.forecast {
            Some(rule) => forecast::hold_single_step(rule, history, now, replicas, stabilized),
            None => stabilized,
        };
        if stabilized.replicas != recommendation {
            limited_by = stabilized.reason;
            reasons.push(Step { reason: stabilized.reason, message: stabilized.message });
        }
        let limited = behavior::limit_rate(policy, history, now, replicas, stabilized.replicas);
        if limited.replicas != stabilized.replicas {
            limited_by = limited.reason;
            reasons.push(Step { reason: limited.reason, message: limited.message });
        }
        (recommendation, reason, limited.replicas)
    };

    // 5. Budget.
    let mut desired = desired;
    if let Some(budget) = &policy.budget
        && desired > 0
    {
        let affordable =
            budget::affordable_replicas(policy, &current.pricing, current.spot_healthy, budget.max_cost_per_hour, desired);
        match affordable {
            None => reasons.push(Step {
                reason: Reason::BudgetExceeded,
                message: "the budget cannot be checked: a pool price or the pod's requests are unknown".into(),
            }),
            Some(affordable) if affordable < desired => {
                let budget_text = format_decimal(budget.max_cost_per_hour, 4);
                let (step, capped) = if affordable < policy.min_replicas {
                    let message = format!(
                        "even minReplicas ({}) costs more than {budget_text}/h; keeping minReplicas",
                        policy.min_replicas
                    );
                    (Step { reason: Reason::MinReplicasOverBudget, message }, policy.min_replicas)
                } else if budget.enforcement == Enforcement::Advisory {
                    let message =
                        format!("{desired} replicas cost more than {budget_text}/h ({affordable} fit); enforcement is Advisory");
                    (Step { reason: Reason::BudgetExceeded, message }, desired)
                } else {
                    let message = format!("{affordable} replicas is the most that fits {budget_text}/h");
                    (Step { reason: Reason::BudgetLimited, message }, affordable)
                };
                let cut = budget.enforcement == Enforcement::Cap && capped != desired;
                reasons.push(step);
                if cut {
                    limited_by = reasons[reasons.len() - 1].reason;
                    desired = capped;
                    // Below the current count, a budget cut is a scale-down like any other: it goes
                    // at the scale-down rate policies, never to the budget (or min) in one step.
                    if capped < replicas && (policy.min_replicas..=policy.max_replicas).contains(&replicas) {
                        let paced = behavior::limit_rate(policy, history, now, replicas, capped);
                        if paced.replicas != capped {
                            let message = format!("stepping down towards {capped} at the scale-down rate: {}", paced.message);
                            reasons.push(Step { reason: paced.reason, message });
                            desired = paced.replicas;
                        }
                    }
                }
            }
            Some(_) => {}
        }
    }

    // 6. Place.
    let placement = split(policy, current.spot_healthy, desired);
    if placement.is_some() && !current.spot_healthy {
        let message = format!("the spot pool is unavailable: all {desired} replicas go on-demand");
        reasons.push(Step { reason: Reason::SpotUnavailable, message });
    }
    let cost_per_hour = cost_per_hour(policy, &current.pricing, current.spot_healthy, desired);

    Decision {
        desired_replicas: desired,
        recommendation,
        placement,
        cost_per_hour,
        reason,
        limited_by,
        reasons,
        objectives,
        data,
        plan,
    }
}

/// Stage 3: the largest proposal wins. Partial data can only scale up; no data holds, until
/// `failuresBeforeFallback` rounds in a row lacked data and fallbackReplicas is higher.
fn combine(policy: &Policy, objectives: &[ObjectiveOutcome], data: DataCompleteness, current: &Current) -> (i32, Reason, String) {
    let replicas = current.replicas;
    let largest = objectives.iter().filter_map(|o| o.proposal).max();
    let (mut recommendation, mut reason, mut message) = match data {
        DataCompleteness::Complete => match largest {
            Some(n) => (n, direction_reason(n, replicas), describe(objectives)),
            None => {
                let step = ((f64::from(replicas) * IDLE_STEP_DOWN).ceil() as i32).max(1);
                let n = (replicas - step).max(0);
                (
                    n,
                    Reason::ObjectivesMet,
                    format!("every objective is met with margin ({}); stepping down", describe(objectives)),
                )
            }
        },
        DataCompleteness::Partial => {
            let missing = missing_names(objectives);
            match largest {
                Some(n) if n > replicas => {
                    (n, Reason::ObjectiveBreached, format!("{} ({missing} unavailable: scaling up only)", describe(objectives)))
                }
                _ => (
                    replicas,
                    Reason::PartialMetrics,
                    format!("{missing} unavailable: holding at {replicas}, never scaling down on missing data"),
                ),
            }
        }
        DataCompleteness::Missing => (
            replicas,
            Reason::MetricsUnavailable,
            format!("no objective could be read ({}): holding at {replicas}", missing_names(objectives)),
        ),
    };
    let failures = current.consecutive_failures.saturating_add(1);
    if data != DataCompleteness::Complete
        && failures >= policy.missing_data.failures_before_fallback
        && let Some(fallback) = policy.missing_data.fallback_replicas
        && fallback > recommendation
    {
        recommendation = fallback;
        reason = Reason::MissingDataFallback;
        message = format!("data missing for {failures} rounds in a row: fallbackReplicas {fallback}");
    }
    (recommendation, reason, message)
}

fn direction_reason(recommendation: i32, current: i32) -> Reason {
    match recommendation.cmp(&current) {
        std::cmp::Ordering::Greater => Reason::ObjectiveBreached,
        std::cmp::Ordering::Less => Reason::ObjectivesMet,
        std::cmp::Ordering::Equal => Reason::WithinTolerance,
    }
}

/// "p99-latency 0.412 > 0.3, rps-per-replica 120 ≤ 50 × 3": each objective with a value, against target.
fn describe(objectives: &[ObjectiveOutcome]) -> String {
    let parts: Vec<String> = objectives
        .iter()
        .filter_map(|o| {
            let value = match o.read_as_zero {
                Some(absence) => format!("0 ({} read as 0: whenEmpty Zero)", describe_absence(absence)),
                None => format_decimal(o.value?, 3),
            };
            let target = format_decimal(o.target, 3);
            let relation = if o.state == ObjectiveState::Breached { ">" } else { "≤" };
            Some(match o.kind {
                crate::api::ObjectiveKind::AverageValue => format!("{} {value} total vs {target} per replica", o.name),
                _ => format!("{} {value} {relation} {target}", o.name),
            })
        })
        .collect();
    parts.join(", ")
}

fn describe_absence(absence: Absence) -> &'static str {
    match absence {
        Absence::Empty => "no series",
        Absence::NaN => "NaN (no traffic)",
        other => other.as_str(),
    }
}

fn missing_names(objectives: &[ObjectiveOutcome]) -> String {
    let parts: Vec<String> = objectives.iter().filter_map(|o| o.absent.map(|a| format!("{} {}", o.name, a.as_str()))).collect();
    parts.join(", ")
}
