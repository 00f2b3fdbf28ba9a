//! ScalingPolicies in tests: create them, read their conditions, watch the target's replicas.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use trimtab::api::ScalingPolicy;

use crate::cluster::FIELD_MANAGER;
use crate::eventually;

/// Applies a ScalingPolicy from its spec, as JSON.
pub async fn apply(client: &Client, namespace: &str, name: &str, spec: serde_json::Value) {
    let policy: ScalingPolicy = serde_json::from_value(serde_json::json!({
        "apiVersion": "trimtab.dev/v1alpha1", "kind": "ScalingPolicy",
        "metadata": {"name": name, "namespace": namespace}, "spec": spec
    }))
    .expect("the test's policy is a valid ScalingPolicy");
    let api: Api<ScalingPolicy> = Api::namespaced(client.clone(), namespace);
    api.patch(name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&policy))
        .await
        .expect("the API server accepts the policy");
}

pub async fn get(client: &Client, namespace: &str, name: &str) -> ScalingPolicy {
    Api::<ScalingPolicy>::namespaced(client.clone(), namespace).get(name).await.expect("the policy exists")
}

/// (status, reason) of a condition, if set.
pub fn condition(policy: &ScalingPolicy, type_: &str) -> Option<(String, String)> {
    let status = policy.status.as_ref()?;
    status.conditions.iter().find(|c| c.type_ == type_).map(|c| (c.status.clone(), c.reason.clone()))
}

/// Waits until a condition has `status` (and `reason`, when given).
pub async fn wait_condition(
    client: &Client,
    namespace: &str,
    name: &str,
    type_: &str,
    status: &str,
    reason: Option<&str>,
    timeout: Duration,
) -> ScalingPolicy {
    eventually(&format!("{type_}={status} ({reason:?}) on ScalingPolicy {namespace}/{name}"), timeout, || async move {
        let policy = get(client, namespace, name).await;
        match condition(&policy, type_) {
            Some((s, r)) if s == status && reason.is_none_or(|want| want == r) => Ok(policy),
            other => Err(format!("{other:?}")),
        }
    })
    .await
}

/// The target's spec.replicas.
pub async fn replicas(client: &Client, namespace: &str, deployment: &str) -> i32 {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    api.get(deployment).await.expect("the Deployment exists").spec.and_then(|s| s.replicas).unwrap_or(0)
}
