//! appsim: a simulated app for end-to-end tests and benchmarks.
//!
//! It watches each driven Deployment's Ready pods through the API server (counting them per node
//! pool) and serves Prometheus metrics whose latency and errors come from Trimtab's service model
//! (`trimtab::sim::service_model`, the same one `trimtab simulate` uses): they rise sharply as load
//! per Ready replica nears capacity, and recover when replicas are added.
//!
//! Interface (other tests and benchmarks drive it):
//! - `appsim --listen 127.0.0.1:PORT [--kubeconfig PATH] [--traces-dir DIR]`
//! - `PUT /load/{namespace}/{deployment}` `{"rps": 120.0}`: the offered load
//! - `PUT /model/{namespace}/{deployment}` `{"capacityPerReplica": 50.0, "baseLatencySeconds": 0.05}`
//! - `PUT /trace/{namespace}/{deployment}` `{"file": "nasa-1995-per-minute.csv", "scale": 0.001, "minutesPerSecond": 1.0}`
//! - `GET /metrics`: `app_requests_total{namespace,deployment,code}`,
//!   `app_request_duration_seconds{namespace,deployment}` (histogram),
//!   `app_ready_replicas{namespace,deployment,pool}`, `app_offered_load{namespace,deployment}`

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use clap::Parser;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Api, Client, ResourceExt};
use serde::Deserialize;
use trimtab::placement::webhook::deployment_of;
use trimtab::sim::service_model::ServiceModel;
use trimtab::sim::trace::{self, Trace};

/// Histogram bucket bounds (seconds): fine around typical latency objectives.
const BUCKETS: [f64; 18] = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0];
const TICK: Duration = Duration::from_millis(500);

#[derive(Parser)]
#[command(name = "appsim", about = "A simulated app whose latency depends on its Ready replicas")]
struct Args {
    /// Address to serve /metrics and the control API on.
    #[arg(long, default_value = "127.0.0.1:18080")]
    listen: SocketAddr,
    /// Kubeconfig of the cluster whose Deployments are simulated (default: KUBECONFIG or in-cluster).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Where trace files named by PUT /trace are looked up.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../traces"))]
    traces_dir: PathBuf,
}

type Key = (String, String);

enum Load {
    Fixed(f64),
    Replay { trace: Trace, scale: f64, minutes_per_second: f64, started: Instant },
}

impl Load {
    fn rps(&self) -> f64 {
        match self {
            Load::Fixed(rps) => *rps,
            Load::Replay { trace, scale, minutes_per_second, started } => {
                // Past the end, the trace starts over.
                let minute = (started.elapsed().as_secs_f64() * minutes_per_second) as usize % trace.len().max(1);
                trace::rps(trace.requests_per_minute.get(minute).copied().unwrap_or(0.0), *scale)
            }
        }
    }
}

struct Workload {
    load: Load,
    model: ServiceModel,
    ok: f64,
    errors: f64,
    /// Cumulative request counts at or under each bucket bound, then the total.
    buckets: [f64; BUCKETS.len()],
    count: f64,
    sum: f64,
    ready: BTreeMap<String, usize>,
}

impl Workload {
    fn new() -> Self {
        Workload {
            load: Load::Fixed(0.0),
            model: ServiceModel::default(),
            ok: 0.0,
            errors: 0.0,
            buckets: [0.0; BUCKETS.len()],
            count: 0.0,
            sum: 0.0,
            ready: BTreeMap::new(),
        }
    }

    /// Serves `dt` seconds of load with `ready` replicas, per the service model.
    fn serve(&mut self, dt: f64) {
        let replicas: usize = self.ready.values().sum();
        let rps = self.load.rps();
        let requests = rps * dt;
        let state = self.model.evaluate(rps, replicas as f64);
        self.errors += requests * state.error_rate;
        let served = requests * (1.0 - state.error_rate);
        self.ok += served;
        for (i, bound) in BUCKETS.iter().enumerate() {
            self.buckets[i] += served * state.latency_cdf(*bound);
        }
        self.count += served;
        self.sum += served * state.mean_latency();
    }
}

#[derive(Clone)]
struct App {
    workloads: Arc<Mutex<BTreeMap<Key, Workload>>>,
    traces_dir: PathBuf,
}

impl App {
    fn with_workload<T>(&self, namespace: String, deployment: String, f: impl FnOnce(&mut Workload) -> T) -> T {
        let mut workloads = self.workloads.lock().unwrap_or_else(|e| e.into_inner());
        f(workloads.entry((namespace, deployment)).or_insert_with(Workload::new))
    }
}

#[derive(Deserialize)]
struct LoadRequest {
    rps: f64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ModelRequest {
    capacity_per_replica: Option<f64>,
    base_latency_seconds: Option<f64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TraceRequest {
    file: String,
    #[serde(default = "one")]
    scale: f64,
    #[serde(default = "one")]
    minutes_per_second: f64,
}

fn one() -> f64 {
    1.0
}

async fn put_load(
    State(app): State<App>,
    Path((namespace, deployment)): Path<(String, String)>,
    axum::Json(body): axum::Json<LoadRequest>,
) -> StatusCode {
    if !(body.rps.is_finite() && body.rps >= 0.0) {
        return StatusCode::UNPROCESSABLE_ENTITY;
    }
    app.with_workload(namespace, deployment, |w| w.load = Load::Fixed(body.rps));
    StatusCode::NO_CONTENT
}

async fn put_model(
    State(app): State<App>,
    Path((namespace, deployment)): Path<(String, String)>,
    axum::Json(body): axum::Json<ModelRequest>,
) -> StatusCode {
    app.with_workload(namespace, deployment, |w| {
        if let Some(capacity) = body.capacity_per_replica.filter(|c| *c > 0.0) {
            w.model.capacity_per_replica = capacity;
        }
        if let Some(latency) = body.base_latency_seconds.filter(|l| *l > 0.0) {
            w.model.base_latency_seconds = latency;
        }
    });
    StatusCode::NO_CONTENT
}

async fn put_trace(
    State(app): State<App>,
    Path((namespace, deployment)): Path<(String, String)>,
    axum::Json(body): axum::Json<TraceRequest>,
) -> (StatusCode, String) {
    // Accept a bare name, a path under the traces directory, or any readable path.
    let name = std::path::Path::new(&body.file);
    let candidates =
        [app.traces_dir.join(name), name.file_name().map(|f| app.traces_dir.join(f)).unwrap_or_default(), name.to_path_buf()];
    let Some(text) = candidates.iter().find_map(|p| std::fs::read_to_string(p).ok()) else {
        return (StatusCode::NOT_FOUND, format!("no trace {:?} in {}", body.file, app.traces_dir.display()));
    };
    let trace = match Trace::parse(&body.file, &text) {
        Ok(trace) => trace,
        Err(error) => return (StatusCode::UNPROCESSABLE_ENTITY, error.to_string()),
    };
    let load = Load::Replay { trace, scale: body.scale, minutes_per_second: body.minutes_per_second, started: Instant::now() };
    app.with_workload(namespace, deployment, |w| w.load = load);
    (StatusCode::NO_CONTENT, String::new())
}

async fn metrics(State(app): State<App>) -> String {
    let workloads = app.workloads.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = String::new();
    out += "# TYPE app_requests_total counter\n";
    for ((ns, dep), w) in workloads.iter() {
        out += &format!("app_requests_total{{namespace=\"{ns}\",deployment=\"{dep}\",code=\"200\"}} {}\n", w.ok.floor());
        out += &format!("app_requests_total{{namespace=\"{ns}\",deployment=\"{dep}\",code=\"500\"}} {}\n", w.errors.floor());
    }
    out += "# TYPE app_request_duration_seconds histogram\n";
    for ((ns, dep), w) in workloads.iter() {
        for (bound, count) in BUCKETS.iter().zip(w.buckets) {
            out += &format!(
                "app_request_duration_seconds_bucket{{namespace=\"{ns}\",deployment=\"{dep}\",le=\"{bound}\"}} {}\n",
                count.floor()
            );
        }
        out += &format!(
            "app_request_duration_seconds_bucket{{namespace=\"{ns}\",deployment=\"{dep}\",le=\"+Inf\"}} {}\n",
            w.count.floor()
        );
        out += &format!("app_request_duration_seconds_sum{{namespace=\"{ns}\",deployment=\"{dep}\"}} {}\n", w.sum);
        out += &format!("app_request_duration_seconds_count{{namespace=\"{ns}\",deployment=\"{dep}\"}} {}\n", w.count.floor());
    }
    out += "# TYPE app_ready_replicas gauge\n";
    for ((ns, dep), w) in workloads.iter() {
        for pool in ["spot", "on-demand", "other"] {
            let ready = w.ready.get(pool).copied().unwrap_or(0);
            out += &format!("app_ready_replicas{{namespace=\"{ns}\",deployment=\"{dep}\",pool=\"{pool}\"}} {ready}\n");
        }
    }
    out += "# TYPE app_offered_load gauge\n";
    for ((ns, dep), w) in workloads.iter() {
        out += &format!("app_offered_load{{namespace=\"{ns}\",deployment=\"{dep}\"}} {}\n", w.load.rps());
    }
    out
}

fn is_ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let args = Args::parse();
    let client = match &args.kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)?;
            Client::try_from(kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?)?
        }
        None => Client::try_default().await?,
    };

    let (pods, pod_writer) = reflector::store::<Pod>();
    let (nodes, node_writer) = reflector::store::<Node>();
    let pod_stream = reflector::reflector(pod_writer, watcher(Api::<Pod>::all(client.clone()), watcher::Config::default()))
        .default_backoff()
        .touched_objects();
    let node_stream = reflector::reflector(node_writer, watcher(Api::<Node>::all(client.clone()), watcher::Config::default()))
        .default_backoff()
        .touched_objects();
    tokio::spawn(pod_stream.for_each(|_| async {}));
    tokio::spawn(node_stream.for_each(|_| async {}));

    let app = App { workloads: Arc::new(Mutex::new(BTreeMap::new())), traces_dir: args.traces_dir.clone() };
    let ticking = app.clone();
    tokio::spawn(async move {
        let mut last = Instant::now();
        loop {
            tokio::time::sleep(TICK).await;
            let dt = last.elapsed().as_secs_f64();
            last = Instant::now();
            let pool_of = |node_name: &str| -> String {
                nodes
                    .state()
                    .iter()
                    .find(|n| n.name_any() == node_name)
                    .and_then(|n| n.labels().get("karpenter.sh/capacity-type").cloned())
                    .unwrap_or_else(|| "other".into())
            };
            let mut ready: BTreeMap<Key, BTreeMap<String, usize>> = BTreeMap::new();
            for pod in pods.state().iter().filter(|p| is_ready(p)) {
                let (Some(deployment), Some(node)) =
                    (deployment_of(pod.as_ref()), pod.spec.as_ref().and_then(|s| s.node_name.clone()))
                else {
                    continue;
                };
                *ready
                    .entry((pod.namespace().unwrap_or_default(), deployment))
                    .or_default()
                    .entry(pool_of(&node))
                    .or_default() += 1;
            }
            let mut workloads = ticking.workloads.lock().unwrap_or_else(|e| e.into_inner());
            for (key, workload) in workloads.iter_mut() {
                workload.ready = ready.remove(key).unwrap_or_default();
                workload.serve(dt);
            }
        }
    });

    let router = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/load/{namespace}/{deployment}", put(put_load))
        .route("/model/{namespace}/{deployment}", put(put_model))
        .route("/trace/{namespace}/{deployment}", put(put_trace))
        .with_state(app);
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    tracing::info!(listen = %args.listen, "appsim serving");
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
