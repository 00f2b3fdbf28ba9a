//! How many decisions per second: one `decide` for a three-objective policy with a budget, spot
//! placement and a full five-minute history. `just bench` runs it.

use criterion::{Criterion, criterion_group, criterion_main};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use trimtab::api::{History, Recommendation, ScaleEvent, ScalingPolicySpec};
use trimtab::engine::{Current, Observations, Policy, Pricing, Sample, decide};

fn policy() -> Policy {
    let spec: ScalingPolicySpec = serde_json::from_value(serde_json::json!({
        "targetRef": {"kind": "Deployment", "name": "checkout"},
        "minReplicas": 2, "maxReplicas": 40,
        "objectives": [
            {"name": "p99-latency", "kind": "Ceiling", "query": "q1", "target": "300m"},
            {"name": "error-rate", "kind": "Ceiling", "query": "q2", "target": "0.01"},
            {"name": "rps-per-replica", "kind": "AverageValue", "query": "q3", "target": "50"}
        ],
        "budget": {"maxCostPerHour": "3.50"},
        "placement": {"spotPool": "spot", "onDemandPool": "on-demand", "onDemandBase": 2, "spotPercentage": 70}
    }))
    .expect("bench policy is valid");
    Policy::from_spec(&spec).expect("bench policy validates")
}

fn bench_decide(c: &mut Criterion) {
    let policy = policy();
    let now: Timestamp = "2026-01-01T00:10:00Z".parse().expect("timestamp");
    // Twenty rounds of history, 15 s apart: what a five-minute scale-down window holds.
    let history = History {
        recommendations: (1..=20)
            .map(|i| Recommendation::at(Time(now - SignedDuration::from_secs(15 * i)), 8 + (i % 3) as i32))
            .collect(),
        scale_events: vec![ScaleEvent::applied(Time(now - SignedDuration::from_secs(10)), 2)],
    };
    let observations: Observations = [
        ("p99-latency".to_owned(), Sample::Value(0.41)),
        ("error-rate".to_owned(), Sample::Value(0.002)),
        ("rps-per-replica".to_owned(), Sample::Value(612.0)),
    ]
    .into_iter()
    .collect();
    let current = Current {
        replicas: 9,
        ready_replicas: Some(9),
        consecutive_failures: 0,
        spot_healthy: true,
        pricing: Pricing { on_demand: Some(0.0222), spot: Some(0.0066) },
    };
    c.bench_function("decide: 3 objectives, budget, placement, 20-round history", |b| {
        b.iter(|| decide(std::hint::black_box(&policy), &observations, &current, &history, now))
    });
}

criterion_group!(benches, bench_decide);
criterion_main!(benches);
