//! Trimtab against an independent model of the HorizontalPodAutoscaler, on random timelines.
//!
//! `hpa` below is a reference model written from kubernetes' `pkg/controller/podautoscaler`
//! (`horizontal.go`: reconcileAutoscaler, normalizeDesiredReplicasWithBehaviors,
//! stabilizeRecommendationWithBehaviors, convertDesiredReplicasWithBehaviorRate,
//! calculateScale{Up,Down}Limit*, storeScaleEvent; `replica_calculator.go`:
//! GetExternalPerPodMetricReplicas for AverageValue and GetExternalMetricReplicas for Value targets,
//! with the per-direction tolerances of `Tolerances.isWithin`). It keeps its history in memory, as
//! HPA does, and shares no code with the engine.
//!
//! The timelines chain rounds exactly as the `trimtab decide` contract says: each round's
//! `recommendation` is appended to `history.recommendations` at `now`, the applied change
//! (desired − current, when not zero) to `history.scaleEvents`, and the target then runs the desired
//! count. Every round, Trimtab and the model must agree on the desired replicas.
//!
//! Modelling choices, each the reading of HPA's code that the `decide` contract can express:
//! - every pod is ready (GetExternalMetricReplicas multiplies by the ready pod count), and the
//!   target's status replicas equal its spec replicas (GetExternalPerPodMetricReplicas uses the
//!   status count);
//! - every policy has a `behavior` (HPA takes its legacy path, without rate policies per period,
//!   when `behavior` is nil; see hpa_behavior.rs);
//! - the model starts with no recommendation in memory: HPA's `recordInitialRecommendation`, which
//!   seeds the list with the current count when a controller first sees an HPA, has no counterpart
//!   in a history that only ever receives each round's recommendation (see `Fidelity`);
//! - times are whole seconds, and an entry stored at `now` is "after" a cutoff only when it is
//!   strictly later, as Go's `Time.After`.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use proptest::prelude::*;
use serde_json::{Value, json};
use trimtab::api::{History, Recommendation, ScaleEvent, ScalingPolicySpec};
use trimtab::engine::{self, Current, Observations, Policy, Pricing, Sample};

use common::at;

/// The reference model.
mod hpa {
    /// The controller flag --horizontal-pod-autoscaler-tolerance.
    pub const DEFAULT_TOLERANCE: f64 = 0.1;
    /// The controller flag --horizontal-pod-autoscaler-downscale-stabilization.
    pub const DEFAULT_DOWNSCALE_WINDOW: i64 = 300;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Select {
        Max,
        Min,
        Disabled,
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Kind {
        Pods,
        Percent,
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct RatePolicy {
        pub kind: Kind,
        pub value: i32,
        pub period: i64,
    }

    /// HPAScalingRules after defaulting.
    #[derive(Clone, Debug, PartialEq)]
    pub struct Rules {
        pub window: i64,
        pub select: Select,
        pub policies: Vec<RatePolicy>,
        /// The `tolerance` quantity as written, when set.
        pub tolerance: Option<String>,
    }

    impl Rules {
        /// GenerateHPAScaleUpRules(nil).
        pub fn default_up() -> Rules {
            Rules {
                window: 0,
                select: Select::Max,
                policies: vec![
                    RatePolicy { kind: Kind::Pods, value: 4, period: 15 },
                    RatePolicy { kind: Kind::Percent, value: 100, period: 15 },
                ],
                tolerance: None,
            }
        }

        /// GenerateHPAScaleDownRules(nil), with the window maybeInitScaleDownStabilizationWindow sets.
        pub fn default_down() -> Rules {
            Rules {
                window: DEFAULT_DOWNSCALE_WINDOW,
                select: Select::Max,
                policies: vec![RatePolicy { kind: Kind::Percent, value: 100, period: 15 }],
                tolerance: None,
            }
        }

        fn tolerance(&self) -> f64 {
            self.tolerance.as_deref().map_or(DEFAULT_TOLERANCE, approximate_float64)
        }
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Target {
        /// External metric, target.averageValue (milli).
        AverageValue(i64),
        /// External metric, target.value (milli).
        Value(i64),
    }

    #[derive(Clone, Debug, PartialEq)]
    pub struct Spec {
        pub min: i32,
        pub max: i32,
        pub metrics: Vec<Target>,
        pub up: Rules,
        pub down: Rules,
    }

    /// Parts of HPA that Trimtab's history cannot carry, switchable to measure their effect.
    #[derive(Clone, Copy, Debug)]
    pub struct Fidelity {
        /// recordInitialRecommendation: the first reconcile records the current count as a
        /// recommendation before deciding.
        pub seed_initial_recommendation: bool,
        /// storeScaleEvent: a new event overwrites the last event of its direction that is older
        /// than that direction's longest policy period, instead of being appended.
        pub reuse_outdated_events: bool,
    }

    struct Rec {
        replicas: i32,
        time: i64,
    }

    struct Event {
        change: i32,
        time: i64,
        outdated: bool,
    }

    /// One HorizontalController's memory of one HPA.
    pub struct Controller {
        fidelity: Fidelity,
        recommendations: Option<Vec<Rec>>,
        up_events: Vec<Event>,
        down_events: Vec<Event>,
    }

    /// What one reconcile did.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Outcome {
        /// The pre-normalized desired count (what HPA records); none when HPA records nothing.
        pub recommendation: Option<i32>,
        pub desired: i32,
    }

    impl Controller {
        pub fn new(fidelity: Fidelity) -> Controller {
            Controller { fidelity, recommendations: None, up_events: Vec::new(), down_events: Vec::new() }
        }

        /// reconcileAutoscaler for one round: `usages` are the metric values (milli), one per
        /// metric of the spec.
        pub fn reconcile(&mut self, spec: &Spec, usages: &[i64], current: i32, now: i64) -> Outcome {
            if self.fidelity.seed_initial_recommendation && self.recommendations.is_none() {
                self.recommendations = Some(vec![Rec { replicas: current, time: now }]);
            }
            let mut recommendation = None;
            let desired = if current == 0 && spec.min != 0 {
                0
            } else if current > spec.max {
                spec.max
            } else if current < spec.min {
                spec.min
            } else {
                let tolerances = Tolerances { scale_down: spec.down.tolerance(), scale_up: spec.up.tolerance() };
                // computeReplicasForMetrics: the largest proposal; desiredReplicas starts at 0.
                let mut desired = 0;
                for (target, &usage) in spec.metrics.iter().zip(usages) {
                    let proposal = match *target {
                        Target::AverageValue(per_pod) => external_per_pod_replicas(current, per_pod, usage, tolerances),
                        Target::Value(value) => external_replicas(current, value, usage, tolerances),
                    };
                    if proposal > desired {
                        desired = proposal;
                    }
                }
                recommendation = Some(desired);
                let stabilized = self.stabilize(spec, current, desired, now);
                convert_with_rate(spec, &self.up_events, &self.down_events, current, stabilized, now)
            };
            if desired != current {
                self.store_scale_event(spec, current, desired, now);
            }
            Outcome { recommendation, desired }
        }

        /// stabilizeRecommendationWithBehaviors, recording the unstabilized recommendation.
        fn stabilize(&mut self, spec: &Spec, current: i32, desired: i32, now: i64) -> i32 {
            let up_cutoff = now - spec.up.window;
            let down_cutoff = now - spec.down.window;
            let mut up = desired;
            let mut down = desired;
            let mut old_sample = None;
            let recommendations = self.recommendations.get_or_insert_with(Vec::new);
            for (i, rec) in recommendations.iter().enumerate() {
                if rec.time > up_cutoff {
                    up = up.min(rec.replicas);
                }
                if rec.time > down_cutoff {
                    down = down.max(rec.replicas);
                }
                if rec.time < up_cutoff && rec.time < down_cutoff {
                    old_sample = Some(i);
                }
            }
            let mut stabilized = current;
            if stabilized < up {
                stabilized = up;
            }
            if stabilized > down {
                stabilized = down;
            }
            let rec = Rec { replicas: desired, time: now };
            match old_sample {
                Some(i) => recommendations[i] = rec,
                None => recommendations.push(rec),
            }
            stabilized
        }

        /// storeScaleEvent (the behavior is never nil here).
        fn store_scale_event(&mut self, spec: &Spec, previous: i32, new: i32, now: i64) {
            let (events, rules, change) = if new > previous {
                (&mut self.up_events, &spec.up, new - previous)
            } else {
                (&mut self.down_events, &spec.down, previous - new)
            };
            let event = Event { change, time: now, outdated: false };
            if !self.fidelity.reuse_outdated_events {
                events.push(event);
                return;
            }
            // markScaleEventsOutdated with getLongestPolicyPeriod.
            let longest = rules.policies.iter().map(|p| p.period).max().unwrap_or(0);
            for e in events.iter_mut() {
                if e.time < now - longest {
                    e.outdated = true;
                }
            }
            match events.iter().rposition(|e| e.outdated) {
                Some(i) => events[i] = event,
                None => events.push(event),
            }
        }
    }

    #[derive(Clone, Copy)]
    struct Tolerances {
        scale_down: f64,
        scale_up: f64,
    }

    impl Tolerances {
        fn is_within(&self, ratio: f64) -> bool {
            (1.0 - self.scale_down) <= ratio && ratio <= (1.0 + self.scale_up)
        }
    }

    /// GetExternalPerPodMetricReplicas, with status replicas = current.
    fn external_per_pod_replicas(current: i32, target_per_pod: i64, usage: i64, tolerances: Tolerances) -> i32 {
        let ratio = usage as f64 / (target_per_pod as f64 * f64::from(current));
        if tolerances.is_within(ratio) {
            return current;
        }
        let replicas = (usage as f64 / target_per_pod as f64).ceil();
        if replicas > f64::from(i32::MAX) { i32::MAX } else { replicas as i32 }
    }

    /// GetExternalMetricReplicas → getUsageRatioReplicaCount, every pod ready.
    fn external_replicas(current: i32, target: i64, usage: i64, tolerances: Tolerances) -> i32 {
        let ratio = usage as f64 / target as f64;
        if current == 0 {
            return ratio.ceil() as i32;
        }
        if tolerances.is_within(ratio) {
            return current;
        }
        let replicas = ratio * f64::from(current);
        if replicas > f64::from(i32::MAX) { i32::MAX } else { replicas.ceil() as i32 }
    }

    /// convertDesiredReplicasWithBehaviorRate.
    fn convert_with_rate(spec: &Spec, ups: &[Event], downs: &[Event], current: i32, desired: i32, now: i64) -> i32 {
        if desired > current {
            let mut limit = scale_up_limit(current, ups, downs, &spec.up, now);
            if limit < current {
                limit = current;
            }
            let mut maximum = spec.max;
            if maximum > limit {
                maximum = limit;
            }
            if desired > maximum {
                return maximum;
            }
        } else if desired < current {
            let mut limit = scale_down_limit(current, ups, downs, &spec.down, now);
            if limit > current {
                limit = current;
            }
            let mut minimum = spec.min;
            if minimum < limit {
                minimum = limit;
            }
            if desired < minimum {
                return minimum;
            }
        }
        desired
    }

    /// getReplicasChangePerPeriod.
    fn change_in_period(period: i64, events: &[Event], now: i64) -> i32 {
        events.iter().filter(|e| e.time > now - period).map(|e| e.change).sum()
    }

    /// calculateScaleUpLimitWithScalingRules.
    fn scale_up_limit(current: i32, ups: &[Event], downs: &[Event], rules: &Rules, now: i64) -> i32 {
        let (mut result, pick): (i32, fn(i32, i32) -> i32) = match rules.select {
            Select::Disabled => return current,
            Select::Min => (i32::MAX, std::cmp::min),
            Select::Max => (i32::MIN, std::cmp::max),
        };
        for policy in &rules.policies {
            let start = current - change_in_period(policy.period, ups, now) + change_in_period(policy.period, downs, now);
            let proposed = match policy.kind {
                Kind::Pods => start + policy.value,
                Kind::Percent => (f64::from(start) * (1.0 + f64::from(policy.value) / 100.0)).ceil() as i32,
            };
            result = pick(result, proposed);
        }
        result
    }

    /// calculateScaleDownLimitWithBehaviors.
    fn scale_down_limit(current: i32, ups: &[Event], downs: &[Event], rules: &Rules, now: i64) -> i32 {
        let (mut result, pick): (i32, fn(i32, i32) -> i32) = match rules.select {
            Select::Disabled => return current,
            Select::Min => (i32::MIN, std::cmp::max),
            Select::Max => (i32::MAX, std::cmp::min),
        };
        for policy in &rules.policies {
            let start = current - change_in_period(policy.period, ups, now) + change_in_period(policy.period, downs, now);
            let proposed = match policy.kind {
                Kind::Pods => start - policy.value,
                Kind::Percent => (f64::from(start) * (1.0 - f64::from(policy.value) / 100.0)) as i32,
            };
            result = pick(result, proposed);
        }
        result
    }

    /// resource.Quantity.AsApproximateFloat64 for a plain decimal ("0.05"): the digits as an
    /// integer times 10^-scale, as Go computes it (`value * math.Pow10(-n)`).
    pub fn approximate_float64(text: &str) -> f64 {
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let digits: i64 = format!("{whole}{fraction}").parse().expect("a plain decimal");
        let scale = fraction.len() as i32;
        if scale == 0 { digits as f64 } else { digits as f64 * (1.0 / 10f64.powi(scale)) }
    }
}

use hpa::{Fidelity, Kind, RatePolicy, Rules, Select, Target};

/// The HPA that the `decide` contract can reproduce.
const CONTRACT: Fidelity = Fidelity { seed_initial_recommendation: false, reuse_outdated_events: true };

/// One random timeline: an HPA spec, a starting count and rounds of (seconds since the previous
/// round, per-metric load as a percentage of what the current count can carry).
#[derive(Clone, Debug)]
struct Timeline {
    spec: hpa::Spec,
    /// Which directions the Trimtab spec writes out (the rest take the defaults).
    up_given: bool,
    down_given: bool,
    start: i32,
    rounds: Vec<(i64, Vec<u32>)>,
}

impl Timeline {
    /// The metric value (milli) a load percentage means at `current` replicas: for AverageValue a
    /// total of pct% of target × current, for Value pct% of the target.
    fn usage(target: Target, pct: u32, current: i32) -> i64 {
        match target {
            Target::AverageValue(per_pod) => per_pod * i64::from(current) * i64::from(pct) / 100,
            Target::Value(value) => value * i64::from(pct) / 100,
        }
    }

    fn trimtab_spec(&self) -> Value {
        let objectives: Vec<Value> = self
            .spec
            .metrics
            .iter()
            .enumerate()
            .map(|(i, target)| {
                let (kind, milli) = match *target {
                    Target::AverageValue(m) => ("AverageValue", m),
                    Target::Value(m) => ("Value", m),
                };
                json!({"name": format!("m{i}"), "query": format!("metric_{i}"), "kind": kind, "target": format!("{milli}m")})
            })
            .collect();
        let mut behavior = serde_json::Map::new();
        if self.up_given {
            behavior.insert("scaleUp".into(), rules_json(&self.spec.up));
        }
        if self.down_given {
            behavior.insert("scaleDown".into(), rules_json(&self.spec.down));
        }
        json!({
            "targetRef": {"kind": "Deployment", "name": "web"},
            "minReplicas": self.spec.min,
            "maxReplicas": self.spec.max,
            "objectives": objectives,
            "behavior": behavior,
        })
    }
}

fn rules_json(rules: &Rules) -> Value {
    let policies: Vec<Value> = rules
        .policies
        .iter()
        .map(|p| {
            let kind = match p.kind {
                Kind::Pods => "Pods",
                Kind::Percent => "Percent",
            };
            json!({"type": kind, "value": p.value, "periodSeconds": p.period})
        })
        .collect();
    let select = match rules.select {
        Select::Max => "Max",
        Select::Min => "Min",
        Select::Disabled => "Disabled",
    };
    let mut out = json!({"stabilizationWindowSeconds": rules.window, "selectPolicy": select, "policies": policies});
    if let Some(tolerance) = &rules.tolerance {
        out["tolerance"] = json!(tolerance);
    }
    out
}

fn policy_of(spec: &Value) -> Policy {
    let spec: ScalingPolicySpec = serde_json::from_value(spec.clone()).expect("the generated spec deserializes");
    Policy::from_spec(&spec).unwrap_or_else(|e| panic!("the generated spec is valid: {e}\n{spec:?}"))
}

fn observations(spec: &hpa::Spec, usages: &[i64]) -> Observations {
    spec.metrics
        .iter()
        .zip(usages)
        .enumerate()
        .map(|(i, (_, &milli))| (format!("m{i}"), Sample::Value(milli as f64 / 1000.0)))
        .collect()
}

fn current(replicas: i32) -> Current {
    Current { replicas, ready_replicas: None, consecutive_failures: 0, spot_healthy: true, pricing: Pricing::default() }
}

/// What a run of a timeline saw, round by round.
#[derive(Debug, PartialEq)]
struct Round {
    at: i64,
    current: i32,
    usages: Vec<i64>,
    hpa: hpa::Outcome,
    trimtab_recommendation: i32,
    trimtab_desired: i32,
    pruned_desired: i32,
}

/// Runs a timeline through the model and through `engine::decide`, chaining the history as the
/// `decide` contract says; also through a history kept by `engine::remember` (what the operator
/// stores in status), which must decide the same.
fn run(timeline: &Timeline, fidelity: Fidelity) -> Vec<Round> {
    let spec_json = timeline.trimtab_spec();
    let policy = policy_of(&spec_json);
    let mut model = hpa::Controller::new(fidelity);
    let mut history = History::default();
    let mut pruned = History::default();
    // What the operator remembers without writing it: the time of the policy's previous round.
    let mut last_round: Option<Timestamp> = None;
    let mut replicas = timeline.start;
    let mut now = 0i64;
    let mut rounds = Vec::new();
    for (step, load) in &timeline.rounds {
        now += step;
        let usages: Vec<i64> =
            timeline.spec.metrics.iter().zip(load).map(|(&target, &pct)| Timeline::usage(target, pct, replicas)).collect();
        let outcome = model.reconcile(&timeline.spec, &usages, replicas, now);
        let obs = observations(&timeline.spec, &usages);
        let decision = engine::decide(&policy, &obs, &current(replicas), &history, at(now));
        let from_pruned =
            engine::decide(&policy, &obs, &current(replicas), &engine::recall(&pruned, last_round, at(now)), at(now));
        rounds.push(Round {
            at: now,
            current: replicas,
            usages,
            hpa: outcome,
            trimtab_recommendation: decision.recommendation,
            trimtab_desired: decision.desired_replicas,
            pruned_desired: from_pruned.desired_replicas,
        });
        let change = decision.desired_replicas - replicas;
        history.recommendations.push(Recommendation::at(Time(at(now)), decision.recommendation));
        if change != 0 {
            history.scale_events.push(ScaleEvent::applied(Time(at(now)), change));
        }
        pruned = engine::remember(&pruned, last_round, &policy, at(now), decision.recommendation, change);
        last_round = Some(at(now));
        pruned = serde_json::from_value(serde_json::to_value(&pruned).expect("history serializes")).expect("history reads back");
        // The target follows the decision; the model follows its own, so a divergence shows once.
        if outcome.desired != decision.desired_replicas {
            break;
        }
        replicas = decision.desired_replicas;
    }
    rounds
}

/// Compares each round: HPA against Trimtab's decision from the full history, and, when
/// `pruned_too`, Trimtab from the history `engine::remember` keeps against the full history.
fn check(timeline: &Timeline, fidelity: Fidelity, pruned_too: bool) -> Result<(), String> {
    for (i, round) in run(timeline, fidelity).iter().enumerate() {
        if round.hpa.desired != round.trimtab_desired
            || round.hpa.recommendation.is_some_and(|r| r != round.trimtab_recommendation)
            || (pruned_too && round.pruned_desired != round.trimtab_desired)
        {
            return Err(format!(
                "round {i} (t={}s, current {}, usages {:?}): HPA {:?}, Trimtab recommendation {} desired {} (from the pruned history: {})\nspec: {}",
                round.at,
                round.current,
                round.usages,
                round.hpa,
                round.trimtab_recommendation,
                round.trimtab_desired,
                round.pruned_desired,
                timeline.trimtab_spec()
            ));
        }
    }
    Ok(())
}

// ---- Generators ----

fn arb_tolerance() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        3 => Just(None),
        1 => Just(Some("0".to_owned())),
        2 => (1u32..=30).prop_map(|k| Some(format!("0.{k:02}").trim_end_matches('0').to_owned())),
    ]
}

fn arb_period() -> impl Strategy<Value = i64> {
    prop_oneof![3 => prop::sample::select(vec![15i64, 30, 60, 120, 300]), 2 => 1i64..=240]
}

fn arb_window() -> impl Strategy<Value = i64> {
    prop_oneof![3 => Just(0i64), 3 => prop::sample::select(vec![15i64, 30, 60, 120, 300]), 2 => 1i64..=400]
}

fn arb_select() -> impl Strategy<Value = Select> {
    prop_oneof![5 => Just(Select::Max), 3 => Just(Select::Min), 1 => Just(Select::Disabled)]
}

fn arb_rate_policy(up: bool) -> impl Strategy<Value = RatePolicy> {
    let percent = if up { 1i32..=300 } else { 1i32..=100 };
    prop_oneof![
        (1i32..=10, arb_period()).prop_map(|(value, period)| RatePolicy { kind: Kind::Pods, value, period }),
        (percent, arb_period()).prop_map(|(value, period)| RatePolicy { kind: Kind::Percent, value, period }),
    ]
}

fn arb_rules(up: bool) -> impl Strategy<Value = Rules> {
    (arb_window(), arb_select(), prop::collection::vec(arb_rate_policy(up), 1..=3), arb_tolerance())
        .prop_map(|(window, select, policies, tolerance)| Rules { window, select, policies, tolerance })
}

fn arb_target() -> impl Strategy<Value = Target> {
    let milli = prop_oneof![prop::sample::select(vec![1000i64, 500, 2000, 10_000, 100]), 100i64..=50_000];
    (any::<bool>(), milli).prop_map(|(average, m)| if average { Target::AverageValue(m) } else { Target::Value(m) })
}

/// Loads near 100% (the tolerance band and its edges) more often than far from it.
fn arb_load() -> impl Strategy<Value = u32> {
    prop_oneof![3 => 0u32..=400, 3 => 80u32..=125, 1 => prop::sample::select(vec![0u32, 90, 95, 100, 105, 110, 120, 130, 70])]
}

fn arb_timeline() -> impl Strategy<Value = Timeline> {
    let bounds = (1i32..=5, 0i32..=30).prop_flat_map(|(min, extra)| (Just(min), Just(min + extra), min..=min + extra));
    let metrics = prop::collection::vec(arb_target(), 1..=3);
    (bounds, metrics, prop::option::of(arb_rules(true)), prop::option::of(arb_rules(false)))
        .prop_flat_map(|((min, max, start), metrics, up, down)| {
            let n = metrics.len();
            let rounds = prop::collection::vec((1i64..=60, prop::collection::vec(arb_load(), n..=n)), 1..=40);
            (Just((min, max, start, metrics, up, down)), rounds)
        })
        .prop_map(|((min, max, start, metrics, up, down), rounds)| Timeline {
            spec: hpa::Spec {
                min,
                max,
                metrics,
                up: up.clone().unwrap_or_else(Rules::default_up),
                down: down.clone().unwrap_or_else(Rules::default_down),
            },
            up_given: up.is_some(),
            down_given: down.is_some(),
            start,
            rounds,
        })
}

proptest! {
    #![proptest_config(common::proptest_config(2000))]

    /// The heart of the contract: chained `decide` rounds are HPA, round by round.
    #[test]
    fn chained_decisions_reproduce_hpa_on_random_timelines(timeline in arb_timeline()) {
        if let Err(message) = check(&timeline, CONTRACT, false) {
            return Err(TestCaseError::fail(message));
        }
    }
}

proptest! {
    #![proptest_config(common::proptest_config(2000))]

    /// What the operator keeps in status (`engine::remember`, written as JSON and read back every
    /// round, as a restart would) must decide as the whole history does. An event of any age can
    /// decide which one HPA overwrites next, so remember keeps HPA's slots themselves.
    #[test]
    fn a_history_kept_by_remember_decides_like_the_whole_history(timeline in arb_timeline()) {
        if let Err(message) = check(&timeline, CONTRACT, true) {
            return Err(TestCaseError::fail(message));
        }
    }
}

/// A process that restarts before some rounds: status (the runs, read back from JSON) survives,
/// the memory of the previous round does not. Every round must decide as the whole per-round
/// history does, with one documented difference: the count recommended when the process stopped
/// counts as recommended until the first round of the new process (an entry of it at that round).
/// When the count is the same again that entry changes nothing; when it changes, the superseded
/// count is held at most that much longer than HPA would, never shorter.
fn check_restarts(timeline: &Timeline, restarts: &[bool]) -> Result<(), String> {
    let policy = policy_of(&timeline.trimtab_spec());
    let mut whole = History::default();
    let mut status = History::default();
    let mut last_round: Option<Timestamp> = None;
    let mut replicas = timeline.start;
    let mut now = 0i64;
    for (i, (step, load)) in timeline.rounds.iter().enumerate() {
        now += step;
        if restarts.get(i).copied().unwrap_or(false) {
            last_round = None;
            if let Some(open) = status.recommendations.last() {
                whole.recommendations.push(Recommendation::at(Time(at(now)), open.replicas));
            }
        }
        let usages: Vec<i64> =
            timeline.spec.metrics.iter().zip(load).map(|(&target, &pct)| Timeline::usage(target, pct, replicas)).collect();
        let obs = observations(&timeline.spec, &usages);
        let expected = engine::decide(&policy, &obs, &current(replicas), &whole, at(now));
        let recalled = engine::recall(&status, last_round, at(now));
        let decision = engine::decide(&policy, &obs, &current(replicas), &recalled, at(now));
        if decision.desired_replicas != expected.desired_replicas || decision.recommendation != expected.recommendation {
            return Err(format!(
                "round {i} (t={now}s, current {replicas}, usages {usages:?}): the whole history decides {} (recommendation {}), the restarted process {} (recommendation {})\nstatus: {}\nspec: {}",
                expected.desired_replicas,
                expected.recommendation,
                decision.desired_replicas,
                decision.recommendation,
                serde_json::to_string(&recalled).unwrap_or_default(),
                timeline.trimtab_spec()
            ));
        }
        let change = decision.desired_replicas - replicas;
        whole.recommendations.push(Recommendation::at(Time(at(now)), decision.recommendation));
        if change != 0 {
            whole.scale_events.push(ScaleEvent::applied(Time(at(now)), change));
        }
        status = engine::remember(&status, last_round, &policy, at(now), decision.recommendation, change);
        status = serde_json::from_value(serde_json::to_value(&status).expect("history serializes")).expect("history reads back");
        last_round = Some(at(now));
        replicas = decision.desired_replicas;
    }
    Ok(())
}

proptest! {
    #![proptest_config(common::proptest_config(1000))]

    /// A restart (status kept, memory lost) at any rounds decides as the whole history does, the
    /// count current at the restart held until the new process's first round.
    #[test]
    fn a_restarted_operator_decides_like_the_whole_history(
        timeline in arb_timeline(),
        restarts in prop::collection::vec(prop::bool::weighted(0.2), 40),
    ) {
        if let Err(message) = check_restarts(&timeline, &restarts) {
            return Err(TestCaseError::fail(message));
        }
    }
}

/// After a failover, the first time (seconds after it) the new leader changes the replicas, and the
/// change, within `horizon` seconds of rounds every second under a constant `load`, on a clock
/// `skew` seconds off the old leader's. `status` and `replicas` are what the old leader left.
fn first_change_after_failover(
    timeline: &Timeline,
    status: &History,
    replicas: i32,
    failover: i64,
    load: &[u32],
    skew: i64,
    horizon: i64,
) -> Option<(i64, i32)> {
    let policy = policy_of(&timeline.trimtab_spec());
    let mut status = status.clone();
    // A new process: nothing remembered of the rounds before.
    let mut last_round = None;
    for after in 1..=horizon {
        let now = at(failover + after + skew);
        let usages: Vec<i64> =
            timeline.spec.metrics.iter().zip(load).map(|(&target, &pct)| Timeline::usage(target, pct, replicas)).collect();
        let recalled = engine::recall(&status, last_round, now);
        let decision = engine::decide(&policy, &observations(&timeline.spec, &usages), &current(replicas), &recalled, now);
        let change = decision.desired_replicas - replicas;
        if change != 0 {
            return Some((after, change));
        }
        status = engine::remember(&status, last_round, &policy, now, decision.recommendation, 0);
        last_round = Some(now);
    }
    None
}

/// The rounds of `timeline` on one clock: the history status holds after them, and the replicas.
fn run_on_one_clock(timeline: &Timeline) -> (History, i32, i64) {
    let policy = policy_of(&timeline.trimtab_spec());
    let (mut status, mut last_round, mut replicas, mut now) = (History::default(), None, timeline.start, 0i64);
    for (step, load) in &timeline.rounds {
        now += step;
        let usages: Vec<i64> =
            timeline.spec.metrics.iter().zip(load).map(|(&target, &pct)| Timeline::usage(target, pct, replicas)).collect();
        let recalled = engine::recall(&status, last_round, at(now));
        let decision = engine::decide(&policy, &observations(&timeline.spec, &usages), &current(replicas), &recalled, at(now));
        let change = decision.desired_replicas - replicas;
        status = engine::remember(&status, last_round, &policy, at(now), decision.recommendation, change);
        last_round = Some(at(now));
        replicas = decision.desired_replicas;
    }
    (status, replicas, now)
}

/// R20: the windows are measured on the wall clock against times in status, so a new leader whose
/// clock is off by `skew` sees each window end up to `skew` early or late, and no more.
fn check_skewed_failover(timeline: &Timeline, load: &[u32], skew: i64, gap: i64) -> Result<(), String> {
    // Longer than every window and period a timeline can have, plus the skew.
    const HORIZON: i64 = 2_000;
    let (status, replicas, last) = run_on_one_clock(timeline);
    let failover = last + gap;
    let same_clock = first_change_after_failover(timeline, &status, replicas, failover, load, 0, HORIZON);
    let skewed = first_change_after_failover(timeline, &status, replicas, failover, load, skew, HORIZON);
    let explain = || {
        format!(
            "skew {skew:+}s, failover {gap}s after the last round, load {load:?}, {replicas} replicas: same clock {same_clock:?}, \
             skewed {skewed:?} (seconds after the failover, change)\nstatus: {}\nspec: {}",
            serde_json::to_string(&status).unwrap_or_default(),
            timeline.trimtab_spec()
        )
    };
    match (same_clock, skewed) {
        (Some((t, change)), Some((u, skewed_change))) => {
            if (u - t).abs() > skew.abs() {
                return Err(format!("the first change moved by {}s, more than the skew: {}", u - t, explain()));
            }
            if change.signum() != skewed_change.signum() {
                return Err(format!("the first change went the other way: {}", explain()));
            }
        }
        // One acts and the other does not within the horizon: only if it acts at the very end.
        (Some((t, _)), None) | (None, Some((t, _))) if t + skew.abs() < HORIZON => {
            return Err(format!("only one clock changes the replicas: {}", explain()));
        }
        _ => {}
    }
    Ok(())
}

proptest! {
    #![proptest_config(common::proptest_config(300))]

    /// R20, clock skew: a failover to a leader whose clock is up to 30 s off the old one's (either
    /// way) moves the next scale-down or step by at most the skew, and never turns its direction.
    #[test]
    fn a_failover_to_a_leader_whose_clock_is_off_by_30_s_moves_the_next_step_by_at_most_the_skew(
        timeline in arb_timeline(),
        load in prop::collection::vec(arb_load(), 3),
        skew in -30i64..=30,
        gap in 1i64..=20,
    ) {
        let load = &load[..timeline.spec.metrics.len()];
        if let Err(message) = check_skewed_failover(&timeline, load, skew, gap) {
            return Err(TestCaseError::fail(message));
        }
    }
}

/// A flat load: after the first round, rounds recommend the same count again and the history in
/// status is the same, byte for byte, so a quiet policy writes nothing; the one run it holds still
/// stabilizes a later drop for the whole window.
#[test]
fn a_flat_load_leaves_the_history_byte_identical_round_after_round() {
    let spec = hpa::Spec {
        min: 1,
        max: 20,
        metrics: vec![Target::AverageValue(1000)],
        up: Rules::default_up(),
        down: Rules::default_down(),
    };
    let mut rounds: Vec<(i64, Vec<u32>)> = (0..400).map(|_| (15, vec![100])).collect();
    rounds.extend((0..30).map(|_| (15, vec![40])));
    let t = Timeline { spec, up_given: false, down_given: false, start: 6, rounds };
    check(&t, CONTRACT, true).unwrap();
    let policy = policy_of(&t.trimtab_spec());
    let mut history = History::default();
    let mut written = Vec::new();
    let mut last_round = None;
    for i in 0..400 {
        let now = at(15 * (i + 1));
        let usages = [Timeline::usage(Target::AverageValue(1000), 100, 6)];
        let recalled = engine::recall(&history, last_round, now);
        let decision = engine::decide(&policy, &observations(&t.spec, &usages), &current(6), &recalled, now);
        assert_eq!(decision.desired_replicas, 6);
        history = engine::remember(&history, last_round, &policy, now, decision.recommendation, decision.desired_replicas - 6);
        last_round = Some(now);
        written.push(serde_json::to_string(&history).expect("history serializes"));
    }
    assert!(written.iter().all(|w| *w == written[0]), "the history changed during a flat load: {:?}", written.last());
    assert_eq!(history.recommendations.len(), 1);
}

// ---- Fixed timelines ----

fn timeline(spec: hpa::Spec, start: i32, rounds: &[(i64, u32)]) -> Timeline {
    Timeline { spec, up_given: true, down_given: true, start, rounds: rounds.iter().map(|&(s, l)| (s, vec![l])).collect() }
}

fn rules(window: i64, select: Select, policies: &[(Kind, i32, i64)]) -> Rules {
    Rules {
        window,
        select,
        policies: policies.iter().map(|&(kind, value, period)| RatePolicy { kind, value, period }).collect(),
        tolerance: None,
    }
}

/// A scale-up in steps, then a scale-down that the scale-up events of the last ten minutes slow,
/// where HPA has already overwritten the older of those events: each +4 finds the previous one
/// older than the 15 s scale-up period and writes over it, so the 600 s scale-down period sees only
/// the last +4 and starts at 22 − 4 = 18, not 10.
#[test]
fn a_scale_down_limit_counts_only_the_scale_up_events_hpa_still_remembers() {
    let spec = hpa::Spec {
        min: 1,
        max: 100,
        metrics: vec![Target::AverageValue(1000)],
        up: rules(0, Select::Max, &[(Kind::Pods, 4, 15)]),
        down: rules(0, Select::Max, &[(Kind::Percent, 10, 600)]),
    };
    let t = timeline(spec, 10, &[(20, 1000), (20, 1000), (20, 1000), (20, 30), (20, 30)]);
    let desired = |rounds: &[Round]| rounds.iter().map(|r| r.hpa.desired).collect::<Vec<_>>();
    assert_eq!(desired(&run(&t, CONTRACT)), vec![14, 18, 22, 16, 16], "HPA: 18 × 90% = 16");
    let every_event = Fidelity { reuse_outdated_events: false, ..CONTRACT };
    // The run stops at the first round where the model and Trimtab part.
    assert_eq!(desired(&run(&t, every_event)), vec![14, 18, 22, 9], "summing every event: 10 × 90% = 9");
    check(&t, CONTRACT, false).unwrap();
}

/// Found by the random timelines: a Value objective flapping between 111% and 0% at max 2, with a
/// one-pod-per-150-s scale-down policy. HPA has overwritten the first two +1 events by the last
/// round, so its period starts at 2 − 1 + 2 = 3 and it holds at 2.
#[test]
fn flapping_load_is_limited_by_the_scale_ups_hpa_remembers() {
    let spec = hpa::Spec {
        min: 1,
        max: 2,
        metrics: vec![Target::Value(2000)],
        up: Rules::default_up(),
        down: rules(15, Select::Max, &[(Kind::Pods, 1, 150)]),
    };
    let t = Timeline {
        spec,
        up_given: false,
        down_given: true,
        start: 1,
        rounds: [(1, 111), (15, 0), (1, 111), (15, 0), (1, 111), (15, 0)].iter().map(|&(s, l)| (s, vec![l])).collect(),
    };
    let rounds = run(&t, CONTRACT);
    assert_eq!(rounds.iter().map(|r| r.trimtab_desired).collect::<Vec<_>>(), vec![2, 1, 2, 1, 2, 2]);
    check(&t, CONTRACT, false).unwrap();
}

/// A day of load flapping every round, kept by `engine::remember`: status stays as small as HPA's own
/// lists. Recommendations cover the longest stabilization window; scale-event slots per direction
/// at most the events one longest period holds, plus one.
#[test]
fn a_history_kept_for_a_day_of_flapping_stays_as_small_as_hpas_lists() {
    let spec = hpa::Spec {
        min: 1,
        max: 50,
        metrics: vec![Target::AverageValue(1000)],
        up: rules(0, Select::Max, &[(Kind::Pods, 4, 60)]),
        down: rules(120, Select::Max, &[(Kind::Percent, 50, 300)]),
    };
    let t = Timeline {
        spec,
        up_given: true,
        down_given: true,
        start: 5,
        rounds: (0..5760).map(|i| (15, vec![if i % 4 < 2 { 300 } else { 20 }])).collect(),
    };
    check(&t, CONTRACT, true).unwrap();
    let policy = policy_of(&t.trimtab_spec());
    let mut history = History::default();
    let mut replicas = t.start;
    for (i, (_, load)) in t.rounds.iter().enumerate() {
        let now = 15 * (i as i64 + 1);
        let usages = [Timeline::usage(Target::AverageValue(1000), load[0], replicas)];
        let recalled = engine::recall(&history, Some(at(now - 15)), at(now));
        let decision = engine::decide(&policy, &observations(&t.spec, &usages), &current(replicas), &recalled, at(now));
        history = engine::remember(
            &history,
            Some(at(now - 15)),
            &policy,
            at(now),
            decision.recommendation,
            decision.desired_replicas - replicas,
        );
        replicas = decision.desired_replicas;
    }
    assert!(history.recommendations.len() <= 120 / 15, "{} recommendations", history.recommendations.len());
    let ups = history.scale_events.iter().filter(|e| e.change > 0).count();
    let downs = history.scale_events.iter().filter(|e| e.change < 0).count();
    assert!(ups <= 60 / 15 + 1 && downs <= 300 / 15 + 1, "{ups} scale-up and {downs} scale-down slots");
}

/// HPA's first reconcile of an HPA records the current count as a recommendation
/// (recordInitialRecommendation); with the default 300 s scale-down window that holds the first
/// scale-down for five minutes. A history that starts empty cannot say so: Trimtab scales down at
/// once. Documented here rather than hidden; `CONTRACT` leaves the seed out.
#[test]
fn hpa_seeds_its_first_round_with_the_current_count_which_an_empty_history_cannot_express() {
    let spec = hpa::Spec {
        min: 1,
        max: 20,
        metrics: vec![Target::AverageValue(1000)],
        up: Rules::default_up(),
        down: Rules::default_down(),
    };
    let t = timeline(spec, 10, &[(15, 50)]);
    let seeded = run(&t, Fidelity { seed_initial_recommendation: true, ..CONTRACT });
    assert_eq!(seeded[0].hpa.desired, 10, "HPA holds: its seed is in the scale-down window");
    assert_eq!(seeded[0].trimtab_desired, 5, "Trimtab, with an empty history, scales down at once");
    check(&t, CONTRACT, true).unwrap();
}

// ---- The binary, end to end ----

/// One round through `trimtab decide -f -`.
fn decide_cli(situation: &Value) -> Value {
    let mut child = Command::new(env!("CARGO_BIN_EXE_trimtab"))
        .args(["decide", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("trimtab runs");
    child.stdin.take().expect("stdin").write_all(situation.to_string().as_bytes()).expect("write the situation");
    let output = child.wait_with_output().expect("trimtab finishes");
    assert!(output.status.success(), "trimtab decide failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("one JSON object on stdout")
}

fn rfc3339(secs: i64) -> String {
    let t: Timestamp = at(secs);
    t.to_string()
}

/// A burst and its end, through the binary: the output's `recommendation` and the applied change
/// go into the next situation's history, and every round matches the model.
#[test]
fn the_decide_binary_chained_over_rounds_reproduces_hpa() {
    let spec = hpa::Spec {
        min: 2,
        max: 30,
        metrics: vec![Target::AverageValue(80_000), Target::Value(250)],
        up: Rules {
            window: 30,
            select: Select::Max,
            policies: vec![
                RatePolicy { kind: Kind::Pods, value: 2, period: 30 },
                RatePolicy { kind: Kind::Percent, value: 50, period: 60 },
            ],
            tolerance: Some("0.05".into()),
        },
        down: Rules {
            window: 60,
            select: Select::Min,
            policies: vec![
                RatePolicy { kind: Kind::Pods, value: 3, period: 45 },
                RatePolicy { kind: Kind::Percent, value: 20, period: 30 },
            ],
            tolerance: None,
        },
    };
    let t = Timeline {
        spec: spec.clone(),
        up_given: true,
        down_given: true,
        start: 4,
        rounds: vec![
            (15, vec![300, 100]),
            (15, vec![300, 100]),
            (15, vec![260, 180]),
            (15, vec![200, 100]),
            (20, vec![120, 100]),
            (15, vec![40, 60]),
            (15, vec![40, 60]),
            (30, vec![40, 60]),
            (30, vec![40, 60]),
            (45, vec![40, 60]),
            (60, vec![102, 98]),
        ],
    };
    let policy_object = json!({
        "apiVersion": "trimtab.dev/v1alpha1",
        "kind": "ScalingPolicy",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": t.trimtab_spec(),
    });
    let mut model = hpa::Controller::new(CONTRACT);
    let mut recommendations: Vec<Value> = Vec::new();
    let mut events: Vec<Value> = Vec::new();
    let mut replicas = t.start;
    let mut now = 0;
    let mut moved = 0;
    for (step, load) in &t.rounds {
        now += step;
        let usages: Vec<i64> =
            spec.metrics.iter().zip(load).map(|(&target, &pct)| Timeline::usage(target, pct, replicas)).collect();
        let observations: serde_json::Map<String, Value> =
            usages.iter().enumerate().map(|(i, milli)| (format!("m{i}"), json!({"value": format!("{milli}m")}))).collect();
        let situation = json!({
            "now": rfc3339(now),
            "policy": policy_object,
            "currentReplicas": replicas,
            "observations": observations,
            "history": {"recommendations": recommendations, "scaleEvents": events},
        });
        let output = decide_cli(&situation);
        let expected = model.reconcile(&spec, &usages, replicas, now);
        let desired = output["desiredReplicas"].as_i64().expect("desiredReplicas") as i32;
        let recommendation = output["recommendation"].as_i64().expect("recommendation") as i32;
        assert_eq!(desired, expected.desired, "t={now}s, {replicas} replicas, usages {usages:?}: {output}");
        assert_eq!(Some(recommendation), expected.recommendation, "t={now}s: {output}");
        recommendations.push(json!({"time": rfc3339(now), "replicas": recommendation}));
        if desired != replicas {
            events.push(json!({"time": rfc3339(now), "change": desired - replicas}));
            moved += 1;
        }
        replicas = desired;
    }
    assert!(moved >= 4, "the scenario should scale both ways several times, moved {moved} times");
}
