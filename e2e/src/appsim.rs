//! Driving the simulated app (started by `just e2e` at APPSIM_ADDR).

use serde_json::json;

pub fn address() -> String {
    std::env::var("APPSIM_ADDR").unwrap_or_else(|_| "127.0.0.1:18080".into())
}

async fn put(path: &str, body: serde_json::Value) {
    let url = format!("http://{}{path}", address());
    let response = reqwest::Client::new()
        .put(&url)
        .json(&body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("appsim at {url} is not answering: {e}"));
    assert!(response.status().is_success(), "PUT {url} answered {}", response.status());
}

pub async fn set_load(namespace: &str, deployment: &str, rps: f64) {
    put(&format!("/load/{namespace}/{deployment}"), json!({"rps": rps})).await;
}

pub async fn set_model(namespace: &str, deployment: &str, capacity_per_replica: f64, base_latency_seconds: f64) {
    put(
        &format!("/model/{namespace}/{deployment}"),
        json!({"capacityPerReplica": capacity_per_replica, "baseLatencySeconds": base_latency_seconds}),
    )
    .await;
}

/// The p99 latency query for a Deployment driven by appsim.
pub fn p99_query(namespace: &str, deployment: &str, window: &str) -> String {
    format!(
        r#"histogram_quantile(0.99, sum by (le) (rate(app_request_duration_seconds_bucket{{namespace="{namespace}",deployment="{deployment}"}}[{window}])))"#
    )
}

/// The throughput query (requests/s, all codes) for a Deployment driven by appsim.
pub fn load_query(namespace: &str, deployment: &str, window: &str) -> String {
    format!(r#"sum(rate(app_requests_total{{namespace="{namespace}",deployment="{deployment}"}}[{window}]))"#)
}

/// The Ready replicas (every pool) of a Deployment driven by appsim, as appsim sees them.
pub fn ready_query(namespace: &str, deployment: &str) -> String {
    format!(r#"sum(app_ready_replicas{{namespace="{namespace}",deployment="{deployment}"}})"#)
}

/// The usual scenario start: the CRDs installed, a Deployment `web` of `replicas` on on-demand
/// nodes, modelled at 50 rps per replica and 50 ms base latency, offered `rps`.
pub async fn web_under_load(client: &kube::Client, namespace: &str, replicas: i32, rps: f64) {
    crate::cluster::install_crds(client).await;
    crate::cluster::apply_deployment(client, &crate::cluster::deployment(namespace, "web", replicas, false)).await;
    set_model(namespace, "web", 50.0, 0.05).await;
    set_load(namespace, "web", rps).await;
}
