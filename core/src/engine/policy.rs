//! A ScalingPolicy's spec, checked and turned into numbers, with HPA's defaults filled in. The API
//! server's schema and CEL rules reject most bad specs; this catches the rest (quantities and
//! durations that do not parse, for one) and names the field of each problem.

use std::fmt;
use std::time::Duration;

use crate::api::{
    DurationBounds, Enforcement, FORECAST_STEP_BOUNDS, FORECAST_WINDOW_BOUNDS, INTERVAL_BOUNDS, MAX_COUNT, Mode, ObjectiveKind,
    PolicyType, Quantity, SPOT_WAIT_BOUNDS, ScalingPolicySpec, ScalingRules, SelectPolicy, Unreadable, WhenEmpty, parse_duration,
};

/// HPA's default tolerance: relative changes of an AverageValue or Value objective within 10% are ignored.
pub const DEFAULT_TOLERANCE: f64 = 0.1;
/// HPA's sync period.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(15);
pub const DEFAULT_FALLBACK_AFTER: Duration = Duration::from_secs(90);
pub const DEFAULT_RETURN_AFTER: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub min_replicas: i32,
    pub max_replicas: i32,
    pub interval: Duration,
    pub objectives: Vec<ObjectiveRule>,
    pub missing_data: MissingDataRule,
    pub scale_up: Rules,
    pub scale_down: Rules,
    pub budget: Option<BudgetRule>,
    pub placement: Option<PlacementRule>,
    pub mode: Mode,
    /// The predictive law for Ceiling objectives; none keeps them reactive.
    pub forecast: Option<ForecastRule>,
}

/// `spec.forecast`, checked, defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct ForecastRule {
    pub load_query: String,
    /// None: the operator reads kube-state-metrics' Ready replicas of the target.
    pub ready_replicas_query: Option<String>,
    /// How far ahead the replicas are provisioned.
    pub horizon: Duration,
    /// The minutes the trend and the noise are read from.
    pub trend_window: Duration,
    /// The minutes capacity is learned from.
    pub lookback: Duration,
    /// Headroom over the forecast, in standard deviations of the recent noise.
    pub noise_margin: f64,
    /// A step up provisions for the forecast this much beyond the horizon.
    pub step_up_ahead: Duration,
    /// A one-replica scale-down waits until every recommendation of this window asked for it.
    pub single_step_down_window: Duration,
    /// What one SLO-violation minute is worth, in replica-minutes (0: off).
    pub slo_violation_minute_price: f64,
}

pub const DEFAULT_FORECAST_HORIZON: Duration = Duration::from_secs(120);
pub const DEFAULT_TREND_WINDOW: Duration = Duration::from_secs(15 * 60);
pub const DEFAULT_LOOKBACK: Duration = Duration::from_secs(2 * 3600);
pub const DEFAULT_NOISE_MARGIN: f64 = 0.85;
pub const DEFAULT_STEP_UP_AHEAD: Duration = Duration::ZERO;
pub const DEFAULT_SINGLE_STEP_DOWN_WINDOW: Duration = Duration::ZERO;

#[derive(Debug, Clone, PartialEq)]
pub struct ObjectiveRule {
    pub name: String,
    pub query: String,
    pub kind: ObjectiveKind,
    pub target: f64,
    /// The target as HPA sees it: `ceil(target × 1000)`.
    pub target_milli: i64,
    /// Whether no series (or NaN) reads as missing data or as 0.
    pub when_empty: WhenEmpty,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MissingDataRule {
    pub failures_before_fallback: u32,
    pub fallback_replicas: Option<i32>,
}

/// One direction's behavior, every default filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    pub stabilization_window_seconds: i64,
    pub select_policy: SelectPolicy,
    pub policies: Vec<RatePolicy>,
    pub tolerance: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RatePolicy {
    pub kind: PolicyType,
    pub value: i32,
    pub period_seconds: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BudgetRule {
    pub max_cost_per_hour: f64,
    pub enforcement: Enforcement,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlacementRule {
    pub spot_pool: String,
    pub on_demand_pool: String,
    pub on_demand_base: i32,
    pub spot_percentage: i32,
    pub fallback_after: Duration,
    pub return_after: Duration,
}

/// A stored policy's field that does not deserialize, with where `kubectl explain` documents it.
fn unreadable_problem(unreadable: &Unreadable) -> FieldProblem {
    let documented: String = {
        // `spec.objectives[0].kind` is documented as `spec.objectives.kind`.
        let mut depth = 0;
        unreadable
            .field
            .chars()
            .filter(|c| {
                match c {
                    '[' => depth += 1,
                    ']' => depth -= 1,
                    _ => return depth == 0,
                }
                false
            })
            .collect()
    };
    FieldProblem {
        field: unreadable.field.clone(),
        message: format!(
            "{}: Trimtab cannot read this ScalingPolicy; fix that field (kubectl explain scalingpolicy.{documented})",
            unreadable.problem
        ),
    }
}

/// Every problem found in a spec, each with the field to fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct PolicyError {
    pub problems: Vec<FieldProblem>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FieldProblem {
    /// The field's path, from `spec`.
    pub field: String,
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.problems.iter().map(|p| format!("{}: {}", p.field, p.message)).collect();
        write!(f, "invalid ScalingPolicy: {}", parts.join("; "))
    }
}

impl PolicyError {
    /// The same problems, with their paths under `prefix` (for a spec inside a larger document).
    pub fn under(mut self, prefix: &str) -> Self {
        for problem in &mut self.problems {
            problem.field = format!("{prefix}.{}", problem.field);
        }
        self
    }
}

impl Policy {
    pub fn from_spec(spec: &ScalingPolicySpec) -> Result<Policy, PolicyError> {
        if let Some(unreadable) = &spec.unreadable {
            // The rest of this spec is a placeholder: the one problem is the field that did not read.
            return Err(PolicyError { problems: vec![unreadable_problem(unreadable)] });
        }
        let mut check = Checker::default();

        if spec.min_replicas < 1 {
            check.problem("spec.minReplicas", "must be 1 or more");
        }
        if spec.max_replicas < 1 {
            check.problem("spec.maxReplicas", "must be 1 or more");
        }
        for (field, count) in [("spec.minReplicas", spec.min_replicas), ("spec.maxReplicas", spec.max_replicas)] {
            if count > MAX_COUNT {
                check.problem(field, format!("{count} is more than {MAX_COUNT}, the most Trimtab scales to"));
            }
        }
        if spec.min_replicas > spec.max_replicas {
            check.problem("spec.minReplicas", format!("{} is more than maxReplicas {}", spec.min_replicas, spec.max_replicas));
        }
        let interval = spec
            .interval
            .as_deref()
            .map_or(Some(DEFAULT_INTERVAL), |text| check.duration("spec.interval", text, INTERVAL_BOUNDS));

        if spec.objectives.is_empty() {
            check.problem("spec.objectives", "name at least one objective");
        }
        let mut objectives = Vec::with_capacity(spec.objectives.len());
        for (i, objective) in spec.objectives.iter().enumerate() {
            let field = format!("spec.objectives[{i}]");
            if spec.objectives[..i].iter().any(|earlier| earlier.name == objective.name) {
                check.problem(
                    format!("{field}.name"),
                    format!("{:?} is used by an earlier objective; names must be unique", objective.name),
                );
            }
            if objective.query.trim().is_empty() {
                check.problem(format!("{field}.query"), "must be a PromQL query, not blank");
            }
            if let Some(target) = check.positive_quantity(&format!("{field}.target"), &objective.target) {
                objectives.push(ObjectiveRule {
                    name: objective.name.clone(),
                    query: objective.query.clone(),
                    kind: objective.kind,
                    target: target.as_f64(),
                    target_milli: target.milli_ceil(),
                    when_empty: objective.when_empty.unwrap_or_default(),
                });
            }
        }

        let missing_data = match &spec.missing_data {
            None => MissingDataRule { failures_before_fallback: 3, fallback_replicas: None },
            Some(m) => {
                if !(1..=100).contains(&m.failures_before_fallback) {
                    check.problem("spec.missingData.failuresBeforeFallback", "must be between 1 and 100");
                }
                if let Some(fallback) = m.fallback_replicas
                    && !(1..=spec.max_replicas).contains(&fallback)
                {
                    check.problem(
                        "spec.missingData.fallbackReplicas",
                        format!("must be between 1 and maxReplicas ({})", spec.max_replicas),
                    );
                }
                MissingDataRule {
                    failures_before_fallback: m.failures_before_fallback.max(1) as u32,
                    fallback_replicas: m.fallback_replicas,
                }
            }
        };

        let behavior = spec.behavior.clone().unwrap_or_default();
        let scale_up = check.rules("spec.behavior.scaleUp", behavior.scale_up.as_ref(), Direction::Up);
        let scale_down = check.rules("spec.behavior.scaleDown", behavior.scale_down.as_ref(), Direction::Down);

        let budget = spec.budget.as_ref().and_then(|b| {
            let max = check.positive_quantity("spec.budget.maxCostPerHour", &b.max_cost_per_hour)?;
            Some(BudgetRule { max_cost_per_hour: max.as_f64(), enforcement: b.enforcement.unwrap_or_default() })
        });

        let placement = spec.placement.as_ref().and_then(|p| {
            let base = p.on_demand_base.unwrap_or(0);
            if !(0..=spec.max_replicas).contains(&base) {
                check
                    .problem("spec.placement.onDemandBase", format!("must be between 0 and maxReplicas ({})", spec.max_replicas));
            }
            if !(0..=100).contains(&p.spot_percentage) {
                check.problem("spec.placement.spotPercentage", "must be between 0 and 100");
            }
            if p.spot_pool.is_empty() {
                check.problem("spec.placement.spotPool", "name the spot CapacityPool");
            }
            if p.on_demand_pool.is_empty() {
                check.problem("spec.placement.onDemandPool", "name the on-demand CapacityPool");
            }
            let fallback_after = p
                .fallback_after
                .as_deref()
                .map_or(Some(DEFAULT_FALLBACK_AFTER), |t| check.duration("spec.placement.fallbackAfter", t, SPOT_WAIT_BOUNDS));
            let return_after = p
                .return_after
                .as_deref()
                .map_or(Some(DEFAULT_RETURN_AFTER), |t| check.duration("spec.placement.returnAfter", t, SPOT_WAIT_BOUNDS));
            Some(PlacementRule {
                spot_pool: p.spot_pool.clone(),
                on_demand_pool: p.on_demand_pool.clone(),
                on_demand_base: base.max(0),
                spot_percentage: p.spot_percentage.clamp(0, 100),
                fallback_after: fallback_after?,
                return_after: return_after?,
            })
        });

        let forecast = spec.forecast.as_ref().and_then(|f| {
            if f.load_query.trim().is_empty() {
                check.problem("spec.forecast.loadQuery", "must be a PromQL query, not blank");
            }
            if f.ready_replicas_query.as_deref().is_some_and(|q| q.trim().is_empty()) {
                check.problem(
                    "spec.forecast.readyReplicasQuery",
                    "must be a PromQL query, or left out for kube-state-metrics' one",
                );
            }
            let duration = |check: &mut Checker, field: &str, text: &Option<String>, default: Duration| {
                text.as_deref().map_or(Some(default), |t| check.duration(field, t, FORECAST_WINDOW_BOUNDS))
            };
            let horizon = duration(&mut check, "spec.forecast.horizon", &f.horizon, DEFAULT_FORECAST_HORIZON);
            let trend_window = duration(&mut check, "spec.forecast.trendWindow", &f.trend_window, DEFAULT_TREND_WINDOW);
            let lookback = duration(&mut check, "spec.forecast.lookback", &f.lookback, DEFAULT_LOOKBACK);
            let step = |check: &mut Checker, field: &str, text: &Option<String>, default: Duration| {
                text.as_deref().map_or(Some(default), |t| check.duration(field, t, FORECAST_STEP_BOUNDS))
            };
            let step_up_ahead = step(&mut check, "spec.forecast.stepUpAhead", &f.step_up_ahead, DEFAULT_STEP_UP_AHEAD);
            let single_step_down_window = step(
                &mut check,
                "spec.forecast.singleStepDownWindow",
                &f.single_step_down_window,
                DEFAULT_SINGLE_STEP_DOWN_WINDOW,
            );
            let zero_or_more = |check: &mut Checker, field: &str, text: &Option<String>, default: f64| {
                text.as_deref().map_or(Some(default), |t| check.zero_or_more_quantity(field, t))
            };
            let noise_margin = zero_or_more(&mut check, "spec.forecast.noiseMargin", &f.noise_margin, DEFAULT_NOISE_MARGIN);
            let slo_violation_minute_price =
                zero_or_more(&mut check, "spec.forecast.sloViolationMinutePrice", &f.slo_violation_minute_price, 0.0);
            Some(ForecastRule {
                load_query: f.load_query.clone(),
                ready_replicas_query: f.ready_replicas_query.clone(),
                horizon: horizon?,
                trend_window: trend_window?,
                lookback: lookback?,
                noise_margin: noise_margin?,
                step_up_ahead: step_up_ahead?,
                single_step_down_window: single_step_down_window?,
                slo_violation_minute_price: slo_violation_minute_price?,
            })
        });

        if !check.problems.is_empty() {
            return Err(PolicyError { problems: check.problems });
        }
        Ok(Policy {
            min_replicas: spec.min_replicas,
            max_replicas: spec.max_replicas,
            interval: interval.unwrap_or(DEFAULT_INTERVAL),
            objectives,
            missing_data,
            scale_up,
            scale_down,
            budget,
            placement,
            mode: spec.mode.unwrap_or_default(),
            forecast,
        })
    }

    pub fn objective(&self, name: &str) -> Option<&ObjectiveRule> {
        self.objectives.iter().find(|o| o.name == name)
    }
}

#[derive(Clone, Copy)]
enum Direction {
    Up,
    Down,
}

/// HPA autoscaling/v2 defaults (`pkg/apis/autoscaling/v2/defaults.go`).
fn default_rules(direction: Direction) -> Rules {
    match direction {
        Direction::Up => Rules {
            stabilization_window_seconds: 0,
            select_policy: SelectPolicy::Max,
            policies: vec![
                RatePolicy { kind: PolicyType::Pods, value: 4, period_seconds: 15 },
                RatePolicy { kind: PolicyType::Percent, value: 100, period_seconds: 15 },
            ],
            tolerance: DEFAULT_TOLERANCE,
        },
        Direction::Down => Rules {
            stabilization_window_seconds: 300,
            select_policy: SelectPolicy::Max,
            policies: vec![RatePolicy { kind: PolicyType::Percent, value: 100, period_seconds: 15 }],
            tolerance: DEFAULT_TOLERANCE,
        },
    }
}

#[derive(Default)]
struct Checker {
    problems: Vec<FieldProblem>,
}

impl Checker {
    fn problem(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.problems.push(FieldProblem { field: field.into(), message: message.into() });
    }

    fn quantity(&mut self, field: &str, text: &str) -> Option<Quantity> {
        Quantity::parse(text).map_err(|e| self.problem(field, e.to_string())).ok()
    }

    fn positive_quantity(&mut self, field: &str, text: &str) -> Option<Quantity> {
        let quantity = self.quantity(field, text)?;
        if !quantity.is_positive() {
            self.problem(field, format!("{text:?} must be more than zero"));
            return None;
        }
        Some(quantity)
    }

    fn zero_or_more_quantity(&mut self, field: &str, text: &str) -> Option<f64> {
        let value = self.quantity(field, text)?.as_f64();
        if value < 0.0 {
            self.problem(field, "must be zero or more");
            return None;
        }
        Some(value)
    }

    fn duration(&mut self, field: &str, text: &str, bounds: DurationBounds) -> Option<Duration> {
        parse_duration(text, bounds).map_err(|e| self.problem(field, e.to_string())).ok()
    }

    /// Fills HPA's defaults into what the user gave, field by field, as HPA's defaulting does.
    fn rules(&mut self, field: &str, given: Option<&ScalingRules>, direction: Direction) -> Rules {
        let mut rules = default_rules(direction);
        let Some(given) = given else { return rules };
        if let Some(window) = given.stabilization_window_seconds {
            if (0..=3600).contains(&window) {
                rules.stabilization_window_seconds = i64::from(window);
            } else {
                self.problem(format!("{field}.stabilizationWindowSeconds"), "must be between 0 and 3600");
            }
        }
        if let Some(select) = given.select_policy {
            rules.select_policy = select;
        }
        if let Some(policies) = &given.policies {
            if policies.is_empty() && rules.select_policy != SelectPolicy::Disabled {
                self.problem(format!("{field}.policies"), "must name at least one policy, or omit it for HPA's defaults");
            }
            rules.policies = policies
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    if !(1..=MAX_COUNT).contains(&p.value) {
                        self.problem(format!("{field}.policies[{i}].value"), format!("must be between 1 and {MAX_COUNT}"));
                    }
                    if !(1..=1800).contains(&p.period_seconds) {
                        self.problem(format!("{field}.policies[{i}].periodSeconds"), "must be between 1 and 1800");
                    }
                    RatePolicy { kind: p.type_, value: p.value, period_seconds: i64::from(p.period_seconds) }
                })
                .collect();
        }
        if let Some(text) = &given.tolerance
            && let Some(tolerance) = self.quantity(&format!("{field}.tolerance"), text)
        {
            if tolerance.as_f64() < 0.0 {
                self.problem(format!("{field}.tolerance"), "must be zero or more");
            }
            rules.tolerance = tolerance.as_f64();
        }
        rules
    }
}
