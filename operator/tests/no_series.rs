//! What "no series" and NaN mean, through the pure engine: by default missing data (never a reason
//! to scale down); with an objective's `whenEmpty: Zero`, the value 0, so a healthy service (no
//! 5xx series yet) and an idle one (a NaN quantile at zero traffic) can scale down to minReplicas.
//! The flagship example is decided as it is shipped.

mod common;

use std::path::Path;

use trimtab::api::{History, Reason, ScalingPolicy};
use trimtab::cli::input::{documents, from_value_strict};
use trimtab::engine::{self, Absence, Current, Decision, Observations, Policy, Pricing, Sample};

use common::{NOW, at};

/// The service: ten replicas, latency met with margin, throughput wanting one replica.
const CURRENT: i32 = 10;

fn example_policy(file: &str) -> Policy {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples").join(file);
    let name = path.display().to_string();
    let text = std::fs::read_to_string(&path).expect("the example is readable");
    let document = documents(&name, &text).expect("YAML").into_iter().next().expect("one document");
    let policy: ScalingPolicy = from_value_strict(&name, document).expect("a ScalingPolicy");
    Policy::from_spec(&policy.spec).expect("a valid policy")
}

/// The flagship example's objectives, with each objective's `whenEmpty` removed (the default).
fn example_without_when_empty() -> Policy {
    let mut policy = example_policy("web-service-slo.yaml");
    for objective in &mut policy.objectives {
        objective.when_empty = Default::default();
    }
    policy
}

fn decide(policy: &Policy, samples: &[(&str, Sample)]) -> Decision {
    let observations: Observations = samples.iter().map(|(name, sample)| ((*name).to_owned(), *sample)).collect();
    let current = Current {
        replicas: CURRENT,
        ready_replicas: None,
        consecutive_failures: 0,
        spot_healthy: true,
        pricing: Pricing::default(),
    };
    engine::decide(policy, &observations, &current, &History::default(), at(NOW))
}

fn healthy_without_5xx_series(error_rate: Sample) -> [(&'static str, Sample); 3] {
    [("p99-latency", Sample::Value(0.1)), ("error-rate", error_rate), ("rps-per-replica", Sample::Value(40.0))]
}

#[test]
fn an_error_rate_with_no_series_holds_by_default_never_scaling_down() {
    let decision = decide(&example_without_when_empty(), &healthy_without_5xx_series(Sample::Absent(Absence::Empty)));
    assert_eq!(decision.desired_replicas, CURRENT, "{:?}", decision.reasons);
    assert_eq!(decision.reason, Reason::PartialMetrics);
}

#[test]
fn the_flagship_example_scales_a_healthy_service_down() {
    // `(... or vector(0)) / ...`: a service without a single 5xx has an error rate of 0.
    let decision = decide(&example_policy("web-service-slo.yaml"), &healthy_without_5xx_series(Sample::Value(0.0)));
    assert_eq!(decision.reason, Reason::ObjectivesMet, "{:?}", decision.reasons);
    assert_eq!(decision.desired_replicas, 2, "40 rps at 50 per replica is 1, so minReplicas: {:?}", decision.reasons);
}

#[test]
fn an_error_rate_with_no_series_reads_zero_when_empty_is_zero() {
    let decision = decide(&example_policy("web-service-slo.yaml"), &healthy_without_5xx_series(Sample::Absent(Absence::Empty)));
    assert_eq!(decision.desired_replicas, 2, "{:?}", decision.reasons);
    let error_rate = decision.objectives.iter().find(|o| o.name == "error-rate").expect("error-rate");
    assert_eq!((error_rate.value, error_rate.read_as_zero), (Some(0.0), Some(Absence::Empty)));
    let met = decision.message_for(Reason::ObjectivesMet).unwrap_or_default();
    assert!(met.contains("error-rate 0 (no series read as 0: whenEmpty Zero)"), "{met}");
}

fn idle() -> [(&'static str, Sample); 3] {
    // No requests: histogram_quantile over zero rates is NaN, so is 0/0; the request rate is 0.
    [
        ("p99-latency", Sample::Absent(Absence::NaN)),
        ("error-rate", Sample::Absent(Absence::NaN)),
        ("rps-per-replica", Sample::Value(0.0)),
    ]
}

#[test]
fn an_idle_service_holds_by_default() {
    let decision = decide(&example_without_when_empty(), &idle());
    assert_eq!(decision.desired_replicas, CURRENT, "{:?}", decision.reasons);
    assert_eq!(decision.reason, Reason::PartialMetrics);
}

#[test]
fn an_idle_service_scales_to_min_replicas_when_its_objectives_read_nan_as_zero() {
    let decision = decide(&example_policy("web-service-slo.yaml"), &idle());
    assert_eq!(decision.desired_replicas, 2, "{:?}", decision.reasons);
    assert_eq!(decision.limited_by, Reason::TooFewReplicas, "{:?}", decision.reasons);
    let latency = decision.objectives.iter().find(|o| o.name == "p99-latency").expect("p99-latency");
    assert_eq!(latency.read_as_zero, Some(Absence::NaN));
}

#[test]
fn a_broken_scrape_still_holds_because_the_throughput_objective_keeps_missing_data() {
    // Every series gone: the opted-in objectives read 0, the throughput one is missing data.
    let gone = [
        ("p99-latency", Sample::Absent(Absence::Empty)),
        ("error-rate", Sample::Absent(Absence::Empty)),
        ("rps-per-replica", Sample::Absent(Absence::Empty)),
    ];
    let decision = decide(&example_policy("web-service-slo.yaml"), &gone);
    assert_eq!(decision.desired_replicas, CURRENT, "{:?}", decision.reasons);
    assert_eq!(decision.reason, Reason::PartialMetrics);
}

#[test]
fn infinity_stale_and_unreachable_are_missing_data_even_when_empty_reads_zero() {
    let policy = example_policy("web-service-slo.yaml");
    for absence in [Absence::Infinite, Absence::Stale, Absence::MultipleSeries, Absence::Unreachable, Absence::Timeout] {
        let decision = decide(&policy, &healthy_without_5xx_series(Sample::Absent(absence)));
        assert_eq!(decision.desired_replicas, CURRENT, "{absence:?}: {:?}", decision.reasons);
        let error_rate = decision.objectives.iter().find(|o| o.name == "error-rate").expect("error-rate");
        assert_eq!((error_rate.value, error_rate.absent), (None, Some(absence)));
    }
}
