//! Leases against the real API server: a leader stopped by SIGTERM hands over at once; a leader
//! cut off from the API server stops writing at its renew deadline, before the standby can take
//! its Lease, and stays stopped when it can reach the API server again; two replicas with two
//! shards each reconcile one shard and take over the other's when it is lost.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::ListParams;
use serde_json::json;
use trimtab_e2e::appsim::{p99_query, set_load, web_under_load};
use trimtab_e2e::operator::Operator;
use trimtab_e2e::policy::{apply, replicas};
use trimtab_e2e::proxy::CuttableProxy;
use trimtab_e2e::{eventually, scenario};

fn policy(namespace: &str, target: &str) -> serde_json::Value {
    json!({
        "targetRef": {"kind": "Deployment", "name": target},
        "minReplicas": 2, "maxReplicas": 10, "interval": "5s",
        "objectives": [{"name": "p99-latency", "kind": "Ceiling", "query": p99_query(namespace, target, "20s"), "target": "300m"}],
    })
}

/// The holder of Lease `name`, if any.
async fn holder(leases: &Api<Lease>, name: &str) -> Option<String> {
    leases.get(name).await.ok()?.spec?.holder_identity.filter(|h| !h.is_empty())
}

/// Waits until `who`'s log says it watches every one of its Leases.
async fn watching(who: &Operator, leases: usize) {
    eventually("the replica to watch its Leases", Duration::from_secs(60), || async {
        let seen = who.log_text().matches("watching the Lease").count();
        if seen >= leases { Ok(()) } else { Err(format!("{seen} of {leases} watched")) }
    })
    .await;
}

/// The Events each replica (`reportingInstance`) published for each policy, after `since`.
async fn events_by_policy(client: &kube::Client, namespace: &str, since: jiff::Timestamp) -> BTreeMap<String, BTreeSet<String>> {
    let events: Api<Event> = Api::namespaced(client.clone(), namespace);
    let mut by = BTreeMap::<String, BTreeSet<String>>::new();
    for event in events.list(&ListParams::default()).await.expect("list Events").items {
        let time = event.event_time.as_ref().map(|t| t.0).or_else(|| event.metadata.creation_timestamp.as_ref().map(|t| t.0));
        if time.is_some_and(|t| t < since) {
            continue;
        }
        let policy = event.regarding.as_ref().and_then(|r| r.name.clone()).unwrap_or_default();
        by.entry(policy).or_default().insert(event.reporting_instance.unwrap_or_default());
    }
    by
}

#[tokio::test]
#[ignore = "needs a cluster: run with `just e2e`"]
async fn a_leader_stopped_by_sigterm_releases_its_lease_and_the_standby_takes_over_within_3_s() {
    scenario("sigterm", |env, ns| async move {
        web_under_load(&env.client, &ns, 2, 20.0).await;
        apply(&env.client, &ns, "web", policy(&ns, "web")).await;
        let leases: Api<Lease> = Api::namespaced(env.client.clone(), &Operator::lease_namespace(&ns));
        let lease = format!("trimtab-leader-{ns}");
        let mut a = Operator::start_with(&ns, &env.prometheus_url, &["--identity", "replica-a"]);
        eventually("replica-a to lead", Duration::from_secs(60), || async {
            holder(&leases, &lease).await.filter(|h| h == "replica-a").ok_or("not yet".to_owned())
        })
        .await;
        let b = Operator::start_with(&ns, &env.prometheus_url, &["--identity", "replica-b"]);
        watching(&b, 1).await;

        let signalled = Instant::now();
        a.terminate();
        // The product's contract (R8): the standby acts within 3 s of the leader's SIGTERM.
        let mut taken = None;
        while signalled.elapsed() < Duration::from_secs(3) {
            if holder(&leases, &lease).await.as_deref() == Some("replica-b") {
                taken = Some(signalled.elapsed());
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let taken = taken.unwrap_or_else(|| panic!("replica-b did not take the Lease within 3 s of replica-a's SIGTERM"));
        eprintln!("replica-a got SIGTERM; replica-b held the Lease {taken:?} later");
        let after = jiff::Timestamp::now().as_second();
        eventually("replica-b to reconcile", Duration::from_secs(30), || async {
            match b.last_decision(&ns, "web").await {
                Some(t) if t >= after => Ok(()),
                other => Err(format!("newest round at {other:?}")),
            }
        })
        .await;
    })
    .await;
}

#[tokio::test]
#[ignore = "needs a cluster: run with `just e2e`"]
async fn a_leader_cut_off_from_the_api_server_stops_writing_before_the_standby_can_take_over() {
    scenario("partition", |env, ns| async move {
        web_under_load(&env.client, &ns, 2, 20.0).await;
        apply(&env.client, &ns, "web", policy(&ns, "web")).await;
        let leases: Api<Lease> = Api::namespaced(env.client.clone(), &Operator::lease_namespace(&ns));
        let lease = format!("trimtab-leader-{ns}");
        let proxy = CuttableProxy::start_tcp(Operator::api_server()).await;
        let a = Operator::start_through(&ns, &env.prometheus_url, &["--identity", "replica-a"], &proxy.url);
        eventually("replica-a to lead and reconcile", Duration::from_secs(60), || async {
            let leads = holder(&leases, &lease).await.as_deref() == Some("replica-a");
            if leads && a.last_decision(&ns, "web").await.is_some() { Ok(()) } else { Err("not yet".to_owned()) }
        })
        .await;
        let b = Operator::start_with(&ns, &env.prometheus_url, &["--identity", "replica-b"]);
        watching(&b, 1).await;

        // The partition: everything replica-a sends to the API server is lost, nothing is closed.
        let cut = Instant::now();
        proxy.black_hole();
        // replica-a notices by time alone: its writes stop at its renew deadline.
        let stopped = eventually("replica-a to stop writing", Duration::from_secs(30), || async {
            if a.owns_shard(0).await { Err("still holds the shard".to_owned()) } else { Ok(jiff::Timestamp::now()) }
        })
        .await;
        let stopped_after = cut.elapsed();
        let taken = eventually("replica-b to take the Lease", Duration::from_secs(60), || async {
            holder(&leases, &lease).await.filter(|h| h == "replica-b").ok_or("not yet".to_owned())
        })
        .await;
        let taken_after = cut.elapsed();
        let acquired = leases.get(&lease).await.expect("the Lease").spec.and_then(|s| s.acquire_time).expect("acquireTime").0;
        eprintln!("cut at 0; replica-a stopped writing by {stopped_after:?} ({stopped}); replica-b acquired at {acquired}, seen {taken_after:?} ({taken})");
        assert!(stopped < acquired, "replica-a stopped writing ({stopped}) before replica-b took the Lease ({acquired})");

        // Connectivity returns, and the load asks for a scale-out: replica-b makes it, replica-a
        // neither takes the Lease back nor acts.
        proxy.heal();
        set_load(&ns, "web", 400.0).await;
        eventually("replica-b to scale out", Duration::from_secs(90), || async {
            let n = replicas(&env.client, &ns, "web").await;
            if n > 2 { Ok(()) } else { Err(format!("{n} replicas")) }
        })
        .await;
        let healed_rounds = jiff::Timestamp::now().as_second() + 15;
        eventually("three more rounds of replica-b", Duration::from_secs(60), || async {
            match b.last_decision(&ns, "web").await {
                Some(t) if t >= healed_rounds => Ok(()),
                other => Err(format!("newest round at {other:?}")),
            }
        })
        .await;
        assert_eq!(holder(&leases, &lease).await.as_deref(), Some("replica-b"));
        assert!(!a.owns_shard(0).await, "replica-a holds nothing after the partition heals");
        let a_last = a.last_decision(&ns, "web").await.unwrap_or(0);
        assert!(a_last <= stopped.as_second(), "replica-a's newest round ({a_last}) is not after it stopped writing ({stopped})");
        let late = events_by_policy(&env.client, &ns, stopped).await;
        assert!(
            late.values().all(|by| !by.contains("replica-a")),
            "no Event from replica-a was accepted after it stopped writing: {late:?}"
        );
    })
    .await;
}

#[tokio::test]
#[ignore = "needs a cluster: run with `just e2e`"]
async fn two_replicas_with_two_shards_each_reconcile_one_and_take_over_the_other_when_it_is_lost() {
    scenario("shards", |env, ns| async move {
        web_under_load(&env.client, &ns, 2, 20.0).await;
        // Policies in both shards, all on the one Deployment appsim serves: status and Events
        // say who reconciled each.
        let names: Vec<String> = (0..8).map(|i| format!("web-{i}")).collect();
        let shard = |name: &str| trimtab::leases::shard_of(&ns, name, 2);
        assert_eq!(names.iter().map(|n| shard(n)).collect::<BTreeSet<_>>().len(), 2, "policies in both shards");
        for name in &names {
            apply(&env.client, &ns, name, policy(&ns, "web")).await;
        }
        let leases: Api<Lease> = Api::namespaced(env.client.clone(), &Operator::lease_namespace(&ns));
        let lease = |i: u32| format!("trimtab-shard-{i}-{ns}");
        let a = Operator::start_with(&ns, &env.prometheus_url, &["--identity", "replica-a", "--shards", "2"]);
        eventually("replica-a, alone, to hold both shards", Duration::from_secs(60), || async {
            if a.owns_shard(0).await && a.owns_shard(1).await { Ok(()) } else { Err("not yet".to_owned()) }
        })
        .await;
        let mut b = Operator::start_with(&ns, &env.prometheus_url, &["--identity", "replica-b", "--shards", "2"]);
        let (a_shard, b_shard) = eventually("one shard each", Duration::from_secs(60), || async {
            let holders = (holder(&leases, &lease(0)).await, holder(&leases, &lease(1)).await);
            match holders {
                (Some(x), Some(y)) if x != y => Ok(if x == "replica-a" { (0, 1) } else { (1, 0) }),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
        let split = jiff::Timestamp::now();
        let split_at = split.as_second();
        // Each replica evaluates exactly the policies of its shard.
        eventually("both replicas to evaluate their shard's policies", Duration::from_secs(60), || async {
            for name in &names {
                let (owner, other) = if shard(name) == a_shard { (&a, &b) } else { (&b, &a) };
                match owner.last_decision(&ns, name).await {
                    Some(t) if t >= split_at => {}
                    other => return Err(format!("{name}: newest round of its owner at {other:?}")),
                }
                if other.last_decision(&ns, name).await.is_some_and(|t| t >= split_at) {
                    return Err(format!("{name} evaluated by both replicas"));
                }
            }
            Ok(())
        })
        .await;
        for (policy, by) in events_by_policy(&env.client, &ns, split).await {
            let expected = if shard(&policy) == a_shard { "replica-a" } else { "replica-b" };
            assert!(by.iter().all(|r| r == expected), "{policy} was written by {by:?} after the split, not only {expected}");
        }

        // replica-b dies without releasing: replica-a takes its shard when the Lease expires.
        let killed = Instant::now();
        let killed_at = jiff::Timestamp::now().as_second();
        b.kill();
        eventually("replica-a to take over replica-b's shard", Duration::from_secs(45), || async {
            if a.owns_shard(b_shard).await { Ok(()) } else { Err("not yet".to_owned()) }
        })
        .await;
        eprintln!("replica-b killed; replica-a held its shard {:?} later", killed.elapsed());
        eventually("replica-a to evaluate every policy", Duration::from_secs(60), || async {
            for name in &names {
                match a.last_decision(&ns, name).await {
                    Some(t) if t >= killed_at => {}
                    other => return Err(format!("{name}: newest round at {other:?}")),
                }
            }
            Ok(())
        })
        .await;
    })
    .await;
}
