//! Placement on the local cluster's kwok spot and on-demand nodes: the webhook puts each new pod on
//! the right pool, scale-in removes the right pods, and the rebalancer fixes what the webhook missed.

use std::time::Duration;

use serde_json::json;
use trimtab_e2e::appsim::set_load;
use trimtab_e2e::cluster::{apply_deployment, deployment, install_crds};
use trimtab_e2e::operator::Operator;
use trimtab_e2e::placement::{
    apply_pools, apply_webhook_configuration, delete_pools, delete_webhook_configuration, free_port, split_is,
};
use trimtab_e2e::policy::apply;
use trimtab_e2e::{eventually, scenario};

/// Sized by offered load: 10 rps per replica, base 2 on-demand, 70% of the rest on spot.
fn placed_policy(namespace: &str, spot: &str, on_demand: &str) -> serde_json::Value {
    json!({
        "targetRef": {"kind": "Deployment", "name": "web"},
        "minReplicas": 2, "maxReplicas": 12, "interval": "5s",
        "objectives": [{"name": "load", "kind": "AverageValue", "target": "10",
                        "query": format!(r#"sum(app_offered_load{{namespace="{namespace}",deployment="web"}})"#)}],
        "behavior": {"scaleDown": {"stabilizationWindowSeconds": 10}},
        "placement": {"spotPool": spot, "onDemandPool": on_demand, "onDemandBase": 2, "spotPercentage": 70}
    })
}

fn webhook_flags(port: u16, configuration: &str) -> Vec<String> {
    ["--webhook-addr", &format!("127.0.0.1:{port}"), "--webhook-configuration-name", configuration]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

#[tokio::test]
#[ignore = "needs a cluster: run with `just e2e`"]
async fn scaling_from_2_to_12_and_back_to_4_keeps_the_spot_split_at_every_stable_point() {
    scenario("split", |env, ns| async move {
        install_crds(&env.client).await;
        let (spot, on_demand) = apply_pools(&env.client, &ns).await;
        let port = free_port();
        let configuration = apply_webhook_configuration(&env.client, &ns, port).await;
        let flags = webhook_flags(port, &configuration);
        let _operator = Operator::start_with(&ns, &env.prometheus_url, &flags.iter().map(String::as_str).collect::<Vec<_>>());
        apply(&env.client, &ns, "web", placed_policy(&ns, &spot, &on_demand)).await;
        set_load(&ns, "web", 0.0).await;
        apply_deployment(&env.client, &deployment(&ns, "web", 2, false)).await;

        // 2 replicas: both on-demand (the base).
        eventually("2 on-demand replicas", Duration::from_secs(60), || split_is(&env.client, &ns, "web", 0, 2)).await;
        // 12 replicas: on-demand 2 + ceil(10 × 0.3) = 5, spot 7.
        set_load(&ns, "web", 120.0).await;
        eventually("12 replicas split 7 spot / 5 on-demand", Duration::from_secs(150), || {
            split_is(&env.client, &ns, "web", 7, 5)
        })
        .await;
        // 4 replicas: on-demand 2 + ceil(2 × 0.3) = 3, spot 1; scale-in removed the right pods.
        set_load(&ns, "web", 40.0).await;
        eventually("4 replicas split 1 spot / 3 on-demand", Duration::from_secs(150), || split_is(&env.client, &ns, "web", 1, 3))
            .await;

        delete_webhook_configuration(&env.client, &configuration).await;
        delete_pools(&env.client, &ns).await;
    })
    .await;
}

#[tokio::test]
#[ignore = "needs a cluster: run with `just e2e`"]
async fn pods_created_while_the_webhook_is_down_still_start_and_the_rebalancer_restores_the_split() {
    scenario("failopen", |env, ns| async move {
        install_crds(&env.client).await;
        let (spot, on_demand) = apply_pools(&env.client, &ns).await;
        let port = free_port();
        let configuration = apply_webhook_configuration(&env.client, &ns, port).await;
        apply(&env.client, &ns, "web", placed_policy(&ns, &spot, &on_demand)).await;
        set_load(&ns, "web", 40.0).await;

        // Nothing listens on the webhook's port: the API server fails open and the pods start unplaced.
        apply_deployment(&env.client, &deployment(&ns, "web", 4, false)).await;
        eventually("4 unplaced replicas Ready on on-demand", Duration::from_secs(60), || split_is(&env.client, &ns, "web", 0, 4))
            .await;

        // The webhook comes back: one eviction per round moves the split to 1 spot / 3 on-demand.
        let flags = webhook_flags(port, &configuration);
        let _operator = Operator::start_with(&ns, &env.prometheus_url, &flags.iter().map(String::as_str).collect::<Vec<_>>());
        eventually("the rebalancer to restore 1 spot / 3 on-demand", Duration::from_secs(180), || {
            split_is(&env.client, &ns, "web", 1, 3)
        })
        .await;

        delete_webhook_configuration(&env.client, &configuration).await;
        delete_pools(&env.client, &ns).await;
    })
    .await;
}
