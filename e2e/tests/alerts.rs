//! The chart's alerts on a real operator's metrics: a Prometheus scraping the operator under test
//! evaluates charts/trimtab/files/prometheus-rules.yaml (with `for:` shortened, see
//! trimtab_e2e::alerting), and an alert fires when what it describes really happens.

use std::time::Duration;

use serde_json::json;
use trimtab_e2e::alerting::RulesPrometheus;
use trimtab_e2e::appsim::{p99_query, set_load, web_under_load};
use trimtab_e2e::operator::Operator;
use trimtab_e2e::policy::{apply, wait_condition};
use trimtab_e2e::{eventually, scenario};

fn firing_for<'a>(alerts: &'a [serde_json::Value], name: &str, namespace: &str) -> Option<&'a serde_json::Value> {
    alerts.iter().find(|a| a["alertname"] == name && a["namespace"] == namespace)
}

#[tokio::test]
#[ignore = "needs a cluster: run with `just e2e`"]
async fn a_policy_whose_objective_loses_its_data_fires_trimtab_metrics_unavailable() {
    scenario("alerts", |env, ns| async move {
        web_under_load(&env.client, &ns, 2, 100.0).await;
        let operator = Operator::start(&ns, &env.prometheus_url);
        let Some(alerting) = RulesPrometheus::start(&operator.metrics_addr(), Duration::from_secs(5)) else { return };
        apply(
            &env.client,
            &ns,
            "web",
            json!({
                "targetRef": {"kind": "Deployment", "name": "web"},
                "minReplicas": 2, "maxReplicas": 10, "interval": "5s",
                "objectives": [{"name": "p99-latency", "kind": "Ceiling", "query": p99_query(&ns, "web", "20s"), "target": "300m"}]
            }),
        )
        .await;
        wait_condition(&env.client, &ns, "web", "MetricsAvailable", "True", None, Duration::from_secs(90)).await;
        // Scraped and evaluated: the condition's series reads 1 and the alert is quiet (it may have
        // fired while the first rounds waited for the rate window to fill; now it must resolve).
        eventually("the alerting Prometheus to see MetricsAvailable=1 and no alert", Duration::from_secs(60), || async {
            let available =
                alerting.value(&format!("trimtab_policy_condition{{condition=\"MetricsAvailable\",namespace=\"{ns}\"}}")).await?;
            let alerts = alerting.firing().await?;
            match (available, firing_for(&alerts, "TrimtabMetricsUnavailable", &ns)) {
                (Some(1.0), None) => Ok(()),
                (available, alert) => Err(format!("MetricsAvailable series {available:?}, alert {alert:?}")),
            }
        })
        .await;

        // The service goes idle: no requests, so the latency histogram's quantile is NaN, a typed
        // absence; the policy holds and says MetricsAvailable=False, and the alert fires.
        set_load(&ns, "web", 0.0).await;
        wait_condition(&env.client, &ns, "web", "MetricsAvailable", "False", None, Duration::from_secs(120)).await;
        let alert = eventually("TrimtabMetricsUnavailable to fire for the policy", Duration::from_secs(60), || async {
            let alerts = alerting.firing().await?;
            firing_for(&alerts, "TrimtabMetricsUnavailable", &ns).cloned().ok_or_else(|| format!("firing: {alerts:?}"))
        })
        .await;
        assert_eq!(alert["policy"], "web", "the alert names the policy: {alert}");
        assert_eq!(alert["severity"], "warning", "{alert}");
        drop(operator);
    })
    .await;
}
