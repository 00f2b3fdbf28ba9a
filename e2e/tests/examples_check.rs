//! Every example policy and recipe under examples/, checked the way `trimtab check` checks it (its
//! own code: the operator's Prometheus client and decision) against a real Prometheus scraping
//! lazyapp, the simulated app that exports as client libraries do. No cluster needed: it runs in
//! `just unit`.
//!
//! Two apps, each with its own Prometheus: a healthy one (no request has ever failed, so no 5xx
//! series exists anywhere) and a failing one (5% of requests answered 500). Both serve the services
//! the examples target, on more replicas than their load needs. The tests wait, with a deadline,
//! until Prometheus holds a full 2m window (the examples' rate windows), so rates read what the app
//! serves; the last test to finish stops both.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use clap::Parser;
use serde_json::Value;
use trimtab::api::ScalingPolicy;
use trimtab::cli::input::{documents, from_value_strict};
use trimtab::cli::run::PrometheusArgs;
use trimtab::engine::{Current, Policy, Pricing};
use trimtab::metrics::PrometheusClient;
use trimtab_e2e::lazyapp::{LazyApp, Service, Worker};
use trimtab_e2e::prometheus::LocalPrometheus;
use trimtab_e2e::{eventually, repo_root};

/// The replicas each service runs, and the count the checks start from: several times what the
/// load needs, so a healthy service must come down.
const REPLICAS: u32 = 6;
const ERROR_RATIO: f64 = 0.05;
/// Enough for Prometheus to fill a 2m window at one scrape every 2s, with room for a slow machine.
const FULL_WINDOW_DEADLINE: Duration = Duration::from_secs(300);

/// The Deployments the examples target, and their load (requests or messages per second).
const SERVICES: [(&str, &str, f64); 5] = [
    ("shop", "checkout", 100.0),
    ("shop", "catalog", 80.0),
    ("shop", "search", 120.0),
    ("shop", "web", 90.0),
    ("billing", "invoice-worker", 40.0),
];
/// invoice-worker consumes the invoices topic two seconds behind: its lag is 2 × 40 messages.
const WORKER_BACKLOG_SECONDS: f64 = 2.0;

fn service(name: &str, rps: f64, error_ratio: f64) -> Service {
    let worker = (name == "invoice-worker").then(|| Worker {
        topic: "invoices".into(),
        partitions: 12,
        backlog_seconds: WORKER_BACKLOG_SECONDS,
    });
    Service { error_ratio, worker, ..Service::web(rps, REPLICAS) }
}

/// The load an AverageValue objective of a policy targeting `name` should read.
fn expected_total(name: &str, query: &str) -> Option<f64> {
    let (_, _, rps) = SERVICES.iter().find(|(_, n, _)| *n == name)?;
    Some(if query.contains("kafka_consumergroup_lag") { rps * WORKER_BACKLOG_SECONDS } else { *rps })
}

// ---- The two apps and their Prometheus ----

struct World {
    // Dropped in this order: Prometheus stops scraping before the app goes.
    prometheus: LocalPrometheus,
    _app: LazyApp,
}

fn world(failing: bool) -> Option<Arc<World>> {
    static HEALTHY: Mutex<Weak<World>> = Mutex::new(Weak::new());
    static FAILING: Mutex<Weak<World>> = Mutex::new(Weak::new());
    let mut shared = if failing { &FAILING } else { &HEALTHY }.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(running) = shared.upgrade() {
        return Some(running);
    }
    let app = LazyApp::start().expect("lazyapp serves");
    for (namespace, name, rps) in SERVICES {
        let error_ratio = if failing { ERROR_RATIO } else { 0.0 };
        app.app.set(namespace, name, service(name, rps, error_ratio)).expect("a valid service");
    }
    let prometheus = LocalPrometheus::start(if failing { "failing" } else { "healthy" }, &[app.address])?;
    let world = Arc::new(World { prometheus, _app: app });
    *shared = Arc::downgrade(&world);
    Some(world)
}

/// Waits until a 2m rate reads what the app serves: the window is full.
async fn wait_for_full_windows(world: &World) {
    let what = format!("Prometheus at {} to hold a full 2m window of lazyapp's series", world.prometheus.url);
    eventually(&what, FULL_WINDOW_DEADLINE, || async {
        let web = world.prometheus.value(r#"sum(rate(http_requests_total{app="checkout"}[2m]))"#).await;
        let worker = world.prometheus.value(r#"sum(rate(queue_messages_consumed_total{queue="invoices"}[2m]))"#).await;
        match (web, worker) {
            (Some(web), Some(worker)) if web >= 0.97 * 100.0 && worker >= 0.97 * 40.0 => Ok(()),
            other => Err(format!(
                "checkout and invoice-worker rates {other:?}; Prometheus log tail: {}",
                tail(&world.prometheus.log())
            )),
        }
    })
    .await;
}

fn tail(log: &str) -> String {
    log.lines().rev().take(5).collect::<Vec<_>>().join(" | ")
}

// ---- The examples ----

struct Example {
    file: String,
    resource: ScalingPolicy,
}

fn yaml_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("examples/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            yaml_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            found.push(path);
        }
    }
}

/// Every ScalingPolicy under examples/: each document of that kind, and each situation's policy.
fn example_policies() -> Vec<Example> {
    let root = repo_root().join("examples");
    let mut files = Vec::new();
    yaml_files(&root, &mut files);
    files.sort();
    let mut examples = Vec::new();
    for path in files {
        let file = path.strip_prefix(&root).unwrap_or(&path).display().to_string();
        let text = std::fs::read_to_string(&path).expect("a readable example");
        for document in documents(&file, &text).unwrap_or_else(|e| panic!("{e}")) {
            let policy = match document.get("kind").and_then(Value::as_str) {
                Some("ScalingPolicy") => document,
                Some(_) => continue,
                None => document.get("policy").cloned().unwrap_or_else(|| panic!("{file}: neither an object nor a situation")),
            };
            examples.push(Example {
                resource: from_value_strict(&file, policy).unwrap_or_else(|e| panic!("{e}")),
                file: file.clone(),
            });
        }
    }
    let recipes = examples.iter().filter(|e| e.file.starts_with("recipes/")).count();
    assert!(
        recipes >= 6 && examples.len() >= 13,
        "expected the examples and the recipes, found {} ({recipes} recipes)",
        examples.len()
    );
    examples
}

/// `trimtab check -f FILE --prometheus-url URL --current N -o json`: whether it would exit 0, and the JSON.
async fn check(url: &str, example: &Example, replicas: i32) -> (bool, Value) {
    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        prometheus: PrometheusArgs,
    }
    let flags = Flags::parse_from(["trimtab-check", "--prometheus-url", url]);
    let client = PrometheusClient::new(flags.prometheus.settings()).expect("a Prometheus client");
    let policy = Policy::from_spec(&example.resource.spec).unwrap_or_else(|e| panic!("{}: {e}", example.file));
    let current =
        Current { replicas, ready_replicas: None, consecutive_failures: 0, spot_healthy: true, pricing: Pricing::default() };
    let checked = trimtab::cli::check::check(&client, &policy, current.clone()).await;
    let report = checked.report(current, "--current".into());
    let exits_zero = report.objectives.iter().all(|o| o.usable());
    (exits_zero, serde_json::to_value(&report).expect("the report is JSON"))
}

fn objectives(report: &Value) -> &[Value] {
    report["objectives"].as_array().map(Vec::as_slice).unwrap_or_default()
}

// ---- The behaviour ----

#[tokio::test(flavor = "multi_thread")]
async fn every_example_checks_clean_against_a_healthy_app_and_scales_it_down_when_overprovisioned() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Some(world) = world(false) else { return };
    wait_for_full_windows(&world).await;
    let current = REPLICAS as i32;
    let mut failures = Vec::new();
    for example in example_policies() {
        let (exits_zero, report) = check(&world.prometheus.url, &example, current).await;
        let what = format!("{} ({})", example.file, example.resource.metadata.name.as_deref().unwrap_or(""));
        if !exits_zero {
            failures.push(format!("{what}: an objective has no usable value: {}", report["objectives"]));
        }
        for objective in objectives(&report) {
            if objective["warnings"].as_array().is_some_and(|w| !w.is_empty()) {
                failures.push(format!("{what}: {} is warned about: {}", objective["name"], objective["warnings"]));
            }
            if objective["kind"] == "AverageValue" {
                let query = objective_query(&example, objective);
                let expected = expected_total(&example.resource.spec.target_ref.name, &query);
                let value = objective["value"].as_f64();
                if !matches!((value, expected), (Some(v), Some(e)) if (v - e).abs() <= 0.1 * e) {
                    failures.push(format!("{what}: {} reads {value:?}, but the app serves {expected:?}", objective["name"]));
                }
            }
        }
        if report["warnings"].as_array().is_some_and(|w| !w.is_empty()) {
            failures.push(format!("{what}: warned about: {}", report["warnings"]));
        }
        let desired = report["decision"]["desiredReplicas"].as_i64();
        if desired.is_none_or(|d| d >= i64::from(current)) {
            failures.push(format!(
                "{what}: healthy on {current} replicas, more than its load needs, but decides {desired:?}: {}",
                report["decision"]
            ));
        }
    }
    assert!(failures.is_empty(), "examples that do not work against a healthy app:\n  {}", failures.join("\n  "));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_error_rate_objective_reads_the_injected_errors_above_its_target() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Some(world) = world(true) else { return };
    wait_for_full_windows(&world).await;
    let mut failures = Vec::new();
    let mut checked = 0;
    for example in example_policies() {
        let (_, report) = check(&world.prometheus.url, &example, REPLICAS as i32).await;
        for objective in objectives(&report).iter().filter(|o| o["name"] == "error-rate") {
            checked += 1;
            let (value, target) = (objective["value"].as_f64(), objective["target"].as_f64().unwrap_or(f64::NAN));
            if !value.is_some_and(|v| v > target && (v - ERROR_RATIO).abs() <= 0.2 * ERROR_RATIO) {
                failures.push(format!(
                    "{}: error-rate reads {value:?} with {ERROR_RATIO} of requests failing: {objective}",
                    example.file
                ));
            }
        }
    }
    assert!(checked >= 8, "expected an error-rate objective in the web examples and every HTTP recipe, found {checked}");
    assert!(failures.is_empty(), "error-rate objectives that miss the errors:\n  {}", failures.join("\n  "));
}

fn objective_query(example: &Example, objective: &Value) -> String {
    example
        .resource
        .spec
        .objectives
        .iter()
        .find(|o| objective["name"] == o.name.as_str())
        .map(|o| o.query.clone())
        .unwrap_or_default()
}
