//! How much memory the operator's caches hold per object, for the shape of issue #11's 10,000-policy
//! row: 10,000 ScalingPolicies, their 10,000 one-replica Deployments and pods, 100 nodes. Each
//! object is what the API server sends (managed fields, the controllers' status and conditions),
//! filled into the operator's own structures (`Caches::holding`: stored as the watches store them,
//! stripped, and indexed by target), and counted by a counting allocator: the bytes still allocated
//! once the caches hold them, per kind and per object.
//!
//! `cargo bench -p trimtab --bench cache_memory` prints one table. These are heap bytes (what the
//! process asked for), not RSS: the allocator's own overhead and fragmentation come on top, which
//! is what `just bench-scale` measures on a real cluster.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::{Value, json};
use trimtab::api::ScalingPolicy;
use trimtab::controller::caches::{Caches, Cluster};

/// The system allocator, counting the bytes allocated and not yet freed.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded to `System` with the same arguments; the counter is only arithmetic.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: as the caller promised for `layout`.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` was allocated by `alloc` above with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        // SAFETY: as the caller promised for `ptr` and `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const NAMESPACES: usize = 100;
const PER_NAMESPACE: usize = 100;
const NODES: usize = 100;

fn workloads() -> impl Iterator<Item = (String, String)> {
    (0..NAMESPACES)
        .flat_map(|n| (0..PER_NAMESPACE).map(move |d| (format!("bench-{n}"), format!("app-{}", n * PER_NAMESPACE + d))))
}

fn managed(manager: &str, operation: &str, subresource: Option<&str>, fields: Value) -> Value {
    let mut entry = json!({"manager": manager, "operation": operation, "apiVersion": "v1", "time": "2026-12-02T09:00:00Z",
                           "fieldsType": "FieldsV1", "fieldsV1": fields});
    if let Some(subresource) = subresource {
        entry["subresource"] = json!(subresource);
    }
    entry
}

fn condition(type_: &str, reason: &str, message: &str) -> Value {
    json!({"type": type_, "status": "True", "reason": reason, "message": message,
           "lastUpdateTime": "2026-12-02T09:00:05Z", "lastTransitionTime": "2026-12-02T09:00:05Z"})
}

/// A Deployment as `kubectl apply --server-side` created it and the controller-manager rolled it out.
fn deployment(namespace: &str, name: &str) -> Value {
    let labels = json!({"app": name});
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {
            "name": name, "namespace": namespace, "uid": format!("0b5c1d9e-6f3a-4c2b-9d8e-{:012}", name.len()),
            "resourceVersion": "1234567", "generation": 1, "creationTimestamp": "2026-12-02T09:00:00Z",
            "annotations": {"deployment.kubernetes.io/revision": "1"},
            "managedFields": [
                managed("kubectl", "Apply", None, json!({"f:spec": {"f:replicas": {}, "f:selector": {}, "f:template": {
                    "f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {
                        ".": {}, "f:image": {}, "f:name": {}, "f:resources": {"f:requests": {"f:cpu": {}, "f:memory": {}}}}}}}}})),
                managed("kube-controller-manager", "Update", Some("status"), json!({"f:metadata": {"f:annotations": {
                    ".": {}, "f:deployment.kubernetes.io/revision": {}}}, "f:status": {"f:availableReplicas": {},
                    "f:conditions": {".": {}, "k:{\"type\":\"Available\"}": {}, "k:{\"type\":\"Progressing\"}": {}},
                    "f:observedGeneration": {}, "f:readyReplicas": {}, "f:replicas": {}, "f:updatedReplicas": {}}}))
            ]
        },
        "spec": {
            "replicas": 1, "selector": {"matchLabels": labels},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
            "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [{"name": "app", "image": "bench", "imagePullPolicy": "Always",
                                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                                    "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"}],
                    "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
                    "securityContext": {}, "schedulerName": "default-scheduler"
                }
            }
        },
        "status": {
            "observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1,
            "conditions": [
                condition("Available", "MinimumReplicasAvailable", "Deployment has minimum availability."),
                condition("Progressing", "NewReplicaSetAvailable", &format!("ReplicaSet \"{name}-7d9f8c6b5\" has successfully progressed."))
            ]
        }
    })
}

/// The Deployment's pod as the ReplicaSet controller created it and kwok runs it.
fn pod(namespace: &str, name: &str, node: &str) -> Value {
    let conditions: Vec<Value> = ["Initialized", "Ready", "ContainersReady", "PodScheduled"]
        .map(|t| json!({"type": t, "status": "True", "lastProbeTime": null, "lastTransitionTime": "2026-12-02T09:00:05Z"}))
        .into();
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": format!("{name}-7d9f8c6b5-x2k9q"), "generateName": format!("{name}-7d9f8c6b5-"), "namespace": namespace,
            "uid": "3f2a9c1e-8b7d-4e6f-a5c4-0d1e2f3a4b5c", "resourceVersion": "2345678", "creationTimestamp": "2026-12-02T09:00:01Z",
            "labels": {"app": name, "pod-template-hash": "7d9f8c6b5"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("{name}-7d9f8c6b5"),
                                 "uid": "9e8d7c6b-5a4f-4e3d-b2c1-a0f9e8d7c6b5", "controller": true, "blockOwnerDeletion": true}],
            "managedFields": [
                managed("kube-controller-manager", "Update", None, json!({"f:metadata": {"f:generateName": {}, "f:labels": {
                    ".": {}, "f:app": {}, "f:pod-template-hash": {}}, "f:ownerReferences": {}}, "f:spec": {"f:containers": {}}})),
                managed("kwok", "Update", Some("status"), json!({"f:status": {"f:conditions": {}, "f:containerStatuses": {},
                    "f:hostIP": {}, "f:phase": {}, "f:podIP": {}, "f:startTime": {}}}))
            ]
        },
        "spec": {
            "nodeName": node, "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default", "serviceAccount": "default", "securityContext": {}, "schedulerName": "default-scheduler",
            "enableServiceLinks": true, "preemptionPolicy": "PreemptLowerPriority", "priority": 0,
            "containers": [{"name": "app", "image": "bench", "imagePullPolicy": "Always",
                            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                            "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
                            "volumeMounts": [{"name": "kube-api-access-abcde", "readOnly": true,
                                              "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]}],
            "tolerations": [
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
            ],
            "volumes": [{"name": "kube-api-access-abcde", "projected": {"defaultMode": 420, "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
            ]}}]
        },
        "status": {
            "phase": "Running", "hostIP": "10.0.0.1", "podIP": "10.0.0.2", "podIPs": [{"ip": "10.0.0.2"}],
            "startTime": "2026-12-02T09:00:01Z", "qosClass": "Burstable",
            "conditions": conditions,
            "containerStatuses": [{"name": "app", "image": "bench", "imageID": "", "ready": true, "restartCount": 0,
                                   "started": true, "state": {"running": {"startedAt": "2026-12-02T09:00:02Z"}}}]
        }
    })
}

/// A policy as `just bench-scale` creates it, with the status its rounds wrote.
fn policy(namespace: &str, name: &str, query: usize) -> Value {
    json!({
        "apiVersion": "trimtab.dev/v1alpha1", "kind": "ScalingPolicy",
        "metadata": {
            "name": name, "namespace": namespace, "uid": "5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a", "resourceVersion": "3456789",
            "generation": 1, "creationTimestamp": "2026-12-02T09:00:00Z",
            "managedFields": [
                managed("kubectl", "Apply", None, json!({"f:spec": {"f:interval": {}, "f:maxReplicas": {}, "f:minReplicas": {},
                    "f:objectives": {}, "f:targetRef": {"f:kind": {}, "f:name": {}}}})),
                managed("trimtab", "Apply", Some("status"), json!({"f:status": {"f:conditions": {}, "f:desiredReplicas": {},
                    "f:history": {}, "f:lastDecision": {}, "f:objectives": {}, "f:observedGeneration": {}}}))
            ]
        },
        "spec": {
            "targetRef": {"kind": "Deployment", "name": name}, "minReplicas": 1, "maxReplicas": 10, "interval": "15s",
            "objectives": [{"name": "load", "kind": "AverageValue", "query": format!("vector({query})"), "target": "1000000"}]
        },
        "status": {
            "observedGeneration": 1, "desiredReplicas": 1, "currentReplicas": 1,
            "lastDecision": {"time": "2026-12-02T09:00:15Z", "from": 1, "to": 1, "reason": "WithinTolerance",
                             "limitedBy": "DesiredWithinRange", "message": format!("load: {query} against 1000000 per replica: within tolerance")},
            "objectives": [{"name": "load", "value": format!("{query}"), "target": "1000000", "state": "Met"}],
            "history": {"recommendations": [{"time": "2026-12-02T09:00:15Z", "replicas": 1}]},
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "Decided", "message": "deciding every 15s",
                 "lastTransitionTime": "2026-12-02T09:00:15Z", "observedGeneration": 1},
                {"type": "ScalingActive", "status": "True", "reason": "Decided", "message": "scaling on every objective",
                 "lastTransitionTime": "2026-12-02T09:00:15Z", "observedGeneration": 1},
                {"type": "ScalingLimited", "status": "False", "reason": "WithinBounds", "message": "1 replica is within [1, 10]",
                 "lastTransitionTime": "2026-12-02T09:00:15Z", "observedGeneration": 1}
            ]
        }
    })
}

fn node(i: usize) -> Value {
    let conditions: Vec<Value> = ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable"]
        .map(|t| {
            json!({"type": t, "status": if t == "Ready" { "True" } else { "False" }, "reason": "Kwok",
                        "lastHeartbeatTime": "2026-12-02T09:00:00Z", "lastTransitionTime": "2026-12-02T09:00:00Z"})
        })
        .into();
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": format!("bench-{i}"), "uid": "7b6a5f4e-3d2c-4b1a-9f8e-7d6c5b4a3f2e", "resourceVersion": "4567890",
                     "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                     "labels": {"type": "kwok", "kubernetes.io/hostname": format!("bench-{i}"), "kubernetes.io/os": "linux"}},
        "spec": {},
        "status": {"capacity": {"cpu": "1000", "memory": "4000Gi", "pods": "1000"},
                   "allocatable": {"cpu": "1000", "memory": "4000Gi", "pods": "1000"},
                   "conditions": conditions,
                   "nodeInfo": {"architecture": "amd64", "kubeletVersion": "fake", "operatingSystem": "linux", "machineID": "",
                                "kernelVersion": "", "osImage": "", "containerRuntimeVersion": "", "kubeProxyVersion": "",
                                "systemUUID": "", "bootID": ""}}
    })
}

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// The bytes the caches keep for `objects`, filled into a cluster by `put`.
fn held<K: serde::de::DeserializeOwned>(objects: &[Value], put: fn(&mut Cluster, Vec<K>)) -> isize {
    let before = live();
    let mut cluster = Cluster::default();
    put(&mut cluster, objects.iter().map(|o| serde_json::from_value(o.clone()).expect("a valid bench object")).collect());
    let caches = Caches::holding(cluster);
    let bytes = live() - before;
    drop(caches);
    bytes
}

fn main() {
    // `cargo bench` passes `--bench`; nothing here is filtered by name.
    let deployments: Vec<Value> = workloads().map(|(ns, name)| deployment(&ns, &name)).collect();
    let pods: Vec<Value> =
        workloads().enumerate().map(|(i, (ns, name))| pod(&ns, &name, &format!("bench-{}", i % NODES))).collect();
    let policies: Vec<Value> = workloads().enumerate().map(|(i, (ns, name))| policy(&ns, &name, i)).collect();
    let nodes: Vec<Value> = (0..NODES).map(node).collect();
    let sent = |objects: &[Value]| objects.iter().map(|o| serde_json::to_vec(o).map_or(0, |b| b.len())).sum::<usize>();

    let rows = [
        ("ScalingPolicy", policies.len(), sent(&policies), held(&policies, |c, v| c.policies = v)),
        ("Deployment", deployments.len(), sent(&deployments), held(&deployments, |c, v| c.deployments = v)),
        ("Pod", pods.len(), sent(&pods), held(&pods, |c, v| c.pods = v)),
        ("Node", nodes.len(), sent(&nodes), held(&nodes, |c, v| c.nodes = v)),
    ];
    println!("| kind | objects | JSON sent per object | heap held per object | heap held in all |");
    println!("|---|---|---|---|---|");
    let mut total = 0;
    for (kind, count, json, bytes) in rows {
        total += bytes;
        println!(
            "| {kind} | {count} | {:.1} KiB | {:.1} KiB | {:.1} MiB |",
            json as f64 / count as f64 / 1024.0,
            bytes as f64 / count as f64 / 1024.0,
            bytes as f64 / 1024.0 / 1024.0
        );
    }
    println!("| all | | | | {:.1} MiB |", total as f64 / 1024.0 / 1024.0);
    println!(
        "\nsize of the structs themselves: Pod {} B, Deployment {} B, Node {} B, ScalingPolicy {} B",
        std::mem::size_of::<Pod>(),
        std::mem::size_of::<Deployment>(),
        std::mem::size_of::<Node>(),
        std::mem::size_of::<ScalingPolicy>()
    );
}
