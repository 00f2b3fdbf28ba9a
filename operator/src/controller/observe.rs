//! Observe: everything one decision needs, from the shared caches (see `caches`) and Prometheus.
//! Reads only; no decisions. The only requests a round sends are its Prometheus queries.

use std::collections::BTreeMap;

use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;

use super::cached::CachedDeployment;
use super::caches::{labelled_pool, on_pool};
use super::{Context, Error};
use crate::api::{CapacityPool, ObjectiveKind, Quantity, ScalingPolicy};
use crate::engine::{
    ForecastRule, LoadHistory, ObjectiveRule, Observations, Policy, PolicyPools, Pricing, ReplicasOwner, Requests, Sample,
    UnitPrice, policy_pools,
};
use crate::metrics::{QueryOutcome, RangeOutcome, query_all};
use crate::placement::PodView;
use crate::placement::spot_health::SpotNode;
use crate::plan::PlacementObserved;

/// What the cluster and Prometheus said this round.
pub struct Observed {
    /// The target's replica count (its scale subresource's spec.replicas) as cached.
    pub replicas: i32,
    /// The target's resourceVersion as cached: the scale write's precondition.
    pub resource_version: Option<String>,
    /// The target's UID: a Deployment deleted and created again under the same name is another one.
    pub target_uid: Option<String>,
    /// Who last set the target's replicas (Trimtab or another field manager).
    pub replicas_owner: ReplicasOwner,
    /// The target's Ready replicas.
    pub ready_replicas: i32,
    pub pricing: Pricing,
    /// Another autoscaler on the same target, described for a message.
    pub conflict: Option<String>,
    pub samples: Observations,
    /// The workload's pods and the spot nodes, when the policy places replicas.
    pub placement: Option<PlacementObserved>,
    /// What the range queries of `spec.forecast` returned; empty without it.
    pub load: LoadHistory,
}

/// Why there is nothing to decide on this round; reported on status, not retried as an error.
pub enum Blocked {
    TargetNotFound(String),
    PolicyInvalid(String),
}

pub async fn observe(ctx: &Context, policy: &ScalingPolicy, rules: &Policy) -> Result<Result<Observed, Blocked>, Error> {
    let namespace = policy.namespace().unwrap_or_default();
    let target = &policy.spec.target_ref.name;
    let caches = &ctx.caches;
    // The policy's queries as they are sent: checked, and confined to its namespace when enforced.
    // Admin-owned CapacityPool price queries are not the policy's and are sent as written.
    let rules = &match ctx.tenancy.policy(rules, &namespace) {
        Ok(sent) => sent,
        Err(refused) => return Ok(Err(Blocked::PolicyInvalid(refused.to_string()))),
    };

    let Some(deployment) = caches.deployments.get(&ObjectRef::new(target).within(&namespace)) else {
        return Ok(Err(Blocked::TargetNotFound(format!("Deployment {namespace}/{target} (spec.targetRef) does not exist"))));
    };

    let all_pools: Vec<CapacityPool> = caches.pools.state().iter().map(|p| (**p).clone()).collect();
    let pools = match policy_pools(rules, &all_pools) {
        Ok(pools) => pools,
        Err(unknown) => return Ok(Err(Blocked::PolicyInvalid(format!("{unknown} (kubectl get capacitypools)")))),
    };
    let pricing = pricing(ctx, pools, requests(&deployment)).await;
    let placement = match pools {
        PolicyPools::Placed { spot, on_demand } => Some(placement(ctx, &namespace, target, spot, on_demand)),
        PolicyPools::Unplaced { .. } => None,
    };

    let conflict = conflict(ctx, policy);

    let outcomes = {
        let started = std::time::Instant::now();
        let outcomes = query_all(ctx.metrics.as_ref(), rules.objectives.iter().map(|o| o.query.as_str())).await;
        ctx.telemetry.query_duration.observe(started.elapsed().as_secs_f64() / outcomes.len().max(1) as f64);
        outcomes
    };
    let samples = match crate::metrics::samples(rules, &outcomes) {
        Ok(samples) => samples,
        Err(rejected) => return Ok(Err(Blocked::PolicyInvalid(rejected.to_string()))),
    };
    for sample in samples.values() {
        if let Sample::Absent(absence) = sample {
            ctx.telemetry
                .query_errors
                .get_or_create(&super::telemetry::QueryErrorLabels { absence: absence.as_str().into() })
                .inc();
        }
    }
    let load = match &rules.forecast {
        Some(forecast) => match load_history(ctx, rules, forecast, &namespace, target).await {
            Ok(load) => load,
            Err(field) => return Ok(Err(Blocked::PolicyInvalid(field))),
        },
        None => LoadHistory::default(),
    };
    let replicas = deployment.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let ready_replicas = deployment.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0);
    let resource_version = deployment.resource_version();
    let target_uid = deployment.uid();
    let replicas_owner = super::cached::replicas_owner(&deployment);
    Ok(Ok(Observed {
        replicas,
        resource_version,
        target_uid,
        replicas_owner,
        ready_replicas,
        pricing,
        conflict,
        samples,
        placement,
        load,
    }))
}

/// The Ready replicas of a Deployment as kube-state-metrics exports them: the default of
/// `spec.forecast.readyReplicasQuery`.
pub fn default_ready_replicas_query(namespace: &str, deployment: &str) -> String {
    format!("sum(kube_deployment_status_replicas_ready{{namespace=\"{namespace}\",deployment=\"{deployment}\"}})")
}

/// The predictive law's range queries, concurrently: the throughput, the Ready replicas and each
/// Ceiling objective over the lookback. A series Prometheus has no answer for leaves its part
/// empty (the law then has no plan and the Ceiling reacts, as without `spec.forecast`); a query
/// Prometheus rejects is the policy's to fix, named by its field.
async fn load_history(
    ctx: &Context,
    rules: &Policy,
    forecast: &ForecastRule,
    namespace: &str,
    target: &str,
) -> Result<LoadHistory, String> {
    let minutes = u32::try_from(forecast.lookback.max(forecast.trend_window).as_secs() / 60).unwrap_or(u32::MAX);
    let ready_query = forecast.ready_replicas_query.clone().unwrap_or_else(|| default_ready_replicas_query(namespace, target));
    let ceilings: Vec<(usize, &ObjectiveRule)> =
        rules.objectives.iter().enumerate().filter(|(_, o)| o.kind == ObjectiveKind::Ceiling).collect();
    let mut queries: Vec<(String, &str)> = vec![
        ("spec.forecast.loadQuery".to_owned(), &forecast.load_query),
        ("spec.forecast.readyReplicasQuery".to_owned(), &ready_query),
    ];
    queries.extend(ceilings.iter().map(|(i, o)| (format!("spec.objectives[{i}].query"), o.query.as_str())));
    let answers = futures::future::join_all(queries.iter().map(|(_, q)| ctx.metrics.query_range(q, minutes))).await;
    let mut series = Vec::with_capacity(answers.len());
    for ((field, _), answer) in queries.iter().zip(answers) {
        series.push(match answer {
            RangeOutcome::Minutes(values) => values,
            RangeOutcome::Absent(absence) => {
                tracing::debug!(field = field.as_str(), absence = absence.as_str(), "no range for the predictive law");
                BTreeMap::new()
            }
            RangeOutcome::Rejected(message) => {
                return Err(format!("{field}: Prometheus rejected it as a range query: {message}"));
            }
        });
    }
    let mut series = series.into_iter();
    let load = series.next().unwrap_or_default();
    let ready = series.next().unwrap_or_default();
    let objectives = ceilings.iter().map(|(_, o)| o.name.clone()).zip(series).collect();
    Ok(LoadHistory::from_minutes(&load, &ready, &objectives))
}

/// One replica's requests, summed over the pod template's containers.
fn requests(deployment: &CachedDeployment) -> Option<Requests> {
    let containers = &deployment.spec.as_ref()?.template.spec.as_ref()?.containers;
    let (mut cpu, mut memory) = (0.0, 0.0);
    for container in containers {
        let Some(requests) = container.resources.as_ref().and_then(|r| r.requests.as_ref()) else { continue };
        let amount = |name: &str| requests.get(name).and_then(|q| Quantity::parse(&q.0).ok()).map_or(0.0, |q| q.as_f64());
        cpu += amount("cpu");
        memory += amount("memory");
    }
    (cpu > 0.0 || memory > 0.0).then(|| Requests::from_cores_and_bytes(cpu, memory))
}

/// A replica's hourly cost in each pool, where prices and requests are known.
async fn pricing(ctx: &Context, pools: PolicyPools<'_>, requests: Option<Requests>) -> Pricing {
    let Some(requests) = requests else { return Pricing::default() };
    let cost = async |pool: Option<&CapacityPool>| match pool {
        Some(pool) => unit_price(ctx, pool).await.map(|p| p.replica_cost(&requests)),
        None => None,
    };
    match pools {
        PolicyPools::Placed { spot, on_demand } => {
            Pricing { spot: cost(Some(spot)).await, on_demand: cost(Some(on_demand)).await }
        }
        PolicyPools::Unplaced { on_demand } => Pricing { spot: None, on_demand: cost(on_demand).await },
    }
}

/// The workload's pods (each on a pool, or neither) and the spot pool's nodes.
fn placement(ctx: &Context, namespace: &str, target: &str, spot: &CapacityPool, on_demand: &CapacityPool) -> PlacementObserved {
    let pods = ctx.caches.pods_of(namespace, target);
    let nodes = ctx.caches.nodes.state();
    let views = pods
        .iter()
        .map(|pod| PodView {
            name: pod.name.clone(),
            pool: ctx.caches.pool_of(pod, spot, on_demand),
            node: pod.node_name.clone(),
            ready: pod.ready,
            deleting: pod.deleting,
            unschedulable_since: pod.unschedulable_since,
            deletion_cost: pod.deletion_cost,
            labelled: labelled_pool(pod, spot, on_demand).is_some(),
            created: pod.created,
        })
        .collect();
    let spot_nodes = nodes
        .iter()
        .filter(|n| on_pool(n, spot))
        .map(|n| SpotNode {
            name: n.name_any(),
            interrupted: n
                .spec
                .as_ref()
                .and_then(|s| s.taints.as_ref())
                .is_some_and(|taints| taints.iter().any(|t| spot.spec.interruption_taints.contains(&t.key))),
        })
        .collect();
    PlacementObserved { pods: views, spot_nodes }
}

/// A pool's fixed prices, or its price queries' answers; none when either is unknown.
async fn unit_price(ctx: &Context, pool: &CapacityPool) -> Option<UnitPrice> {
    if let Some(price) = &pool.spec.price {
        return UnitPrice::from_price(price).ok();
    }
    let query = pool.spec.price_query.as_ref()?;
    let outcomes = query_all(ctx.metrics.as_ref(), [query.cpu_core_hour.as_str(), query.memory_gi_b_hour.as_str()]).await;
    let value = |q: &str| match outcomes.get(q) {
        Some(QueryOutcome::Sample(Sample::Value(v))) => Some(*v),
        _ => None,
    };
    let unit = UnitPrice { cpu_core_hour: value(&query.cpu_core_hour)?, memory_gib_hour: value(&query.memory_gi_b_hour)? };
    unit.is_meaningful().then_some(unit)
}

/// Another autoscaler on the same Deployment: an HPA, a KEDA ScaledObject, or an older ScalingPolicy.
/// Index look-ups: the cost is the autoscalers of this target, not of the cluster.
fn conflict(ctx: &Context, policy: &ScalingPolicy) -> Option<String> {
    let namespace = policy.namespace().unwrap_or_default();
    let target = &policy.spec.target_ref.name;
    let caches = &ctx.caches;

    if let Some(hpa) = caches.hpas_of(&namespace, target).first() {
        return Some(format!("HorizontalPodAutoscaler {namespace}/{} also scales Deployment {target}", hpa.name_any()));
    }
    if let Some(object) = caches.scaled_objects_of(&namespace, target).first() {
        return Some(format!("KEDA ScaledObject {namespace}/{} also scales Deployment {target}", object.name_any()));
    }
    let age = |p: &ScalingPolicy| (p.metadata.creation_timestamp.clone(), p.name_any());
    let mine = age(policy);
    caches
        .policies_of(&namespace, target)
        .iter()
        .filter(|other| other.name_any() != policy.name_any() && age(other) < mine)
        .min_by_key(|other| age(other))
        .map(|other| format!("ScalingPolicy {namespace}/{} was there first and scales Deployment {target}", other.name_any()))
}
