//! Losing spot capacity, on the shared local cluster: every spot node deleted, then brought back,
//! then one reclaimed with an interruption taint. One test, so nothing else runs while spot nodes
//! are gone; the nodes are restored whatever happens.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use trimtab_e2e::appsim::set_load;
use trimtab_e2e::cluster::{apply_deployment, deployment, install_crds};
use trimtab_e2e::operator::Operator;
use trimtab_e2e::placement::{
    apply_pools, apply_webhook_configuration, delete_pools, delete_webhook_configuration, free_port, ready_by_pool, split_is,
    webhook_flags,
};
use trimtab_e2e::policy::{apply, wait_condition};
use trimtab_e2e::{eventually, scenario};

const FALLBACK_AFTER: Duration = Duration::from_secs(10);
const RETURN_AFTER: Duration = Duration::from_secs(20);

async fn spot_nodes(client: &Client) -> Vec<Node> {
    let nodes: Api<Node> = Api::all(client.clone());
    nodes.list(&ListParams::default().labels("karpenter.sh/capacity-type=spot")).await.expect("list nodes").items
}

/// Recreates nodes from saved copies (kwok brings them back to Ready).
async fn restore(client: &Client, saved: &[Node]) {
    let nodes: Api<Node> = Api::all(client.clone());
    for node in saved {
        let mut fresh = Node { metadata: Default::default(), spec: node.spec.clone(), status: node.status.clone() };
        fresh.metadata.name = node.metadata.name.clone();
        fresh.metadata.labels = node.metadata.labels.clone();
        fresh.metadata.annotations = node.metadata.annotations.clone();
        if let Some(spec) = fresh.spec.as_mut() {
            spec.taints = node
                .spec
                .as_ref()
                .and_then(|s| s.taints.clone())
                .map(|t| t.into_iter().filter(|t| t.key != "karpenter.sh/disrupted").collect());
        }
        match nodes.create(&PostParams::default(), &fresh).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 409 => {
                let untaint = json!({"spec": {"taints": fresh.spec.as_ref().and_then(|s| s.taints.clone())}});
                let _ = nodes.patch(&node.name_any(), &PatchParams::default(), &Patch::Merge(&untaint)).await;
            }
            Err(e) => eprintln!("could not restore node {}: {e}", node.name_any()),
        }
    }
}

async fn ready_total(client: &Client, namespace: &str) -> i32 {
    ready_by_pool(client, namespace, "web").await.0.values().sum()
}

#[tokio::test]
#[ignore = "needs a cluster: run with `just e2e`"]
async fn losing_spot_falls_back_to_on_demand_and_returns_through_evictions_that_respect_the_budget() {
    scenario("spotloss", |env, ns| async move {
        install_crds(&env.client).await;
        let saved = spot_nodes(&env.client).await;
        assert_eq!(saved.len(), 3, "the cluster has three spot nodes");
        let (spot, on_demand) = apply_pools(&env.client, &ns).await;
        let port = free_port();
        let configuration = apply_webhook_configuration(&env.client, &ns, port).await;
        let flags = webhook_flags(port, &configuration);
        let _operator = Operator::start_with(&ns, &env.prometheus_url, &flags.iter().map(String::as_str).collect::<Vec<_>>());
        // 4 replicas: on-demand 1 + ceil(3 × 0.25) = 2, spot 2.
        apply(&env.client, &ns, "web", json!({
            "targetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 4, "maxReplicas": 8, "interval": "5s",
            "objectives": [{"name": "load", "kind": "AverageValue", "target": "10", "query": format!(r#"sum(app_offered_load{{namespace="{ns}",deployment="web"}})"#)}],
            "placement": {"spotPool": spot, "onDemandPool": on_demand, "onDemandBase": 1, "spotPercentage": 75,
                          "fallbackAfter": format!("{}s", FALLBACK_AFTER.as_secs()), "returnAfter": format!("{}s", RETURN_AFTER.as_secs())}
        }))
        .await;
        set_load(&ns, "web", 40.0).await;
        let pdb: PodDisruptionBudget = serde_json::from_value(json!({
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "web"},
            "spec": {"minAvailable": 3, "selector": {"matchLabels": {"app": "web"}}}
        }))
        .expect("a valid PDB");
        Api::<PodDisruptionBudget>::namespaced(env.client.clone(), &ns).create(&PostParams::default(), &pdb).await.expect("create the PDB");
        // The operator is up (and its webhook's caches warm) once it has reported on the policy.
        wait_condition(&env.client, &ns, "web", "Ready", "False", Some("TargetNotFound"), Duration::from_secs(90)).await;
        apply_deployment(&env.client, &deployment(&ns, "web", 4, false)).await;
        eventually("4 replicas split 2 spot / 2 on-demand", Duration::from_secs(150), || split_is(&env.client, &ns, "web", 2, 2)).await;

        let outcome = async {
            // Every spot node goes.
            let nodes: Api<Node> = Api::all(env.client.clone());
            let lost_at = Instant::now();
            for node in &saved {
                nodes.delete(&node.name_any(), &DeleteParams::default()).await.expect("delete a spot node");
            }
            eventually("the spot nodes to be gone", Duration::from_secs(90), || async {
                let left = spot_nodes(&env.client).await.len();
                if left == 0 { Ok(()) } else { Err(format!("{left} left")) }
            })
            .await;
            let floor = 4 - 2; // the pre-fault count minus the pods on the lost nodes
            eventually("every replica Ready on on-demand", FALLBACK_AFTER + Duration::from_secs(90), || async {
                let ready = ready_total(&env.client, &ns).await;
                assert!(ready >= floor, "Ready replicas fell to {ready}, below {floor}");
                split_is(&env.client, &ns, "web", 0, 4).await
            })
            .await;
            eprintln!("fallback to on-demand took {:?}", lost_at.elapsed());
            wait_condition(&env.client, &ns, "web", "SpotFallback", "True", Some("SpotUnavailable"), Duration::from_secs(60)).await;

            // Spot comes back: after returnAfter the split returns, one PDB-respecting eviction at a time.
            restore(&env.client, &saved).await;
            let back_at = Instant::now();
            eventually("the split back to 2 spot / 2 on-demand", RETURN_AFTER + Duration::from_secs(120), || async {
                let ready = ready_total(&env.client, &ns).await;
                assert!(ready >= 3, "the PodDisruptionBudget allows 3 Ready at least; saw {ready}");
                split_is(&env.client, &ns, "web", 2, 2).await
            })
            .await;
            let returned = back_at.elapsed();
            eprintln!("return to spot took {returned:?} (returnAfter {RETURN_AFTER:?})");
            assert!(returned >= RETURN_AFTER, "moved back before returnAfter");
            wait_condition(&env.client, &ns, "web", "SpotFallback", "False", Some("SpotAvailable"), Duration::from_secs(60)).await;

            // One spot node gets an interruption taint: its pods are replaced while it still exists.
            let (ready, _) = ready_by_pool(&env.client, &ns, "web").await;
            assert_eq!(ready.get("spot"), Some(&2));
            let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(env.client.clone(), &ns);
            let on_spot = pods.list(&ListParams::default().labels("app=web")).await.expect("list pods").items;
            let victim_node = on_spot
                .iter()
                .filter_map(|p| p.spec.as_ref().and_then(|s| s.node_name.clone()))
                .find(|n| saved.iter().any(|s| &s.name_any() == n))
                .expect("a spot node runs a replica");
            let taint = json!({"spec": {"taints": [
                {"key": "karpenter.sh/capacity-type", "value": "spot", "effect": "NoSchedule"},
                {"key": "karpenter.sh/disrupted", "effect": "NoSchedule"}
            ]}});
            nodes.patch(&victim_node, &PatchParams::default(), &Patch::Merge(&taint)).await.expect("taint the node");
            eventually(&format!("no replica left on {victim_node}, all replaced and Ready"), Duration::from_secs(60), || async {
                let pods = pods.list(&ListParams::default().labels("app=web")).await.map_err(|e| e.to_string())?.items;
                let still = pods.iter().filter(|p| p.metadata.deletion_timestamp.is_none() && p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(victim_node.as_str())).count();
                let ready = ready_total(&env.client, &ns).await;
                if still == 0 && ready == 4 { Ok(()) } else { Err(format!("{still} pods on the node, {ready} Ready")) }
            })
            .await;
            assert!(nodes.get_opt(&victim_node).await.expect("get node").is_some(), "the pods moved before the node went");
        };
        let result = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(outcome)).await;
        restore(&env.client, &saved).await;
        delete_webhook_configuration(&env.client, &configuration).await;
        delete_pools(&env.client, &ns).await;
        if let Err(panic) = result {
            std::panic::resume_unwind(panic);
        }
    })
    .await;
}
