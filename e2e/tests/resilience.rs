//! The operator dying: killed mid-scale it resumes without a double scale or a flap, because the
//! history that rate limits need lives in status; with two replicas, the standby takes over within
//! the lease duration. A round failing (a panic, an API error) is reported on its own policy, and
//! the process and the other policies go on.

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use futures::FutureExt;
use k8s_openapi::api::admissionregistration::v1::{ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Event;
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use serde_json::json;
use trimtab_e2e::appsim::{p99_query, set_load, set_model, web_under_load};
use trimtab_e2e::cluster::{apply_deployment, deployment};
use trimtab_e2e::operator::Operator;
use trimtab_e2e::policy::{apply, get, replicas, wait_condition};
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
        let mut crashing =
            Operator::start_with_env(&ns, &env.prometheus_url, &[], &[("TRIMTAB_FAILPOINT_CRASH_AFTER_INTENT", "1")]);
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

/// A Ceiling policy on `target` at the default rate limits, every 5 s.
fn ceiling_policy(namespace: &str, target: &str) -> serde_json::Value {
    json!({
        "targetRef": {"kind": "Deployment", "name": target},
        "minReplicas": 2, "maxReplicas": 10, "interval": "5s",
        "objectives": [{"name": "p99-latency", "kind": "Ceiling", "query": p99_query(namespace, target, "20s"), "target": "300m"}]
    })
}

/// The message of `name`'s Ready condition once it is False for `RoundFailed`.
async fn round_failed(client: &kube::Client, namespace: &str, name: &str) -> String {
    eventually(&format!("Ready=False RoundFailed on {name}"), Duration::from_secs(60), || async {
        let policy = get(client, namespace, name).await;
        let ready = policy.status.iter().flat_map(|s| &s.conditions).find(|c| c.type_ == "Ready").cloned();
        match ready {
            Some(c) if c.status == "False" && c.reason == "RoundFailed" => Ok(c.message),
            other => Err(format!("{other:?}")),
        }
    })
    .await
}

/// The note of a Warning `RoundFailed` Event on policy `name`, once there is one.
async fn round_failed_event(client: &kube::Client, namespace: &str, name: &str) -> String {
    let events: Api<Event> = Api::namespaced(client.clone(), namespace);
    eventually(&format!("a Warning RoundFailed Event on {name}"), Duration::from_secs(30), || async {
        let list = events
            .list(&ListParams::default().fields(&format!("involvedObject.name={name}")))
            .await
            .map_err(|e| e.to_string())?;
        list.items
            .iter()
            .find(|e| e.type_.as_deref() == Some("Warning") && e.reason.as_deref() == Some("RoundFailed"))
            .and_then(|e| e.message.clone())
            .ok_or_else(|| format!("{} events", list.items.len()))
    })
    .await
}

/// An admission policy, as a cluster's policy engine would have, that refuses any write of the
/// scale of Deployment `capped` in `namespace`: the API server answers Trimtab's scale write 403.
async fn refuse_scaling_capped(client: &kube::Client, namespace: &str) -> String {
    let name = format!("e2e-refuse-scale-{namespace}");
    let policy: ValidatingAdmissionPolicy = serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{
                "apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["UPDATE"], "resources": ["deployments/scale"]
            }]},
            "validations": [{
                "expression": "object.metadata.name != 'capped'",
                "message": "the e2e admission policy refuses scaling Deployment capped",
                "reason": "Forbidden"
            }]
        }
    }))
    .expect("a ValidatingAdmissionPolicy");
    let binding: ValidatingAdmissionPolicyBinding = serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {
            "policyName": name, "validationActions": ["Deny"],
            "matchResources": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}
        }
    }))
    .expect("a ValidatingAdmissionPolicyBinding");
    let params = PatchParams::apply("trimtab-e2e").force();
    let policies: Api<ValidatingAdmissionPolicy> = Api::all(client.clone());
    policies.patch(&name, &params, &Patch::Apply(&policy)).await.expect("the API server takes the admission policy");
    let bindings: Api<ValidatingAdmissionPolicyBinding> = Api::all(client.clone());
    bindings.patch(&name, &params, &Patch::Apply(&binding)).await.expect("the API server takes the binding");
    name
}

async fn remove_admission_policy(client: &kube::Client, name: &str) {
    let _ = Api::<ValidatingAdmissionPolicyBinding>::all(client.clone()).delete(name, &DeleteParams::default()).await;
    let _ = Api::<ValidatingAdmissionPolicy>::all(client.clone()).delete(name, &DeleteParams::default()).await;
}

/// Whether a write of `deployment`'s scale is refused now.
async fn scale_refused(client: &kube::Client, namespace: &str, deployment: &str) -> bool {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let patch = json!({"spec": {"replicas": 2}});
    matches!(api.patch_scale(deployment, &PatchParams::default(), &Patch::Merge(&patch)).await, Err(kube::Error::Api(_)))
}

#[tokio::test]
#[ignore = "needs a cluster: run with `just e2e`"]
async fn a_round_that_panics_or_fails_on_an_api_error_is_reported_on_its_policy_and_the_neighbour_keeps_scaling() {
    scenario("round-failed", |env, ns| async move {
        web_under_load(&env.client, &ns, 2, 400.0).await;
        for name in ["crash", "capped"] {
            apply_deployment(&env.client, &deployment(&ns, name, 2, false)).await;
            set_model(&ns, name, 50.0, 0.05).await;
            set_load(&ns, name, 400.0).await;
        }
        let admission = refuse_scaling_capped(&env.client, &ns).await;
        let outcome = AssertUnwindSafe(async {
            eventually("the API server to enforce the admission policy", Duration::from_secs(30), || async {
                if scale_refused(&env.client, &ns, "capped").await { Ok(()) } else { Err("scale write accepted".to_owned()) }
            })
            .await;
            // In a debug build, every round of policy `crash` panics.
            let mut operator =
                Operator::start_with_env(&ns, &env.prometheus_url, &[], &[("TRIMTAB_FAILPOINT_PANIC_IN_ROUND", "crash")]);
            for name in ["web", "crash", "capped"] {
                apply(&env.client, &ns, name, ceiling_policy(&ns, name)).await;
            }
            let started = Instant::now();

            // Each failed round is reported on its own policy, by what failed, with a Warning Event.
            let panicked = round_failed(&env.client, &ns, "crash").await;
            assert!(panicked.contains("panicked") && panicked.contains("TRIMTAB_FAILPOINT_PANIC_IN_ROUND"), "{panicked}");
            let note = round_failed_event(&env.client, &ns, "crash").await;
            assert!(note.contains("panicked"), "{note}");
            let refused = round_failed(&env.client, &ns, "capped").await;
            assert!(refused.contains("the e2e admission policy refuses scaling Deployment capped"), "{refused}");
            let note = round_failed_event(&env.client, &ns, "capped").await;
            assert!(note.contains("refuses scaling"), "{note}");
            eprintln!("both failures reported {:?} after the policies were created", started.elapsed());

            // The neighbour scales out meanwhile, in the same process.
            eventually("web to scale out beside the failing policies", Duration::from_secs(60), || async {
                let n = replicas(&env.client, &ns, "web").await;
                if n > 2 { Ok(()) } else { Err(format!("{n} replicas")) }
            })
            .await;
            eprintln!("web scaled out {:?} after the policies were created", started.elapsed());
            assert!(operator.running(), "the operator exited:\n{}", operator.log_text());
            assert_eq!(replicas(&env.client, &ns, "crash").await, 2, "a panicking round scales nothing");
            assert_eq!(replicas(&env.client, &ns, "capped").await, 2, "the refused scale was not written");

            let events: Api<Event> = Api::namespaced(env.client.clone(), &ns);
            let on_capped = events
                .list(&ListParams::default().fields("involvedObject.name=capped"))
                .await
                .expect("list Events")
                .items
                .iter()
                .map(|e| {
                    format!(
                        "{} {} x{}",
                        e.type_.as_deref().unwrap_or(""),
                        e.reason.as_deref().unwrap_or(""),
                        e.count.unwrap_or(1)
                    )
                })
                .collect::<Vec<_>>();
            eprintln!("Events on capped while its scale was refused ({:?}): {on_capped:?}", started.elapsed());

            // The next round that succeeds clears the condition.
            remove_admission_policy(&env.client, &admission).await;
            let cleared = Instant::now();
            wait_condition(&env.client, &ns, "capped", "Ready", "True", None, Duration::from_secs(60)).await;
            eprintln!("capped Ready again {:?} after the admission policy was removed", cleared.elapsed());
            assert!(replicas(&env.client, &ns, "capped").await > 2, "capped scaled once allowed");
            assert!(operator.running(), "the operator exited:\n{}", operator.log_text());
        })
        .catch_unwind()
        .await;
        remove_admission_policy(&env.client, &admission).await;
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    })
    .await;
}
