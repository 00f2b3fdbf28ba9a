//! The local cluster schedules like a real one: pods land on the kwok nodes the scheduler picks,
//! and become Ready.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::ListParams;
use kube::{Api, ResourceExt};
use trimtab_e2e::cluster::{apply_deployment, deployment, wait_ready_replicas};
use trimtab_e2e::scenario;

#[tokio::test]
#[ignore = "needs a cluster: run with `just e2e`"]
async fn a_deployment_with_spot_tolerations_becomes_ready_on_kwok_nodes() {
    scenario("sched", |env, namespace| async move {
        let mut web = deployment(&namespace, "web", 3, true);
        // Spot only: the nodeSelector makes the scheduler's choice observable.
        if let Some(spec) = web.spec.as_mut().and_then(|s| s.template.spec.as_mut()) {
            spec.node_selector = Some([("karpenter.sh/capacity-type".to_owned(), "spot".to_owned())].into());
        }
        apply_deployment(&env.client, &web).await;
        wait_ready_replicas(&env.client, &namespace, "web", 3, Duration::from_secs(60)).await;

        let nodes: Api<Node> = Api::all(env.client.clone());
        let spot_nodes: Vec<String> = nodes
            .list(&ListParams::default().labels("karpenter.sh/capacity-type=spot"))
            .await
            .expect("list nodes")
            .items
            .iter()
            .map(|n| n.name_any())
            .collect();
        assert_eq!(spot_nodes.len(), 3, "the cluster has three spot nodes");
        let pods: Api<Pod> = Api::namespaced(env.client.clone(), &namespace);
        for pod in pods.list(&ListParams::default().labels("app=web")).await.expect("list pods").items {
            let node = pod.spec.and_then(|s| s.node_name).unwrap_or_default();
            assert!(spot_nodes.contains(&node), "pod {} runs on {node}, not a spot node", pod.metadata.name.unwrap_or_default());
        }
    })
    .await;
}
