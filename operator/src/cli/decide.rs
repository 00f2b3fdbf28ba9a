//! `trimtab decide -f SITUATION`: one decision, explained. The situation is YAML or JSON (`-` for
//! stdin); the decision is one JSON object on stdout. See docs/decide.md for the contract.

use std::collections::BTreeMap;
use std::path::PathBuf;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::{Deserialize, Serialize};

use super::CliError;
use super::input::{InputError, parse_strict, read_source};
use crate::api::{CapacityPool, History, Quantity, Reason, ScalingPolicy, ScalingPolicyStatus, format_decimal};
use crate::engine::{
    self, Absence, Decision, ObjectiveOutcome, Observations, Policy, Pricing, ReplicasOwner, Requests, Sample, Split, Step,
    UnitPrice, policy_pools,
};
use crate::plan::{self, RoundInput, Spot, Target};

#[derive(clap::Args)]
pub struct DecideArgs {
    /// The situation file (YAML or JSON), or - for stdin.
    #[arg(short = 'f', long = "file")]
    pub file: PathBuf,
}

/// Everything one decision depends on.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Situation {
    now: Time,
    policy: ScalingPolicy,
    current_replicas: u32,
    /// Optional: Ready replicas (default: all of currentReplicas).
    #[serde(default)]
    ready_replicas: Option<u32>,
    #[serde(default)]
    observations: BTreeMap<String, ObservationInput>,
    #[serde(default)]
    consecutive_failures: u32,
    #[serde(default)]
    history: History,
    #[serde(default)]
    pools: Vec<CapacityPool>,
    #[serde(default)]
    pod_requests: Option<PodRequests>,
    #[serde(default = "default_true")]
    spot_healthy: bool,
    /// Optional, for a policy with `spec.forecast`: what its range queries returned.
    #[serde(default)]
    load_history: Option<LoadHistoryInput>,
}

/// `loadHistory`: the throughput at each minute of the lookback (oldest first, the last is now),
/// and per Ceiling objective the (throughput per Ready replica, value) pairs of those minutes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoadHistoryInput {
    #[serde(default)]
    load: Vec<f64>,
    #[serde(default)]
    capacity: BTreeMap<String, Vec<(f64, f64)>>,
}

fn default_true() -> bool {
    true
}

#[derive(Deserialize)]
struct ObservationInput {
    /// A quantity: a number, or a string such as "412m".
    #[serde(default, deserialize_with = "crate::api::quantity::deserialize_optional_quantity")]
    value: Option<String>,
    #[serde(default)]
    absent: Option<Absence>,
}

#[derive(Deserialize)]
struct PodRequests {
    #[serde(default, deserialize_with = "crate::api::quantity::deserialize_optional_quantity")]
    cpu: Option<String>,
    #[serde(default, deserialize_with = "crate::api::quantity::deserialize_optional_quantity")]
    memory: Option<String>,
}

/// The decision as `trimtab decide` prints it (and `trimtab check` embeds it).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DecideOutput<'a> {
    pub desired_replicas: i32,
    pub recommendation: i32,
    pub placement: Option<Split>,
    pub cost_per_hour: Option<String>,
    pub reason: Reason,
    pub limited_by: Reason,
    pub reasons: &'a [Step],
    pub objectives: &'a [ObjectiveOutcome],
    /// For a policy with `spec.forecast`: the forecast, the learned capacity and the count they ask for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<&'a engine::Plan>,
}

pub fn run(args: &DecideArgs) -> Result<(), CliError> {
    let source_name = args.file.display().to_string();
    let text = read_source(&args.file)?;
    let decision = decide_text(&source_name, &text)?;
    println!("{}", serde_json::to_string(&output(&decision))?);
    Ok(())
}

/// Parses a situation and decides. Errors name the field to fix.
pub fn decide_text(source_name: &str, text: &str) -> Result<Decision, CliError> {
    let situation: Situation = parse_strict(source_name, text)?;
    let field_error =
        |path: &str, message: String| InputError::Field { source_name: source_name.to_owned(), path: path.to_owned(), message };

    let policy = Policy::from_spec(&situation.policy.spec).map_err(|e| e.under("policy"))?;
    let replicas =
        i32::try_from(situation.current_replicas).map_err(|_| field_error("currentReplicas", "is too large".into()))?;

    let mut observations = Observations::new();
    for (name, input) in &situation.observations {
        let path = format!("observations.{name}");
        if policy.objective(name).is_none() {
            let known: Vec<&str> = policy.objectives.iter().map(|o| o.name.as_str()).collect();
            return Err(field_error(
                &path,
                format!("no objective of the policy is named {name:?} (objectives: {})", known.join(", ")),
            )
            .into());
        }
        let sample = match (&input.value, input.absent) {
            (Some(value), None) => Sample::from_value(
                Quantity::parse(value).map_err(|e| field_error(&format!("{path}.value"), e.to_string()))?.as_f64(),
            ),
            (None, Some(absence)) => Sample::Absent(absence),
            _ => return Err(field_error(
                &path,
                "give exactly one of value (a quantity) and absent (Empty, NaN, Stale, MultipleSeries, Unreachable or Timeout)"
                    .into(),
            )
            .into()),
        };
        observations.insert(name.clone(), sample);
    }
    for (i, recommendation) in situation.history.recommendations.iter().enumerate() {
        if recommendation.replicas < 0 {
            return Err(field_error(&format!("history.recommendations[{i}].replicas"), "must be 0 or more".into()).into());
        }
        if recommendation.until.as_ref().is_some_and(|until| until.0 < recommendation.time.0) {
            return Err(field_error(&format!("history.recommendations[{i}].until"), "must not be before time".into()).into());
        }
    }

    let requests = match &situation.pod_requests {
        None => None,
        Some(r) => {
            let amount = |field: &str, text: &Option<String>| -> Result<f64, InputError> {
                text.as_deref()
                    .map_or(Ok(0.0), |t| Quantity::parse(t).map(|q| q.as_f64()).map_err(|e| field_error(field, e.to_string())))
            };
            Some(Requests::from_cores_and_bytes(amount("podRequests.cpu", &r.cpu)?, amount("podRequests.memory", &r.memory)?))
        }
    };
    let pricing = pricing(&policy, &situation.pools, requests).map_err(|(path, message)| field_error(&path, message))?;
    let load = match situation.load_history {
        Some(input) => {
            if let Some(i) = input.load.iter().position(|v| *v < 0.0) {
                return Err(field_error(&format!("loadHistory.load[{i}]"), "a throughput must be 0 or more".into()).into());
            }
            engine::LoadHistory { load: input.load, capacity: input.capacity }
        }
        None => engine::LoadHistory::default(),
    };
    // The situation's history is complete as given: its newest run was recommended through its
    // last round, so `recall` leaves it as it is.
    let last_round = situation.history.recommendations.last().map(|r| r.last_seen().0);
    let previous = ScalingPolicyStatus {
        history: situation.history,
        consecutive_failures: situation.consecutive_failures,
        ..ScalingPolicyStatus::default()
    };
    let input =
        RoundInput { now: situation.now.0, generation: situation.policy.metadata.generation, previous: &previous, last_round };
    let observed = plan::Observation {
        rules: &policy,
        target: Target {
            name: &situation.policy.spec.target_ref.name,
            replicas,
            ready_replicas: situation.ready_replicas.map(|r| r.min(i32::MAX as u32) as i32),
            uid: None,
            replicas_owner: ReplicasOwner::Unknown,
        },
        spot: Spot::Known(situation.spot_healthy),
        pricing,
        samples: &observations,
        load: &load,
        conflict: None,
        paused: false,
    };
    Ok(plan::plan(&input, &observed).decision)
}

/// A replica's hourly cost in each of the policy's pools, where the situation's pools give fixed
/// prices; a pool it does not list is unpriced.
fn pricing(policy: &Policy, pools: &[CapacityPool], requests: Option<Requests>) -> Result<Pricing, (String, String)> {
    let (Some(requests), Ok(policy_pools)) = (requests, policy_pools(policy, pools)) else { return Ok(Pricing::default()) };
    policy_pools.pricing(|pool| {
        let Some(price) = &pool.spec.price else { return Ok(None) };
        let index = pools.iter().position(|p| std::ptr::eq(p, pool)).unwrap_or_default();
        let unit = UnitPrice::from_price(price).map_err(|(field, e)| (format!("pools[{index}].spec.price.{field}"), e))?;
        Ok(Some(unit.replica_cost(&requests)))
    })
}

pub fn output(decision: &Decision) -> DecideOutput<'_> {
    DecideOutput {
        desired_replicas: decision.desired_replicas,
        recommendation: decision.recommendation,
        placement: decision.placement,
        cost_per_hour: decision.cost_per_hour.map(|c| format_decimal(c, 4)),
        reason: decision.reason,
        limited_by: decision.limited_by,
        reasons: &decision.reasons,
        objectives: &decision.objectives,
        plan: decision.plan.as_ref(),
    }
}
