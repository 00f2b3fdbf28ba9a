//! Placement on the local cluster's kwok spot and on-demand nodes: the webhook puts each new pod on
//! the right pool, scale-in removes the right pods, and the rebalancer fixes what the webhook missed.
//! The webhook's self-managed certificate is renewed before it expires, with no restart.

use std::time::{Duration, Instant};

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
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

/// The self-managed Secret's serving certificate, CA bundle and expiry annotation, once it exists.
async fn serving_secret(secrets: &Api<Secret>) -> Result<(String, String, jiff::Timestamp), String> {
    let secret = secrets.get_opt("trimtab-webhook-tls").await.map_err(|e| e.to_string())?.ok_or("no Secret yet")?;
    let data = secret.data.unwrap_or_default();
    let text = |key: &str| data.get(key).map(|b| String::from_utf8_lossy(&b.0).into_owned()).ok_or(format!("no {key}"));
    let not_after = secret
        .metadata
        .annotations
        .and_then(|a| a.get("trimtab.dev/not-after").and_then(|t| t.parse().ok()))
        .ok_or("no trimtab.dev/not-after")?;
    Ok((text("tls.crt")?, text("ca.crt")?, not_after))
}

/// The caBundle of the configuration's webhook, once set.
async fn ca_bundle(configurations: &Api<MutatingWebhookConfiguration>, name: &str) -> Result<String, String> {
    let configuration = configurations.get(name).await.map_err(|e| e.to_string())?;
    let webhook = configuration.webhooks.unwrap_or_default().into_iter().next().ok_or("no webhook")?;
    let bundle = webhook.client_config.ca_bundle.ok_or("no caBundle yet")?;
    Ok(String::from_utf8_lossy(&bundle.0).into_owned())
}

/// The first certificate of a PEM bundle.
fn first_pem(bundle: &str) -> &str {
    const END: &str = "-----END CERTIFICATE-----";
    bundle.find(END).map_or(bundle, |end| bundle[..end + END.len()].trim())
}

#[tokio::test]
#[ignore = "needs a cluster: run with `just e2e`"]
async fn the_self_managed_certificate_is_renewed_before_it_expires_and_placement_goes_on_without_a_restart() {
    scenario("renewal", |env, ns| async move {
        install_crds(&env.client).await;
        let (spot, on_demand) = apply_pools(&env.client, &ns).await;
        let port = free_port();
        let configuration = apply_webhook_configuration(&env.client, &ns, port).await;
        let flags = trimtab_e2e::placement::webhook_flags(port, &configuration);
        // In a debug build: certificates valid for 60 s, renewed with 20 s left, checked every 3 s.
        let mut operator = Operator::start_with_env(
            &ns,
            &env.prometheus_url,
            &flags.iter().map(String::as_str).collect::<Vec<_>>(),
            &[("TRIMTAB_FAILPOINT_WEBHOOK_CERT_SECONDS", "60")],
        );
        let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &ns);
        let configurations: Api<MutatingWebhookConfiguration> = Api::all(env.client.clone());
        let (first_cert, first_ca, first_expiry) =
            eventually("the self-managed Secret", Duration::from_secs(60), || serving_secret(&secrets)).await;
        let issued = Instant::now();
        eventually("the caBundle to carry the first CA", Duration::from_secs(30), || async {
            let bundle = ca_bundle(&configurations, &configuration).await?;
            if bundle.contains(first_pem(&first_ca)) { Ok(()) } else { Err("another CA".to_owned()) }
        })
        .await;
        apply(&env.client, &ns, "web", placed_policy(&ns, &spot, &on_demand)).await;
        set_load(&ns, "web", 0.0).await;
        apply_deployment(&env.client, &deployment(&ns, "web", 2, false)).await;
        eventually("2 on-demand replicas", Duration::from_secs(60), || split_is(&env.client, &ns, "web", 0, 2)).await;
        let first_served = operator.metric("trimtab_webhook_certificate_expiry_timestamp_seconds").await;

        // Renewed in place: a new certificate and CA in the Secret, both CAs in the caBundle.
        let (_, second_ca, second_expiry) = eventually("the Secret renewed", Duration::from_secs(90), || async {
            let (cert, ca, expiry) = serving_secret(&secrets).await?;
            if cert != first_cert { Ok((cert, ca, expiry)) } else { Err("the first certificate still".to_owned()) }
        })
        .await;
        eprintln!("renewed {:?} after the first certificate was issued (valid 60 s)", issued.elapsed());
        assert!(second_expiry > first_expiry, "{second_expiry} after {first_expiry}");
        assert!(second_ca.contains(first_pem(&first_ca)), "the previous CA is still trusted");
        eventually("the caBundle to carry the new CA and the previous one", Duration::from_secs(30), || async {
            let bundle = ca_bundle(&configurations, &configuration).await?;
            if bundle.contains(first_pem(&second_ca)) && bundle.contains(first_pem(&first_ca)) {
                Ok(())
            } else {
                Err("not both CAs".to_owned())
            }
        })
        .await;
        eventually("the webhook to present the renewed certificate", Duration::from_secs(30), || async {
            let served = operator.metric("trimtab_webhook_certificate_expiry_timestamp_seconds").await;
            if served.is_some() && served != first_served { Ok(()) } else { Err(format!("expiry {served:?}")) }
        })
        .await;

        // Once the first certificate has expired, only the renewed one can be served: new pods are
        // still placed by the webhook (each admission the API server makes is a TLS handshake).
        eventually("the first certificate to expire", Duration::from_secs(90), || async {
            if jiff::Timestamp::now() > first_expiry { Ok(()) } else { Err(format!("valid until {first_expiry}")) }
        })
        .await;
        let placed = r#"trimtab_webhook_admissions_total{outcome="placed"}"#;
        let placed_before = operator.metric(placed).await.unwrap_or(0.0);
        set_load(&ns, "web", 40.0).await;
        eventually("4 replicas split 1 spot / 3 on-demand", Duration::from_secs(120), || split_is(&env.client, &ns, "web", 1, 3))
            .await;
        let placed_after = operator.metric(placed).await.unwrap_or(0.0);
        assert!(placed_after > placed_before, "pods placed after the renewal: {placed_before} then {placed_after}");
        eprintln!("{} pods placed after the first certificate expired", placed_after - placed_before);
        assert!(operator.running(), "the operator restarted or exited:\n{}", operator.log_text());

        delete_webhook_configuration(&env.client, &configuration).await;
        delete_pools(&env.client, &ns).await;
    })
    .await;
}
