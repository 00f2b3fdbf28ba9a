//! `ScalingPolicy`: the app team's resource. One policy scales one Deployment.

// Each printcolumn(...) repeats `type_ = ...`; clippy mistakes that for a duplicated attribute.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Keeps a Deployment's service-level objectives met at the lowest cost its budget allows, and
/// places its replicas on spot and on-demand capacity.
/// The largest count any field takes (replicas, a rate policy's value): the CRD's `maximum`, which
/// the parser checks as well for API servers that do not enforce it.
pub const MAX_COUNT: i32 = 100_000;

#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "trimtab.dev",
    version = "v1alpha1",
    kind = "ScalingPolicy",
    plural = "scalingpolicies",
    shortname = "sp",
    category = "trimtab",
    namespaced,
    status = "ScalingPolicyStatus",
    doc = "ScalingPolicy keeps a Deployment's service-level objectives met at the lowest cost its budget allows, and places its replicas on spot and on-demand capacity.",
    printcolumn(name = "Target", type_ = "string", json_path = ".spec.targetRef.name"),
    printcolumn(name = "Targets", type_ = "string", json_path = ".status.targets"),
    printcolumn(name = "Min", type_ = "integer", json_path = ".spec.minReplicas"),
    printcolumn(name = "Max", type_ = "integer", json_path = ".spec.maxReplicas"),
    printcolumn(name = "Current", type_ = "integer", json_path = ".status.currentReplicas"),
    printcolumn(name = "Desired", type_ = "integer", json_path = ".status.desiredReplicas"),
    printcolumn(name = "Spot", type_ = "integer", json_path = ".status.placement.spot"),
    printcolumn(name = "Cost/h", type_ = "string", json_path = ".status.costPerHour"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Reason", type_ = "string", json_path = ".status.lastDecision.reason", priority = 1),
    printcolumn(name = "Limited-By", type_ = "string", json_path = ".status.lastDecision.limitedBy", priority = 1),
    printcolumn(name = "Last-Scale", type_ = "date", json_path = ".status.lastScaleTime", priority = 1),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[x_kube(validation = Rule::new("self.minReplicas <= self.maxReplicas").message("minReplicas must be less than or equal to maxReplicas").field_path(".minReplicas"))]
#[x_kube(validation = Rule::new("!has(self.missingData) || !has(self.missingData.fallbackReplicas) || self.missingData.fallbackReplicas <= self.maxReplicas").message("missingData.fallbackReplicas must not exceed maxReplicas").field_path(".missingData.fallbackReplicas"))]
#[x_kube(validation = Rule::new("!has(self.placement) || !has(self.placement.onDemandBase) || self.placement.onDemandBase <= self.maxReplicas").message("placement.onDemandBase must not exceed maxReplicas").field_path(".placement.onDemandBase"))]
#[serde(rename_all = "camelCase")]
pub struct ScalingPolicySpec {
    /// The workload to scale, in the policy's namespace. It cannot change: create a new policy to
    /// scale another workload.
    #[x_kube(validation = Rule::new("self == oldSelf").message("targetRef is immutable: delete and recreate the ScalingPolicy to scale another workload"))]
    pub target_ref: TargetRef,

    /// The fewest replicas Trimtab keeps, whatever the objectives and the budget say.
    #[serde(default = "default_min_replicas")]
    #[schemars(range(min = 1, max = 100000))]
    pub min_replicas: i32,

    /// The most replicas Trimtab scales to (at most 100000).
    #[schemars(range(min = 1, max = 100000))]
    pub max_replicas: i32,

    /// How often the objectives are read and a decision is made, as a duration ("15s", "1m").
    /// Defaults to 15s, the HorizontalPodAutoscaler's sync period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"), length(max = 32))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('1s') && duration(self) <= duration('1h')").message("interval must be between 1s and 1h"))]
    pub interval: Option<String>,

    /// The service-level objectives, each a PromQL query and a target. The largest replica count any
    /// objective asks for wins.
    #[schemars(length(min = 1, max = 16))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub objectives: Vec<Objective>,

    /// What to do when the objectives cannot be read. Trimtab never scales down on missing data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_data: Option<MissingData>,

    /// Scale-up and scale-down rate limits and stabilization windows, with the semantics and defaults
    /// of the HorizontalPodAutoscaler's autoscaling/v2 behavior, field for field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behavior: Option<Behavior>,

    /// The most this workload may cost per hour, at the prices of its CapacityPools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<Budget>,

    /// How replicas are split between a spot and an on-demand CapacityPool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,

    /// Active scales the target. DryRun decides and reports on status and in Events, but never
    /// changes the target: use it to try Trimtab beside an existing autoscaler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,

    /// Optional: provision ahead of the load for the Ceiling objectives. Trimtab forecasts the
    /// throughput over `horizon` (the recent trend and its typical error), learns from the recent
    /// minutes the throughput per Ready replica at which each Ceiling objective would be breached,
    /// and asks for the replicas that serve the forecast under it, up or down. Without it a Ceiling
    /// only reacts (and AverageValue/Value policies decide exactly like HPA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forecast: Option<Forecast>,

    /// Set only by the operator's cache, when the stored object does not deserialize (an API
    /// server that does not enforce this schema, or a CRD newer than the operator); never in the API.
    // `skip` but for the serializer reading the field to skip it: KubeSchema's copy of this struct
    // (for the schema) strips `allow` attributes, and would warn that the field is never read.
    #[serde(skip_deserializing, skip_serializing_if = "never_serialized")]
    #[schemars(skip)]
    pub unreadable: Option<Unreadable>,
}

fn never_serialized(_: &Option<Unreadable>) -> bool {
    true
}

/// Why a stored ScalingPolicy cannot be read: the first field that does not deserialize.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct Unreadable {
    /// The field's path, from the object's root (`spec.maxReplicas`, `spec.objectives[0].kind`).
    pub field: String,
    /// What is wrong with its value, as the deserializer says it.
    pub problem: String,
}

/// The predictive law's inputs and knobs (docs/app-team.md explains each).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Forecast {
    /// The workload's total throughput in requests per second, e.g.
    /// `sum(rate(http_requests_total{app="web"}[1m]))`. Trimtab reads it as a range over the last
    /// `lookback` at a one-minute step, beside each Ceiling objective's query and
    /// `readyReplicasQuery`.
    #[schemars(length(min = 1, max = 4096))]
    #[x_kube(validation = Rule::new("self.trim() != ''").message("loadQuery must not be blank"))]
    pub load_query: String,
    /// The target's Ready replicas over time, to learn the throughput per Ready replica from.
    /// Default: `sum(kube_deployment_status_replicas_ready{namespace="<the policy's namespace>",
    /// deployment="<spec.targetRef.name>"})`, which kube-state-metrics exports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 4096))]
    pub ready_replicas_query: Option<String>,
    /// How far ahead to provision: pod startup plus the metrics window, about. 1m to 24h;
    /// default 2m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("duration(self) >= duration('1m') && duration(self) <= duration('24h')").message("horizon must be between 1m and 24h"))]
    pub horizon: Option<String>,
    /// The longest window the trend is read from; a third of it is tried too, and the one whose
    /// forecasts of the lookback came closer is used. 1m to 24h; default 15m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("duration(self) >= duration('1m') && duration(self) <= duration('24h')").message("trendWindow must be between 1m and 24h"))]
    pub trend_window: Option<String>,
    /// The minutes the law learns from: the (throughput per Ready replica, objective value) pairs
    /// capacity is fitted to, and the forecaster's replayed errors. 1m to 24h; default 2h.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("duration(self) >= duration('1m') && duration(self) <= duration('24h')").message("lookback must be between 1m and 24h"))]
    pub lookback: Option<String>,
    /// Headroom over the forecast, in multiples of the forecaster's typical (root mean square)
    /// error over the lookback: a quantity of zero or more. "0.85" is about the error's 80th
    /// percentile. Default "0.85".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("isQuantity(self) && !quantity(self).isLessThan(quantity('0'))").message("noiseMargin must be a quantity of zero or more, such as \"0.85\""))]
    pub noise_margin: Option<String>,
    /// When the plan asks for more replicas than the target has, the step provisions for the
    /// forecast this much beyond `horizon` (a rising trend only): one step then covers several
    /// minutes of a ramp instead of one replica per minute of it, for more replicas while it
    /// lasts. 0s (off) to 2h; default 0s (docs/simulate.md measures the trade).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("duration(self) >= duration('0s') && duration(self) <= duration('2h')").message("stepUpAhead must be between 0s and 2h"))]
    pub step_up_ahead: Option<String>,
    /// A scale-down of a single replica waits until every recommendation of this window asked for
    /// fewer replicas; a step of two or more follows the scale-down stabilization window as
    /// always. The plan's noise moves it by one replica at a time, and each such flip is two scale
    /// events. 0s (off) to 2h; default 0s (docs/simulate.md measures the trade).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("duration(self) >= duration('0s') && duration(self) <= duration('2h')").message("singleStepDownWindow must be between 0s and 2h"))]
    pub single_step_down_window: Option<String>,
    /// What one SLO-violation minute is worth to you, in replica-minutes: a quantity of zero or
    /// more. Above the noise margin, the plan adds a replica while the violation minutes it is
    /// expected to save (from the forecaster's replayed error, taken as Gaussian) times this exceed
    /// the one replica-minute it costs, so headroom goes where it buys the most. Default "0"
    /// (off: the noise margin alone); docs/simulate.md measures the trade.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("isQuantity(self) && !quantity(self).isLessThan(quantity('0'))").message("sloViolationMinutePrice must be a quantity of zero or more, such as \"20\""))]
    pub slo_violation_minute_price: Option<String>,
}

fn default_min_replicas() -> i32 {
    1
}

/// A workload with a scale subresource in the policy's namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TargetRef {
    /// The kind of the workload. Only Deployment is supported.
    pub kind: TargetKind,
    /// The name of the workload.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetKind {
    Deployment,
}

/// One service-level objective: a PromQL query that returns a single number, and its target.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Objective {
    /// A name unique within the policy, used in status, Events and metrics (a DNS label).
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub name: String,

    /// A PromQL instant query that returns exactly one sample.
    #[schemars(length(min = 1, max = 4096))]
    #[x_kube(validation = Rule::new("self.trim() != ''").message("query must not be blank"))]
    pub query: String,

    /// The target, a positive quantity: a whole number (50) or a string ("300m", "0.01", "50").
    /// Write decimals as strings ("0.25", not 0.25): the API server takes only whole numbers
    /// unquoted, as for a HorizontalPodAutoscaler's averageValue.
    #[serde(deserialize_with = "crate::api::quantity::deserialize_quantity")]
    #[schemars(schema_with = "crate::api::quantity::positive_quantity_schema")]
    pub target: String,

    /// How the query's value relates to replicas.
    /// Ceiling: the value must stay at or below target (latency, error rate); a breach scales up in
    /// proportion to it. AverageValue: the value is a total to spread, target per replica
    /// (throughput); desired = ceil(value / target). Value: the value moves inversely with replicas;
    /// desired = ceil(current × value / target).
    pub kind: ObjectiveKind,

    /// What it means when the query has nothing to measure: it returns no series (a counter that
    /// client libraries create only on the first 5xx, say), or NaN (0/0: a ratio or a
    /// histogram_quantile over zero traffic). MissingData (the default): missing data, as
    /// spec.missingData says (scale up only, hold, fall back; never down). Zero: read as 0, so a
    /// service with no errors, or no traffic, can scale down to minReplicas. Infinity, stale
    /// samples, several series and an unreachable Prometheus are missing data whatever this says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when_empty: Option<WhenEmpty>,
}

// What an objective's query returning no series, or NaN, means. (Plain comments: a doc comment here
// would replace the field's description in the CRD.)
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum WhenEmpty {
    // Missing data: never a reason to scale down.
    #[default]
    MissingData,
    // The value 0: nothing happened (no errors, no traffic).
    Zero,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ObjectiveKind {
    Ceiling,
    AverageValue,
    Value,
}

/// What to do when objectives cannot be read (no sample, NaN, Prometheus down).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MissingData {
    /// Rounds in a row without complete data before fallbackReplicas applies. Defaults to 3.
    #[serde(default = "default_failures_before_fallback")]
    #[schemars(range(min = 1, max = 100))]
    pub failures_before_fallback: i32,

    /// Replicas to run while data stays missing, if that is more than the current count. Without
    /// it, Trimtab holds the current count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100000))]
    pub fallback_replicas: Option<i32>,
}

fn default_failures_before_fallback() -> i32 {
    3
}

/// HorizontalPodAutoscaler autoscaling/v2 behavior. Omitted fields take HPA's defaults.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Behavior {
    /// Defaults: no stabilization, at most +100% or +4 pods (whichever is more) per 15s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_up: Option<ScalingRules>,
    /// Defaults: 300s stabilization, at most -100% per 15s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down: Option<ScalingRules>,
}

/// Rules for one direction, as HPAScalingRules.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ScalingRules {
    /// Recommendations from this far back are considered: scale-down goes no lower than the highest
    /// of them, scale-up no higher than the lowest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 3600))]
    pub stabilization_window_seconds: Option<i32>,

    /// Which policy applies when several do: Max (the largest change), Min (the smallest) or
    /// Disabled (no scaling in this direction).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select_policy: Option<SelectPolicy>,

    /// Rate limits: at most `value` pods or percent per `periodSeconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 10))]
    pub policies: Option<Vec<ScalingRulePolicy>>,

    /// The relative change of an AverageValue or Value objective that is ignored, a quantity of
    /// zero or more ("0.1" = 10%, "50m" = 5%). Defaults to 0.1. Write decimals as strings: the API
    /// server takes only whole numbers unquoted.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::api::quantity::deserialize_optional_quantity"
    )]
    #[schemars(schema_with = "crate::api::quantity::non_negative_quantity_schema")]
    pub tolerance: Option<String>,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelectPolicy {
    Max,
    Min,
    Disabled,
}

/// One rate limit.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ScalingRulePolicy {
    /// Pods (an absolute count) or Percent (of the replicas at the start of the period).
    #[serde(rename = "type")]
    pub type_: PolicyType,
    /// The change allowed per period (pods, or percent), at most 100000.
    #[schemars(range(min = 1, max = 100000))]
    pub value: i32,
    /// The period, in seconds.
    #[schemars(range(min = 1, max = 1800))]
    pub period_seconds: i32,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyType {
    Pods,
    Percent,
}

/// A money budget, in the currency of the CapacityPools' prices.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Budget {
    /// The most the workload may cost per hour, a positive quantity: a whole number (4) or a
    /// string ("3.50"). Write decimals as strings: the API server takes only whole numbers unquoted.
    #[serde(deserialize_with = "crate::api::quantity::deserialize_quantity")]
    #[schemars(schema_with = "crate::api::quantity::positive_quantity_schema")]
    pub max_cost_per_hour: String,

    /// Cap (default): never scale above what the budget pays for, except to keep minReplicas.
    /// Advisory: report BudgetLimited on status and in an Event, but scale anyway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforcement: Option<Enforcement>,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Enforcement {
    #[default]
    Cap,
    Advisory,
}

/// How replicas are split between a spot and an on-demand CapacityPool.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Placement {
    /// The CapacityPool (capacityType Spot) for the spot share.
    #[schemars(length(min = 1, max = 253))]
    pub spot_pool: String,

    /// The CapacityPool (capacityType OnDemand) for the rest, and for everything while spot is
    /// unavailable.
    #[schemars(length(min = 1, max = 253))]
    pub on_demand_pool: String,

    /// The first replicas, always on-demand. Defaults to 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100000))]
    pub on_demand_base: Option<i32>,

    /// The percentage of replicas above onDemandBase that go to spot (0 to 100).
    #[schemars(range(min = 0, max = 100))]
    pub spot_percentage: i32,

    /// Spot pods unschedulable this long mark spot unavailable, and new replicas go on-demand.
    /// Defaults to 90s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"), length(max = 32))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('1s') && duration(self) <= duration('24h')").message("fallbackAfter must be between 1s and 24h"))]
    pub fallback_after: Option<String>,

    /// Spot healthy this long moves replicas back to spot. Defaults to 10m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"), length(max = 32))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('1s') && duration(self) <= duration('24h')").message("returnAfter must be between 1s and 24h"))]
    pub return_after: Option<String>,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Active,
    DryRun,
}

/// What Trimtab observed and decided last.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ScalingPolicyStatus {
    /// The generation of the spec the status reflects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The target's replicas (spec.replicas of its scale subresource) when last observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_replicas: Option<i32>,
    /// The replicas Trimtab decided on last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_replicas: Option<i32>,
    /// Replicas per pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<PlacementStatus>,
    /// The hourly cost of the desired replicas, at pool prices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_per_hour: Option<String>,
    /// Each objective's last value against its target.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objectives: Vec<ObjectiveStatus>,
    /// The objectives in one line, as `kubectl get hpa` shows its TARGETS: "p99-latency 0.41/0.3,
    /// rps-per-replica 412/50", the first two and "+N more".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<String>,
    /// The UID of the target the history belongs to: a Deployment deleted and created again under
    /// the same name starts with no history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_uid: Option<String>,
    /// When Trimtab last changed the target's replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scale_time: Option<Time>,
    /// Another field manager's write of the target's spec.replicas after Trimtab's own (`kubectl
    /// scale`, a GitOps sync): Trimtab holds for a window before it writes again, so it never
    /// fights faster than once per window (condition ExternalWriteDetected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_write: Option<ExternalWrite>,
    /// What spec.forecast provisions for, as of its last plan (absent without spec.forecast, or
    /// while the lookback holds too little to plan from).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forecast: Option<ForecastStatus>,
    /// The last decision and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_decision: Option<LastDecision>,
    /// Rounds in a row that lacked complete data (for missingData.failuresBeforeFallback).
    #[serde(default)]
    pub consecutive_failures: u32,
    /// What stabilization windows and rate limits need, kept here so a restart changes no decision.
    #[serde(default)]
    pub history: History,
    /// Ready, MetricsAvailable, ScalingActive, ScalingLimited, BudgetLimited, SpotFallback, Conflict.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

/// The predictive law's plan, as `kubectl describe` shows it. Its figures are refreshed when one
/// moves by more than 5 % or the count changes, as objective values are, so a steady forecast does
/// not rewrite status every round (every round's figures are `trimtab_forecast_demand` and
/// `trimtab_learned_capacity`).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ForecastStatus {
    /// The throughput provisioned for, in the unit of loadQuery (requests/s): the trend's value
    /// at the horizon plus the noise margin.
    pub demand: String,
    /// The throughput per Ready replica at which `objective` would be breached, as learned from
    /// the lookback.
    pub capacity_per_replica: String,
    /// The Ceiling objective whose learned capacity is the tightest.
    pub objective: String,
    /// The replicas the plan asks for: demand over capacity per replica, rounded up, and those
    /// `sloViolationMinutePrice` pays for.
    pub replicas: i32,
}

/// A write of the target's spec.replicas by another field manager, as Trimtab saw it.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ExternalWrite {
    /// The field manager that owns spec.replicas (`kubectl`, `argocd-controller`, ...).
    pub manager: String,
    /// The count it set.
    pub replicas: i32,
    /// When Trimtab first saw a write by another manager since its own last write: the window it
    /// holds for starts here.
    pub since: Time,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PlacementStatus {
    /// Replicas the spot pool should have.
    pub spot: i32,
    /// Replicas the on-demand pool should have.
    pub on_demand: i32,
    /// Pods on the spot pool now.
    #[serde(default)]
    pub actual_spot: i32,
    /// Pods on the on-demand pool now.
    #[serde(default)]
    pub actual_on_demand: i32,
    /// False while the spot pool is unavailable for this workload and replicas fall back to on-demand.
    pub spot_healthy: bool,
    /// While spot is unavailable: since when it has looked usable again (it is trusted after
    /// placement.returnAfter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spot_available_since: Option<Time>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ObjectiveStatus {
    /// The objective's name in spec.objectives.
    pub name: String,
    /// The last value read, absent when it could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The objective's target, in the units of its query.
    pub target: String,
    pub state: ObjectiveState,
}

/// Where an objective stands.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectiveState {
    /// At or within target.
    Met,
    /// Over target.
    Breached,
    /// Could not be read this round.
    NoData,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LastDecision {
    /// When the round that made this decision ran.
    pub time: Time,
    /// The target's replicas when the round began (its scale's spec.replicas).
    pub from: i32,
    /// The replicas the round decided on; equal to `from` when it held.
    pub to: i32,
    /// Why the recommendation is what it is.
    #[schemars(schema_with = "crate::api::reason::decision_reason_schema")]
    pub reason: crate::api::Reason,
    /// The decision in words: each stage that acted, with the objective, value and target behind it.
    pub message: String,
    /// The stage that bounded the decision, DesiredWithinRange when none did.
    #[schemars(schema_with = "crate::api::reason::limit_schema")]
    pub limited_by: crate::api::Reason,
}

/// The decision history that HPA keeps in memory, kept in status instead.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct History {
    /// Unstabilized recommendations as runs, newest last, as long as a stabilization window needs
    /// them: an entry is one recommended count, from the round at `time` through the round at
    /// `until`. A new entry starts only when the recommended count changes, so a quiet round changes
    /// nothing here. The newest entry is still being recommended (its `until` is filled in when the
    /// next count supersedes it); an entry without `until` is a single round (so a plain per-round
    /// log, newest last, works too).
    ///
    /// At most 4096: one run per round inside the longest stabilization window (3600 s) at the
    /// shortest interval (1 s) is 3601, so the bound is never reached, and 4096 entries of about
    /// 90 bytes stay far below the API server's object size limit.
    #[serde(default)]
    #[schemars(length(max = 4096))]
    pub recommendations: Vec<Recommendation>,
    /// Applied replica changes (signed), as HPA holds them: one slot per remembered event, a new
    /// event overwriting the last slot of its direction that is `outdated`. An entry without
    /// `outdated` is a change still to be stored that way (so a plain log, newest last, works too).
    ///
    /// At most 4096: a direction grows only while all of its slots are within its longest policy
    /// period (at most 1800 s), so by one event per round at the shortest interval (1 s), 3600 in all.
    #[serde(default)]
    #[schemars(length(max = 4096))]
    pub scale_events: Vec<ScaleEvent>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Recommendation {
    /// The first round that recommended this count.
    pub time: Time,
    /// The replica count the objectives recommended, before stabilization, rate limits and budget.
    pub replicas: i32,
    /// The last round that recommended it, when later than `time`. HPA counts a recommendation
    /// inside a stabilization window when this round is, so it is the last round itself, not the one
    /// that superseded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Time>,
}

impl Recommendation {
    /// One round's recommendation.
    pub fn at(time: Time, replicas: i32) -> Recommendation {
        Recommendation { time, replicas, until: None }
    }

    /// The last round that recommended this count.
    pub fn last_seen(&self) -> &Time {
        self.until.as_ref().unwrap_or(&self.time)
    }
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ScaleEvent {
    /// When the change was written to the target.
    pub time: Time,
    /// Replicas added (positive) or removed (negative).
    pub change: i32,
    /// Set on a slot of HPA's event list: true once the event is older than its direction's longest
    /// policy period (HPA's `markScaleEventsOutdated`), so the next event of that direction may
    /// overwrite it. Omitted: an applied change not yet stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outdated: Option<bool>,
}

impl ScaleEvent {
    /// A change applied at `time`, not yet stored in HPA's slots.
    pub fn applied(time: Time, change: i32) -> ScaleEvent {
        ScaleEvent { time, change, outdated: None }
    }
}
