//! The `trimtab decide -f SITUATION` contract, through the binary: a usable situation prints one
//! JSON object and exits 0; a situation it cannot use exits non-zero with an error on stderr that
//! names the field to fix.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

fn trimtab(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_trimtab"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("trimtab runs");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write stdin");
    child.wait_with_output().expect("trimtab finishes")
}

fn decide_stdin(situation: &str) -> Output {
    trimtab(&["decide", "-f", "-"], situation)
}

/// A situation with every optional part: two objectives, history, pools, requests.
fn situation() -> Value {
    json!({
        "now": "2026-01-01T00:10:00Z",
        "policy": {
            "apiVersion": "trimtab.dev/v1alpha1",
            "kind": "ScalingPolicy",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "targetRef": {"kind": "Deployment", "name": "web"},
                "minReplicas": 2,
                "maxReplicas": 20,
                "objectives": [
                    {"name": "rps", "kind": "AverageValue", "query": "sum(rate(http_requests_total[2m]))", "target": "80"},
                    {"name": "p99", "kind": "Ceiling", "query": "histogram_quantile(0.99, x)", "target": "250m"}
                ],
                "budget": {"maxCostPerHour": "5"},
                "placement": {"spotPool": "spot", "onDemandPool": "on-demand", "onDemandBase": 2, "spotPercentage": 70}
            }
        },
        "currentReplicas": 5,
        "observations": {"rps": {"value": "700"}, "p99": {"value": "0.2"}},
        "consecutiveFailures": 0,
        "history": {
            "recommendations": [{"time": "2026-01-01T00:09:45Z", "replicas": 5}],
            "scaleEvents": [{"time": "2026-01-01T00:09:30Z", "change": 1}]
        },
        "pools": [
            {"apiVersion": "trimtab.dev/v1alpha1", "kind": "CapacityPool", "metadata": {"name": "spot"},
             "spec": {"capacityType": "Spot", "price": {"cpuCoreHour": "0.0105", "memoryGiBHour": "0.0014"}}},
            {"apiVersion": "trimtab.dev/v1alpha1", "kind": "CapacityPool", "metadata": {"name": "on-demand"},
             "spec": {"capacityType": "OnDemand", "price": {"cpuCoreHour": "0.0350", "memoryGiBHour": "0.0047"}}}
        ],
        "podRequests": {"cpu": "500m", "memory": "1Gi"},
        "spotHealthy": true
    })
}

/// Decides `situation` after `edit`, and expects a failure whose stderr names every one of `names`.
fn rejected(edit: impl FnOnce(&mut Value), names: &[&str]) -> String {
    let mut s = situation();
    edit(&mut s);
    let output = decide_stdin(&s.to_string());
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "expected a failure, got stdout {}", String::from_utf8_lossy(&output.stdout));
    assert!(output.stdout.is_empty(), "nothing on stdout on failure: {}", String::from_utf8_lossy(&output.stdout));
    for name in names {
        assert!(stderr.contains(name), "stderr should name {name:?}: {stderr}");
    }
    stderr
}

fn object(value: &mut Value) -> &mut serde_json::Map<String, Value> {
    value.as_object_mut().expect("an object")
}

#[test]
fn a_good_situation_prints_one_decision_object_and_exits_zero() {
    let output = decide_stdin(&situation().to_string());
    assert!(output.status.success(), "stderr: {}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).expect("UTF-8");
    assert_eq!(stdout.trim().lines().count(), 1, "one line: {stdout}");
    let decision: Value = serde_json::from_str(&stdout).expect("one JSON object");
    for key in ["desiredReplicas", "recommendation", "placement", "costPerHour", "limitedBy", "reasons"] {
        assert!(decision.get(key).is_some(), "{key} missing from {decision}");
    }
    // 700 / 80 = 8.75: nine replicas, within the default scale-up limit from 5.
    assert_eq!(decision["recommendation"], json!(9));
    assert_eq!(decision["desiredReplicas"], json!(9));
    let spot = decision["placement"]["spot"].as_i64().unwrap();
    let on_demand = decision["placement"]["onDemand"].as_i64().unwrap();
    assert_eq!((spot, on_demand), (4, 5), "2 base + ceil(7 × 30%) on-demand");
    assert!(decision["costPerHour"].is_string(), "cost is a decimal string: {decision}");
    assert!(decision["limitedBy"].is_string());
    let reasons = decision["reasons"].as_array().expect("reasons is a list");
    assert!(reasons.iter().all(|r| r["reason"].is_string() && r["message"].is_string()), "{reasons:?}");
}

#[test]
fn placement_and_cost_are_null_without_placement_or_prices() {
    let mut s = situation();
    object(&mut s["policy"]["spec"]).remove("placement");
    object(&mut s["policy"]["spec"]).remove("budget");
    object(&mut s).remove("pools");
    object(&mut s).remove("podRequests");
    let output = decide_stdin(&s.to_string());
    assert!(output.status.success(), "stderr: {}", String::from_utf8_lossy(&output.stderr));
    let decision: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(decision["placement"], Value::Null);
    assert_eq!(decision["costPerHour"], Value::Null);
}

#[test]
fn the_minimal_situation_of_the_contract_is_enough() {
    let minimal = r#"
now: "2026-01-01T00:10:00Z"
policy:
  apiVersion: trimtab.dev/v1alpha1
  kind: ScalingPolicy
  metadata: {name: web, namespace: default}
  spec:
    targetRef: {kind: Deployment, name: web}
    maxReplicas: 10
    objectives: [{name: rps, kind: AverageValue, query: "sum(x)", target: "50"}]
currentReplicas: 2
observations: {rps: {value: "412"}}
"#;
    let output = decide_stdin(minimal);
    assert!(output.status.success(), "stderr: {}", String::from_utf8_lossy(&output.stderr));
    let decision: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    // 412 / 50 → 9, limited to 2 + 4 = 6 by the default scale-up policies (4 pods or 100% per 15 s).
    assert_eq!(decision["recommendation"], json!(9));
    assert_eq!(decision["desiredReplicas"], json!(6));
}

#[test]
fn the_bundled_example_situation_decides_from_a_file() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/situations/latency-breach.yaml");
    let output = trimtab(&["decide", "-f", example.to_str().unwrap()], "");
    assert!(output.status.success(), "stderr: {}", String::from_utf8_lossy(&output.stderr));
    let decision: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert!(decision["desiredReplicas"].as_i64().unwrap() > 5, "the latency breach scales up: {decision}");
}

#[test]
fn a_p99_just_under_its_target_no_longer_holds_the_count_once_the_forecast_has_history() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/situations/hold-band.yaml");
    let text = std::fs::read_to_string(&example).expect("the example is readable");
    let decide = |situation: &str| -> Value {
        let output = decide_stdin(situation);
        assert!(output.status.success(), "stderr: {}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice(&output.stdout).expect("JSON")
    };
    let learned = decide(&text);
    assert_eq!(learned["desiredReplicas"], json!(7), "40 rps at 1.5 × the 4 per replica seen met, used at 97 %: {learned}");
    assert!(learned["reasons"][0]["message"].as_str().is_some_and(|m| m.contains("learned capacity 6.0")), "{learned}");

    // Its loadHistory is the file's last block: without it the Ceiling reacts, and in its hold band holds.
    let (without_history, _) = text.split_once("loadHistory:").expect("the example has a loadHistory");
    let reactive = decide(without_history);
    assert_eq!(reactive["desiredReplicas"], json!(10), "{reactive}");
    assert_eq!(reactive["reason"], json!("WithinTolerance"), "{reactive}");
}

#[test]
fn a_missing_file_is_an_error_naming_it() {
    let output = trimtab(&["decide", "-f", "/nonexistent/situation.yaml"], "");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("/nonexistent/situation.yaml"));
}

#[test]
fn a_misspelled_spec_field_is_rejected_by_its_path() {
    rejected(|s| _ = object(&mut s["policy"]["spec"]).insert("objectivs".into(), json!([])), &["policy.spec.objectivs"]);
}

#[test]
fn a_misspelled_field_in_place_of_a_required_one_is_rejected() {
    let stderr = rejected(
        |s| {
            let spec = object(&mut s["policy"]["spec"]);
            let objectives = spec.remove("objectives").unwrap();
            spec.insert("objectivs".into(), objectives);
        },
        &["objectiv"],
    );
    assert!(stderr.contains("policy.spec"), "the error says where: {stderr}");
}

/// A misspelled required field is missing and unknown at once: the error names both.
#[test]
fn a_misspelled_required_field_is_named_as_written() {
    rejected(
        |s| {
            let spec = object(&mut s["policy"]["spec"]);
            let objectives = spec.remove("objectives").unwrap();
            spec.insert("objectivs".into(), objectives);
        },
        &["policy.spec.objectivs"],
    );
}

#[test]
fn a_misspelled_observation_field_is_rejected_by_its_path() {
    rejected(|s| s["observations"]["rps"] = json!({"vaule": "700"}), &["observations.rps.vaule"]);
}

#[test]
fn a_misspelled_top_level_field_is_rejected_by_its_name() {
    rejected(|s| _ = object(s).insert("curentReplicas".into(), json!(3)), &["curentReplicas"]);
}

#[test]
fn an_observation_that_is_not_a_quantity_is_rejected_by_its_path() {
    let stderr = rejected(|s| s["observations"]["rps"]["value"] = json!("12 pods"), &["observations.rps.value"]);
    assert!(stderr.contains("12 pods"), "the bad value is quoted: {stderr}");
}

#[test]
fn a_target_that_is_not_a_quantity_is_rejected_by_its_path() {
    let stderr =
        rejected(|s| s["policy"]["spec"]["objectives"][0]["target"] = json!("fast"), &["policy.spec.objectives[0].target"]);
    assert!(stderr.contains("fast"), "the bad value is quoted: {stderr}");
}

#[test]
fn a_budget_that_is_not_a_quantity_is_rejected_by_its_path() {
    rejected(|s| s["policy"]["spec"]["budget"]["maxCostPerHour"] = json!("lots"), &["policy.spec.budget.maxCostPerHour"]);
}

#[test]
fn a_pool_price_that_is_not_a_quantity_is_rejected_by_its_path() {
    rejected(|s| s["pools"][0]["spec"]["price"]["cpuCoreHour"] = json!("cheap"), &["pools[0]", "cpuCoreHour"]);
}

#[test]
fn pod_requests_that_are_not_quantities_are_rejected_by_their_path() {
    rejected(|s| s["podRequests"]["cpu"] = json!("half"), &["podRequests.cpu"]);
}

#[test]
fn a_negative_current_replica_count_is_rejected() {
    rejected(|s| s["currentReplicas"] = json!(-1), &["currentReplicas"]);
}

#[test]
fn a_negative_recommendation_in_the_history_is_rejected() {
    rejected(|s| s["history"]["recommendations"][0]["replicas"] = json!(-3), &["history.recommendations[0].replicas"]);
}

#[test]
fn min_replicas_above_max_replicas_is_rejected_by_its_path() {
    rejected(|s| s["policy"]["spec"]["minReplicas"] = json!(30), &["policy.spec.minReplicas"]);
}

#[test]
fn an_observation_for_an_objective_that_does_not_exist_is_rejected() {
    let stderr = rejected(|s| s["observations"]["latency"] = json!({"value": "1"}), &["observations.latency"]);
    assert!(stderr.contains("rps"), "the error lists the objectives there are: {stderr}");
}

#[test]
fn an_observation_with_both_a_value_and_an_absence_is_rejected() {
    rejected(|s| s["observations"]["rps"] = json!({"value": "1", "absent": "Stale"}), &["observations.rps"]);
}

#[test]
fn an_unknown_absence_is_rejected_by_its_path() {
    rejected(|s| s["observations"]["rps"] = json!({"absent": "Missing"}), &["observations.rps.absent"]);
}

#[test]
fn a_time_that_does_not_parse_is_rejected_by_its_path() {
    rejected(|s| s["now"] = json!("yesterday"), &["now"]);
}

#[test]
fn text_that_is_not_yaml_is_rejected() {
    let output = decide_stdin("now: [unclosed\n  policy: {");
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("YAML"), "says what is wrong: {stderr}");
}

#[test]
fn an_empty_situation_is_rejected() {
    let output = decide_stdin("");
    assert!(!output.status.success());
    assert!(!output.stderr.is_empty());
}

#[test]
fn a_missing_required_field_is_rejected_by_its_name() {
    rejected(|s| _ = object(s).remove("currentReplicas"), &["currentReplicas"]);
}

#[test]
fn an_interval_whose_number_overflows_is_rejected_by_its_path_not_a_panic() {
    let stderr =
        rejected(|s| s["policy"]["spec"]["interval"] = json!("99999999999999999999h"), &["policy.spec.interval", "at most 1h"]);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn an_interval_under_a_second_is_rejected_by_its_path() {
    rejected(|s| s["policy"]["spec"]["interval"] = json!("1ms"), &["policy.spec.interval", "at least 1s"]);
}

#[test]
fn a_fallback_after_over_a_day_is_rejected_by_its_path() {
    rejected(|s| s["policy"]["spec"]["placement"]["fallbackAfter"] = json!("25h"), &["policy.spec.placement.fallbackAfter"]);
}

#[test]
fn max_replicas_over_the_largest_count_is_rejected_by_its_path() {
    rejected(|s| s["policy"]["spec"]["maxReplicas"] = json!(2_000_000_000), &["policy.spec.maxReplicas", "100000"]);
}

#[test]
fn a_negative_pool_price_is_rejected_by_its_path() {
    rejected(
        |s| s["pools"][0]["spec"]["price"]["cpuCoreHour"] = json!("-0.01"),
        &["pools[0].spec.price.cpuCoreHour", "negative"],
    );
}

#[test]
fn a_pool_priced_at_zero_is_rejected_by_its_path() {
    rejected(
        |s| s["pools"][1]["spec"]["price"] = json!({"cpuCoreHour": "0", "memoryGiBHour": "0"}),
        &["pools[1].spec.price.cpuCoreHour", "both zero"],
    );
}

#[test]
fn a_negative_metric_value_is_missing_data_not_a_scale_to_min() {
    let mut s = situation();
    s["observations"]["rps"] = json!({"value": "-45"});
    let output = decide_stdin(&s.to_string());
    assert!(output.status.success(), "stderr: {}", String::from_utf8_lossy(&output.stderr));
    let decision: Value = serde_json::from_slice(&output.stdout).expect("one JSON object");
    assert_eq!(decision["desiredReplicas"], json!(5), "partial data never scales down: {decision}");
    assert_eq!(decision["reason"], json!("PartialMetrics"), "{decision}");
    let rps = decision["objectives"].as_array().expect("objectives").iter().find(|o| o["name"] == "rps").cloned();
    assert_eq!(rps.map(|o| o["state"].clone()), Some(json!("NoData")));
}

#[test]
fn a_budget_cut_below_the_current_count_goes_at_the_scale_down_rate() {
    let mut s = situation();
    // 20 replicas now, the budget fits far fewer, and the scale-down policy allows 2 pods per minute.
    s["currentReplicas"] = json!(20);
    s["observations"] = json!({"rps": {"value": "1600"}, "p99": {"value": "0.2"}});
    s["policy"]["spec"]["budget"] = json!({"maxCostPerHour": "0.1"});
    s["policy"]["spec"]["behavior"] =
        json!({"scaleDown": {"stabilizationWindowSeconds": 0, "policies": [{"type": "Pods", "value": 2, "periodSeconds": 60}]}});
    s["history"] = json!({});
    let output = decide_stdin(&s.to_string());
    assert!(output.status.success(), "stderr: {}", String::from_utf8_lossy(&output.stderr));
    let decision: Value = serde_json::from_slice(&output.stdout).expect("one JSON object");
    assert_eq!(decision["desiredReplicas"], json!(18), "one rate-limited step, not straight to the budget: {decision}");
    assert_eq!(decision["limitedBy"], json!("BudgetLimited"), "{decision}");
}

#[test]
fn numbers_decide_exactly_like_the_quantity_strings_they_stand_for() {
    let strings = decide_stdin(&situation().to_string());
    let mut s = situation();
    s["policy"]["spec"]["objectives"][0]["target"] = json!(80);
    s["policy"]["spec"]["objectives"][1]["target"] = json!(0.25);
    s["policy"]["spec"]["budget"]["maxCostPerHour"] = json!(5);
    s["policy"]["spec"]["behavior"] = json!({"scaleUp": {"tolerance": 0.1}});
    s["observations"] = json!({"rps": {"value": 700}, "p99": {"value": 0.2}});
    s["pools"][0]["spec"]["price"] = json!({"cpuCoreHour": 0.0105, "memoryGiBHour": 0.0014});
    s["pools"][1]["spec"]["price"] = json!({"cpuCoreHour": 0.035, "memoryGiBHour": 0.0047});
    s["podRequests"] = json!({"cpu": 0.5, "memory": 1073741824});
    let numbers = decide_stdin(&s.to_string());
    assert!(numbers.status.success(), "stderr: {}", String::from_utf8_lossy(&numbers.stderr));
    let decided = |output: &Output| -> Value { serde_json::from_slice(&output.stdout).expect("one JSON object") };
    assert_eq!(decided(&numbers), decided(&strings));
}

#[test]
fn a_yaml_float_such_as_2e2_is_a_quantity() {
    let situation = r#"
now: "2026-01-01T00:10:00Z"
policy:
  apiVersion: trimtab.dev/v1alpha1
  kind: ScalingPolicy
  metadata: {name: web, namespace: default}
  spec:
    targetRef: {kind: Deployment, name: web}
    maxReplicas: 10
    objectives: [{name: rps, kind: AverageValue, query: "sum(x)", target: 2e2}]
currentReplicas: 2
observations: {rps: {value: 1.2e3}}
"#;
    let output = decide_stdin(situation);
    assert!(output.status.success(), "stderr: {}", String::from_utf8_lossy(&output.stderr));
    let decision: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(decision["recommendation"], json!(6), "1200 / 200: {decision}");
}

#[test]
fn a_target_that_is_neither_a_number_nor_a_string_is_rejected_by_its_path() {
    rejected(
        |s| s["policy"]["spec"]["objectives"][0]["target"] = json!(true),
        &["objectives[0].target", "a number, or a string"],
    );
}

#[test]
fn a_target_of_zero_written_as_a_number_is_rejected_by_its_path() {
    rejected(|s| s["policy"]["spec"]["objectives"][0]["target"] = json!(0), &["objectives[0].target", "more than zero"]);
}

/// An idle service: no requests, so its p99 is NaN and its error ratio has no 5xx series.
fn idle(when_empty: Option<&str>) -> Value {
    let mut s = situation();
    s["currentReplicas"] = json!(10);
    s["history"] = json!({});
    let spec = &mut s["policy"]["spec"];
    spec["objectives"] = json!([
        {"name": "rps", "kind": "AverageValue", "query": "sum(rate(http_requests_total[2m]))", "target": "80"},
        {"name": "p99", "kind": "Ceiling", "query": "histogram_quantile(0.99, x)", "target": "250m"},
        {"name": "errors", "kind": "Ceiling", "query": "sum(rate(http_requests_total{code=~\"5..\"}[2m])) / sum(rate(http_requests_total[2m]))", "target": "0.01"}
    ]);
    if let Some(when_empty) = when_empty {
        spec["objectives"][1]["whenEmpty"] = json!(when_empty);
        spec["objectives"][2]["whenEmpty"] = json!(when_empty);
    }
    s["observations"] = json!({"rps": {"value": 0}, "p99": {"absent": "NaN"}, "errors": {"absent": "Empty"}});
    s
}

#[test]
fn an_idle_service_holds_unless_its_objectives_read_no_data_as_zero() {
    for (when_empty, desired) in [(None, 10), (Some("MissingData"), 10), (Some("Zero"), 2)] {
        let output = decide_stdin(&idle(when_empty).to_string());
        assert!(output.status.success(), "stderr: {}", String::from_utf8_lossy(&output.stderr));
        let decision: Value = serde_json::from_slice(&output.stdout).expect("one JSON object");
        assert_eq!(decision["desiredReplicas"], json!(desired), "whenEmpty {when_empty:?}: {decision}");
    }
}

#[test]
fn an_absence_read_as_zero_says_so_in_the_decision() {
    let output = decide_stdin(&idle(Some("Zero")).to_string());
    let decision: Value = serde_json::from_slice(&output.stdout).expect("one JSON object");
    let objective =
        |name: &str| decision["objectives"].as_array().expect("objectives").iter().find(|o| o["name"] == name).cloned();
    let p99 = objective("p99").expect("p99");
    assert_eq!((p99["value"].clone(), p99["readAsZero"].clone()), (json!(0.0), json!("NaN")), "{p99}");
    let errors = objective("errors").expect("errors");
    assert_eq!(errors["readAsZero"], json!("Empty"), "{errors}");
    assert!(objective("rps").expect("rps").get("readAsZero").is_none(), "a real value is not read as anything");
}

#[test]
fn an_unknown_when_empty_is_rejected_by_its_path() {
    rejected(|s| s["policy"]["spec"]["objectives"][0]["whenEmpty"] = json!("Nothing"), &["objectives[0].whenEmpty", "Zero"]);
}

/// The issue's cluster: 40 requests/s on 10 replicas, p99 0.244 s (its service time) against 0.3 s.
fn forecast_situation(load_history: Option<Value>) -> Value {
    let mut s = json!({
        "now": "2026-01-01T00:10:00Z",
        "policy": {
            "apiVersion": "trimtab.dev/v1alpha1",
            "kind": "ScalingPolicy",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "targetRef": {"kind": "Deployment", "name": "web"},
                "minReplicas": 2,
                "maxReplicas": 20,
                "objectives": [{"name": "p99", "kind": "Ceiling", "query": "q", "target": "300m"}],
                "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}},
                "forecast": {"loadQuery": "sum(rate(http_requests_total[1m]))"}
            }
        },
        "currentReplicas": 10,
        "observations": {"p99": {"value": "0.244"}}
    });
    if let Some(history) = load_history {
        s["loadHistory"] = history;
    }
    s
}

#[test]
fn a_forecast_policy_given_its_range_answers_explains_the_forecast_and_scales_a_flat_latency_down() {
    let held = decide_stdin(&forecast_situation(None).to_string());
    assert!(held.status.success(), "{}", String::from_utf8_lossy(&held.stderr));
    let held: Value = serde_json::from_slice(&held.stdout).expect("json");
    assert_eq!(held["desiredReplicas"], 10, "without range answers the Ceiling only reacts: {held}");

    let pairs: Vec<Value> = (0..30).map(|_| json!([4.0, 0.244])).collect();
    let history = json!({"load": vec![40.0; 15], "capacity": {"p99": pairs}});
    let out = decide_stdin(&forecast_situation(Some(history)).to_string());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let decision: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(decision["desiredReplicas"], 7, "{decision}");
    let reasons = decision["reasons"].to_string();
    assert!(reasons.contains("forecast 40.0 rps") && reasons.contains("learned capacity 6.0 rps per Ready replica"), "{reasons}");
    assert_eq!(decision["plan"]["capacity"]["perReplica"], 6.0, "{decision}");
    assert_eq!(decision["plan"]["capacity"]["basis"], "Explored", "{decision}");
    assert_eq!(decision["plan"]["replicas"], 7, "{decision}");
}

#[test]
fn a_negative_throughput_in_the_load_history_is_an_error_naming_it() {
    let history = json!({"load": [40.0, -1.0, 40.0]});
    let out = decide_stdin(&forecast_situation(Some(history)).to_string());
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("loadHistory.load[1]"), "{}", String::from_utf8_lossy(&out.stderr));
}
