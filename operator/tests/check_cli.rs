//! `trimtab check` against a real Prometheus: the Debian `prometheus` binary, started in a temp
//! dir on a free port, scraping a small exporter this test serves the way client libraries export
//! (a `code="500"` series does not exist until the first 5xx; an idle app's counters stand still).
//! Each test waits, with a deadline, until the series it needs exist; the last test to finish stops
//! Prometheus and the exporter and removes the temp dir.

use std::process::Output;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use trimtab::engine::{Absence, Sample};
use trimtab::metrics::{PrometheusClient, PrometheusSettings, QueryOutcome};

#[path = "common/check.rs"]
mod check_harness;
#[path = "common/prometheus.rs"]
mod prometheus_harness;
use check_harness::{check, manifest};
use prometheus_harness::{Prometheus, free_port, prometheus_binary};

const SCRAPE_INTERVAL: &str = "1s";
const READY_DEADLINE: Duration = Duration::from_secs(90);

// ---- The exporter: what an app instrumented with a client library serves ----

/// checkout: 100 requests/s, all 200 (no 5xx series yet), latency mostly under 100 ms (p99 about 195 ms).
/// idle: the same families, standing still (no traffic). queue_depth: two partitions.
/// relayed_queue_depth: a series relayed with its own timestamps (as federation and remote-write
/// keep them) from a source [`RELAY_LAG`] behind: Prometheus ingests it as written that long ago.
fn metrics_text(elapsed: f64) -> String {
    let count = (elapsed * 100.0).floor();
    let bucket = |le: &str, share: f64| {
        format!("http_request_duration_seconds_bucket{{app=\"checkout\",le=\"{le}\"}} {}\n", (count * share).floor())
    };
    let mut text = String::from("# TYPE http_requests_total counter\n");
    text.push_str(&format!("http_requests_total{{app=\"checkout\",code=\"200\"}} {count}\n"));
    text.push_str("http_requests_total{app=\"idle\",code=\"200\"} 42\n");
    text.push_str("# TYPE http_request_duration_seconds histogram\n");
    for (le, share) in [("0.05", 0.5), ("0.1", 0.9), ("0.2", 0.995), ("0.25", 0.999), ("+Inf", 1.0)] {
        text.push_str(&bucket(le, share));
    }
    text.push_str(&format!("http_request_duration_seconds_sum{{app=\"checkout\"}} {}\n", count * 0.06));
    text.push_str(&format!("http_request_duration_seconds_count{{app=\"checkout\"}} {count}\n"));
    for le in ["0.05", "0.1", "0.25", "+Inf"] {
        text.push_str(&format!("http_request_duration_seconds_bucket{{app=\"idle\",le=\"{le}\"}} 42\n"));
    }
    text.push_str("http_request_duration_seconds_sum{app=\"idle\"} 2.5\nhttp_request_duration_seconds_count{app=\"idle\"} 42\n");
    text.push_str("# TYPE queue_depth gauge\nqueue_depth{partition=\"0\"} 5\nqueue_depth{partition=\"1\"} 7\n");
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    let written_ms = now_ms.saturating_sub(RELAY_LAG.as_millis());
    text.push_str(&format!("# TYPE relayed_queue_depth gauge\nrelayed_queue_depth 40 {written_ms}\n"));
    text
}

/// How far behind the relayed series is: within Prometheus's 5m lookback (so an instant query
/// still returns it), past the default staleness bound of 2m.
const RELAY_LAG: Duration = Duration::from_secs(150);

// ---- Prometheus, owned by the tests ----

/// One Prometheus for the tests running at the same time; the last one to let go stops it.
fn prometheus() -> Option<Arc<Prometheus>> {
    static SHARED: Mutex<Weak<Prometheus>> = Mutex::new(Weak::new());
    let binary = prometheus_binary()?;
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(running) = shared.upgrade() {
        return Some(running);
    }
    let started = Arc::new(Prometheus::start(binary, metrics_text, SCRAPE_INTERVAL));
    wait_until_ready(&started);
    *shared = Arc::downgrade(&started);
    Some(started)
}

/// Waits (with a deadline) until the series every test reads exist: a request rate over a full
/// 5s window (rate() divides by the whole window, so a window not yet full reads low), the idle
/// app's NaN quantile (two samples of standing counters), and the scrape interval in the targets API.
fn wait_until_ready(prometheus: &Prometheus) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let client = PrometheusClient::new(PrometheusSettings {
        url: prometheus.url.clone(),
        timeout: Duration::from_secs(2),
        staleness: Duration::from_secs(300),
        bearer_token_file: None,
        username: None,
        password_file: None,
        ca_file: None,
        max_response_bytes: trimtab::metrics::DEFAULT_MAX_RESPONSE_BYTES,
        max_concurrency: 4,
        headers: vec![],
    })
    .expect("a client");
    let deadline = Instant::now() + READY_DEADLINE;
    loop {
        let ready = runtime.block_on(async {
            let rate = client.report(r#"sum(rate(http_requests_total{app="checkout"}[5s]))"#).await;
            let idle = client.report(IDLE_P99).await;
            let intervals = client.scrape_intervals().await.unwrap_or_default();
            let relayed = client.report("relayed_queue_depth").await;
            matches!(rate.outcome, QueryOutcome::Sample(Sample::Value(v)) if v > 60.0)
                && relayed.series == Some(1)
                && idle.outcome == QueryOutcome::Sample(Sample::Absent(Absence::NaN))
                && intervals.contains_key("app")
        });
        if ready {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus at {} did not have the series in time; its log:\n{}",
            prometheus.url,
            prometheus.log()
        );
        std::thread::sleep(Duration::from_millis(200)); // polling interval of the condition wait
    }
}

// ---- Running the binary ----

const CHECKOUT_P99: &str =
    r#"histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{app="checkout"}[5s])))"#;
const IDLE_P99: &str = r#"histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{app="idle"}[5s])))"#;
const CHECKOUT_RPS: &str = r#"sum(rate(http_requests_total{app="checkout"}[5s]))"#;

fn policy(objectives: Value) -> String {
    manifest("shop", "checkout", 2, 20, objectives)
}

fn json_report(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "one JSON object ({e}): stdout {} stderr {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn objective<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["objectives"]
        .as_array()
        .and_then(|all| all.iter().find(|o| o["name"] == name))
        .unwrap_or_else(|| panic!("{name} in {report}"))
}

fn warnings_of(objective: &Value) -> Vec<(String, String)> {
    objective["warnings"]
        .as_array()
        .map(|all| {
            all.iter()
                .map(|w| (w["field"].as_str().unwrap_or("").to_owned(), w["message"].as_str().unwrap_or("").to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

// ---- The behaviour ----

#[test]
fn a_healthy_policy_shows_each_value_series_and_proposal_then_the_decision_and_exits_zero() {
    let Some(prometheus) = prometheus() else { return };
    let objectives = json!([
        {"name": "p99-latency", "kind": "Ceiling", "query": CHECKOUT_P99, "target": "500m"},
        {"name": "error-rate", "kind": "Ceiling", "target": "0.01",
         "query": r#"(sum(rate(http_requests_total{app="checkout",code=~"5.."}[5s])) or vector(0)) / sum(rate(http_requests_total{app="checkout"}[5s]))"#},
        {"name": "rps-per-replica", "kind": "AverageValue", "query": CHECKOUT_RPS, "target": 60}
    ]);
    let output = check(&prometheus.url, &policy(objectives), &["--current", "6", "-o", "json"]);
    assert_eq!(output.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&output.stderr));
    let report = json_report(&output);

    let latency = objective(&report, "p99-latency");
    let p99 = latency["value"].as_f64().expect("a latency value");
    assert!(p99 > 0.05 && p99 <= 0.25, "p99 {p99} is in the 100-250 ms bucket");
    assert_eq!((latency["absent"].clone(), latency["series"].clone()), (Value::Null, json!(1)));
    assert_eq!(latency["proposal"], Value::Null, "a ceiling met with margin does not object to fewer");
    assert_eq!(objective(&report, "error-rate")["value"], json!(0.0), "no 5xx series: 0, thanks to `or vector(0)`");
    let rps = objective(&report, "rps-per-replica");
    assert_eq!(rps["proposal"], json!(2), "about 100 rps at 60 per replica: {rps}");
    for name in ["p99-latency", "error-rate", "rps-per-replica"] {
        assert_eq!(warnings_of(objective(&report, name)), vec![], "{name}");
    }
    assert_eq!(report["current"]["replicas"], json!(6));
    assert_eq!(report["decision"]["recommendation"], json!(2), "{}", report["decision"]);
    assert_eq!(report["decision"]["reason"], json!("ObjectivesMet"));
    assert!(report["decision"]["reasons"].is_array() && report["decision"]["limitedBy"].is_string());
}

#[test]
fn a_ratio_whose_numerator_has_no_series_is_empty_warned_with_the_fix_and_exits_one() {
    let Some(prometheus) = prometheus() else { return };
    let errors =
        r#"sum(rate(http_requests_total{app="checkout",code=~"5.."}[5s])) / sum(rate(http_requests_total{app="checkout"}[5s]))"#;
    let objectives = json!([{"name": "error-rate", "kind": "Ceiling", "query": errors, "target": "0.01"}]);
    let output = check(&prometheus.url, &policy(objectives), &["--current", "6", "-o", "json"]);
    assert_eq!(output.status.code(), Some(1), "no usable value: exit 1");
    let report = json_report(&output);
    let error_rate = objective(&report, "error-rate");
    assert_eq!((error_rate["absent"].clone(), error_rate["series"].clone()), (json!("Empty"), json!(0)));
    let warnings = warnings_of(error_rate);
    let ratio = warnings.iter().find(|(_, m)| m.contains("numerator")).unwrap_or_else(|| panic!("{warnings:?}"));
    assert_eq!(ratio.0, "spec.objectives[0].query");
    assert!(ratio.1.contains("right now it returns no series while the denominator returns 1"), "{}", ratio.1);
    assert!(ratio.1.contains(r#"or vector(0)) / sum(rate(http_requests_total{app="checkout"}[5s]))"#), "{}", ratio.1);
    let when_empty =
        warnings.iter().find(|(field, _)| field == "spec.objectives[0].whenEmpty").unwrap_or_else(|| panic!("{warnings:?}"));
    assert!(when_empty.1.contains(r#"no series match http_requests_total{app="checkout",code=~"5.."}"#), "{}", when_empty.1);
    assert!(when_empty.1.contains("set whenEmpty: Zero"), "{}", when_empty.1);
    assert_eq!(report["decision"]["reason"], json!("MetricsUnavailable"), "no data: hold");
    assert_eq!(report["decision"]["desiredReplicas"], json!(6));
}

#[test]
fn an_idle_service_is_nan_by_default_and_a_usable_zero_with_when_empty_zero() {
    let Some(prometheus) = prometheus() else { return };
    let idle = |when_empty: &str| {
        json!([
            {"name": "p99-latency", "kind": "Ceiling", "query": IDLE_P99, "target": "300m", "whenEmpty": when_empty},
            {"name": "rps-per-replica", "kind": "AverageValue", "query": r#"sum(rate(http_requests_total{app="idle"}[5s]))"#, "target": "50"}
        ])
    };
    let held = check(&prometheus.url, &policy(idle("MissingData")), &["--current", "5", "-o", "json"]);
    assert_eq!(held.status.code(), Some(1));
    let report = json_report(&held);
    assert_eq!(objective(&report, "p99-latency")["absent"], json!("NaN"));
    assert_eq!(report["decision"]["desiredReplicas"], json!(5), "partial data never scales down");
    let warnings = warnings_of(objective(&report, "p99-latency"));
    assert!(warnings.iter().any(|(f, m)| f == "spec.objectives[0].whenEmpty" && m.contains("NaN")), "{warnings:?}");

    let scaled = check(&prometheus.url, &policy(idle("Zero")), &["--current", "5", "-o", "json"]);
    assert_eq!(scaled.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&scaled.stderr));
    let report = json_report(&scaled);
    let latency = objective(&report, "p99-latency");
    assert_eq!((latency["value"].clone(), latency["readAsZero"].clone()), (json!(0.0), json!("NaN")));
    assert_eq!(report["decision"]["desiredReplicas"], json!(2), "no traffic: minReplicas: {}", report["decision"]);
}

#[test]
fn a_short_rate_window_a_target_in_the_wrong_unit_and_several_series_are_warned_by_field() {
    let Some(prometheus) = prometheus() else { return };
    let objectives = json!([
        {"name": "p99-latency", "kind": "Ceiling", "target": "300",
         "query": r#"histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{app="checkout"}[2s])))"#},
        {"name": "depth", "kind": "AverageValue", "query": "queue_depth", "target": "10"}
    ]);
    let output = check(&prometheus.url, &policy(objectives), &["--current", "3", "-o", "json"]);
    let report = json_report(&output);
    let latency = warnings_of(objective(&report, "p99-latency"));
    assert!(
        latency.iter().any(|(f, m)| f == "spec.objectives[0].target" && m.contains("is in seconds") && m.contains("\"0.3\"")),
        "{latency:?}"
    );
    assert!(
        latency.iter().any(|(f, m)| f == "spec.objectives[0].query"
            && m.contains("[2s]) spans fewer than 4 scrapes (scrape interval 1s, job \"app\")")
            && m.contains("Use [4s] or more")),
        "{latency:?}"
    );
    let depth = objective(&report, "depth");
    assert_eq!((depth["absent"].clone(), depth["series"].clone()), (json!("MultipleSeries"), json!(2)));
    let several = warnings_of(depth);
    assert!(several.iter().any(|(f, m)| f == "spec.objectives[1].query" && m.contains("returns 2 series")), "{several:?}");
    assert_eq!(output.status.code(), Some(1), "depth has no usable value");
}

#[test]
fn the_text_report_names_each_objective_its_warnings_and_the_decision() {
    let Some(prometheus) = prometheus() else { return };
    let objectives = json!([{"name": "rps-per-replica", "kind": "AverageValue", "query": CHECKOUT_RPS, "target": "60"}]);
    let output = check(&prometheus.url, &policy(objectives), &[]);
    assert_eq!(output.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8(output.stdout).expect("UTF-8");
    assert!(text.contains("at 2 replicas (from minReplicas (no kubeconfig"), "without --current or a cluster: {text}");
    assert!(text.contains("rps-per-replica (AverageValue, target 60): "), "{text}");
    assert!(text.contains(" from 1 series; proposes 2"), "{text}");
    assert!(text.contains("Decision: 2 -> 2 replicas"), "{text}");
}

#[test]
fn a_series_not_written_for_longer_than_the_staleness_bound_is_stale_and_never_scales_down() {
    let Some(prometheus) = prometheus() else { return };
    let objectives = json!([
        {"name": "relayed-depth", "kind": "AverageValue", "query": "sum(relayed_queue_depth)", "target": "10"},
        {"name": "depth", "kind": "AverageValue", "query": "sum(queue_depth)", "target": "10"},
        // A standing counter is a series still scraped, whose value happens not to change: a value.
        {"name": "idle-total", "kind": "AverageValue", "query": r#"sum(http_requests_total{app="idle"})"#, "target": "100"}
    ]);
    let output = check(&prometheus.url, &policy(objectives.clone()), &["--current", "6", "-o", "json"]);
    let report = json_report(&output);
    let relayed = objective(&report, "relayed-depth");
    assert_eq!((relayed["absent"].clone(), relayed["series"].clone()), (json!("Stale"), json!(1)), "{relayed}");
    assert_eq!(objective(&report, "depth")["value"], json!(12.0));
    assert_eq!(objective(&report, "idle-total")["value"], json!(42.0));
    assert_eq!(report["decision"]["desiredReplicas"], json!(6), "40 at 10 per replica would be 4: {}", report["decision"]);
    assert_eq!(output.status.code(), Some(1), "an objective has no usable value");

    // A bound longer than the lag: the same series is a value, and the policy scales down on it.
    let output = check(&prometheus.url, &policy(objectives), &["--current", "6", "-o", "json", "--prometheus-staleness", "4m"]);
    let report = json_report(&output);
    assert_eq!(objective(&report, "relayed-depth")["value"], json!(40.0), "{report}");
    assert_eq!(report["decision"]["desiredReplicas"], json!(4), "{}", report["decision"]);
}

#[test]
fn an_unreachable_prometheus_is_an_absence_and_exits_one() {
    let url = format!("http://127.0.0.1:{}", free_port());
    let objectives = json!([{"name": "rps", "kind": "AverageValue", "query": CHECKOUT_RPS, "target": "50"}]);
    let output = check(&url, &policy(objectives), &["--current", "4", "-o", "json"]);
    assert_eq!(output.status.code(), Some(1));
    let report = json_report(&output);
    assert_eq!(objective(&report, "rps")["absent"], json!("Unreachable"));
    assert_eq!(report["decision"]["desiredReplicas"], json!(4), "no data: hold");
}

#[test]
fn a_policy_that_does_not_parse_or_validate_exits_two_naming_the_field() {
    let url = "http://127.0.0.1:9";
    let output = check(url, "kind: ScalingPolicy\nspec: [", &[]);
    assert_eq!(output.status.code(), Some(2));
    let invalid = policy(json!([{"name": "rps", "kind": "AverageValue", "query": "up", "target": "fast"}]));
    let output = check(url, &invalid, &[]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("spec.objectives[0].target"), "{stderr}");
    assert!(output.stdout.is_empty(), "nothing on stdout on bad input");
}

#[test]
fn a_misspelled_metric_that_when_empty_zero_reads_as_zero_is_still_warned_about() {
    let Some(prometheus) = prometheus() else { return };
    let objectives = json!([
        {"name": "errors", "kind": "Ceiling", "query": r#"sum(rate(http_request_totl{app="checkout"}[5s]))"#, "target": "1", "whenEmpty": "Zero"},
        {"name": "rps-per-replica", "kind": "AverageValue", "query": CHECKOUT_RPS, "target": "60"}
    ]);
    let output = check(&prometheus.url, &policy(objectives), &["--current", "2", "-o", "json"]);
    assert_eq!(output.status.code(), Some(0), "read as 0, as the policy says: usable");
    let report = json_report(&output);
    let errors = objective(&report, "errors");
    assert_eq!((errors["value"].clone(), errors["readAsZero"].clone()), (json!(0.0), json!("Empty")));
    let warnings = warnings_of(errors);
    assert!(
        warnings.iter().any(|(f, m)| f == "spec.objectives[0].whenEmpty"
            && m.contains(r#"no series match http_request_totl{app="checkout"}"#)
            && m.contains("misspelled")),
        "{warnings:?}"
    );
}

#[test]
fn the_flagship_example_checks_clean_and_scales_down_an_app_that_has_never_failed() {
    let Some(prometheus) = prometheus() else { return };
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/web-service-slo.yaml");
    let text = std::fs::read_to_string(example).expect("the example is readable");
    let output = check(&prometheus.url, &text, &["--current", "10", "-o", "json"]);
    assert_eq!(output.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&output.stderr));
    let report = json_report(&output);
    for name in ["p99-latency", "error-rate", "rps-per-replica"] {
        assert_eq!(warnings_of(objective(&report, name)), vec![], "{name}");
    }
    assert_eq!(report["warnings"], json!([]));
    assert_eq!(objective(&report, "error-rate")["value"], json!(0.0), "no code=\"5xx\" series yet: 0");
    assert_eq!(
        report["decision"]["desiredReplicas"],
        json!(2),
        "healthy at about 100 rps, 50 per replica: minReplicas: {}",
        report["decision"]
    );
}
