//! Placement fixtures: per-test CapacityPools, a MutatingWebhookConfiguration pointing at the
//! operator's webhook on loopback, and counting pods per pool.

use std::collections::BTreeMap;

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use trimtab::api::CapacityPool;

use crate::cluster::FIELD_MANAGER;

/// The spot and on-demand pools of a test, named after its namespace.
pub async fn apply_pools(client: &Client, namespace: &str) -> (String, String) {
    let api: Api<CapacityPool> = Api::all(client.clone());
    let spot = format!("{namespace}-spot");
    let on_demand = format!("{namespace}-on-demand");
    let pools = [
        json!({"apiVersion": "trimtab.dev/v1alpha1", "kind": "CapacityPool", "metadata": {"name": spot},
               "spec": {"capacityType": "Spot", "nodeSelector": {"karpenter.sh/capacity-type": "spot"},
                        "tolerations": [{"key": "karpenter.sh/capacity-type", "operator": "Equal", "value": "spot", "effect": "NoSchedule"}],
                        "interruptionTaints": ["karpenter.sh/disrupted"],
                        "price": {"cpuCoreHour": "0.0105", "memoryGiBHour": "0.0014"}}}),
        json!({"apiVersion": "trimtab.dev/v1alpha1", "kind": "CapacityPool", "metadata": {"name": on_demand},
               "spec": {"capacityType": "OnDemand", "nodeSelector": {"karpenter.sh/capacity-type": "on-demand"},
                        "price": {"cpuCoreHour": "0.035", "memoryGiBHour": "0.0047"}}}),
    ];
    for pool in pools {
        let pool: CapacityPool = serde_json::from_value(pool).expect("a valid pool");
        api.patch(&pool.name_any(), &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&pool))
            .await
            .expect("apply the pool");
    }
    (spot, on_demand)
}

pub async fn delete_pools(client: &Client, namespace: &str) {
    let api: Api<CapacityPool> = Api::all(client.clone());
    for name in [format!("{namespace}-spot"), format!("{namespace}-on-demand")] {
        let _ = api.delete(&name, &DeleteParams::default()).await;
    }
}

/// The address the API server reaches the operator's webhook at: loopback for the local control
/// plane, the host's address on the cluster network for kind (E2E_WEBHOOK_HOST).
pub fn webhook_host() -> String {
    std::env::var("E2E_WEBHOOK_HOST").unwrap_or_else(|_| "127.0.0.1".into())
}

/// Flags that make the operator serve the webhook on `port` for `configuration`.
pub fn webhook_flags(port: u16, configuration: &str) -> Vec<String> {
    let host = webhook_host();
    let listen = if host == "127.0.0.1" { format!("127.0.0.1:{port}") } else { format!("0.0.0.0:{port}") };
    ["--webhook-addr", &listen, "--webhook-configuration-name", configuration, "--webhook-cert-san", &host]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// A free port for the operator's webhook.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// A fail-open webhook configuration for pods created in `namespace`, served at 127.0.0.1:`port`.
/// Its caBundle is left for the operator to fill in.
pub async fn apply_webhook_configuration(client: &Client, namespace: &str, port: u16) -> String {
    let name = format!("trimtab-e2e-{namespace}");
    let configuration: MutatingWebhookConfiguration = serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration", "metadata": {"name": name},
        "webhooks": [{
            "name": "pods.placement.trimtab.dev",
            "admissionReviewVersions": ["v1"],
            "sideEffects": "None",
            "failurePolicy": "Ignore",
            "timeoutSeconds": 2,
            "reinvocationPolicy": "Never",
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"], "scope": "Namespaced"}],
            "clientConfig": {"url": format!("https://{}:{port}/mutate-pods", webhook_host())}
        }]
    }))
    .expect("a valid webhook configuration");
    let api: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    api.patch(&name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&configuration))
        .await
        .expect("apply the webhook configuration");
    name
}

pub async fn delete_webhook_configuration(client: &Client, name: &str) {
    let api: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let _ = api.delete(name, &DeleteParams::default()).await;
}

/// Ready pods of `app` per node capacity type ("spot", "on-demand"), and the not-ready count.
pub async fn ready_by_pool(client: &Client, namespace: &str, app: &str) -> (BTreeMap<String, i32>, i32) {
    let nodes: Api<Node> = Api::all(client.clone());
    let capacity_type: BTreeMap<String, String> = nodes
        .list(&ListParams::default())
        .await
        .expect("list nodes")
        .items
        .iter()
        .map(|n| (n.name_any(), n.labels().get("karpenter.sh/capacity-type").cloned().unwrap_or_default()))
        .collect();
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let mut ready = BTreeMap::new();
    let mut not_ready = 0;
    for pod in pods.list(&ListParams::default().labels(&format!("app={app}"))).await.expect("list pods").items {
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let is_ready = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        let node = pod.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default();
        match (is_ready, capacity_type.get(&node)) {
            (true, Some(pool)) => *ready.entry(pool.clone()).or_insert(0) += 1,
            _ => not_ready += 1,
        }
    }
    (ready, not_ready)
}

/// (spot, on-demand) Ready counts, failing with the state seen unless exactly those and nothing else.
pub async fn split_is(client: &Client, namespace: &str, app: &str, spot: i32, on_demand: i32) -> Result<(), String> {
    let (ready, not_ready) = ready_by_pool(client, namespace, app).await;
    let got = (ready.get("spot").copied().unwrap_or(0), ready.get("on-demand").copied().unwrap_or(0));
    if got == (spot, on_demand) && not_ready == 0 { Ok(()) } else { Err(format!("ready {ready:?}, not ready {not_ready}")) }
}
