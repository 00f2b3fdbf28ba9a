//! One CamelCase vocabulary for why Trimtab did what it did. The same word is the decision's
//! `limitedBy`, a condition's reason, an Event's reason and a metric label.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    // Why the recommendation is what it is.
    /// An objective is over its target; replicas go up in proportion.
    ObjectiveBreached,
    /// Objectives ask for fewer replicas.
    ObjectivesMet,
    /// Objectives are within their tolerance (or between comfortable and breached): hold.
    WithinTolerance,
    /// Some objectives could not be read: scale up only.
    PartialMetrics,
    /// No objective could be read: hold.
    MetricsUnavailable,
    /// Data has been missing for missingData.failuresBeforeFallback rounds: fallbackReplicas.
    MissingDataFallback,
    /// The target is scaled to zero by someone else: Trimtab leaves it alone, as HPA does.
    ScalingDisabled,

    // What bounded it.
    /// Nothing bounded the recommendation.
    DesiredWithinRange,
    /// Raised to minReplicas.
    TooFewReplicas,
    /// Lowered to maxReplicas.
    TooManyReplicas,
    /// Held down by the scale-up stabilization window.
    ScaleUpStabilized,
    /// Held up by the scale-down stabilization window.
    ScaleDownStabilized,
    /// Slowed by a scale-up rate policy.
    ScaleUpLimit,
    /// Slowed by a scale-down rate policy.
    ScaleDownLimit,
    /// Lowered to what the budget pays for.
    BudgetLimited,
    /// Over budget, but enforcement is Advisory: scaled anyway.
    BudgetExceeded,
    /// Even minReplicas costs more than the budget; minReplicas is kept.
    MinReplicasOverBudget,
    /// The spot pool is unavailable: every replica goes on-demand.
    SpotUnavailable,

    // The policy and the controller (condition reasons).
    /// Deciding and scaling the target.
    Active,
    /// The `trimtab.dev/paused: "true"` annotation: deciding and reporting, never writing the target.
    Paused,
    /// `mode: DryRun`: deciding and reporting, never writing the target.
    DryRun,
    /// The spec has a problem the API server could not catch (a query Prometheus rejects, an unknown pool).
    PolicyInvalid,
    /// The target does not exist.
    TargetNotFound,
    /// Another autoscaler (an HPA, a KEDA ScaledObject, an older ScalingPolicy) scales the same target.
    ConflictingAutoscaler,
    /// No other autoscaler scales the target.
    NoConflict,
    /// Every objective was read.
    ObjectivesRead,
    /// The desired replicas fit the budget, or there is none.
    WithinBudget,
    /// The spot pool is available.
    SpotAvailable,
    /// Writing the target's scale failed.
    ScaleFailed,
    /// A round failed unexpectedly (a bug): reported on its policy alone, retried with backoff.
    RoundFailed,
    /// A pod was evicted to move the split towards its target, or off reclaimed spot capacity.
    Rebalanced,
    /// Another field manager (`kubectl scale`, a GitOps sync) set the target's spec.replicas after
    /// Trimtab did: Trimtab holds for a window before it writes again, at most once per window.
    ExternalWrite,
    /// Trimtab is the last to have set the target's spec.replicas (or has not written it yet).
    NoExternalWrite,
}

impl Reason {
    /// What a decision's `reason` can be: why the recommendation is what it is (or the range rule
    /// that replaced it when the target was outside [minReplicas, maxReplicas]).
    pub const DECISION_REASONS: &'static [Reason] = &[
        Reason::ObjectiveBreached,
        Reason::ObjectivesMet,
        Reason::WithinTolerance,
        Reason::PartialMetrics,
        Reason::MetricsUnavailable,
        Reason::MissingDataFallback,
        Reason::ScalingDisabled,
        Reason::TooFewReplicas,
        Reason::TooManyReplicas,
    ];

    /// What a decision's `limitedBy` can be: the stage that bounded it.
    pub const LIMITS: &'static [Reason] = &[
        Reason::DesiredWithinRange,
        Reason::TooFewReplicas,
        Reason::TooManyReplicas,
        Reason::ScaleUpStabilized,
        Reason::ScaleDownStabilized,
        Reason::ScaleUpLimit,
        Reason::ScaleDownLimit,
        Reason::BudgetLimited,
        Reason::MinReplicasOverBudget,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Reason::ObjectiveBreached => "ObjectiveBreached",
            Reason::ObjectivesMet => "ObjectivesMet",
            Reason::WithinTolerance => "WithinTolerance",
            Reason::PartialMetrics => "PartialMetrics",
            Reason::MetricsUnavailable => "MetricsUnavailable",
            Reason::MissingDataFallback => "MissingDataFallback",
            Reason::ScalingDisabled => "ScalingDisabled",
            Reason::DesiredWithinRange => "DesiredWithinRange",
            Reason::TooFewReplicas => "TooFewReplicas",
            Reason::TooManyReplicas => "TooManyReplicas",
            Reason::ScaleUpStabilized => "ScaleUpStabilized",
            Reason::ScaleDownStabilized => "ScaleDownStabilized",
            Reason::ScaleUpLimit => "ScaleUpLimit",
            Reason::ScaleDownLimit => "ScaleDownLimit",
            Reason::BudgetLimited => "BudgetLimited",
            Reason::BudgetExceeded => "BudgetExceeded",
            Reason::MinReplicasOverBudget => "MinReplicasOverBudget",
            Reason::SpotUnavailable => "SpotUnavailable",
            Reason::Active => "Active",
            Reason::Paused => "Paused",
            Reason::DryRun => "DryRun",
            Reason::PolicyInvalid => "PolicyInvalid",
            Reason::TargetNotFound => "TargetNotFound",
            Reason::ConflictingAutoscaler => "ConflictingAutoscaler",
            Reason::NoConflict => "NoConflict",
            Reason::ObjectivesRead => "ObjectivesRead",
            Reason::WithinBudget => "WithinBudget",
            Reason::SpotAvailable => "SpotAvailable",
            Reason::ScaleFailed => "ScaleFailed",
            Reason::RoundFailed => "RoundFailed",
            Reason::Rebalanced => "Rebalanced",
            Reason::ExternalWrite => "ExternalWrite",
            Reason::NoExternalWrite => "NoExternalWrite",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `#[schemars(schema_with)]` for a decision's `reason`: only the words that can appear there, so
/// `kubectl explain` and validating clients list exactly those.
pub fn decision_reason_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    enum_schema(Reason::DECISION_REASONS)
}

/// `#[schemars(schema_with)]` for a decision's `limitedBy`.
pub fn limit_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    enum_schema(Reason::LIMITS)
}

fn enum_schema(reasons: &[Reason]) -> schemars::Schema {
    let words: Vec<&str> = reasons.iter().map(Reason::as_str).collect();
    schemars::json_schema!({ "type": "string", "enum": words })
}
