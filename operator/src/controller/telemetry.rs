//! The operator's own metrics, and the HTTP endpoints /metrics, /healthz and /readyz.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

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

use kube::runtime::reflector::Store;

use crate::api::ScalingPolicy;
use crate::engine::Policy;

/// A leader that has completed no round for five of its shortest policy interval (and at least
/// five minutes) while valid policies exist has stopped making progress: /healthz fails, so the
/// kubelet restarts it and the standby takes over. (Invalid policies wait for an edit: no rounds.)
const STALL_INTERVALS: u32 = 5;
const STALL_AT_LEAST: Duration = Duration::from_secs(300);

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
    /// This replica holds the leader Lease and runs the controller.
    pub leading: AtomicBool,
    /// Unix seconds of the newest round that completed (well or not).
    pub last_round_unix: AtomicU64,
    /// The policies this replica knows of (set once the caches are up).
    pub policies: OnceLock<Store<ScalingPolicy>>,
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
            leading: AtomicBool::new(false),
            last_round_unix: AtomicU64::new(0),
            policies: OnceLock::new(),
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

    /// A round completed: progress, for /healthz.
    pub fn round_completed(&self) {
        self.last_round_unix.store(unix_now(), Ordering::Relaxed);
    }

    /// The controller started (or stopped) on this replica.
    pub fn set_leading(&self, leading: bool) {
        if leading {
            // Leading starts the clock: a new leader has had no chance to complete a round yet.
            self.round_completed();
        }
        self.leading.store(leading, Ordering::Relaxed);
    }

    /// Why this replica is not healthy, if it is not: it leads, valid policies exist, and no round
    /// has completed for [`STALL_INTERVALS`] of their shortest interval.
    pub fn stalled(&self, now_unix: u64) -> Option<String> {
        if !self.leading.load(Ordering::Relaxed) {
            return None;
        }
        let idle = now_unix.saturating_sub(self.last_round_unix.load(Ordering::Relaxed));
        if idle <= STALL_AT_LEAST.as_secs() {
            return None; // the cheap answer, for nearly every probe
        }
        let intervals: Vec<Duration> = self
            .policies
            .get()
            .map(|store| store.state().iter().filter_map(|p| Policy::from_spec(&p.spec).ok()).map(|p| p.interval).collect())
            .unwrap_or_default();
        let shortest = intervals.iter().min()?;
        let stall_after = (*shortest * STALL_INTERVALS).max(STALL_AT_LEAST);
        (idle > stall_after.as_secs()).then(|| {
            format!(
                "no round completed for {idle} s with {} valid policies to reconcile (limit {stall_after:?})",
                intervals.len()
            )
        })
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `/metrics`; `/healthz`: liveness (the process serves, and a leader makes progress); `/readyz`:
/// true on the replica that leads and runs the controller.
pub fn router(telemetry: Arc<Telemetry>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(telemetry)
}

async fn metrics(State(telemetry): State<Arc<Telemetry>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], telemetry.encode())
}

async fn healthz(State(telemetry): State<Arc<Telemetry>>) -> impl IntoResponse {
    match telemetry.stalled(unix_now()) {
        None => (StatusCode::OK, "ok".to_owned()),
        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, why),
    }
}

async fn readyz(State(telemetry): State<Arc<Telemetry>>) -> impl IntoResponse {
    if telemetry.leading.load(Ordering::Relaxed) {
        (StatusCode::OK, "leading")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "standby")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_standby_or_a_leader_without_policies_is_healthy_however_long_it_idles() {
        let telemetry = Telemetry::default();
        assert_eq!(telemetry.stalled(u64::MAX / 2), None, "standby");
        telemetry.set_leading(true);
        assert_eq!(telemetry.stalled(u64::MAX / 2), None, "no policies known");
    }

    #[test]
    fn a_leader_that_completes_no_round_while_policies_exist_is_unhealthy_after_the_stall_time() {
        let telemetry = Telemetry::default();
        let (store, mut writer) = {
            let mut writer = kube::runtime::reflector::store::Writer::<ScalingPolicy>::default();
            (writer.as_reader(), {
                let policy: ScalingPolicy = serde_json::from_value(serde_json::json!({
                    "apiVersion": "trimtab.dev/v1alpha1", "kind": "ScalingPolicy",
                    "metadata": {"name": "web", "namespace": "shop"},
                    "spec": {"targetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 3,
                             "objectives": [{"name": "rps", "kind": "AverageValue", "query": "q", "target": "1"}]}
                }))
                .expect("a policy");
                writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(policy));
                writer
            })
        };
        let _ = telemetry.policies.set(store);
        telemetry.set_leading(true);
        // The policy's interval is the default 15 s: five of them are under the five-minute floor.
        let started = telemetry.last_round_unix.load(Ordering::Relaxed);
        assert_eq!(telemetry.stalled(started + 300), None);
        assert!(telemetry.stalled(started + 301).is_some());
        telemetry.round_completed();
        assert_eq!(telemetry.stalled(unix_now() + 60), None, "progress again");
        writer.apply_watcher_event(&kube::runtime::watcher::Event::Delete(
            serde_json::from_value(serde_json::json!({
                "apiVersion": "trimtab.dev/v1alpha1", "kind": "ScalingPolicy", "metadata": {"name": "web", "namespace": "shop"},
                "spec": {"targetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 3, "objectives": []}
            }))
            .expect("a policy"),
        ));
        assert_eq!(telemetry.stalled(u64::MAX / 2), None, "nothing left to reconcile");
    }
}
