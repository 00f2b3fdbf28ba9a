//! How long the placement webhook takes to answer one AdmissionReview with a large cluster cached:
//! 100 namespaces × 100 Deployments, each with its ScalingPolicy (placement on spot/on-demand) and
//! one running pod, 10,000 pods on 1,000 nodes. The caches are the operator's own structures
//! (`Caches::holding`: stores and indexes by target, stripped as the watches strip), and the path is
//! the one the HTTP handler takes: the request body's bytes through `webhook::admit` to the
//! response's JSON bytes. Admissions go round-robin over the Deployments, so every workload has a
//! recent assignment in the webhook's ledger, as during a cluster-wide rollout.
//!
//! `cargo bench -p trimtab --bench webhook` first prints p50/p99/max over 20,000 admissions timed one
//! by one (criterion reports means only), then criterion's figures. The target (issue #11): p99 at
//! most 10 ms.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::{Value, json};
use trimtab::api::ScalingPolicy;
use trimtab::controller::Telemetry;
use trimtab::controller::caches::{Caches, Cluster};
use trimtab::placement::webhook::{WebhookState, admit};

const NAMESPACES: usize = 100;
const DEPLOYMENTS_PER_NAMESPACE: usize = 100;
const PODS_PER_DEPLOYMENT: usize = 1;
const NODES: usize = 1_000;
const TIMED_ADMISSIONS: usize = 20_000;

fn from<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).expect("a valid bench object")
}

fn workloads() -> impl Iterator<Item = (String, String)> {
    (0..NAMESPACES).flat_map(|n| (0..DEPLOYMENTS_PER_NAMESPACE).map(move |d| (format!("team-{n}"), format!("svc-{d}"))))
}

/// A pod of `deployment` as the ReplicaSet controller creates it (the AdmissionReview's object), or
/// as it runs once scheduled (the cached one).
fn pod(namespace: &str, deployment: &str, index: usize, node: Option<String>) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": format!("{deployment}-7d9f8c6b5-{index:05}"), "namespace": namespace,
            "generateName": format!("{deployment}-7d9f8c6b5-"),
            "creationTimestamp": "2026-12-01T00:00:00Z",
            "labels": {"app": deployment, "pod-template-hash": "7d9f8c6b5"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("{deployment}-7d9f8c6b5"),
                                 "uid": format!("rs-{namespace}-{deployment}"), "controller": true, "blockOwnerDeletion": true}]
        },
        "spec": {
            "nodeName": node,
            "containers": [{
                "name": "app", "image": format!("registry.example.com/{namespace}/{deployment}:1.42.0"),
                "ports": [{"containerPort": 8080, "name": "http"}],
                "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "PORT", "value": "8080"}],
                "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
                "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 5},
                "volumeMounts": [{"name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}]
            }],
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}],
            "volumes": [{"name": "kube-api-access", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}]
        },
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    })
}

fn cluster() -> Cluster {
    let pools = vec![
        from(json!({
            "apiVersion": "trimtab.dev/v1alpha1", "kind": "CapacityPool", "metadata": {"name": "spot"},
            "spec": {"capacityType": "Spot", "nodeSelector": {"karpenter.sh/capacity-type": "spot"},
                     "tolerations": [{"key": "karpenter.sh/capacity-type", "operator": "Equal", "value": "spot", "effect": "NoSchedule"}],
                     "price": {"cpuCoreHour": "0.0105", "memoryGiBHour": "0.0014"}}
        })),
        from(json!({
            "apiVersion": "trimtab.dev/v1alpha1", "kind": "CapacityPool", "metadata": {"name": "on-demand"},
            "spec": {"capacityType": "OnDemand", "nodeSelector": {"karpenter.sh/capacity-type": "on-demand"},
                     "price": {"cpuCoreHour": "0.0350", "memoryGiBHour": "0.0047"}}
        })),
    ];
    let capacity = |i: usize| if i.is_multiple_of(2) { "spot" } else { "on-demand" };
    let node_name = |i: usize| format!("{}-{i:04}", capacity(i));
    let nodes = (0..NODES)
        .map(|i| {
            from::<Node>(json!({
                "metadata": {"name": node_name(i), "labels": {"karpenter.sh/capacity-type": capacity(i), "kubernetes.io/os": "linux",
                             "topology.kubernetes.io/zone": format!("zone-{}", i % 3)}},
                "spec": {"providerID": format!("kwok://{i}")}
            }))
        })
        .collect();
    let mut cluster = Cluster { pools, nodes, ..Cluster::default() };
    for (w, (namespace, deployment)) in workloads().enumerate() {
        cluster.deployments.push(from::<Deployment>(json!({
            "metadata": {"name": deployment, "namespace": namespace, "uid": format!("uid-{namespace}-{deployment}")},
            "spec": {"replicas": PODS_PER_DEPLOYMENT, "selector": {"matchLabels": {"app": deployment}}, "template": {}}
        })));
        cluster.policies.push(from::<ScalingPolicy>(json!({
            "apiVersion": "trimtab.dev/v1alpha1", "kind": "ScalingPolicy",
            "metadata": {"name": deployment, "namespace": namespace, "uid": format!("sp-{namespace}-{deployment}"), "generation": 1},
            "spec": {
                "targetRef": {"kind": "Deployment", "name": deployment}, "minReplicas": 1, "maxReplicas": 40,
                "objectives": [{"name": "rps-per-replica", "kind": "AverageValue",
                                "query": format!("sum(rate(http_requests_total{{namespace=\"{namespace}\",app=\"{deployment}\"}}[2m]))"),
                                "target": "80"}],
                "placement": {"spotPool": "spot", "onDemandPool": "on-demand", "onDemandBase": 1, "spotPercentage": 70}
            },
            "status": {"desiredReplicas": PODS_PER_DEPLOYMENT + 1}
        })));
        for p in 0..PODS_PER_DEPLOYMENT {
            let node = node_name((w * PODS_PER_DEPLOYMENT + p) % NODES);
            cluster.pods.push(from::<Pod>(pod(&namespace, &deployment, p, Some(node))));
        }
    }
    cluster
}

/// The body the API server POSTs for a new pod of each workload, round-robin.
fn reviews() -> Vec<Vec<u8>> {
    workloads()
        .enumerate()
        .map(|(w, (namespace, deployment))| {
            let mut object = pod(&namespace, &deployment, PODS_PER_DEPLOYMENT, None);
            object["metadata"]["name"] = Value::Null;
            object["metadata"]["creationTimestamp"] = Value::Null;
            object["status"] = json!({});
            serde_json::to_vec(&json!({
                "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                "request": {
                    "uid": format!("00000000-0000-0000-0000-{w:012}"), "operation": "CREATE", "namespace": namespace,
                    "kind": {"group": "", "version": "v1", "kind": "Pod"},
                    "resource": {"group": "", "version": "v1", "resource": "pods"},
                    "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
                    "requestResource": {"group": "", "version": "v1", "resource": "pods"},
                    "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller",
                                 "groups": ["system:serviceaccounts", "system:authenticated"]},
                    "object": object, "oldObject": null, "dryRun": false,
                    "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
                }
            }))
            .expect("a review body")
        })
        .collect()
}

/// One admission as the handler answers it: body bytes in, response bytes out.
fn answer(state: &WebhookState, body: &[u8]) -> Vec<u8> {
    let review = admit(state, body).expect("an AdmissionReview");
    debug_assert!(review.response.as_ref().is_some_and(|r| r.patch.is_some()), "every bench pod is placed");
    serde_json::to_vec(&review).expect("a response body")
}

fn setup() -> (WebhookState, Vec<Vec<u8>>) {
    let started = Instant::now();
    let state = WebhookState::new(Caches::holding(cluster()), Arc::new(Telemetry::default()));
    eprintln!("caches filled in {:?}", started.elapsed());
    let reviews = reviews();
    assert!(
        admit(&state, &reviews[0]).ok().and_then(|r| r.response).is_some_and(|r| r.patch.is_some()),
        "the bench pods are placed"
    );
    (state, reviews)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// p50/p99/max over admissions timed one by one, from `threads` threads at once.
fn percentiles(state: &WebhookState, reviews: &[Vec<u8>], threads: usize) {
    let next = AtomicUsize::new(0);
    let mut times: Vec<Duration> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut times = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= TIMED_ADMISSIONS {
                            return times;
                        }
                        let started = Instant::now();
                        black_box(answer(state, &reviews[i % reviews.len()]));
                        times.push(started.elapsed());
                    }
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().expect("a bench thread")).collect()
    });
    times.sort();
    // The tail is mostly this process waiting for a core: the machine's load says how busy they were.
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "webhook admission, 10,000 pods cached, {threads} thread(s), {TIMED_ADMISSIONS} admissions: p50 {:?}  p99 {:?}  max {:?}  (load average {}, {} cores)",
        percentile(&times, 0.50),
        percentile(&times, 0.99),
        times[times.len() - 1],
        load.split_whitespace().next().unwrap_or("?"),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
}

fn bench_webhook(c: &mut Criterion) {
    let (state, reviews) = setup();
    percentiles(&state, &reviews, 1);
    percentiles(&state, &reviews, 2);
    let mut i = 0;
    c.bench_function("webhook admission, 10,000 pods cached", |b| {
        b.iter(|| {
            i = (i + 1) % reviews.len();
            answer(&state, black_box(&reviews[i]))
        })
    });
}

criterion_group!(benches, bench_webhook);
criterion::criterion_main!(benches);
