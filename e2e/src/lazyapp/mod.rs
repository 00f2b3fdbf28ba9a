//! lazyapp: the second simulated app. Where appsim (Kubernetes-driven) always exports every label
//! set, `code="500"` included, lazyapp exports the way client libraries do: a series exists only
//! from its first observation, so a healthy service has no 5xx series at all. It serves, for each
//! service it is told about, the families every example policy and recipe reads (promhttp,
//! ingress-nginx, Istio, Linkerd, OpenTelemetry, Micrometer; a queue worker's counter and
//! kafka-exporter's consumer lag), with their real label names, units and buckets
//! ([`stacks`]). Latency follows Trimtab's service model at the given load per replica; requests
//! fail only at the `errorRatio` they are told.
//!
//! No Kubernetes: the replicas are a number it is given. Interface:
//! - `PUT /services/{namespace}/{name}` with a [`Service`] (JSON, camelCase): starts or changes one
//! - `GET /metrics`: the text exposition format, as of the moment of the scrape
//!
//! [`LazyApp::start`] serves it in the background for a test; the `lazyapp` binary serves it on an address.

pub mod registry;
pub mod stacks;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, put};
use serde::Deserialize;
use trimtab::sim::service_model::ServiceModel;

use registry::Registry;

/// What a service does: its offered load and how it answers.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Service {
    /// Requests (or, for a worker, messages) per second, spread evenly over the replicas.
    pub rps: f64,
    /// The share of requests answered 500; 0 (the default) means no 5xx series ever appears.
    #[serde(default)]
    pub error_ratio: f64,
    /// Ready replicas: one pod label each, and the capacity the latency follows.
    pub replicas: u32,
    #[serde(default)]
    pub model: ServiceModel,
    /// A queue worker consuming a Kafka topic instead of serving HTTP.
    #[serde(default)]
    pub worker: Option<Worker>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Worker {
    pub topic: String,
    pub partitions: usize,
    /// How far behind the consumer group is, in seconds of production: its lag is `rps × backlogSeconds`.
    pub backlog_seconds: f64,
}

impl Service {
    /// A web service at `rps`, on `replicas` replicas of 50 requests/s each, 20 ms base latency.
    pub fn web(rps: f64, replicas: u32) -> Service {
        let model = ServiceModel { capacity_per_replica: 50.0, base_latency_seconds: 0.02, ..ServiceModel::default() };
        Service { rps, error_ratio: 0.0, replicas, model, worker: None }
    }

    fn check(&self) -> Result<(), String> {
        let finite = |v: f64| v.is_finite() && v >= 0.0;
        if !finite(self.rps) || !(0.0..=1.0).contains(&self.error_ratio) || self.replicas == 0 {
            return Err("rps must be a number >= 0, errorRatio within [0, 1], replicas at least 1".into());
        }
        match &self.worker {
            Some(w) if w.partitions == 0 || !finite(w.backlog_seconds) => {
                Err("worker.partitions must be at least 1 and worker.backlogSeconds a number >= 0".into())
            }
            _ => Ok(()),
        }
    }
}

/// One pod's requests not yet whole (a fraction of a request carries over to the next scrape).
#[derive(Default, Clone)]
struct Carry {
    requests: f64,
    errors: f64,
}

struct Running {
    service: Service,
    carries: Vec<Carry>,
    /// Per partition: messages produced so far (the log end offset, fractional).
    produced: Vec<f64>,
}

#[derive(Default)]
struct Inner {
    registry: Registry,
    services: BTreeMap<(String, String), Running>,
    last: Option<Instant>,
}

impl Inner {
    /// Serves the time since the last call at each service's load.
    fn advance(&mut self, now: Instant) {
        let dt = self.last.map_or(0.0, |last| now.duration_since(last).as_secs_f64());
        self.last = Some(now);
        for ((namespace, name), running) in self.services.iter_mut() {
            let service = &running.service;
            let state = service.model.evaluate(service.rps, f64::from(service.replicas));
            running.carries.resize(service.replicas as usize, Carry::default());
            let per_pod = service.rps / f64::from(service.replicas) * dt;
            for (index, carry) in running.carries.iter_mut().enumerate() {
                carry.requests += per_pod;
                let n = carry.requests.floor();
                carry.requests -= n;
                carry.errors += n * service.error_ratio;
                let failed = carry.errors.floor();
                carry.errors -= failed;
                let pod = stacks::Pod {
                    namespace,
                    app: name,
                    name: pod_name(name, index),
                    ip: format!("10.244.{}.{}", 1 + index / 200, 10 + index % 200),
                };
                match &service.worker {
                    None => {
                        stacks::http(&mut self.registry, &pod, 200, (n - failed) as u64, &state);
                        stacks::http(&mut self.registry, &pod, 500, failed as u64, &state);
                    }
                    Some(worker) => stacks::consumed(&mut self.registry, namespace, &pod.name, &worker.topic, n as u64),
                }
            }
            if let Some(worker) = &service.worker {
                running.produced.resize(worker.partitions, 0.0);
                let share = service.rps / worker.partitions as f64;
                let lag = (share * worker.backlog_seconds).round() as u64;
                let mut total = 0;
                for (partition, produced) in running.produced.iter_mut().enumerate() {
                    *produced += share * dt;
                    let end = produced.floor() as u64;
                    let committed = end.saturating_sub(lag);
                    total += end - committed;
                    stacks::partition(&mut self.registry, name, &worker.topic, partition, end, committed);
                }
                stacks::group(&mut self.registry, name, &worker.topic, total, service.replicas as usize);
            }
        }
    }
}

/// A pod name as a Deployment's ReplicaSet makes them.
fn pod_name(app: &str, index: usize) -> String {
    const SUFFIXES: [&str; 8] = ["x7k2p", "m4q9z", "b8r3t", "w2n6c", "h5j8d", "p9v4f", "t3c7g", "z6d2k"];
    format!(
        "{app}-6c9f7d5b8-{}{}",
        SUFFIXES[index % SUFFIXES.len()],
        if index < SUFFIXES.len() { String::new() } else { index.to_string() }
    )
}

/// The app's state, shared by its HTTP handlers.
#[derive(Clone)]
pub struct App {
    inner: Arc<Mutex<Inner>>,
}

impl Default for App {
    fn default() -> Self {
        let mut inner = Inner::default();
        stacks::declare(&mut inner.registry);
        App { inner: Arc::new(Mutex::new(inner)) }
    }
}

impl App {
    /// Starts or changes a service; what it served so far stays counted.
    pub fn set(&self, namespace: &str, name: &str, service: Service) -> Result<(), String> {
        service.check()?;
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.advance(Instant::now());
        let key = (namespace.to_owned(), name.to_owned());
        match inner.services.get_mut(&key) {
            Some(running) => running.service = service,
            None => {
                inner.services.insert(key, Running { service, carries: Vec::new(), produced: Vec::new() });
            }
        }
        Ok(())
    }

    /// What a scrape returns now.
    pub fn metrics(&self) -> String {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.advance(Instant::now());
        inner.registry.render()
    }

    pub fn router(self) -> Router {
        Router::new()
            .route("/metrics", get(metrics))
            .route("/healthz", get(|| async { "ok" }))
            .route("/services/{namespace}/{name}", put(put_service))
            .with_state(self)
    }
}

async fn metrics(State(app): State<App>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], app.metrics())
}

async fn put_service(
    State(app): State<App>,
    Path((namespace, name)): Path<(String, String)>,
    axum::Json(service): axum::Json<Service>,
) -> (StatusCode, String) {
    match app.set(&namespace, &name, service) {
        Ok(()) => (StatusCode::NO_CONTENT, String::new()),
        Err(message) => (StatusCode::UNPROCESSABLE_ENTITY, message),
    }
}

/// lazyapp served in the background on a free local port, for as long as it lives.
pub struct LazyApp {
    pub app: App,
    pub address: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LazyApp {
    /// Serves on 127.0.0.1 (a free port) from a thread of its own, so that it outlives the
    /// runtime of any one test.
    pub fn start() -> std::io::Result<LazyApp> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        let app = App::default();
        let router = app.clone().router();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
                let _ = axum::serve(listener, router)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await;
            });
        });
        Ok(LazyApp { app, address, stop: Some(stop), thread: Some(thread) })
    }
}

impl Drop for LazyApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrape_after(app: &App, seconds: f64) -> String {
        let mut inner = app.inner.lock().unwrap_or_else(|e| e.into_inner());
        let later = inner.last.unwrap_or_else(Instant::now) + std::time::Duration::from_secs_f64(seconds);
        inner.advance(later);
        inner.registry.render()
    }

    #[test]
    fn a_healthy_service_has_no_failure_series_in_any_stack_until_it_is_told_to_fail() {
        let app = App::default();
        app.set("shop", "checkout", Service::web(100.0, 4)).expect("a valid service");
        let healthy = scrape_after(&app, 10.0);
        for failure in ["code=\"500\"", "status=\"500\"", "response_code=\"500\"", "classification=\"failure\"", "SERVER_ERROR"] {
            assert!(!healthy.contains(failure), "{failure} before any failure");
        }
        assert!(healthy.contains("http_requests_total{namespace=\"shop\",pod=\"checkout-6c9f7d5b8-x7k2p\",app=\"checkout\",code=\"200\",method=\"get\"} 250\n"));

        app.set("shop", "checkout", Service { error_ratio: 0.1, ..Service::web(100.0, 4) }).expect("a valid service");
        let failing = scrape_after(&app, 10.0);
        for failure in ["code=\"500\"", "status=\"500\"", "response_code=\"500\"", "classification=\"failure\"", "SERVER_ERROR"] {
            assert!(failing.contains(failure), "{failure} once requests fail");
        }
    }

    #[test]
    fn a_workers_consumer_lag_is_its_backlog_spread_over_the_partitions() {
        let app = App::default();
        let worker = Worker { topic: "invoices".into(), partitions: 4, backlog_seconds: 2.0 };
        app.set("billing", "invoice-worker", Service { worker: Some(worker), ..Service::web(40.0, 2) }).expect("valid");
        let text = scrape_after(&app, 30.0);
        assert!(text.contains(
            "kafka_consumergroup_lag{namespace=\"kafka\",pod=\"kafka-exporter-7c9b6d4f8-p2m7x\",consumergroup=\"invoice-worker\",partition=\"3\",topic=\"invoices\"} 20\n"
        ), "{text}");
        assert!(text.contains("consumergroup=\"invoice-worker\",topic=\"invoices\"} 80\n"), "the group's lag_sum: {text}");
        assert!(!text.contains("http_requests_total{"), "a worker serves no HTTP");
    }
}
