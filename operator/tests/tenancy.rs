//! Tenants cannot read each other's metrics. A real Prometheus holds the series of namespaces `a`
//! and `b`; between it and Trimtab a logging proxy records every query it forwards and every answer.
//! Driven through `trimtab check --enforce-namespace-label namespace` (the binary) and through the
//! operator's query path (the policy's queries as `Tenancy` sends them, through `PrometheusClient`),
//! a policy of namespace `a` never gets a series of `b`: what could read one is refused before
//! anything is sent, and everything else reaches Prometheus with `namespace="a"` on every selector.

use std::process::Output;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use promql_parser::label::MatchOp;
use promql_parser::parser::{self, Expr, VectorSelector};
use serde_json::{Value, json};
use trimtab::engine::{Policy, Sample};
use trimtab::metrics::tenancy::Tenancy;
use trimtab::metrics::{MetricsSource, PrometheusClient, PrometheusSettings, QueryOutcome, RangeOutcome, query_all};

#[path = "common/check.rs"]
mod check_harness;
#[path = "common/prometheus.rs"]
mod prometheus_harness;
use check_harness::manifest;
use prometheus_harness::{Prometheus, prometheus_binary};
#[path = "common/proxy.rs"]
mod proxy;
use proxy::{Forwarded, Proxy};

const READY_DEADLINE: Duration = Duration::from_secs(90);
/// How a leak would show in an answer: Prometheus's JSON has no spaces.
const NAMESPACE_B: &str = r#""namespace":"b""#;

/// Both namespaces run `web` (b at three times a's rate); only b has `revenue_total`.
fn metrics_text(elapsed: f64) -> String {
    let count = (elapsed * 10.0).floor();
    format!(
        "# TYPE http_requests_total counter\n\
         http_requests_total{{namespace=\"a\",app=\"web\",code=\"200\"}} {count}\n\
         http_requests_total{{namespace=\"b\",app=\"web\",code=\"200\"}} {}\n\
         # TYPE revenue_total counter\nrevenue_total{{namespace=\"b\"}} 1234\n\
         # TYPE queue_depth gauge\nqueue_depth{{namespace=\"a\",path=\"/a\\\"b\"}} 5\n",
        count * 3.0
    )
}

// ---- Prometheus with both namespaces' series ----

fn client(url: &str, headers: Vec<(String, String)>, token: Option<std::path::PathBuf>) -> PrometheusClient {
    let _ = rustls::crypto::ring::default_provider().install_default();
    PrometheusClient::new(PrometheusSettings {
        url: url.to_owned(),
        timeout: Duration::from_secs(5),
        staleness: Duration::from_secs(300),
        bearer_token_file: token,
        username: None,
        password_file: None,
        ca_file: None,
        max_response_bytes: trimtab::metrics::DEFAULT_MAX_RESPONSE_BYTES,
        max_concurrency: 4,
        headers,
    })
    .expect("a client")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime")
}

/// One Prometheus for the tests running at the same time (the last one to let go stops it), once
/// both namespaces' request rates are readable over a full 5s window.
fn prometheus() -> Option<Arc<Prometheus>> {
    static SHARED: Mutex<Weak<Prometheus>> = Mutex::new(Weak::new());
    let binary = prometheus_binary()?;
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(running) = shared.upgrade() {
        return Some(running);
    }
    let prometheus = Arc::new(Prometheus::start(binary, metrics_text, "1s"));
    *shared = Arc::downgrade(&prometheus);
    let direct = client(&prometheus.url, vec![], None);
    let deadline = Instant::now() + READY_DEADLINE;
    let runtime = runtime();
    loop {
        let rate = runtime.block_on(direct.report(r#"sum(rate(http_requests_total{namespace="b"}[5s]))"#));
        if matches!(rate.outcome, QueryOutcome::Sample(Sample::Value(v)) if v > 20.0) {
            return Some(prometheus);
        }
        assert!(Instant::now() < deadline, "Prometheus had no series in time; its log:\n{}", prometheus.log());
        std::thread::sleep(Duration::from_millis(200)); // polling interval of the condition wait
    }
}

// ---- Driving `trimtab check` ----

fn policy(objectives: Value) -> String {
    manifest("a", "web", 1, 10, objectives)
}

/// `trimtab check` at 2 replicas, its report as JSON.
fn check(url: &str, policy: &str, extra: &[&str]) -> Output {
    check_harness::check(url, policy, &[&["--current", "2", "-o", "json"][..], extra].concat())
}

const ENFORCE: [&str; 2] = ["--enforce-namespace-label", "namespace"];

/// Every selector of the query has exactly the matcher `namespace="a"` on `namespace`.
fn assert_confined(query: &str) {
    fn selectors(expr: &Expr, out: &mut Vec<VectorSelector>) {
        match expr {
            Expr::VectorSelector(s) => out.push(s.clone()),
            Expr::MatrixSelector(m) => out.push(m.vs.clone()),
            Expr::Paren(p) => selectors(&p.expr, out),
            Expr::Unary(u) => selectors(&u.expr, out),
            Expr::Subquery(s) => selectors(&s.expr, out),
            Expr::Binary(b) => {
                selectors(&b.lhs, out);
                selectors(&b.rhs, out);
            }
            Expr::Aggregate(a) => {
                selectors(&a.expr, out);
                if let Some(p) = &a.param {
                    selectors(p, out);
                }
            }
            Expr::Call(c) => c.args.args.iter().for_each(|a| selectors(a, out)),
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
        }
    }
    let expr = parser::parse(query).unwrap_or_else(|e| panic!("Prometheus was sent {query}, which does not parse: {e}"));
    let mut found = Vec::new();
    selectors(&expr, &mut found);
    assert!(!found.is_empty(), "{query} selects nothing");
    for selector in found {
        let on_namespace: Vec<_> = selector.matchers.matchers.iter().filter(|m| m.name == "namespace").collect();
        assert!(
            on_namespace.len() == 1 && on_namespace[0].op == MatchOp::Equal && on_namespace[0].value == "a",
            "{selector} in {query} is not confined to namespace a"
        );
    }
}

fn queries(forwarded: &[Forwarded]) -> Vec<&str> {
    forwarded.iter().filter_map(|f| f.query.as_deref()).collect()
}

#[test]
fn queries_that_could_read_another_namespace_are_refused_before_anything_is_sent() {
    let Some(prometheus) = prometheus() else { return };
    let proxy = Proxy::start(&prometheus.url);
    for (query, refused) in [
        (r#"sum(rate(http_requests_total{namespace="b"}[5s]))"#, r#"namespace="b""#),
        (r#"sum(rate(http_requests_total{namespace=~".+"}[5s]))"#, r#"namespace=~".+""#),
        (r#"sum(rate(http_requests_total{namespace!="a"}[5s]))"#, r#"namespace!="a""#),
    ] {
        let objectives = json!([
            {"name": "rps", "kind": "AverageValue", "query": "sum(rate(http_requests_total[5s]))", "target": "5"},
            {"name": "leak", "kind": "Ceiling", "query": query, "target": "1"}
        ]);
        let output = check(&proxy.url, &policy(objectives), &ENFORCE);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{query}: {stderr}");
        assert!(
            stderr.contains(&format!("spec.objectives[1].query: http_requests_total{{{refused}}} selects {refused}")),
            "{stderr}"
        );
        assert!(stderr.contains("PolicyInvalid") && stderr.contains(r#"write namespace="a""#), "{stderr}");
        assert!(output.stdout.is_empty());
        assert_eq!(queries(&proxy.take()), Vec::<&str>::new(), "{query}: nothing reaches Prometheus");
    }
}

#[test]
fn ranges_no_objective_needs_are_refused_in_every_mode() {
    let Some(prometheus) = prometheus() else { return };
    let proxy = Proxy::start(&prometheus.url);
    for (query, message) in [
        ("sum(rate(http_requests_total[2h]))", "the range [2h] is longer than 1h"),
        ("max_over_time(sum(http_requests_total)[5m:100ms])", "the subquery step :100ms] is shorter than 1s"),
    ] {
        let objectives = json!([{"name": "rps", "kind": "AverageValue", "query": query, "target": "5"}]);
        for extra in [&ENFORCE[..], &[]] {
            let output = check(&proxy.url, &policy(objectives.clone()), extra);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(2), "{query} {extra:?}: {stderr}");
            assert!(stderr.contains(&format!("spec.objectives[0].query: {message}")), "{stderr}");
        }
        assert_eq!(queries(&proxy.take()), Vec::<&str>::new(), "{query}: nothing reaches Prometheus");
    }
}

#[test]
fn confined_queries_reach_prometheus_with_the_namespace_and_no_answer_holds_another_namespaces_series() {
    let Some(prometheus) = prometheus() else { return };
    let proxy = Proxy::start(&prometheus.url);
    let objectives = json!([
        {"name": "rps", "kind": "AverageValue", "query": "sum(rate(http_requests_total[5s]))", "target": "5"},
        {"name": "queue", "kind": "Ceiling", "query": "sum(queue_depth) or revenue_total", "target": "10"},
        {"name": "everything", "kind": "Ceiling", "query": r#"{__name__=~".+"}"#, "target": "1"},
        {"name": "own", "kind": "Ceiling", "query": r#"max(queue_depth{namespace="a"})"#, "target": "10"}
    ]);
    let tenant = ["--prometheus-header", "X-Scope-OrgID=team-a"];
    let output = check(&proxy.url, &policy(objectives.clone()), &[&ENFORCE[..], &tenant].concat());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "`everything` has several series, so no usable value: {stderr}");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    let objective = |name: &str| report["objectives"].as_array().and_then(|all| all.iter().find(|o| o["name"] == name)).cloned();
    let objective = |name: &str| objective(name).unwrap_or_else(|| panic!("{name} in {report}"));
    let rps = objective("rps")["value"].as_f64().expect("a request rate");
    assert!((5.0..20.0).contains(&rps), "namespace a's 10/s, not a+b's 40/s: {rps}");
    assert_eq!(objective("queue")["value"], json!(5.0), "`or revenue_total` finds no revenue in namespace a");
    assert_eq!(objective("everything")["series"], json!(2), "namespace a's two series, not b's, not Prometheus's own");
    assert_eq!(objective("own")["query"], json!(r#"max(queue_depth{namespace="a"})"#), "kept as written");
    assert_eq!(objective("rps")["query"], json!(r#"sum(rate(http_requests_total{namespace="a"}[5s]))"#));

    let forwarded = proxy.take();
    let sent = queries(&forwarded);
    assert!(sent.len() >= 4, "each objective's query, and the warnings' own: {sent:?}");
    for query in &sent {
        assert_confined(query);
    }
    for answer in &forwarded {
        assert!(!answer.answer.contains(NAMESPACE_B), "{} answered a series of namespace b: {}", answer.path, answer.answer);
        assert_eq!(answer.headers.get("x-scope-orgid").map(|v| v.as_bytes()), Some(&b"team-a"[..]), "{}", answer.path);
    }
    assert!(forwarded.iter().any(|f| f.answer.contains(r#""namespace":"a""#)), "series of a were read: the proxy sees answers");

    // The same policy unconfined: the proxy does see b's series, so the assertions above can fail.
    let output = check(&proxy.url, &policy(objectives), &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(proxy.take().iter().any(|f| f.answer.contains(NAMESPACE_B)), "unconfined, namespace b's series are read");
}

#[test]
fn the_operators_queries_are_confined_and_carry_the_tenant_header_and_the_token() {
    let Some(prometheus) = prometheus() else { return };
    let proxy = Proxy::start(&prometheus.url);
    let token = std::env::temp_dir().join(format!("trimtab-tenancy-token-{}", std::process::id()));
    std::fs::write(&token, "s3cret\n").expect("write the token");
    let headers = vec![("X-Scope-OrgID".to_owned(), "team-a".to_owned())];
    let client = client(&proxy.url, headers, Some(token.clone()));
    let spec: trimtab::api::ScalingPolicySpec = serde_json::from_value(json!({
        "targetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 1, "maxReplicas": 10,
        "objectives": [
            {"name": "rps", "kind": "AverageValue", "query": "sum(rate(http_requests_total[5s]))", "target": "5"},
            {"name": "revenue", "kind": "Ceiling", "query": "sum(revenue_total) or vector(0)", "target": "1"}
        ],
        "forecast": {"loadQuery": "sum(rate(http_requests_total[5s]))", "readyReplicasQuery": "count(http_requests_total)"}
    }))
    .expect("a spec");
    let tenancy = Tenancy::new(Some("namespace".into()));
    let rules = tenancy.policy(&Policy::from_spec(&spec).expect("valid"), "a").expect("confined");
    let forecast = rules.forecast.clone().expect("a forecast");
    let runtime = runtime();
    let outcomes = runtime.block_on(query_all(&client, rules.objectives.iter().map(|o| o.query.as_str())));
    let samples = trimtab::metrics::samples(&rules, &outcomes).expect("none rejected");
    assert!(matches!(samples["rps"], Sample::Value(v) if (5.0..20.0).contains(&v)), "{samples:?}");
    assert_eq!(samples["revenue"], Sample::Value(0.0), "namespace a has no revenue_total");
    for query in [&forecast.load_query, forecast.ready_replicas_query.as_ref().expect("given")] {
        let range = runtime.block_on(client.query_range(query, 1));
        assert!(matches!(range, RangeOutcome::Minutes(_) | RangeOutcome::Absent(_)), "{query}: {range:?}");
    }

    let forwarded = proxy.take();
    assert!(forwarded.iter().any(|f| f.path == "/api/v1/query_range"), "the forecast's range queries went through");
    // Two objectives, the age query of each (staleness, derived from the confined text) and two ranges.
    assert_eq!(queries(&forwarded).len(), 6, "{:?}", queries(&forwarded));
    for request in &forwarded {
        assert_confined(request.query.as_deref().expect("a query"));
        assert!(!request.answer.contains(NAMESPACE_B), "{}", request.answer);
        assert_eq!(request.headers.get("x-scope-orgid").map(|v| v.as_bytes()), Some(&b"team-a"[..]));
        assert_eq!(request.headers.get("authorization").map(|v| v.as_bytes()), Some(&b"Bearer s3cret"[..]));
    }
    let _ = std::fs::remove_file(&token);
}

#[test]
fn re_printed_queries_are_what_prometheus_accepts() {
    let Some(prometheus) = prometheus() else { return };
    let direct = client(&prometheus.url, vec![], None);
    let runtime = runtime();
    let queries = [
        "sum(rate(http_requests_total[90s]))",
        "sum(rate(http_requests_total[1500ms] offset -1s))",
        "sum(http_requests_total @ end())",
        r#"sum(queue_depth{path="/a\"b"})"#,
        r#"sum(queue_depth{path=~"/a\\\"?b|\\d+"})"#,
        r#"count({__name__=~"http_.+|queue_depth"})"#,
        "max_over_time(sum(rate(http_requests_total[5s]))[1m:1s] offset 1s) > bool -Inf",
        "histogram_quantile(0.99, sum by (le) (rate(latency_bucket[5m]))) or on () vector(1e-3)",
        r#"sum by (app) (label_replace(http_requests_total, "dst", "$1", "app", "(.*)")) / ignoring (dst) group_left sum by (app) (http_requests_total)"#,
        r#"count_values("v", queue_depth) and topk(1, queue_depth) unless bottomk(1, queue_depth)"#,
    ];
    for query in queries {
        let sent = trimtab::metrics::tenancy::confine(query, "namespace", "a").unwrap_or_else(|e| panic!("{query}: {e}"));
        let outcome = runtime.block_on(direct.report(&sent)).outcome;
        assert!(!matches!(outcome, QueryOutcome::Rejected(_)), "{query} re-printed as {sent}: {outcome:?}");
    }
    let escaped = trimtab::metrics::tenancy::confine(r#"sum(queue_depth{path="/a\"b"})"#, "namespace", "a").expect("confined");
    assert_eq!(runtime.block_on(direct.report(&escaped)).outcome, QueryOutcome::Sample(Sample::Value(5.0)), "the escape kept");
}
