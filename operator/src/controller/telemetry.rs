//! The operator's own metrics, and the HTTP endpoints /metrics, /healthz and /readyz.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use kube::runtime::reflector::Store;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use crate::api::ScalingPolicy;
use crate::engine::Policy;
use crate::leases::Ownership;

/// A leader that has completed no round for five of its shortest policy interval (and at least
/// five minutes) while valid policies exist has stopped making progress: /healthz fails, so the
/// kubelet restarts it and the standby takes over. (Invalid policies wait for an edit: no rounds.)
const STALL_INTERVALS: u32 = 5;
const STALL_AT_LEAST: Duration = Duration::from_secs(300);

/// A policy's namespace and name, shared (not copied) by every series of the policy: a dozen and
/// more series per policy, on a replica that owns 10,000 of them.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyLabels {
    pub namespace: Arc<str>,
    pub policy: Arc<str>,
}

impl PolicyLabels {
    pub fn of(policy: &ScalingPolicy) -> PolicyLabels {
        PolicyLabels {
            namespace: kube::ResourceExt::namespace(policy).unwrap_or_default().into(),
            policy: kube::ResourceExt::name_any(policy).into(),
        }
    }

    fn condition(&self, condition: &str) -> ConditionLabels {
        ConditionLabels { namespace: self.namespace.clone(), policy: self.policy.clone(), condition: condition.to_owned() }
    }

    fn objective(&self, objective: &str) -> ObjectiveLabels {
        ObjectiveLabels { namespace: self.namespace.clone(), policy: self.policy.clone(), objective: objective.to_owned() }
    }

    fn capacity(&self, capacity_type: &'static str) -> PlacementLabels {
        PlacementLabels { namespace: self.namespace.clone(), policy: self.policy.clone(), capacity_type }
    }
}

/// A policy's replicas on one capacity type, named as CapacityPool's `capacityType` names them.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PlacementLabels {
    pub namespace: Arc<str>,
    pub policy: Arc<str>,
    pub capacity_type: &'static str,
}

/// The capacity types of [`PlacementLabels`].
const CAPACITY_TYPES: [&str; 2] = ["Spot", "OnDemand"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConditionLabels {
    pub namespace: Arc<str>,
    pub policy: Arc<str>,
    pub condition: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectiveLabels {
    pub namespace: Arc<str>,
    pub policy: Arc<str>,
    pub objective: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    pub reason: String,
    pub limited_by: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueryErrorLabels {
    pub absence: String,
}

/// What the placement webhook answered: `placed` (a pool label and spread patched in), `admitted`
/// (no policy places the pod, or it could not be read: admitted as it is), `rejected` (the body was
/// not an AdmissionReview).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AdmissionLabels {
    pub outcome: &'static str,
}

/// An eviction the rebalancer asked for: `reason` `spot_reclaimed` (the pod's spot node is going)
/// or `rebalance` (moving the split towards its target); `outcome` `evicted`, `refused` (a
/// PodDisruptionBudget said not now), `gone` (the pod went first) or `failed`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EvictionLabels {
    pub reason: &'static str,
    pub outcome: &'static str,
}

pub struct Telemetry {
    registry: Registry,
    pub reconcile_duration: Histogram,
    pub reconcile_errors: Counter,
    /// Rounds due and waiting for one of the round slots: above zero for long, the replica cannot
    /// keep up with its policies' intervals (every policy is then evaluated late, none skipped).
    pub rounds_waiting: Gauge,
    /// How long a due round waited for a slot.
    pub round_wait: Histogram,
    /// Status patches sent: none while every policy is quiet.
    pub status_writes: Counter,
    pub decisions: Family<DecisionLabels, Counter>,
    pub query_duration: Histogram,
    pub query_errors: Family<QueryErrorLabels, Counter>,
    pub webhook_admissions: Family<AdmissionLabels, Counter>,
    pub webhook_admission_duration: Histogram,
    pub evictions: Family<EvictionLabels, Counter>,
    pub desired_replicas: Family<PolicyLabels, Gauge>,
    /// For a policy with spec.placement: the desired replicas per capacity type.
    pub placement_replicas: Family<PlacementLabels, Gauge>,
    pub current_replicas: Family<PolicyLabels, Gauge>,
    pub cost_per_hour: Family<PolicyLabels, Gauge<f64, AtomicU64>>,
    pub forecast_demand: Family<PolicyLabels, Gauge<f64, AtomicU64>>,
    pub learned_capacity: Family<PolicyLabels, Gauge<f64, AtomicU64>>,
    pub min_replicas: Family<PolicyLabels, Gauge>,
    pub max_replicas: Family<PolicyLabels, Gauge>,
    /// Unix seconds of the policy's newest decided round: status no longer says (a quiet round
    /// writes nothing), so this is where "is every policy evaluated on time" is read.
    pub last_decision_time: Family<PolicyLabels, Gauge>,
    /// 1 while the policy's condition is True, 0 while False or Unknown.
    pub policy_condition: Family<ConditionLabels, Gauge>,
    pub objective_value: Family<ObjectiveLabels, Gauge<f64, AtomicU64>>,
    pub objective_target: Family<ObjectiveLabels, Gauge<f64, AtomicU64>>,
    /// 1 on a replica that holds at least one shard.
    leader: Gauge,
    /// Per shard, 1 on the replica that holds it.
    shard_owned: Family<ShardLabels, Gauge>,
    /// Unix seconds at which the webhook's serving certificate expires (0 without the webhook).
    pub webhook_certificate_expiry: Gauge,
    /// The series each policy has, so that a deleted policy's can be removed.
    series: Mutex<HashMap<PolicyLabels, PolicySeries>>,
    /// This replica holds the leader Lease and runs the controller.
    pub leading: AtomicBool,
    /// Unix seconds of the newest round that completed (well or not).
    pub last_round_unix: AtomicU64,
    /// The size of the last /metrics answer (bytes).
    encoded_size: AtomicUsize,
    /// The policies this replica knows of (set once the caches are up).
    pub policies: OnceLock<Store<ScalingPolicy>>,
    /// The shards this replica holds (set with the controller's context).
    pub ownership: OnceLock<Arc<Ownership>>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ShardLabels {
    pub shard: String,
}

impl Default for Telemetry {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("trimtab");
        let reconcile_duration = Histogram::new(exponential_buckets(0.005, 2.0, 12));
        registry.register("reconcile_duration_seconds", "Time to reconcile one ScalingPolicy", reconcile_duration.clone());
        let reconcile_errors = Counter::default();
        registry.register("reconcile_errors", "Reconciles that failed and were retried", reconcile_errors.clone());
        let rounds_waiting = Gauge::default();
        registry.register(
            "rounds_waiting",
            "Rounds due and waiting for a round slot, first due first served",
            rounds_waiting.clone(),
        );
        let round_wait = Histogram::new(exponential_buckets(0.001, 4.0, 10));
        registry.register("round_wait_seconds", "Time a due round waited for a round slot", round_wait.clone());
        let status_writes = Counter::default();
        registry.register(
            "status_writes",
            "ScalingPolicy status patches sent (a round that changed nothing sends none)",
            status_writes.clone(),
        );
        let decisions = Family::<DecisionLabels, Counter>::default();
        registry.register("decisions", "Decisions made, by reason and by the stage that limited them", decisions.clone());
        let query_duration = Histogram::new(exponential_buckets(0.001, 2.0, 14));
        registry.register("prometheus_query_duration_seconds", "Latency of Prometheus queries", query_duration.clone());
        let webhook_admissions = Family::<AdmissionLabels, Counter>::default();
        registry.register(
            "webhook_admissions",
            "Pod admissions the placement webhook answered, by outcome",
            webhook_admissions.clone(),
        );
        // Admission is on the pod-creation path: buckets from 100 µs, where a cached lookup lands.
        let webhook_admission_duration = Histogram::new(exponential_buckets(0.0001, 2.0, 14));
        registry.register(
            "webhook_admission_duration_seconds",
            "Time the placement webhook took to answer one admission",
            webhook_admission_duration.clone(),
        );
        let evictions = Family::<EvictionLabels, Counter>::default();
        registry.register("evictions", "Pod evictions the rebalancer asked for, by reason and outcome", evictions.clone());
        let query_errors = Family::<QueryErrorLabels, Counter>::default();
        registry.register(
            "prometheus_query_errors",
            "Prometheus queries without a usable value, by absence",
            query_errors.clone(),
        );
        let desired_replicas = Family::<PolicyLabels, Gauge>::default();
        registry.register("desired_replicas", "Replicas Trimtab decided on", desired_replicas.clone());
        let placement_replicas = Family::<PlacementLabels, Gauge>::default();
        registry.register(
            "placement_replicas",
            "Of the replicas Trimtab decided on, how many go on each capacity type (spec.placement)",
            placement_replicas.clone(),
        );
        let current_replicas = Family::<PolicyLabels, Gauge>::default();
        registry.register("current_replicas", "Replicas the target had when observed", current_replicas.clone());
        let cost_per_hour = Family::<PolicyLabels, Gauge<f64, AtomicU64>>::default();
        registry.register("cost_per_hour", "Hourly cost of the desired replicas at pool prices", cost_per_hour.clone());
        let forecast_demand = Family::<PolicyLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "forecast_demand",
            "The throughput spec.forecast provisions for (forecast plus headroom), requests/s; absent without a plan",
            forecast_demand.clone(),
        );
        let learned_capacity = Family::<PolicyLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "learned_capacity",
            "The throughput per Ready replica at which the tightest Ceiling would be breached, as learned; absent without a plan",
            learned_capacity.clone(),
        );
        let min_replicas = Family::<PolicyLabels, Gauge>::default();
        registry.register("min_replicas", "The policy's minReplicas", min_replicas.clone());
        let max_replicas = Family::<PolicyLabels, Gauge>::default();
        registry.register("max_replicas", "The policy's maxReplicas", max_replicas.clone());
        let last_decision_time = Family::<PolicyLabels, Gauge>::default();
        registry.register(
            "last_decision_timestamp_seconds",
            "When the policy's newest round decided (Unix seconds)",
            last_decision_time.clone(),
        );
        let policy_condition = Family::<ConditionLabels, Gauge>::default();
        registry.register("policy_condition", "1 while the policy's condition is True, else 0", policy_condition.clone());
        let objective_value = Family::<ObjectiveLabels, Gauge<f64, AtomicU64>>::default();
        registry.register("objective_value", "The objective's last value (absent while it has none)", objective_value.clone());
        let objective_target = Family::<ObjectiveLabels, Gauge<f64, AtomicU64>>::default();
        registry.register("objective_target", "The objective's target", objective_target.clone());
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 on a replica that holds a shard's Lease (with one shard: the leader Lease)",
            leader.clone(),
        );
        let shard_owned = Family::<ShardLabels, Gauge>::default();
        registry.register(
            "shard_owned",
            "1 on the replica that holds the shard's Lease and reconciles its policies",
            shard_owned.clone(),
        );
        let webhook_certificate_expiry = Gauge::default();
        registry.register(
            "webhook_certificate_expiry_timestamp_seconds",
            "When the certificate the placement webhook presents expires (Unix seconds)",
            webhook_certificate_expiry.clone(),
        );
        let build_info = Family::<BuildLabels, Gauge>::default();
        build_info.get_or_create(&BuildLabels { version: env!("CARGO_PKG_VERSION").to_owned() }).set(1);
        registry.register("build_info", "The running build, as its version label", build_info);
        Telemetry {
            registry,
            min_replicas,
            max_replicas,
            last_decision_time,
            policy_condition,
            objective_value,
            objective_target,
            leader,
            shard_owned,
            webhook_certificate_expiry,
            series: Mutex::new(HashMap::new()),
            reconcile_duration,
            reconcile_errors,
            rounds_waiting,
            round_wait,
            status_writes,
            decisions,
            query_duration,
            query_errors,
            webhook_admissions,
            webhook_admission_duration,
            evictions,
            desired_replicas,
            placement_replicas,
            current_replicas,
            cost_per_hour,
            forecast_demand,
            learned_capacity,
            leading: AtomicBool::new(false),
            last_round_unix: AtomicU64::new(0),
            encoded_size: AtomicUsize::new(0),
            policies: OnceLock::new(),
            ownership: OnceLock::new(),
        }
    }
}

impl Telemetry {
    pub fn encode(&self) -> String {
        // Sized by the last answer: 10,000 policies make megabytes of text, and a String grown
        // by doubling would reserve up to twice that at every scrape.
        let last = self.encoded_size.load(Ordering::Relaxed);
        let mut out = String::with_capacity(last + last / 16);
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        self.encoded_size.store(out.len(), Ordering::Relaxed);
        out
    }

    /// A round completed: progress, for /healthz.
    pub fn round_completed(&self) {
        self.last_round_unix.store(unix_now(), Ordering::Relaxed);
    }

    /// The controller started (or stopped) on this replica.
    pub fn set_leading(&self, leading: bool) {
        if leading {
            // Leading starts the clock: a new leader has had no chance to complete a round yet.
            self.round_completed();
        }
        self.leading.store(leading, Ordering::Relaxed);
        self.leader.set(i64::from(leading));
    }

    /// This replica holds `owned` of `shards` shards: `trimtab_shard_owned` for each, and it leads
    /// (`trimtab_leader`, the /healthz progress check) while it holds any.
    pub fn set_shards(&self, owned: &[u32], shards: u32) {
        for shard in 0..shards {
            self.shard_owned.get_or_create(&ShardLabels { shard: shard.to_string() }).set(i64::from(owned.contains(&shard)));
        }
        let leading = !owned.is_empty();
        if leading != self.leading.load(Ordering::Relaxed) {
            self.set_leading(leading);
        }
    }

    /// A policy's conditions, as `trimtab_policy_condition`.
    pub fn record_conditions(&self, policy: &PolicyLabels, conditions: &[Condition]) {
        let mut series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        let (policy, known) = known(&mut series, policy);
        for condition in conditions {
            let labels = policy.condition(&condition.type_);
            self.policy_condition.get_or_create(&labels).set(i64::from(condition.status == "True"));
            known.conditions.insert(condition.type_.clone());
        }
    }

    /// A policy's replicas, cost, bounds and objectives, as of this round.
    pub fn record_decision(
        &self,
        policy: &PolicyLabels,
        rules: &Policy,
        current: i32,
        decision: &crate::engine::Decision,
        now: jiff::Timestamp,
    ) {
        let mut series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        let (policy, known) = known(&mut series, policy);
        let policy = &policy;
        self.last_decision_time.get_or_create(policy).set(now.as_second());
        self.desired_replicas.get_or_create(policy).set(i64::from(decision.desired_replicas));
        self.current_replicas.get_or_create(policy).set(i64::from(current));
        match decision.placement {
            Some(split) => {
                self.placement_replicas.get_or_create(&policy.capacity("Spot")).set(i64::from(split.spot));
                self.placement_replicas.get_or_create(&policy.capacity("OnDemand")).set(i64::from(split.on_demand));
            }
            None => {
                for capacity_type in CAPACITY_TYPES {
                    self.placement_replicas.remove(&policy.capacity(capacity_type));
                }
            }
        }
        if let Some(cost) = decision.cost_per_hour {
            self.cost_per_hour.get_or_create(policy).set(cost);
        }
        match &decision.plan {
            Some(plan) => {
                self.forecast_demand.get_or_create(policy).set(plan.forecast.demand);
                self.learned_capacity.get_or_create(policy).set(plan.capacity.per_replica);
            }
            None => {
                self.forecast_demand.remove(policy);
                self.learned_capacity.remove(policy);
            }
        }
        self.min_replicas.get_or_create(policy).set(i64::from(rules.min_replicas));
        self.max_replicas.get_or_create(policy).set(i64::from(rules.max_replicas));
        for objective in &decision.objectives {
            let labels = policy.objective(&objective.name);
            self.objective_target.get_or_create(&labels).set(objective.target);
            match objective.value {
                Some(value) => {
                    self.objective_value.get_or_create(&labels).set(value);
                }
                // No value is no series, never a zero.
                None => {
                    self.objective_value.remove(&labels);
                }
            }
            known.objectives.insert(objective.name.clone());
        }
    }

    /// Removes every series of the policies not in `existing` (deleted ones), so that a cluster
    /// that creates and deletes policies all day does not grow the operator's memory or its
    /// scrape. Returns how many policies were forgotten.
    pub fn forget_policies_except(&self, existing: &HashSet<PolicyLabels>) -> usize {
        let mut series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        let gone: Vec<PolicyLabels> = series.keys().filter(|p| !existing.contains(*p)).cloned().collect();
        for policy in &gone {
            let known = series.remove(policy).unwrap_or_default();
            self.desired_replicas.remove(policy);
            for capacity_type in CAPACITY_TYPES {
                self.placement_replicas.remove(&policy.capacity(capacity_type));
            }
            self.current_replicas.remove(policy);
            self.cost_per_hour.remove(policy);
            self.forecast_demand.remove(policy);
            self.learned_capacity.remove(policy);
            self.min_replicas.remove(policy);
            self.max_replicas.remove(policy);
            self.last_decision_time.remove(policy);
            for condition in known.conditions {
                self.policy_condition.remove(&policy.condition(&condition));
            }
            for objective in known.objectives {
                let labels = ObjectiveLabels { namespace: policy.namespace.clone(), policy: policy.policy.clone(), objective };
                self.objective_value.remove(&labels);
                self.objective_target.remove(&labels);
            }
        }
        gone.len()
    }

    /// Why this replica is not healthy, if it is not: it leads, valid policies exist, and no round
    /// has completed for [`STALL_INTERVALS`] of their shortest interval.
    pub fn stalled(&self, now_unix: u64) -> Option<String> {
        if !self.leading.load(Ordering::Relaxed) {
            return None;
        }
        let idle = now_unix.saturating_sub(self.last_round_unix.load(Ordering::Relaxed));
        if idle <= STALL_AT_LEAST.as_secs() {
            return None; // the cheap answer, for nearly every probe
        }
        let intervals: Vec<Duration> = self
            .policies
            .get()
            .map(|store| {
                let owned = |p: &ScalingPolicy| {
                    let namespace = kube::ResourceExt::namespace(p).unwrap_or_default();
                    self.ownership.get().is_none_or(|o| o.owns_policy(&namespace, &kube::ResourceExt::name_any(p)))
                };
                let state = store.state();
                state.iter().filter(|p| owned(p)).filter_map(|p| Policy::from_spec(&p.spec).ok()).map(|p| p.interval).collect()
            })
            .unwrap_or_default();
        let shortest = intervals.iter().min()?;
        let stall_after = (*shortest * STALL_INTERVALS).max(STALL_AT_LEAST);
        (idle > stall_after.as_secs()).then(|| {
            format!(
                "no round completed for {idle} s with {} valid policies to reconcile (limit {stall_after:?})",
                intervals.len()
            )
        })
    }
}

/// `policy`'s labels as its series hold them (the first round's copy, shared by each series made
/// since), and what series it has.
fn known<'a>(series: &'a mut HashMap<PolicyLabels, PolicySeries>, policy: &PolicyLabels) -> (PolicyLabels, &'a mut PolicySeries) {
    match series.entry(policy.clone()) {
        Entry::Occupied(entry) => (entry.key().clone(), entry.into_mut()),
        Entry::Vacant(entry) => (entry.key().clone(), entry.insert(PolicySeries::default())),
    }
}

/// The condition types and objective names a policy has series for.
#[derive(Default)]
struct PolicySeries {
    conditions: HashSet<String>,
    objectives: HashSet<String>,
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `/metrics`, and the health endpoints of [`health_router`] beside it (so one port serves all three
/// unless probes get their own with `--health-addr`).
pub fn router(telemetry: Arc<Telemetry>) -> Router {
    Router::new().route("/metrics", get(metrics)).with_state(telemetry.clone()).merge(health_router(telemetry))
}

/// `/healthz`: liveness (the process serves, and a leader makes progress); `/readyz`: true on the
/// replica that leads and runs the controller. Cheap and independent of Prometheus, so a probe
/// never queues behind a large scrape.
pub fn health_router(telemetry: Arc<Telemetry>) -> Router {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz)).with_state(telemetry)
}

async fn metrics(State(telemetry): State<Arc<Telemetry>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], telemetry.encode())
}

async fn healthz(State(telemetry): State<Arc<Telemetry>>) -> impl IntoResponse {
    match telemetry.stalled(unix_now()) {
        None => (StatusCode::OK, "ok".to_owned()),
        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, why),
    }
}

async fn readyz(State(telemetry): State<Arc<Telemetry>>) -> impl IntoResponse {
    if telemetry.leading.load(Ordering::Relaxed) {
        (StatusCode::OK, "leading")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "standby")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn condition(type_: &str, status: &str) -> Condition {
        Condition {
            type_: type_.into(),
            status: status.into(),
            reason: "R".into(),
            message: String::new(),
            last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH),
            observed_generation: None,
        }
    }

    #[test]
    fn a_deleted_policys_series_leave_the_scrape_and_the_others_stay() {
        let telemetry = Telemetry::default();
        let policy = |name: &str| PolicyLabels { namespace: "shop".into(), policy: name.into() };
        for name in ["kept", "deleted"] {
            telemetry.desired_replicas.get_or_create(&policy(name)).set(3);
            telemetry.record_conditions(&policy(name), &[condition("Ready", "True"), condition("SpotFallback", "False")]);
        }
        let scrape = telemetry.encode();
        assert!(
            scrape.contains(r#"trimtab_policy_condition{namespace="shop",policy="deleted",condition="Ready"} 1"#),
            "{scrape}"
        );
        assert!(scrape.contains(r#"condition="SpotFallback"} 0"#), "{scrape}");
        assert!(scrape.contains("trimtab_leader 0") && scrape.contains("trimtab_build_info{version="), "{scrape}");

        let existing = HashSet::from([policy("kept")]);
        assert_eq!(telemetry.forget_policies_except(&existing), 1);
        let scrape = telemetry.encode();
        assert!(!scrape.contains(r#"policy="deleted""#), "{scrape}");
        assert!(scrape.contains(r#"trimtab_desired_replicas{namespace="shop",policy="kept"} 3"#), "{scrape}");
        assert_eq!(telemetry.forget_policies_except(&existing), 0);
    }

    #[test]
    fn a_standby_or_a_leader_without_policies_is_healthy_however_long_it_idles() {
        let telemetry = Telemetry::default();
        assert_eq!(telemetry.stalled(u64::MAX / 2), None, "standby");
        telemetry.set_leading(true);
        assert_eq!(telemetry.stalled(u64::MAX / 2), None, "no policies known");
    }

    #[test]
    fn a_leader_that_completes_no_round_while_policies_exist_is_unhealthy_after_the_stall_time() {
        let telemetry = Telemetry::default();
        let (store, mut writer) = {
            let mut writer = kube::runtime::reflector::store::Writer::<ScalingPolicy>::default();
            (writer.as_reader(), {
                let policy: ScalingPolicy = serde_json::from_value(serde_json::json!({
                    "apiVersion": "trimtab.dev/v1alpha1", "kind": "ScalingPolicy",
                    "metadata": {"name": "web", "namespace": "shop"},
                    "spec": {"targetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 3,
                             "objectives": [{"name": "rps", "kind": "AverageValue", "query": "q", "target": "1"}]}
                }))
                .expect("a policy");
                writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(policy));
                writer
            })
        };
        let _ = telemetry.policies.set(store);
        telemetry.set_leading(true);
        // The policy's interval is the default 15 s: five of them are under the five-minute floor.
        let started = telemetry.last_round_unix.load(Ordering::Relaxed);
        assert_eq!(telemetry.stalled(started + 300), None);
        assert!(telemetry.stalled(started + 301).is_some());
        telemetry.round_completed();
        assert_eq!(telemetry.stalled(unix_now() + 60), None, "progress again");
        writer.apply_watcher_event(&kube::runtime::watcher::Event::Delete(
            serde_json::from_value(serde_json::json!({
                "apiVersion": "trimtab.dev/v1alpha1", "kind": "ScalingPolicy", "metadata": {"name": "web", "namespace": "shop"},
                "spec": {"targetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 3, "objectives": []}
            }))
            .expect("a policy"),
        ));
        assert_eq!(telemetry.stalled(u64::MAX / 2), None, "nothing left to reconcile");
    }

    /// GET `path` from a server running `router` on a free local port: (status code, body).
    async fn get(router: Router, path: &str) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let addr = listener.local_addr().expect("its address");
        let server = tokio::spawn(async move { axum::serve(listener, router).await });
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes()).await.expect("send");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.expect("read");
        server.abort();
        let code = answer.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        (code, answer.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned())
    }

    #[tokio::test]
    async fn the_health_port_answers_probes_and_serves_no_metrics_while_the_metrics_port_serves_both() {
        let telemetry = Arc::new(Telemetry::default());
        assert_eq!(get(health_router(telemetry.clone()), "/healthz").await, (200, "ok".to_owned()));
        assert_eq!(get(health_router(telemetry.clone()), "/readyz").await, (503, "standby".to_owned()));
        assert_eq!(get(health_router(telemetry.clone()), "/metrics").await.0, 404);
        let (code, body) = get(router(telemetry.clone()), "/metrics").await;
        assert_eq!(code, 200);
        assert!(body.contains("trimtab_build_info"), "{body}");
        assert_eq!(get(router(telemetry), "/healthz").await.0, 200, "probes written for one port keep working");
    }

    #[test]
    fn every_metric_the_charts_dashboard_and_alerts_read_is_one_the_operator_exports() {
        // A family is exported once it has a series: give every labelled one a series.
        let t = Telemetry::default();
        let p = PolicyLabels { namespace: "shop".into(), policy: "checkout".into() };
        for gauge in [&t.desired_replicas, &t.current_replicas, &t.min_replicas, &t.max_replicas, &t.last_decision_time] {
            gauge.get_or_create(&p).set(1);
        }
        for gauge in [&t.cost_per_hour, &t.forecast_demand, &t.learned_capacity] {
            gauge.get_or_create(&p).set(1.0);
        }
        t.placement_replicas.get_or_create(&p.capacity(CAPACITY_TYPES[0])).set(1);
        t.policy_condition.get_or_create(&p.condition("Ready")).set(1);
        t.objective_value.get_or_create(&p.objective("p99")).set(1.0);
        t.objective_target.get_or_create(&p.objective("p99")).set(1.0);
        t.decisions.get_or_create(&DecisionLabels { reason: "R".into(), limited_by: "L".into() }).inc();
        t.query_errors.get_or_create(&QueryErrorLabels { absence: "Empty".into() }).inc();
        t.webhook_admissions.get_or_create(&AdmissionLabels { outcome: "placed" }).inc();
        t.evictions.get_or_create(&EvictionLabels { reason: "rebalance", outcome: "evicted" }).inc();
        t.shard_owned.get_or_create(&ShardLabels { shard: "0".into() }).set(1);
        let exported = t.encode();
        let families: HashSet<&str> =
            exported.lines().filter_map(|l| l.strip_prefix("# TYPE ")).filter_map(|l| l.split_whitespace().next()).collect();
        for (file, text) in [
            ("dashboard.json", include_str!("../../../charts/trimtab/files/dashboard.json")),
            ("prometheus-rules.yaml", include_str!("../../../charts/trimtab/files/prometheus-rules.yaml")),
        ] {
            let mut read = 0;
            for at in text.match_indices("trimtab_").map(|(i, _)| i) {
                let name: String = text[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                // A runbook anchor or a prose mention is not a series name.
                if text[..at].ends_with('#') || name.len() <= "trimtab_".len() {
                    continue;
                }
                let family =
                    ["_bucket", "_count", "_sum", "_total"].iter().find_map(|suffix| name.strip_suffix(suffix)).unwrap_or(&name);
                assert!(families.contains(family), "{file} reads {name}, which the operator does not export");
                read += 1;
            }
            assert!(read > 5, "{file}: found only {read} metric names");
        }
    }
}
