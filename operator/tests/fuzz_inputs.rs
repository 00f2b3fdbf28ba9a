//! What tenants and Prometheus send, fuzzed: the situation `trimtab decide` reads, the Prometheus
//! answers the client parses, and the AdmissionReview bodies the webhook answers. Each gets
//! arbitrary bytes and mutations of a valid document (fields dropped or replaced by other types,
//! huge numbers, long strings, deep nesting). None may panic; each returns an error or a result
//! that holds together. `just test` runs a few hundred cases on a fixed seed, `just fuzz` many on
//! a random one.

mod common;

use std::sync::Arc;

use proptest::prelude::*;
use serde_json::{Value, json};
use trimtab::controller::caches::Caches;
use trimtab::engine::{Absence, Sample};
use trimtab::metrics::{QueryOutcome, RangeOutcome, classify, parse_range};
use trimtab::placement::webhook::{WebhookState, admit};

// ---- Mutations of a valid document ----

/// Something put where a field was: every JSON type, and the values that break naive code.
fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop::num::f64::NORMAL.prop_map(Value::from),
        Just(json!(1e308)),
        Just(json!(-1e308)),
        Just(json!(u64::MAX)),
        Just(json!(i64::MIN)),
        Just(json!(-0.0)),
        "\\PC{0,24}".prop_map(Value::from),
        prop_oneof![
            Just("NaN"),
            Just("+Inf"),
            Just("-Inf"),
            Just("1e400"),
            Just("-1"),
            Just("9999999999999999999999"),
            Just("0.000000000000000000001"),
            Just("500m"),
            Just("2026-13-45T99:99:99Z"),
            Just("")
        ]
        .prop_map(Value::from),
        (1usize..20_000).prop_map(|n| Value::from("9".repeat(n))),
        (1usize..400).prop_map(|depth| (0..depth).fold(json!(1), |inner, _| json!([inner]))),
        (1usize..400).prop_map(|depth| (0..depth).fold(json!(1), |inner, _| json!({"a": inner}))),
        prop::collection::vec(any::<i32>().prop_map(Value::from), 0..200).prop_map(Value::from),
    ]
}

/// One change at one place of the document.
#[derive(Debug, Clone)]
enum Mutation {
    Remove,
    Replace(Value),
    /// A copy of the field's value under another key beside it (or appended, in an array).
    Duplicate(String),
    /// The value, wrapped in an array.
    Wrap,
}

fn mutation() -> impl Strategy<Value = (prop::sample::Index, Mutation)> {
    let kind = prop_oneof![
        2 => Just(Mutation::Remove),
        5 => leaf().prop_map(Mutation::Replace),
        1 => "[a-zA-Z]{1,12}".prop_map(Mutation::Duplicate),
        1 => Just(Mutation::Wrap),
    ];
    (any::<prop::sample::Index>(), kind)
}

/// Every JSON pointer of the document, the root included.
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                pointers(child, format!("{at}/{}", key.replace('~', "~0").replace('/', "~1")), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                pointers(child, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

fn apply(document: &mut Value, (index, mutation): &(prop::sample::Index, Mutation)) {
    let mut all = Vec::new();
    pointers(document, String::new(), &mut all);
    let pointer = index.get(&all).clone();
    let (parent, last) = match pointer.rsplit_once('/') {
        Some((parent, last)) => (parent.to_owned(), last.replace("~1", "/").replace("~0", "~")),
        None => (String::new(), String::new()),
    };
    match mutation {
        Mutation::Replace(value) => {
            if let Some(target) = document.pointer_mut(&pointer) {
                *target = value.clone();
            }
        }
        Mutation::Wrap => {
            if let Some(target) = document.pointer_mut(&pointer) {
                *target = json!([target.take()]);
            }
        }
        Mutation::Remove | Mutation::Duplicate(_) => {
            let copy = document.pointer(&pointer).cloned();
            match (document.pointer_mut(&parent), mutation, copy) {
                (Some(Value::Object(map)), Mutation::Remove, _) => {
                    map.remove(&last);
                }
                (Some(Value::Array(items)), Mutation::Remove, _) => {
                    if let Ok(i) = last.parse::<usize>()
                        && i < items.len()
                    {
                        items.remove(i);
                    }
                }
                (Some(Value::Object(map)), Mutation::Duplicate(key), Some(copy)) => {
                    map.insert(key.clone(), copy);
                }
                (Some(Value::Array(items)), Mutation::Duplicate(_), Some(copy)) => items.push(copy),
                _ => {}
            }
        }
    }
}

/// A valid document with up to `max` mutations applied.
fn mutated(valid: Value, max: usize) -> impl Strategy<Value = Value> {
    prop::collection::vec(mutation(), 1..=max).prop_map(move |mutations| {
        let mut document = valid.clone();
        for m in &mutations {
            apply(&mut document, m);
        }
        document
    })
}

/// Arbitrary bytes, and valid text with arbitrary bytes spliced in.
fn bytes_near(valid: String) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..2048),
        (any::<prop::sample::Index>(), prop::collection::vec(any::<u8>(), 0..32), 0usize..16).prop_map(
            move |(at, insert, cut)| {
                let mut bytes = valid.clone().into_bytes();
                let at = at.index(bytes.len() + 1);
                let end = (at + cut).min(bytes.len());
                bytes.splice(at..end, insert);
                bytes
            }
        ),
    ]
}

// ---- The situation `trimtab decide` reads ----

fn situation() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/situations/latency-breach.yaml");
    let text = std::fs::read_to_string(path).expect("the example situation");
    serde_saphyr::from_str(&text).expect("the example situation is YAML")
}

fn decide_holds_together(text: &str) {
    if let Ok(decision) = trimtab::cli::decide::decide_text("fuzz", text) {
        assert!(decision.desired_replicas >= 0, "{}", decision.desired_replicas);
        serde_json::to_string(&trimtab::cli::decide::output(&decision)).expect("the decision serializes");
    }
}

// ---- The Prometheus answers ----

fn answers() -> Vec<Value> {
    vec![
        json!({"status": "success", "data": {"resultType": "vector", "result": [{"metric": {"a": "1"}, "value": [1_700_000_000.5, "0.412"]}]}}),
        json!({"status": "success", "data": {"resultType": "scalar", "result": [1_700_000_000, "3"]}}),
        json!({"status": "success", "data": {"resultType": "matrix", "result": [{"metric": {}, "values": [[1_700_000_040, "10"], [1_700_000_100, "NaN"]]}]}}),
        json!({"status": "error", "errorType": "bad_data", "error": "parse error"}),
    ]
}

fn sample_holds_together(outcome: &QueryOutcome) {
    if let QueryOutcome::Sample(Sample::Value(v)) = outcome {
        assert!(v.is_finite() && *v >= 0.0, "a value is a finite non-negative number: {v}");
    }
}

fn range_holds_together(outcome: &RangeOutcome) {
    if let RangeOutcome::Minutes(values) = outcome {
        assert!(values.values().all(|v| v.is_finite()), "{values:?}");
    }
}

fn statuses() -> impl Strategy<Value = reqwest::StatusCode> {
    prop_oneof![Just(200u16), Just(400), Just(422), Just(503), 100u16..600]
        .prop_map(|s| reqwest::StatusCode::from_u16(s).unwrap_or(reqwest::StatusCode::OK))
}

// ---- The AdmissionReview the webhook answers ----

fn review() -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "3f1d", "operation": "CREATE", "namespace": "shop", "userInfo": {"username": "system:serviceaccount"},
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "object": {
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {
                    "name": "web-7d4b9-x2", "namespace": "shop", "labels": {"app": "web", "pod-template-hash": "7d4b9"},
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d4b9", "uid": "u", "controller": true}]
                },
                "spec": {
                    "containers": [{"name": "web", "image": "web:1", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}],
                    "tolerations": [{"key": "spot", "operator": "Exists"}],
                    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": []}]}}}
                }
            }
        }
    })
}

fn webhook_state() -> Arc<WebhookState> {
    static STATE: std::sync::OnceLock<Arc<WebhookState>> = std::sync::OnceLock::new();
    STATE.get_or_init(|| Arc::new(WebhookState::new(Caches::empty(), Default::default()))).clone()
}

fn admission_holds_together(body: &[u8]) {
    if let Ok(review) = admit(&webhook_state(), body) {
        let response = review.response.expect("an answered review carries a response");
        serde_json::to_vec(&response).expect("the response serializes");
    }
}

fn a_pool() -> trimtab::api::CapacityPool {
    serde_json::from_value(json!({
        "apiVersion": "trimtab.dev/v1alpha1", "kind": "CapacityPool", "metadata": {"name": "spot"},
        "spec": {"capacityType": "Spot", "price": {"cpuCoreHour": "0.01", "memoryGiBHour": "0.001"},
                 "nodeSelector": {"pool": "spot"}, "tolerations": [{"key": "spot", "operator": "Exists", "effect": "NoSchedule"}]}
    }))
    .expect("a pool")
}

proptest! {
    #![proptest_config(common::proptest_config(256))]

    #[test]
    fn a_mutated_situation_is_decided_or_refused_never_a_panic(document in mutated(situation(), 6)) {
        decide_holds_together(&document.to_string());
    }

    #[test]
    fn arbitrary_bytes_as_a_situation_are_refused_never_a_panic(bytes in bytes_near(serde_json::to_string_pretty(&situation()).unwrap_or_default())) {
        decide_holds_together(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn a_mutated_prometheus_answer_is_a_sample_an_absence_or_a_rejection(
        document in prop::sample::select(answers()).prop_flat_map(|a| mutated(a, 4)),
        status in statuses(),
    ) {
        let body = document.to_string();
        sample_holds_together(&classify(status, body.as_bytes()));
        range_holds_together(&parse_range(status, body.as_bytes()));
    }

    #[test]
    fn arbitrary_bytes_from_prometheus_are_an_absence_never_a_panic(
        bytes in prop::sample::select(answers()).prop_flat_map(|a| bytes_near(a.to_string())),
        status in statuses(),
    ) {
        sample_holds_together(&classify(status, &bytes));
        range_holds_together(&parse_range(status, &bytes));
    }

    #[test]
    fn a_mutated_admission_review_is_answered_or_refused_never_a_panic(document in mutated(review(), 6)) {
        admission_holds_together(document.to_string().as_bytes());
    }

    #[test]
    fn arbitrary_bytes_as_an_admission_review_are_refused_never_a_panic(bytes in bytes_near(review().to_string())) {
        admission_holds_together(&bytes);
    }

    #[test]
    fn the_placement_patch_of_a_mutated_pod_is_built_never_a_panic(document in mutated(review()["request"]["object"].clone(), 6)) {
        let patch = trimtab::placement::mutate::placement_patch(&document, "spot", &a_pool(), 100);
        prop_assert!(patch.is_array());
    }
}

#[test]
fn absences_are_what_fuzzing_sees_of_a_body_that_is_not_the_apis() {
    assert_eq!(classify(reqwest::StatusCode::OK, b"\xff\xfe"), QueryOutcome::Sample(Sample::Absent(Absence::Unreachable)));
}
