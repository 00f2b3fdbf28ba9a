//! Others writing what Trimtab writes, and the API server going away: a GitOps tool or a person
//! resetting the replicas is answered at most once per window (R12); a target or policy deleted
//! and created again under the same name starts clean (R14); after an API outage every policy is
//! evaluated again within two intervals, without a retry storm during it (R10).

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::json;
use trimtab::api::ScalingPolicy;
use trimtab_e2e::cluster::{apply_deployment, deployment, install_crds};
use trimtab_e2e::operator::Operator;
use trimtab_e2e::policy::{apply, get, replicas, wait_condition};
use trimtab_e2e::proxy::CuttableProxy;
use trimtab_e2e::{eventually, scenario};

/// A policy whose one objective always asks for `want` replicas (a constant total over a
/// per-replica target of 100), with a 60 s scale-down window: the window Trimtab holds for.
fn wanting(want: i32, target: &str) -> serde_json::Value {
    json!({
        "targetRef": {"kind": "Deployment", "name": target},
        "minReplicas": 1, "maxReplicas": 10, "interval": "5s",
        "objectives": [{"name": "load", "kind": "AverageValue", "query": format!("vector({})", want * 100), "target": "100"}],
        "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}
    })
}

/// Sets the target's replicas through its scale subresource as field manager `manager`.
async fn scale_as(client: &Client, namespace: &str, name: &str, manager: &str, replicas: i32) {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let params = PatchParams { field_manager: Some(manager.to_owned()), ..PatchParams::default() };
    api.patch_scale(name, &params, &Patch::Merge(json!({"spec": {"replicas": replicas}})))
        .await
        .unwrap_or_else(|e| panic!("{manager} could not scale {name}: {e}"));
}

/// The times the operator's log says it scaled.
fn scales(operator: &Operator) -> usize {
    operator
        .log_text()
        .lines()
        .filter(|l| l.contains("\"message\":\"scaled\"") || (l.contains(" scaled") && l.contains("from=")))
        .count()
}

async fn reach(client: &Client, namespace: &str, name: &str, want: i32, timeout: Duration) {
    eventually(&format!("{name} at {want} replicas"), timeout, || async move {
        let n = replicas(client, namespace, name).await;
        if n == want { Ok(()) } else { Err(format!("{n} replicas")) }
    })
    .await;
}

#[tokio::test]
#[ignore = "needs a cluster: run with `just e2e`"]
async fn a_gitops_tool_resetting_replicas_every_ten_seconds_gets_at_most_one_answer_per_window() {
    scenario("fighter", |env, ns| async move {
        install_crds(&env.client).await;
        apply_deployment(&env.client, &deployment(&ns, "web", 2, false)).await;
        let operator = Operator::start(&ns, &env.prometheus_url);
        apply(&env.client, &ns, "web", wanting(5, "web")).await;
        reach(&env.client, &ns, "web", 5, Duration::from_secs(90)).await;
        let before = scales(&operator);

        // The fighter: what Git says is 2, synced every 10 s for 3 minutes.
        let fight = Duration::from_secs(180);
        let started = Instant::now();
        let fighter = tokio::spawn({
            let (client, ns) = (env.client.clone(), ns.clone());
            async move {
                while started.elapsed() < fight {
                    scale_as(&client, &ns, "web", "gitops-fighter", 2).await;
                    tokio::time::sleep(Duration::from_secs(10)).await;
                }
            }
        });
        let detected = wait_condition(
            &env.client,
            &ns,
            "web",
            "ExternalWriteDetected",
            "True",
            Some("ExternalWrite"),
            Duration::from_secs(30),
        )
        .await;
        let message = detected
            .status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == "ExternalWriteDetected"))
            .map(|c| c.message.clone())
            .unwrap_or_default();
        assert!(message.contains("gitops-fighter"), "the condition names the writer: {message}");
        fighter.await.expect("the fighter ran");

        let writes = scales(&operator) - before;
        let bound = (fight.as_secs() / 60) as usize + 1;
        eprintln!("over {fight:?} of resets every 10 s, Trimtab wrote {writes} times (bound {bound}): {message}");
        assert!(writes <= bound, "Trimtab wrote {writes} times in {fight:?}, more than once per 60 s window (+1)");
        assert!(writes >= 1, "Trimtab re-asserts after the window");
        let policy = get(&env.client, &ns, "web").await;
        let still = policy
            .status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == "ExternalWriteDetected"))
            .map(|c| c.status.clone());
        assert_eq!(still.as_deref(), Some("True"), "the condition stayed True through the fight instead of flapping");
    })
    .await;
}

#[tokio::test]
#[ignore = "needs a cluster: run with `just e2e`"]
async fn a_kubectl_scale_is_held_for_the_window_then_reasserted() {
    scenario("kubectl-scale", |env, ns| async move {
        install_crds(&env.client).await;
        apply_deployment(&env.client, &deployment(&ns, "web", 2, false)).await;
        let _operator = Operator::start(&ns, &env.prometheus_url);
        apply(&env.client, &ns, "web", wanting(5, "web")).await;
        reach(&env.client, &ns, "web", 5, Duration::from_secs(90)).await;

        scale_as(&env.client, &ns, "web", "kubectl", 8).await;
        let scaled = Instant::now();
        let policy =
            wait_condition(&env.client, &ns, "web", "ExternalWriteDetected", "True", None, Duration::from_secs(30)).await;
        let write = policy.status.and_then(|s| s.external_write).expect("status records the write");
        assert_eq!((write.manager.as_str(), write.replicas), ("kubectl", 8));
        // The person's count stands for the window...
        while scaled.elapsed() < Duration::from_secs(50) {
            assert_eq!(replicas(&env.client, &ns, "web").await, 8, "re-asserted {:?} after kubectl scale", scaled.elapsed());
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        // ...then Trimtab writes its own again, and the condition clears a window later.
        reach(&env.client, &ns, "web", 5, Duration::from_secs(60)).await;
        eprintln!("re-asserted {:?} after kubectl scale", scaled.elapsed());
        wait_condition(
            &env.client,
            &ns,
            "web",
            "ExternalWriteDetected",
            "False",
            Some("NoExternalWrite"),
            Duration::from_secs(90),
        )
        .await;
    })
    .await;
}

/// Scale-up at one replica per 10 minutes: after its first step the policy is held by its rate
/// limit, for the target it scaled.
fn slow(target: &str) -> serde_json::Value {
    let mut spec = wanting(5, target);
    spec["behavior"]["scaleUp"] = json!({"policies": [{"type": "Pods", "value": 1, "periodSeconds": 600}]});
    spec
}

#[tokio::test]
#[ignore = "needs a cluster: run with `just e2e`"]
async fn a_target_or_policy_recreated_under_the_same_name_starts_without_the_old_ones_rate_limits() {
    scenario("recreate", |env, ns| async move {
        install_crds(&env.client).await;
        apply_deployment(&env.client, &deployment(&ns, "web", 2, false)).await;
        let _operator = Operator::start(&ns, &env.prometheus_url);
        apply(&env.client, &ns, "web", slow("web")).await;
        reach(&env.client, &ns, "web", 3, Duration::from_secs(60)).await;

        // The Deployment goes and comes back at 2: a new workload, which the old one's scale-up
        // (2 -> 3, inside the 10 minute period) must not hold at 2.
        let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), &ns);
        deployments.delete("web", &DeleteParams::foreground()).await.expect("delete the Deployment");
        eventually("the Deployment to be gone", Duration::from_secs(60), || async {
            match deployments.get_opt("web").await {
                Ok(None) => Ok(()),
                other => Err(format!("{:?}", other.map(|d| d.is_some()))),
            }
        })
        .await;
        let recreated = jiff::Timestamp::now();
        apply_deployment(&env.client, &deployment(&ns, "web", 2, false)).await;
        reach(&env.client, &ns, "web", 3, Duration::from_secs(40)).await;
        let status = get(&env.client, &ns, "web").await.status.expect("status");
        assert!(
            status.history.scale_events.iter().all(|e| e.time.0 >= recreated - jiff::SignedDuration::from_secs(1)),
            "the old target's scale events are gone: {:?}",
            status.history
        );

        // The policy goes and comes back: it starts with an empty status, and its first round is
        // not paced by the old policy's step.
        let policies: Api<ScalingPolicy> = Api::namespaced(env.client.clone(), &ns);
        policies.delete("web", &DeleteParams::default()).await.expect("delete the policy");
        eventually("the policy to be gone", Duration::from_secs(30), || async {
            match policies.get_opt("web").await {
                Ok(None) => Ok(()),
                _ => Err("still there".to_owned()),
            }
        })
        .await;
        let again = jiff::Timestamp::now();
        apply(&env.client, &ns, "web", slow("web")).await;
        reach(&env.client, &ns, "web", 4, Duration::from_secs(40)).await;
        let status = get(&env.client, &ns, "web").await.status.expect("status");
        assert!(
            status.history.scale_events.iter().all(|e| e.time.0 >= again - jiff::SignedDuration::from_secs(1)),
            "a new policy's history is its own: {:?}",
            status.history
        );
    })
    .await;
}

/// A kubeconfig like the test's, with the API server reached through `proxy`.
fn kubeconfig_through(proxy: &CuttableProxy, dir: &std::path::Path) -> std::path::PathBuf {
    let source = std::env::var("OPERATOR_KUBECONFIG").or_else(|_| std::env::var("KUBECONFIG")).expect("KUBECONFIG is set");
    let mut config = kube::config::Kubeconfig::read_from(&source).expect("the kubeconfig reads");
    for cluster in config.clusters.iter_mut().filter_map(|c| c.cluster.as_mut()) {
        let server = cluster.server.clone().unwrap_or_default();
        let port = server.rsplit(':').next().unwrap_or_default().trim_end_matches('/').to_owned();
        cluster.server = Some(server.replace(&format!(":{port}"), &format!(":{}", proxy.addr.port())));
    }
    let path = dir.join("kubeconfig-through-proxy.json");
    std::fs::write(&path, serde_json::to_string(&config).expect("serializes")).expect("write the kubeconfig");
    path
}

/// The API server's address, from the test's kubeconfig.
async fn api_server() -> std::net::SocketAddr {
    let source = std::env::var("KUBECONFIG").expect("KUBECONFIG is set");
    let config = kube::config::Kubeconfig::read_from(&source).expect("the kubeconfig reads");
    let server = config.clusters.iter().find_map(|c| c.cluster.as_ref()?.server.clone()).expect("a server");
    let host_port = server.trim_start_matches("https://").trim_end_matches('/').to_owned();
    tokio::net::lookup_host(host_port).await.expect("resolves").next().expect("an address")
}

/// When Trimtab last wrote the policy's status, by the API server's clock (its managedFields).
fn status_written(policy: &ScalingPolicy) -> Option<jiff::Timestamp> {
    policy
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|e| e.manager.as_deref() == Some("trimtab") && e.subresource.as_deref() == Some("status"))
        .find_map(|e| e.time.as_ref().map(|t| t.0))
}

#[tokio::test]
#[ignore = "needs a cluster: run with `just e2e`"]
async fn after_the_api_server_is_cut_for_thirty_seconds_every_policy_is_evaluated_within_two_intervals() {
    scenario("api-cut", |env, ns| async move {
        install_crds(&env.client).await;
        const POLICIES: usize = 20;
        let interval = Duration::from_secs(10);
        for i in 0..POLICIES {
            let name = format!("web-{i}");
            apply_deployment(&env.client, &deployment(&ns, &name, 1, false)).await;
            // An objective whose value moves every round, so every round writes status: the
            // rounds during the cut fail and are retried, as any round that needs the API would.
            apply(&env.client, &ns, &name, json!({
                "targetRef": {"kind": "Deployment", "name": name},
                "minReplicas": 1, "maxReplicas": 2, "interval": "10s",
                "objectives": [{"name": "clock", "kind": "AverageValue", "query": "vector(100 + time() % 60 * 10)", "target": "100000"}]
            })).await;
        }
        let proxy = CuttableProxy::start_tcp(api_server().await).await;
        let dir = std::env::temp_dir().join(format!("trimtab-e2e-{ns}"));
        std::fs::create_dir_all(&dir).expect("a temp dir");
        let kubeconfig = kubeconfig_through(&proxy, &dir);
        let operator = Operator::start_via(&ns, &env.prometheus_url, Some(&kubeconfig), &["--leader-elect", "false"]);
        let policies: Api<ScalingPolicy> = Api::namespaced(env.client.clone(), &ns);
        let all_written_since = |since: jiff::Timestamp| {
            let policies = policies.clone();
            async move {
                let list = policies.list(&Default::default()).await.map_err(|e| e.to_string())?;
                let late: Vec<String> = list.items.iter().filter(|p| status_written(p).is_none_or(|t| t < since)).map(kube::ResourceExt::name_any).collect();
                if list.items.len() == POLICIES && late.is_empty() { Ok(()) } else { Err(format!("not yet written: {late:?}")) }
            }
        };
        let start = jiff::Timestamp::now();
        eventually("every policy's first round", Duration::from_secs(90), || all_written_since(start)).await;

        proxy.cut();
        let cut = Instant::now();
        tokio::time::sleep(Duration::from_secs(30)).await;
        // Whole seconds: managedFields times are.
        let healed_at = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second()).expect("now");
        proxy.restore();
        let healed = Instant::now();
        eventually("every policy evaluated after the API server came back", 2 * interval + Duration::from_secs(2), || all_written_since(healed_at)).await;
        eprintln!("every policy was evaluated {:?} after recovery (interval {interval:?})", healed.elapsed());

        let attempts = proxy.refused();
        let mut per_five_seconds = [0usize; 6];
        for at in &attempts {
            let bucket = (at.duration_since(cut).as_secs() / 5).min(5) as usize;
            per_five_seconds[bucket] += 1;
        }
        let retries = operator.log_text().lines().filter(|l| l.contains("retrying")).count();
        eprintln!("{} connection attempts during the 30 s cut, per 5 s: {per_five_seconds:?}; {} round retries logged", attempts.len(), retries);
        // A round retry at most every 5 s per policy, and the watches backing off from 800 ms:
        // anything near a hot loop would be thousands.
        let bound = POLICIES * 30 / 5 + 8 * 8;
        assert!(attempts.len() <= bound, "{} connection attempts in 30 s (bound {bound}): a retry storm", attempts.len());
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await;
}
