//! Helpers for end-to-end scenarios. Tests read `KUBECONFIG` and `PROMETHEUS_URL`, so they run
//! unchanged against the local control plane (`just cluster-up`) or a kind cluster.
//!
//! Each scenario runs in its own temporary namespace, waits with timeouts that say what they waited
//! for, and on failure prints the pods, Events and ScalingPolicy status of its namespace.

pub mod alerting;
pub mod appsim;
pub mod cluster;
pub mod lazyapp;
pub mod operator;
pub mod placement;
pub mod policy;
pub mod prometheus;
pub mod proxy;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::FutureExt;
use k8s_openapi::api::core::v1::{Event, Namespace, Pod};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, Client, ResourceExt};

use trimtab::api::ScalingPolicy;

/// The cluster and Prometheus under test.
#[derive(Clone)]
pub struct Env {
    pub client: Client,
    pub prometheus_url: String,
}

impl Env {
    pub async fn from_environment() -> Env {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let prometheus_url = std::env::var("PROMETHEUS_URL")
            .expect("PROMETHEUS_URL must point at the Prometheus of the cluster under test (just e2e sets it)");
        let client = Client::try_default().await.expect("KUBECONFIG must point at the cluster under test (just e2e sets it)");
        Env { client, prometheus_url }
    }

    /// The value of an instant query that returns one series, if it does.
    pub async fn prometheus_value(&self, query: &str) -> Option<f64> {
        let url = format!("{}/api/v1/query", self.prometheus_url.trim_end_matches('/'));
        let body: serde_json::Value =
            reqwest::Client::new().get(url).query(&[("query", query)]).send().await.ok()?.json().await.ok()?;
        let result = body["data"]["result"].as_array()?;
        match result.as_slice() {
            [one] => one["value"][1].as_str()?.parse().ok().filter(|v: &f64| v.is_finite()),
            _ => None,
        }
    }
}

/// The repository root, for CRDs, examples and the chart.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs a scenario in a fresh namespace; on failure prints what a person debugging it needs, and
/// always deletes the namespace.
pub async fn scenario<F, Fut>(name: &str, body: F)
where
    F: FnOnce(Env, String) -> Fut,
    Fut: Future<Output = ()>,
{
    let env = Env::from_environment().await;
    let namespace = format!("e2e-{name}-{}", std::process::id() % 100_000);
    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    let mut object = Namespace::default();
    object.metadata.name = Some(namespace.clone());
    object.metadata.labels = Some([("trimtab.dev/e2e".to_owned(), "true".to_owned())].into());
    namespaces.create(&PostParams::default(), &object).await.expect("create the test namespace");

    let outcome = AssertUnwindSafe(body(env.clone(), namespace.clone())).catch_unwind().await;
    if outcome.is_err() {
        eprintln!("{}", dump(&env.client, &namespace).await);
    }
    let _ = namespaces.delete(&namespace, &DeleteParams::background()).await;
    // A killed operator leaves its Lease behind; in the chart's namespace nobody else removes it.
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(env.client.clone(), &operator::Operator::lease_namespace(&namespace));
    let suffix = format!("-{namespace}");
    for lease in leases.list(&ListParams::default()).await.map(|l| l.items).unwrap_or_default() {
        if let Some(name) = lease.metadata.name.filter(|n| n.ends_with(&suffix)) {
            let _ = leases.delete(&name, &DeleteParams::background()).await;
        }
    }
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Polls `check` until it returns `Some`, or fails saying what it waited for and the last state seen.
pub async fn eventually<T, Fut>(what: &str, timeout: Duration, mut check: impl FnMut() -> Fut) -> T
where
    Fut: Future<Output = Result<T, String>>,
{
    let started = Instant::now();
    let mut last = String::from("never checked");
    while started.elapsed() < timeout {
        match check().await {
            Ok(value) => return value,
            Err(state) => last = state,
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("timed out after {timeout:?} waiting for {what}; last seen: {last}");
}

/// Pods, Events and ScalingPolicy status of a namespace, as text.
pub async fn dump(client: &Client, namespace: &str) -> String {
    let mut out = format!("==== namespace {namespace} ====\n");
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    if let Ok(list) = pods.list(&ListParams::default()).await {
        for pod in list.items {
            let phase = pod.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_default();
            let node = pod.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default();
            out += &format!("pod {} phase={phase} node={node}\n", pod.name_any());
        }
    }
    let events: Api<Event> = Api::namespaced(client.clone(), namespace);
    if let Ok(list) = events.list(&ListParams::default()).await {
        for event in list.items {
            out += &format!(
                "event {} {} {}: {}\n",
                event.type_.unwrap_or_default(),
                event.involved_object.name.unwrap_or_default(),
                event.reason.unwrap_or_default(),
                event.message.unwrap_or_default()
            );
        }
    }
    let policies: Api<ScalingPolicy> = Api::namespaced(client.clone(), namespace);
    if let Ok(list) = policies.list(&ListParams::default()).await {
        for policy in list.items {
            let status = serde_json::to_string_pretty(&policy.status).unwrap_or_default();
            out += &format!("scalingpolicy {} status:\n{status}\n", policy.name_any());
        }
    }
    out
}
