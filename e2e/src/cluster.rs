//! Applying manifests and waiting on workloads.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, ResourceExt};

use crate::eventually;

pub const FIELD_MANAGER: &str = "trimtab-e2e";

/// Installs (server-side applies) the committed CRDs and waits until they are established.
pub async fn install_crds(client: &Client) {
    let text =
        std::fs::read_to_string(crate::repo_root().join("crds/trimtab.dev.yaml")).expect("crds/trimtab.dev.yaml is readable");
    let crds: Vec<CustomResourceDefinition> = serde_saphyr::from_multiple(&text).expect("the committed CRDs parse");
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in &crds {
        api.patch(&crd.name_any(), &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(crd))
            .await
            .expect("the API server accepts the CRD");
    }
    for crd in &crds {
        let name = crd.name_any();
        eventually(&format!("CRD {name} to be established"), Duration::from_secs(90), || {
            let api = api.clone();
            let name = name.clone();
            async move {
                let crd = api.get(&name).await.map_err(|e| e.to_string())?;
                let established = crd
                    .status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True");
                if established { Ok(()) } else { Err("not established yet".into()) }
            }
        })
        .await;
    }
}

/// A Deployment of `replicas` pause pods labelled `app: NAME`, requesting `cpu` and 256Mi each.
pub fn deployment(namespace: &str, name: &str, replicas: i32, spot: bool) -> Deployment {
    let tolerations = if spot {
        serde_json::json!([{"key": "karpenter.sh/capacity-type", "operator": "Equal", "value": "spot", "effect": "NoSchedule"}])
    } else {
        serde_json::json!([])
    };
    serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "tolerations": tolerations,
                    "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10", "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}}}]
                }
            }
        }
    }))
    .expect("a valid Deployment")
}

pub async fn apply_deployment(client: &Client, deployment: &Deployment) {
    let api: Api<Deployment> = Api::namespaced(client.clone(), &deployment.namespace().unwrap_or_default());
    api.patch(&deployment.name_any(), &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(deployment))
        .await
        .expect("the API server accepts the Deployment");
}

/// Waits until the Deployment has exactly `replicas` ready replicas.
pub async fn wait_ready_replicas(client: &Client, namespace: &str, name: &str, replicas: i32, timeout: Duration) {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    eventually(&format!("Deployment {namespace}/{name} to have {replicas} ready replicas"), timeout, || {
        let api = api.clone();
        async move {
            let deployment = api.get(name).await.map_err(|e| e.to_string())?;
            let ready = deployment.status.and_then(|s| s.ready_replicas).unwrap_or(0);
            if ready == replicas { Ok(()) } else { Err(format!("{ready} ready")) }
        }
    })
    .await;
}
