//! How long a month of trace takes to simulate: 45,000 minutes of a daily cycle with noise, through
//! the engine with a three-objective policy on spot. One decision a minute (interval 60s, 45,000
//! rounds) and one every 15 s (180,000 rounds). `cargo bench -p trimtab --bench simulate` runs it;
//! the target is well under a second per policy.

use criterion::{Criterion, criterion_group, criterion_main};
use trimtab::engine::{Policy, Pricing};
use trimtab::sim::model::{Model, SplitMix64};
use trimtab::sim::run::{Controller, Scenario, simulate};
use trimtab::sim::signals::feeds;

const MINUTES: usize = 45_000;

fn policy(interval: &str) -> Policy {
    let spec = serde_json::from_value(serde_json::json!({
        "targetRef": {"kind": "Deployment", "name": "web"},
        "minReplicas": 2, "maxReplicas": 60, "interval": interval,
        "objectives": [
            {"name": "p99-latency", "kind": "Ceiling", "query": "q", "target": "1"},
            {"name": "error-rate", "kind": "Ceiling", "query": "q", "target": "0.01"},
            {"name": "rps-per-replica", "kind": "AverageValue", "query": "q", "target": "35"}
        ],
        "placement": {"spotPool": "spot", "onDemandPool": "on-demand", "onDemandBase": 2, "spotPercentage": 70}
    }))
    .expect("bench policy parses");
    Policy::from_spec(&spec).expect("bench policy validates")
}

/// A daily cycle between 100 and 900 rps with ±15% noise per minute.
fn load() -> Vec<f64> {
    let mut rng = SplitMix64::new(42);
    (0..MINUTES)
        .map(|m| {
            let day = (m % 1440) as f64 / 1440.0 * std::f64::consts::TAU;
            (500.0 - 400.0 * day.cos()) * (0.85 + 0.3 * rng.next_f64())
        })
        .collect()
}

fn bench_simulate(c: &mut Criterion) {
    let load = load();
    let model = Model::default();
    let interruptions = model.interruptions.times(MINUTES as f64 * 60.0, 1);
    let scenario = Scenario {
        load_rps: &load,
        first_minute: 0,
        model: &model,
        pricing: Pricing { spot: Some(0.0066), on_demand: Some(0.0222) },
        interruptions: &interruptions,
    };
    let mut group = c.benchmark_group("simulate 45,000 minutes");
    group.sample_size(10);
    for (name, interval) in [("45,000 rounds (interval 60s)", "60s"), ("180,000 rounds (interval 15s)", "15s")] {
        let policy = policy(interval);
        let slo = feeds(&policy, &[]).expect("signals");
        let controller = Controller::Engine { policy, feeds: slo.clone() };
        group.bench_function(name, |b| b.iter(|| simulate(std::hint::black_box(&scenario), &controller, &slo, 10, None)));
    }
    group.finish();
}

criterion_group!(benches, bench_simulate);
criterion_main!(benches);
