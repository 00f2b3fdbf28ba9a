//! The operator's own metrics, and the HTTP endpoints /metrics, /healthz and /readyz.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyLabels {
    pub namespace: String,
    pub policy: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    pub reason: String,
    pub limited_by: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueryErrorLabels {
    pub absence: String,
}

pub struct Telemetry {
    registry: Registry,
    pub reconcile_duration: Histogram,
    pub reconcile_errors: Counter,
    pub decisions: Family<DecisionLabels, Counter>,
    pub query_duration: Histogram,
    pub query_errors: Family<QueryErrorLabels, Counter>,
    pub desired_replicas: Family<PolicyLabels, Gauge>,
    pub current_replicas: Family<PolicyLabels, Gauge>,
    pub cost_per_hour: Family<PolicyLabels, Gauge<f64, AtomicU64>>,
    pub ready: AtomicBool,
}

impl Default for Telemetry {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("trimtab");
        let reconcile_duration = Histogram::new(exponential_buckets(0.005, 2.0, 12));
        registry.register("reconcile_duration_seconds", "Time to reconcile one ScalingPolicy", reconcile_duration.clone());
        let reconcile_errors = Counter::default();
        registry.register("reconcile_errors", "Reconciles that failed and were retried", reconcile_errors.clone());
        let decisions = Family::<DecisionLabels, Counter>::default();
        registry.register("decisions", "Decisions made, by reason and by the stage that limited them", decisions.clone());
        let query_duration = Histogram::new(exponential_buckets(0.001, 2.0, 14));
        registry.register("prometheus_query_duration_seconds", "Latency of Prometheus queries", query_duration.clone());
        let query_errors = Family::<QueryErrorLabels, Counter>::default();
        registry.register(
            "prometheus_query_errors",
            "Prometheus queries without a usable value, by absence",
            query_errors.clone(),
        );
        let desired_replicas = Family::<PolicyLabels, Gauge>::default();
        registry.register("desired_replicas", "Replicas Trimtab decided on", desired_replicas.clone());
        let current_replicas = Family::<PolicyLabels, Gauge>::default();
        registry.register("current_replicas", "Replicas the target had when observed", current_replicas.clone());
        let cost_per_hour = Family::<PolicyLabels, Gauge<f64, AtomicU64>>::default();
        registry.register("cost_per_hour", "Hourly cost of the desired replicas at pool prices", cost_per_hour.clone());
        Telemetry {
            registry,
            reconcile_duration,
            reconcile_errors,
            decisions,
            query_duration,
            query_errors,
            desired_replicas,
            current_replicas,
            cost_per_hour,
            ready: AtomicBool::new(false),
        }
    }
}

impl Telemetry {
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

pub fn router(telemetry: Arc<Telemetry>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(telemetry)
}

async fn metrics(State(telemetry): State<Arc<Telemetry>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], telemetry.encode())
}

async fn readyz(State(telemetry): State<Arc<Telemetry>>) -> impl IntoResponse {
    if telemetry.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting")
    }
}
