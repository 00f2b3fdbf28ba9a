//! One round for one ScalingPolicy: observe (I/O), decide (pure), act (I/O), report (I/O).

use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v1::{Scale, ScaleSpec};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{EvictParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};

use super::backoff;
use super::conditions::{self, Flip};
use super::events::{self, Act};
use super::lenient::LenientPolicy;
use super::observe::{Blocked, PlacementObserved, observe};
use super::status::{self, Hold, Round, SpotReport};
use super::telemetry::{DecisionLabels, EvictionLabels, PolicyLabels};
use super::{Context, Error, FIELD_MANAGER, PAUSED_ANNOTATION};
use crate::api::{Mode, Reason, ScalingPolicy, ScalingPolicyStatus};
use crate::engine::{self, Current, Policy, Split};
use crate::placement::spot_health::{self, Previous};
use crate::placement::{PodView, PoolOf, rebalance};

/// After a write conflict, look again this soon.
const CONFLICT_RETRY: Duration = Duration::from_secs(1);

/// What this process remembers of each policy between rounds without writing it anywhere, by
/// `namespace/name`.
#[derive(Default)]
pub struct Rounds(Mutex<HashMap<String, Remembered>>);

#[derive(Clone, Default)]
struct Remembered {
    /// The policy's UID: one deleted and created again under the same name starts afresh.
    uid: Option<String>,
    /// The newest round that recorded a recommendation: the open run of the history was
    /// recommended through it (see `engine::recall`).
    last_round: Option<Timestamp>,
    /// The status this process wrote last. While the cache still shows the version it was built
    /// over, it has not seen the write yet, and a round (woken early by a target change, say)
    /// starts from the status written, not the older one.
    written: Option<Written>,
}

#[derive(Clone)]
struct Written {
    /// The resourceVersion of the cached object the status was built from.
    over: Option<String>,
    /// The resourceVersion the write produced: the next write's precondition while the cache lags.
    produced: Option<String>,
    status: ScalingPolicyStatus,
}

impl Rounds {
    fn get(&self, policy: &ScalingPolicy) -> Remembered {
        let rounds = self.0.lock().unwrap_or_else(|e| e.into_inner());
        rounds.get(&super::policy_key(policy)).filter(|r| r.uid == policy.uid()).cloned().unwrap_or_default()
    }

    fn update(&self, policy: &ScalingPolicy, change: impl FnOnce(&mut Remembered)) {
        let mut rounds = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let entry = rounds.entry(super::policy_key(policy)).or_default();
        if entry.uid != policy.uid() {
            *entry = Remembered { uid: policy.uid(), ..Remembered::default() };
        }
        change(entry);
    }

    /// Forgets the policies not in `existing` (deleted ones).
    pub fn forget_except(&self, existing: &HashSet<String>) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).retain(|key, _| existing.contains(key));
    }

    /// The status a round starts from, and the resourceVersion it was read at (the precondition of
    /// the round's status write): the cached ones, or the status this process wrote over them and
    /// the version that write produced, when the cache has not caught up with the write yet.
    fn previous(&self, policy: &ScalingPolicy) -> (ScalingPolicyStatus, Option<String>) {
        let cached = || (policy.status.clone().unwrap_or_default(), policy.resource_version());
        let mut rounds = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let Some(remembered) = rounds.get_mut(&super::policy_key(policy)).filter(|r| r.uid == policy.uid()) else {
            return cached();
        };
        match &remembered.written {
            Some(written) if written.over.is_some() && written.over == policy.resource_version() => {
                (written.status.clone(), written.produced.clone())
            }
            _ => {
                // The cache has caught up (or someone else wrote since): the copy is not needed.
                remembered.written = None;
                cached()
            }
        }
    }
}

pub async fn reconcile(policy: Arc<ScalingPolicy>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = std::time::Instant::now();
    // A panic in one policy's round (a bug, whatever input found it) must not take the controller,
    // and so every other tenant's policy, down with it: it is caught, reported on this policy alone,
    // and retried with backoff like any failed round.
    let result = match AssertUnwindSafe(round(&policy, &ctx)).catch_unwind().await {
        // Someone wrote the policy since this round read it (an edit, or another holder of its
        // shard): not a failure, a round on what is there now, soon.
        Ok(Err(Error::StatusConflict)) => {
            tracing::info!(policy = %policy.name_any(), namespace = ?policy.namespace(), "status write conflict: the policy changed since the round read it; retrying");
            ctx.telemetry.reconcile_duration.observe(started.elapsed().as_secs_f64());
            return Ok(Action::requeue(CONFLICT_RETRY));
        }
        Ok(result) => result,
        Err(panic) => {
            let message = panic_message(panic.as_ref());
            tracing::error!(policy = %policy.name_any(), namespace = ?policy.namespace(), %message, "a round panicked");
            report_failed_round(&policy, &ctx, &message).await;
            Err(Error::RoundPanicked(message))
        }
    };
    ctx.telemetry.reconcile_duration.observe(started.elapsed().as_secs_f64());
    if result.is_ok() {
        ctx.failures.clear(&super::policy_identity(&policy));
    }
    result
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// Ready=False (RoundFailed) on the policy, with an Event: best effort, as the round already failed.
async fn report_failed_round(policy: &ScalingPolicy, ctx: &Context, message: &str) {
    let (previous, mut version) = ctx.rounds.previous(policy);
    let text = format!("this round failed unexpectedly and is retried: {message}");
    let (status, flips) = status::blocked(&previous, policy.metadata.generation, Timestamp::now(), Reason::RoundFailed, &text);
    if let Err(error) = report(ctx, policy, &mut version, &previous, status, flips, None).await {
        tracing::warn!(%error, policy = %policy.name_any(), "could not report the failed round");
    }
}

/// The failpoint of the R7 scenario: set, a debug build aborts after writing a scale's intent to
/// status and before writing the scale.
#[cfg(debug_assertions)]
pub const CRASH_AFTER_INTENT: &str = "TRIMTAB_FAILPOINT_CRASH_AFTER_INTENT";

async fn round(policy: &ScalingPolicy, ctx: &Context) -> Result<Action, Error> {
    // The one clock read: everything below takes `now` as data. Whole seconds, as status stores
    // times: what this process decides from memory is then what the next one reads back.
    let now = Timestamp::from_second(Timestamp::now().as_second()).unwrap_or_else(|_| Timestamp::now());
    // `version` follows the round's own status writes, so each is fenced by the one before.
    let (previous, mut version) = ctx.rounds.previous(policy);
    let remembered = ctx.rounds.get(policy);
    let generation = policy.metadata.generation;

    let rules = match Policy::from_spec(&policy.spec) {
        Ok(rules) => rules,
        Err(problems) => {
            let (status, flips) = status::blocked(&previous, generation, now, Reason::PolicyInvalid, &problems.to_string());
            report(ctx, policy, &mut version, &previous, status, flips, None).await?;
            return Ok(Action::await_change());
        }
    };

    // Observe.
    let observed = match observe(ctx, policy, &rules).await? {
        Ok(observed) => observed,
        Err(blocked) => {
            let (reason, message) = match blocked {
                Blocked::TargetNotFound(message) => (Reason::TargetNotFound, message),
                Blocked::PolicyInvalid(message) => (Reason::PolicyInvalid, message),
            };
            let (status, flips) = status::blocked(&previous, generation, now, reason, &message);
            report(ctx, policy, &mut version, &previous, status, flips, None).await?;
            return Ok(Action::requeue(backoff::jittered(rules.interval)));
        }
    };
    let current_replicas = observed.replicas;
    // A target deleted and created again under the same name is a new workload (R14): the old one's
    // recommendations, scale events and writers must not hold or pace it. `previous` stays what
    // status holds, so the write that forgets them is not skipped.
    let recreated = previous.target_uid.is_some() && previous.target_uid != observed.target_uid;
    let base = if recreated {
        tracing::info!(policy = %policy.name_any(), namespace = ?policy.namespace(), "the target was recreated: starting a new history");
        status::for_new_target(&previous)
    } else {
        previous.clone()
    };
    let history = base.history.clone();
    let last_round = if recreated { None } else { remembered.last_round };
    let (spot, doomed) = spot_report(&rules, &previous, observed.placement.as_ref(), now);
    let spot_healthy = spot.healthy;
    let current = Current {
        replicas: current_replicas,
        ready_replicas: Some(observed.ready_replicas),
        consecutive_failures: previous.consecutive_failures,
        spot_healthy,
        pricing: observed.pricing,
    };

    // Decide.
    let decision =
        engine::decide_with(&rules, &observed.samples, &current, &engine::recall(&history, last_round, now), now, &observed.load);
    ctx.telemetry
        .decisions
        .get_or_create(&DecisionLabels { reason: decision.reason.to_string(), limited_by: decision.limited_by.to_string() })
        .inc();

    // Act. Another field manager's write of the replicas is answered at most once per window.
    let external = engine::arbitrate(
        &rules,
        base.external_write.as_ref(),
        base.last_scale_time.as_ref().map(|t| t.0),
        &observed.replicas_owner,
        current_replicas,
        now,
    );
    let hold = if let Some(message) = observed.conflict {
        Hold::Conflict(message)
    } else if policy.annotations().get(PAUSED_ANNOTATION).is_some_and(|v| v == "true") {
        Hold::Paused
    } else if rules.mode == Mode::DryRun {
        Hold::DryRun
    } else if let Some(until) = external.hold_until {
        Hold::External(until)
    } else {
        Hold::None
    };
    let change = decision.desired_replicas - current_replicas;
    let scaling = hold == Hold::None && change != 0;
    let labels = PolicyLabels::of(policy);
    ctx.telemetry.record_decision(&labels, &rules, current_replicas, &decision, now);
    let message = decision.reasons.first().map(|s| s.message.as_str()).unwrap_or_default();
    let target = &policy.spec.target_ref.name;
    // The status of this round, with or without its scale event.
    let reported = |applied_change: i32| {
        let history = engine::remember(&history, last_round, &rules, now, decision.recommendation, applied_change);
        let round = Round {
            generation,
            now,
            current: current_replicas,
            decision: &decision,
            hold: &hold,
            spot: spot.clone(),
            has_budget: rules.budget.is_some(),
            scaled: applied_change != 0,
            external: &external,
        };
        let (mut status, flips) = status::decided(&base, &round, history);
        status.target_uid = observed.target_uid.clone();
        (status, flips)
    };

    if scaling {
        // Report, then act (R7): the scale event is in status before the scale is written, so an
        // operator killed between the two writes comes back knowing the step it took, and its
        // rate limits cannot allow that step a second time.
        let (intent, flips) = reported(change);
        report(ctx, policy, &mut version, &previous, intent.clone(), flips, None).await?;
        // Test-only, in debug builds: crash exactly between the two writes (the R7 e2e scenario).
        #[cfg(debug_assertions)]
        if std::env::var_os(CRASH_AFTER_INTENT).is_some() {
            tracing::error!(policy = %policy.name_any(), "{CRASH_AFTER_INTENT}: aborting between the status and the scale write");
            std::process::abort();
        }
        match write_scale(ctx, policy, observed.resource_version.clone(), decision.desired_replicas).await {
            Ok(()) => {
                tracing::info!(
                    policy = %policy.name_any(),
                    namespace = ?policy.namespace(),
                    from = current_replicas,
                    to = decision.desired_replicas,
                    reason = %decision.reason,
                    limited_by = %decision.limited_by,
                    "scaled"
                );
                let mut note = format!("Scaled {target} from {current_replicas} to {}: {message}", decision.desired_replicas);
                if let Some(write) = &external.external_write {
                    note.push_str(&format!(" (re-asserted after {} set {})", write.manager, write.replicas));
                }
                let act = Act::Scale { from: current_replicas, to: decision.desired_replicas };
                publish(ctx, policy, EventType::Normal, decision.reason, act, note).await;
            }
            Err(error) => {
                // The step was not taken: take its event back out of status.
                let (unscaled, _) = reported(0);
                report(ctx, policy, &mut version, &intent, unscaled, Vec::new(), None).await?;
                if let Error::Kube(kube::Error::Api(status)) = &error
                    && status.code == 409
                {
                    return Ok(Action::requeue(CONFLICT_RETRY));
                }
                publish(
                    ctx,
                    policy,
                    EventType::Warning,
                    Reason::ScaleFailed,
                    Act::Scale { from: current_replicas, to: decision.desired_replicas },
                    format!("Failed to scale {target} to {}: {error}", decision.desired_replicas),
                )
                .await;
                return Err(error);
            }
        }
    } else {
        let (status, flips) = reported(0);
        // What a real scale would have announced, once per new would-be count (the count is never
        // applied, so announcing every round would repeat it every interval).
        let would_scale = (hold == Hold::DryRun && change != 0 && previous.desired_replicas != Some(decision.desired_replicas))
            .then(|| {
                let note = format!(
                    "Would scale {target} from {current_replicas} to {} (mode: DryRun): {message}",
                    decision.desired_replicas
                );
                (decision.reason, Act::WouldScale { from: current_replicas, to: decision.desired_replicas }, note)
            });
        report(ctx, policy, &mut version, &previous, status, flips, would_scale).await?;
    }
    // Only once status holds this round's recommendation may the open run be taken as recommended
    // through it.
    ctx.rounds.update(policy, |r| r.last_round = Some(now));
    // Rebalance, after status says where new pods go (the webhook reads it): replace doomed spot
    // pods, then move one pod per round towards the target split.
    if hold == Hold::None
        && let (Some(observed), Some(target)) = (&observed.placement, decision.placement)
    {
        let evict = rebalance::evictions(target, &observed.pods, &doomed, decision.desired_replicas, now);
        evict_pods(ctx, policy, &evict, &doomed).await;
    }

    Ok(Action::requeue(backoff::jittered(rules.interval)))
}

/// Spot health for this round (and the doomed spot pods to replace), from what was observed.
fn spot_report(
    rules: &Policy,
    previous: &ScalingPolicyStatus,
    observed: Option<&PlacementObserved>,
    now: Timestamp,
) -> (SpotReport, Vec<String>) {
    let (Some(placement), Some(observed)) = (&rules.placement, observed) else {
        return (SpotReport { healthy: true, ..SpotReport::default() }, Vec::new());
    };
    let before = Previous {
        healthy: previous.placement.as_ref().is_none_or(|p| p.spot_healthy),
        available_since: previous.placement.as_ref().and_then(|p| p.spot_available_since.as_ref().map(|t| t.0)),
    };
    let spot_pods: Vec<PodView> = observed.pods.iter().filter(|p| p.pool == PoolOf::Spot).cloned().collect();
    let health =
        spot_health::assess(&before, &observed.spot_nodes, &spot_pods, placement.fallback_after, placement.return_after, now);
    let count = |pool| observed.pods.iter().filter(|p| p.pool == pool && !p.deleting).count() as i32;
    let actual = Split { spot: count(PoolOf::Spot), on_demand: count(PoolOf::OnDemand) };
    let report = SpotReport {
        healthy: health.healthy,
        available_since: health.available_since,
        problem: health.problem,
        actual: Some(actual),
    };
    (report, health.doomed)
}

/// Evicts through the Eviction API, so PodDisruptionBudgets are respected; a refusal waits for the
/// next round. Pods in `doomed` are on reclaimed spot capacity; the others move the split.
async fn evict_pods(ctx: &Context, policy: &ScalingPolicy, names: &[String], doomed: &[String]) {
    let pods: Api<Pod> = Api::namespaced(ctx.client_for(policy), &policy.namespace().unwrap_or_default());
    for name in names {
        let reason = if doomed.contains(name) { "spot_reclaimed" } else { "rebalance" };
        let result = pods.evict(name, &EvictParams::default()).await;
        let outcome = match &result {
            Ok(_) => "evicted",
            Err(kube::Error::Api(status)) if status.code == 429 => "refused",
            Err(kube::Error::Api(status)) if status.code == 404 => "gone",
            Err(_) => "failed",
        };
        ctx.telemetry.evictions.get_or_create(&EvictionLabels { reason, outcome }).inc();
        match result {
            Ok(_) => {
                publish(
                    ctx,
                    policy,
                    EventType::Normal,
                    Reason::Rebalanced,
                    Act::Evict { namespace: &policy.namespace().unwrap_or_default(), pod: name },
                    format!("Evicted pod {name} to move replicas towards the target split"),
                )
                .await
            }
            Err(kube::Error::Api(status)) if status.code == 429 => {
                tracing::info!(pod = %name, "eviction refused by a PodDisruptionBudget; retrying next round");
            }
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(error) => tracing::warn!(%error, pod = %name, "eviction failed"),
        }
    }
}

/// Replicas change only through the scale subresource, with the resourceVersion the cache held as a
/// precondition (a Deployment's scale shares its version): if anything changed the target since, the
/// API server refuses and we look again.
async fn write_scale(
    ctx: &Context,
    policy: &ScalingPolicy,
    resource_version: Option<String>,
    replicas: i32,
) -> Result<(), Error> {
    let namespace = policy.namespace().unwrap_or_default();
    let name = &policy.spec.target_ref.name;
    ctx.caches.wakes.expect_scale(&namespace, name, replicas);
    let deployments: Api<Deployment> = Api::namespaced(ctx.client_for(policy), &namespace);
    let scale = Scale {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(namespace.clone()),
            resource_version,
            ..ObjectMeta::default()
        },
        spec: Some(ScaleSpec { replicas: Some(replicas) }),
        status: None,
    };
    let params = PostParams { field_manager: Some(FIELD_MANAGER.to_owned()), ..PostParams::default() };
    deployments.replace_scale(name, &params, &scale).await?;
    Ok(())
}

/// Patches status when it changed, and publishes an Event for a scale and for each condition flip.
///
/// The patch carries `version` (the resourceVersion the round read, or its previous write
/// produced) as a precondition: a writer that read an older object (a late round of a replica
/// that lost the shard, say) is refused with 409 Conflict, [`Error::StatusConflict`], and writes
/// nothing. On success `version` is the one written. The patch holds status alone: for a policy
/// cached as unreadable (see `lenient`), nothing of the placeholder spec is sent.
async fn report(
    ctx: &Context,
    policy: &ScalingPolicy,
    version: &mut Option<String>,
    previous: &ScalingPolicyStatus,
    status: ScalingPolicyStatus,
    flips: Vec<Flip>,
    scaled: Option<(Reason, Act<'_>, String)>,
) -> Result<(), Error> {
    let labels = PolicyLabels::of(policy);
    ctx.telemetry.record_conditions(&labels, &status.conditions);
    // Compared as the API server would store them (times in whole seconds, say): a round that
    // changed nothing sends nothing.
    if serde_json::to_value(&status).ok() != serde_json::to_value(previous).ok() {
        // Read back leniently: the API server answers with the whole object, which for a policy
        // reported as unreadable does not deserialize as a ScalingPolicy.
        let api: Api<LenientPolicy> = Api::namespaced(ctx.client_for(policy), &policy.namespace().unwrap_or_default());
        let mut patch = serde_json::json!({
            "apiVersion": ScalingPolicy::api_version(&()),
            "kind": ScalingPolicy::kind(&()),
            "status": status,
        });
        if let Some(version) = version.as_deref() {
            patch["metadata"] = serde_json::json!({"resourceVersion": version});
        }
        let written =
            match api.patch_status(&policy.name_any(), &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&patch)).await {
                Ok(written) => written,
                Err(kube::Error::Api(status)) if status.code == 409 => return Err(Error::StatusConflict),
                Err(error) => return Err(error.into()),
            };
        ctx.telemetry.status_writes.inc();
        *version = written.metadata.resource_version;
        let produced = version.clone();
        ctx.rounds.update(policy, |r| r.written = Some(Written { over: policy.resource_version(), produced, status }));
    }
    if let Some((reason, act, message)) = scaled {
        publish(ctx, policy, EventType::Normal, reason, act, message).await;
    }
    for flip in flips {
        let warning = conditions::is_warning(&flip);
        // A new policy's conditions appearing is not news, unless they are bad news.
        if flip.appeared && !warning {
            continue;
        }
        let type_ = if warning { EventType::Warning } else { EventType::Normal };
        let state = if flip.status { "True" } else { "False" };
        let act = Act::Set { condition: flip.type_, status: flip.status };
        publish(ctx, policy, type_, flip.reason, act, format!("{} is {state}: {}", flip.type_, flip.message)).await;
    }
    Ok(())
}

/// The API server refuses an Event whose note is over 1 KiB.
const EVENT_NOTE_LIMIT: usize = 1024;

/// Events are best effort: failing to publish one never fails the round. A note over the API's
/// limit (a long Prometheus error, say) is cut there; the whole text goes to the log.
async fn publish(ctx: &Context, policy: &ScalingPolicy, type_: EventType, reason: Reason, act: Act<'_>, note: String) {
    let note = if note.len() > EVENT_NOTE_LIMIT {
        tracing::info!(policy = %policy.name_any(), %reason, note = %note, "Event note cut to the API's 1 KiB");
        cut_to(&note, EVENT_NOTE_LIMIT)
    } else {
        note
    };
    let event = events::event(type_, reason, act, note);
    if let Err(error) = ctx.recorder_for(policy).publish(&event, &policy.object_ref(&())).await {
        tracing::warn!(%error, policy = %policy.name_any(), "could not publish an Event");
    }
}

/// `text` cut to at most `limit` bytes on a character boundary, ending in "…" when cut.
fn cut_to(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_owned();
    }
    let ellipsis = "…";
    let mut end = limit - ellipsis.len();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ellipsis}", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cached(version: &str, desired: i32) -> ScalingPolicy {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "trimtab.dev/v1alpha1", "kind": "ScalingPolicy",
            "metadata": {"name": "web", "namespace": "shop", "uid": "u1", "resourceVersion": version},
            "spec": {"targetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 10, "objectives": []},
            "status": {"desiredReplicas": desired}
        }))
        .expect("a policy")
    }

    #[test]
    fn a_status_write_is_fenced_by_the_version_read_or_by_this_process_own_last_write() {
        let rounds = Rounds::default();
        let policy = cached("5", 2);
        let (status, version) = rounds.previous(&policy);
        assert_eq!((status.desired_replicas, version.as_deref()), (Some(2), Some("5")), "the cache's");
        let written = ScalingPolicyStatus { desired_replicas: Some(3), ..ScalingPolicyStatus::default() };
        rounds.update(&policy, |r| {
            r.written = Some(Written { over: Some("5".into()), produced: Some("6".into()), status: written })
        });
        // The cache has not seen the write: the next round starts from it, fenced by what it produced.
        let (status, version) = rounds.previous(&policy);
        assert_eq!((status.desired_replicas, version.as_deref()), (Some(3), Some("6")));
        // Someone wrote after us: the cache shows it, and our copy is dropped.
        let (status, version) = rounds.previous(&cached("7", 4));
        assert_eq!((status.desired_replicas, version.as_deref()), (Some(4), Some("7")));
    }

    #[test]
    fn a_long_event_note_is_cut_within_the_api_limit_on_a_character_boundary() {
        let long = "é".repeat(2000);
        let cut = cut_to(&long, EVENT_NOTE_LIMIT);
        assert!(cut.len() <= EVENT_NOTE_LIMIT, "{} bytes", cut.len());
        assert!(cut.ends_with('…'));
        assert_eq!(cut_to("short", EVENT_NOTE_LIMIT), "short");
    }
}
