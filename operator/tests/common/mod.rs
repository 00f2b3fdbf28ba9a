//! Builders shared by the integration tests: policies from JSON, histories from (seconds, value)
//! pairs, and one `decide` call with a single AverageValue objective whose value forces a chosen
//! unstabilized recommendation.
//!
//! Times are seconds from [`BASE`]; `now` is usually [`NOW`].

#![allow(dead_code)]

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use proptest::test_runner::{Config as ProptestConfig, RngSeed};
use serde_json::{Value, json};
use trimtab::api::{History, Recommendation, ScaleEvent, ScalingPolicySpec};
use trimtab::engine::{self, Current, Decision, Observations, Policy, Pricing, Sample};

/// The seed every property test runs on unless `PROPTEST_RNG_SEED` says otherwise, so that one
/// commit gives one result in `just test`; `just fuzz` explores with random seeds.
pub const PROPTEST_SEED: u64 = 20_261_201;

/// Proptest's configuration for a property: `default_cases` cases from [`PROPTEST_SEED`], unless
/// `PROPTEST_CASES` or `PROPTEST_RNG_SEED` is set. The seed goes to stderr, which the test harness
/// shows when the property fails.
pub fn proptest_config(default_cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig::default(); // reads PROPTEST_* from the environment
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = default_cases;
    }
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = RngSeed::Fixed(PROPTEST_SEED);
    }
    eprintln!("proptest: {} cases, seed {} (PROPTEST_RNG_SEED={} reproduces it)", config.cases, config.rng_seed, config.rng_seed);
    config
}

/// The epoch of every test timeline.
pub const BASE: &str = "2026-01-01T00:00:00Z";
/// A `now` far enough from [`BASE`] that every window and period of the tests fits before it.
pub const NOW: i64 = 10_000;

/// The timestamp `secs` seconds after [`BASE`] (negative: before).
pub fn at(secs: i64) -> Timestamp {
    let base: Timestamp = BASE.parse().expect("BASE is a timestamp");
    base + jiff::SignedDuration::from_secs(secs)
}

/// `secs` seconds before [`NOW`].
pub fn ago(secs: i64) -> i64 {
    NOW - secs
}

/// A spec with one objective `load` and the given fields merged over it.
pub fn spec_json(min: i32, max: i32, objective: Value, extra: Value) -> Value {
    let mut spec = json!({
        "targetRef": {"kind": "Deployment", "name": "web"},
        "minReplicas": min,
        "maxReplicas": max,
        "objectives": [objective],
    });
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        for (key, value) in extra {
            spec.insert(key.clone(), value.clone());
        }
    }
    spec
}

/// An AverageValue objective named `load` with the given target.
pub fn average_value(target: &str) -> Value {
    json!({"name": "load", "query": "sum(load)", "kind": "AverageValue", "target": target})
}

/// A Value objective named `load` with the given target.
pub fn value_objective(target: &str) -> Value {
    json!({"name": "load", "query": "sum(load)", "kind": "Value", "target": target})
}

/// Parses a spec from JSON and checks it as the operator does.
pub fn policy(spec: Value) -> Policy {
    let spec: ScalingPolicySpec = serde_json::from_value(spec.clone()).unwrap_or_else(|e| panic!("spec {spec}: {e}"));
    Policy::from_spec(&spec).unwrap_or_else(|e| panic!("spec {spec:?}: {e}"))
}

/// One direction's rules: window, selectPolicy, policies as (type, value, period).
pub fn rules(window: i32, select: &str, policies: &[(&str, i32, i32)]) -> Value {
    let policies: Vec<Value> =
        policies.iter().map(|(kind, value, period)| json!({"type": kind, "value": value, "periodSeconds": period})).collect();
    json!({"stabilizationWindowSeconds": window, "selectPolicy": select, "policies": policies})
}

/// Recommendations as (seconds after BASE, replicas) and scale events as (seconds after BASE,
/// signed change).
pub fn history(recommendations: &[(i64, i32)], events: &[(i64, i32)]) -> History {
    History {
        recommendations: recommendations.iter().map(|&(t, replicas)| Recommendation::at(Time(at(t)), replicas)).collect(),
        scale_events: events.iter().map(|&(t, change)| ScaleEvent::applied(Time(at(t)), change)).collect(),
    }
}

pub fn current(replicas: i32) -> Current {
    Current { replicas, ready_replicas: None, consecutive_failures: 0, spot_healthy: true, pricing: Pricing::default() }
}

/// One observation for the objective `load`.
pub fn observe(value: f64) -> Observations {
    let mut observations = Observations::new();
    observations.insert("load".to_owned(), Sample::Value(value));
    observations
}

/// Decides with the objective `load` at `value`.
pub fn decide(policy: &Policy, value: f64, replicas: i32, history: &History, now: i64) -> Decision {
    engine::decide(policy, &observe(value), &current(replicas), history, at(now))
}

/// Decides with an AverageValue objective of target 1 whose total is `recommendation`, so the
/// unstabilized recommendation is exactly `recommendation` whenever it differs from `replicas` by
/// more than the tolerance (the tests keep tolerances at 0 where it matters, and assert it).
pub fn decide_recommending(policy: &Policy, recommendation: i32, replicas: i32, history: &History, now: i64) -> Decision {
    let decision = decide(policy, f64::from(recommendation), replicas, history, now);
    assert_eq!(
        decision.recommendation, recommendation,
        "the objective should recommend {recommendation} at {replicas} replicas (is it within the tolerance band?)"
    );
    decision
}
