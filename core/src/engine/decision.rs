//! What `decide` takes and what it returns.

use std::collections::BTreeMap;

use serde::Serialize;

use super::observation::{Absence, Sample};
use crate::api::{ObjectiveKind, ObjectiveState, Reason};

/// Each objective's sample this round, by objective name. A missing name counts as `Empty`.
pub type Observations = BTreeMap<String, Sample>;

/// The state of the world that is not the policy: the target, the pools, what came before.
#[derive(Debug, Clone, PartialEq)]
pub struct Current {
    /// The target's spec.replicas, from its scale subresource.
    pub replicas: i32,
    /// Replicas that are Ready; pods still starting are on their way to relieve a breach. Unknown
    /// counts as all of them.
    pub ready_replicas: Option<i32>,
    /// Rounds in a row, before this one, that lacked complete data.
    pub consecutive_failures: u32,
    /// False while the spot pool is unavailable for this workload.
    pub spot_healthy: bool,
    pub pricing: Pricing,
}

/// What a replica costs per hour in each pool, when known.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Pricing {
    pub on_demand: Option<f64>,
    pub spot: Option<f64>,
}

/// One replica's resource requests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Requests {
    pub cpu_cores: f64,
    pub memory_gib: f64,
}

/// A pool's unit prices.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UnitPrice {
    pub cpu_core_hour: f64,
    pub memory_gib_hour: f64,
}

impl UnitPrice {
    /// OpenCost's model: requests times unit prices.
    pub fn replica_cost(&self, requests: &Requests) -> f64 {
        requests.cpu_cores * self.cpu_core_hour + requests.memory_gib * self.memory_gib_hour
    }
}

/// Replicas per pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Split {
    pub spot: i32,
    pub on_demand: i32,
}

/// One stage's account of what it did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub reason: Reason,
    pub message: String,
}

/// Whether this round had every objective's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum DataCompleteness {
    Complete,
    Partial,
    Missing,
}

/// An objective's value this round and what it asked for.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectiveOutcome {
    pub name: String,
    pub kind: ObjectiveKind,
    pub value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub absent: Option<Absence>,
    /// Set when the query gave this absence (Empty or NaN) and the objective's `whenEmpty: Zero`
    /// read it as the value 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_as_zero: Option<Absence>,
    pub target: f64,
    pub state: ObjectiveState,
    /// The replicas this objective asks for; none when it does not object to any count (a ceiling
    /// met with margin) or has no value.
    pub proposal: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    /// The replicas to run.
    pub desired_replicas: i32,
    /// The unstabilized recommendation; it goes into `history.recommendations`.
    pub recommendation: i32,
    pub placement: Option<Split>,
    pub cost_per_hour: Option<f64>,
    /// Why the recommendation is what it is.
    pub reason: Reason,
    /// The stage that bounded `desiredReplicas`, or DesiredWithinRange.
    pub limited_by: Reason,
    /// Every stage that acted or held, in order.
    pub reasons: Vec<Step>,
    pub objectives: Vec<ObjectiveOutcome>,
    pub data: DataCompleteness,
    /// The predictive law's forecast, learned capacity and count, when `spec.forecast` had one.
    pub plan: Option<super::Plan>,
}

impl Decision {
    /// The message of the step for `reason`, if that stage acted.
    pub fn message_for(&self, reason: Reason) -> Option<&str> {
        self.reasons.iter().find(|s| s.reason == reason).map(|s| s.message.as_str())
    }
}
