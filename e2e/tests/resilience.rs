//! The operator dying: killed mid-scale it resumes without a double scale or a flap, because the
//! history that rate limits need lives in status; with two replicas, the standby takes over within
//! the lease duration.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use serde_json::json;
use trimtab_e2e::appsim::{p99_query, web_under_load};
use trimtab_e2e::operator::Operator;
use trimtab_e2e::policy::{apply, get, replicas};
use trimtab_e2e::{eventually, scenario};

fn slow_scale_up_policy(namespace: &str) -> serde_json::Value {
    json!({
        "targetRef": {"kind": "Deployment", "name": "web"},
        "minReplicas": 2, "maxReplicas": 10, "interval": "5s",
        "objectives": [{"name": "p99-latency", "kind": "Ceiling", "query": p99_query(namespace, "web", "20s"), "target": "300m"}],
        // At most 2 more replicas per 40 s: a restart inside the period must not add 2 more.
        "behavior": {"scaleUp": {"policies": [{"type": "Pods", "value": 2, "periodSeconds": 40}]}}
    })
}

#[tokio::test]
#[ignore = "needs a cluster: run with `just e2e`"]
async fn an_operator_killed_mid_scale_resumes_without_a_double_scale_or_a_flap() {
    scenario("restart", |env, ns| async move {
        web_under_load(&env.client, &ns, 2, 400.0).await;
        let mut operator = Operator::start(&ns, &env.prometheus_url);
        apply(&env.client, &ns, "web", slow_scale_up_policy(&ns)).await;

        let first_scale = eventually("the first scale-out", Duration::from_secs(90), || async {
            let n = replicas(&env.client, &ns, "web").await;
            if n == 4 { Ok(Instant::now()) } else { Err(format!("{n} replicas")) }
        })
        .await;
        operator.kill();
        let killed_at = jiff::Timestamp::now();
        let _restarted = Operator::start(&ns, &env.prometheus_url);

        // Until the 40 s period has passed, the restarted operator must hold at 4.
        while first_scale.elapsed() < Duration::from_secs(35) {
            let n = replicas(&env.client, &ns, "web").await;
            assert_eq!(n, 4, "scaled again {:?} after the first scale-out, inside the rate-limit period", first_scale.elapsed());
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        // Still inside the period, the restarted operator's status holds the events from 2 to 4,
        // however many steps they took. (Past the period, HPA's storage overwrites them, as it should.)
        let history = get(&env.client, &ns, "web").await.status.expect("status").history;
        let before_restart: i32 = history.scale_events.iter().filter(|e| e.time.0 <= killed_at).map(|e| e.change).sum();
        assert_eq!(before_restart, 2, "the scale events from 2 to 4 survived the restart: {history:?}");
        eventually("the next step of the scale-out after the period", Duration::from_secs(90), || async {
            let n = replicas(&env.client, &ns, "web").await;
            assert!(n >= 4, "flapped down to {n}");
            if n == 6 { Ok(()) } else { Err(format!("{n} replicas")) }
        })
        .await;
    })
    .await;
}

#[tokio::test]
#[ignore = "needs a cluster: run with `just e2e`"]
async fn with_two_replicas_the_standby_takes_over_within_the_lease_duration() {
    scenario("leader", |env, ns| async move {
        web_under_load(&env.client, &ns, 2, 20.0).await;
        let mut a = Operator::start_with(&ns, &env.prometheus_url, &["--identity", "replica-a"]);
        let mut b = Operator::start_with(&ns, &env.prometheus_url, &["--identity", "replica-b"]);
        apply(&env.client, &ns, "web", slow_scale_up_policy(&ns)).await;

        let leases: Api<Lease> = Api::namespaced(env.client.clone(), &Operator::lease_namespace(&ns));
        let lease = format!("trimtab-leader-{ns}");
        let holder = || async {
            let lease = leases.get(&lease).await.map_err(|e| e.to_string())?;
            lease.spec.and_then(|s| s.holder_identity).filter(|h| !h.is_empty()).ok_or_else(|| "no holder".to_owned())
        };
        let leader = eventually("a leader", Duration::from_secs(90), holder).await;
        let by_identity = |identity: &str| if identity == "replica-a" { &a } else { &b };
        eventually("the leader to reconcile", Duration::from_secs(90), || async {
            by_identity(&leader).last_decision(&ns, "web").await.ok_or_else(|| "no round yet".to_owned())
        })
        .await;

        let killed = Instant::now();
        let killed_at = jiff::Timestamp::now().as_second();
        if leader == "replica-a" {
            a.kill()
        } else {
            b.kill()
        }
        let next = eventually("the standby to take the lease", Duration::from_secs(90), || async {
            match holder().await {
                Ok(h) if h != leader => Ok(h),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
        let takeover = killed.elapsed();
        eprintln!("leader {leader} killed; {next} took over after {takeover:?}");
        let survivor = if leader == "replica-a" { &b } else { &a };
        eventually("the new leader to reconcile", Duration::from_secs(90), || async {
            match survivor.last_decision(&ns, "web").await {
                Some(t) if t >= killed_at => Ok(()),
                other => Err(format!("the new leader's newest round at {other:?}")),
            }
        })
        .await;
    })
    .await;
}

#[tokio::test]
#[ignore = "needs a cluster: run with `just e2e`"]
async fn an_operator_crashing_between_its_status_and_its_scale_write_never_takes_the_step_twice() {
    scenario("crash-between", |env, ns| async move {
        web_under_load(&env.client, &ns, 2, 400.0).await;
        // The failpoint aborts the process right after the status write that records the step
        // and before the scale write.
        let mut crashing = Operator::start_with_env(&ns, &env.prometheus_url, &[("TRIMTAB_FAILPOINT_CRASH_AFTER_INTENT", "1")]);
        apply(&env.client, &ns, "web", slow_scale_up_policy(&ns)).await;
        assert!(crashing.exited_within(Duration::from_secs(120)).await, "the failpoint never fired:\n{}", crashing.log_text());
        let crashed = Instant::now();
        let history = get(&env.client, &ns, "web").await.status.expect("status").history;
        let recorded: i32 = history.scale_events.iter().map(|e| e.change).sum();
        assert!(recorded > 0, "the step was recorded before the crash: {history:?}");
        assert_eq!(replicas(&env.client, &ns, "web").await, 2, "and never written");

        // The restarted operator counts the recorded step against the 2-pods-per-40-s limit, as if
        // it had been taken: inside the period it adds at most what is left of the 2, never the
        // step again on top of a full budget.
        let _restarted = Operator::start(&ns, &env.prometheus_url);
        let most = 2 + 2 - recorded;
        while crashed.elapsed() < Duration::from_secs(30) {
            let n = replicas(&env.client, &ns, "web").await;
            assert!(
                n <= most,
                "{n} replicas {:?} after the crash: more than the 2-pod budget less the recorded step ({recorded})",
                crashed.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        eventually("the scale-out to go on once the period has passed", Duration::from_secs(90), || async {
            let n = replicas(&env.client, &ns, "web").await;
            if n > 2 { Ok(()) } else { Err(format!("{n} replicas")) }
        })
        .await;
    })
    .await;
}
