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
use kube::{Api, Resource, ResourceExt};

use super::backoff;
use super::events;
use super::lenient::LenientPolicy;
use super::observe::{Blocked, observe};
use super::telemetry::{DecisionLabels, EvictionLabels, PolicyLabels};
use super::{Context, Error, FIELD_MANAGER, PAUSED_ANNOTATION};
use crate::api::{Reason, ScalingPolicy, ScalingPolicyStatus};
use crate::engine::Policy;
use crate::plan::conditions::Flip;
use crate::plan::{self, Act, Eviction, PlannedEvent, RoundInput, RoundPlan, Spot, Target, status};

/// After a write conflict, look again this soon.
const CONFLICT_RETRY: Duration = Duration::from_secs(1);

/// What this process remembers of each policy between rounds without writing it anywhere, by
/// `namespace/name`.
#[derive(Default)]
pub struct Rounds(Mutex<HashMap<String, Remembered>>);

#[derive(Default)]
struct Remembered {
    /// The policy's UID: one deleted and created again under the same name starts afresh.
    uid: Option<String>,
    /// The newest round that recorded a recommendation: the open run of the history was
    /// recommended through it (see `engine::recall`).
    last_round: Option<Timestamp>,
    /// The resourceVersion of the cached object this process's last status write was built over.
    /// While the cache still shows that version, it has not seen the write yet, and a round (woken
    /// early by a target change, say) reads the policy from the API server instead. Only the version
    /// is kept, not the status written: a copy would hold every written policy's status until its
    /// next round, for a lag that is rare and short.
    written_over: Option<String>,
}

impl Rounds {
    /// The newest round that recorded a recommendation for `policy`, in this process.
    fn last_round(&self, policy: &ScalingPolicy) -> Option<Timestamp> {
        let rounds = self.0.lock().unwrap_or_else(|e| e.into_inner());
        rounds.get(&super::policy_key(policy)).filter(|r| r.uid == policy.uid()).and_then(|r| r.last_round)
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

    /// Whether the cache has not seen this process's last status write to `policy` yet. Once it
    /// has (or someone else wrote since), that write is forgotten.
    fn cache_lags(&self, policy: &ScalingPolicy) -> bool {
        let mut rounds = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let Some(remembered) = rounds.get_mut(&super::policy_key(policy)).filter(|r| r.uid == policy.uid()) else {
            return false;
        };
        let lags = remembered.written_over.is_some() && remembered.written_over == policy.resource_version();
        if !lags {
            remembered.written_over = None;
        }
        lags
    }
}

/// The status a round starts from, and the resourceVersion it was read at (the precondition of the
/// round's status write): the cached ones, or when the cache has not seen this process's last
/// status write yet, the policy's as the API server has them now.
async fn previous_status(ctx: &Context, policy: &ScalingPolicy) -> Result<(ScalingPolicyStatus, Option<String>), Error> {
    if ctx.rounds.cache_lags(policy) {
        let api: Api<LenientPolicy> = Api::namespaced(ctx.client.clone(), &policy.namespace().unwrap_or_default());
        // The object, not its status subresource: the chart grants `get` on scalingpolicies only.
        let stored = api.get(&policy.name_any()).await?;
        return Ok((stored.status.unwrap_or_default(), stored.metadata.resource_version));
    }
    Ok((policy.status.clone().unwrap_or_default(), policy.resource_version()))
}

pub async fn reconcile(policy: Arc<ScalingPolicy>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = std::time::Instant::now();
    // A panic in one policy's round (a bug, whatever input found it) must not take the controller,
    // and so every other tenant's policy, down with it: it is caught, and reported and retried like
    // any failed round.
    let round = async {
        #[cfg(debug_assertions)]
        panic_failpoint(&policy);
        round(&policy, &ctx).await
    };
    let result = match AssertUnwindSafe(round).catch_unwind().await {
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
            Err(Error::RoundPanicked(message))
        }
    };
    // Whatever failed the round (a panic, an API error other than the conflict above), the policy
    // says so on its own status, so `kubectl describe` shows why it is not acting; the next round
    // that succeeds clears it. Not when the API server cannot take the report: it would fail the
    // same way, and double the requests of every retry while the server is away or overloaded.
    if let Err(error) = &result
        && api_server_takes_reports(error)
    {
        report_failed_round(&policy, &ctx, error).await;
    }
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

/// Ready=False (RoundFailed) on the policy, naming the error, with the Warning Event of that flip:
/// best effort, as the round already failed. When the status cannot be written (the error may be
/// exactly that), the Event is sent on its own.
async fn report_failed_round(policy: &ScalingPolicy, ctx: &Context, error: &Error) {
    let (previous, mut version) = match previous_status(ctx, policy).await {
        Ok(previous) => previous,
        // Best effort: from the cache, whose version a write after ours makes the write refuse.
        Err(_) => (policy.status.clone().unwrap_or_default(), policy.resource_version()),
    };
    let text = failed_round_text(error);
    let (status, flips) = status::blocked(&previous, policy.metadata.generation, Timestamp::now(), Reason::RoundFailed, &text);
    if let Err(write) = report(ctx, policy, &mut version, &previous, status, flips, None).await {
        tracing::warn!(error = %write, policy = %policy.name_any(), "could not report the failed round on status");
        let act = Act::Set { condition: plan::conditions::READY, status: false };
        publish(ctx, policy, PlannedEvent::warning(Reason::RoundFailed, act, text)).await;
    }
}

/// False when the round failed because the API server could not be reached (a cut connection, a
/// TLS failure) or asked for less (429 Too Many Requests, 503 Unavailable, 504 Timeout): writing
/// the failure to status and an Event would only add requests to the retries.
fn api_server_takes_reports(error: &Error) -> bool {
    match error {
        Error::Kube(kube::Error::Api(status)) => !matches!(status.code, 429 | 503 | 504),
        Error::Kube(
            kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) | kube::Error::RustlsTls(_),
        ) => false,
        Error::Kube(_) | Error::RoundPanicked(_) | Error::StatusConflict => true,
    }
}

/// What a failed round's Ready condition says; one text, so a round that reported its own failure
/// (a refused scale write) is not reported again.
fn failed_round_text(error: &Error) -> String {
    format!("this round failed and is retried: {error}")
}

/// The failpoint of the failed-round scenario: set to a policy's name, a debug build panics at the
/// start of each of that policy's rounds.
#[cfg(debug_assertions)]
pub const PANIC_IN_ROUND: &str = "TRIMTAB_FAILPOINT_PANIC_IN_ROUND";

#[cfg(debug_assertions)]
fn panic_failpoint(policy: &ScalingPolicy) {
    if std::env::var(PANIC_IN_ROUND).is_ok_and(|name| name == policy.name_any()) {
        panic!("{PANIC_IN_ROUND}: a round of {} panics", policy.name_any());
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
    let (previous, mut version) = previous_status(ctx, policy).await?;
    let input = RoundInput {
        now,
        generation: policy.metadata.generation,
        previous: &previous,
        last_round: ctx.rounds.last_round(policy),
    };

    // Observe.
    let rules = match Policy::from_spec(&policy.spec) {
        Ok(rules) => rules,
        Err(problems) => {
            let (status, flips) = plan::blocked(&input, Reason::PolicyInvalid, &problems.to_string());
            report(ctx, policy, &mut version, &previous, status, flips, None).await?;
            return Ok(Action::await_change());
        }
    };
    let observed = match observe(ctx, policy, &rules).await? {
        Ok(observed) => observed,
        Err(blocked) => {
            let (reason, message) = match blocked {
                Blocked::TargetNotFound(message) => (Reason::TargetNotFound, message),
                Blocked::PolicyInvalid(message) => (Reason::PolicyInvalid, message),
            };
            let (status, flips) = plan::blocked(&input, reason, &message);
            report(ctx, policy, &mut version, &previous, status, flips, None).await?;
            return Ok(Action::requeue(backoff::jittered(rules.interval)));
        }
    };

    // Plan.
    let observation = plan::Observation {
        rules: &rules,
        target: Target {
            name: &policy.spec.target_ref.name,
            replicas: observed.replicas,
            ready_replicas: Some(observed.ready_replicas),
            uid: observed.target_uid.clone(),
            replicas_owner: observed.replicas_owner.clone(),
        },
        spot: Spot::Observed(observed.placement.as_ref()),
        pricing: observed.pricing,
        samples: &observed.samples,
        load: &observed.load,
        conflict: observed.conflict.clone(),
        paused: policy.annotations().get(PAUSED_ANNOTATION).is_some_and(|v| v == "true"),
    };
    let RoundPlan { decision, recreated, status, flips, would_scale, scale, evictions, .. } = plan::plan(&input, &observation);
    if recreated {
        tracing::info!(policy = %policy.name_any(), namespace = ?policy.namespace(), "the target was recreated: starting a new history");
    }
    ctx.telemetry
        .decisions
        .get_or_create(&DecisionLabels { reason: decision.reason.to_string(), limited_by: decision.limited_by.to_string() })
        .inc();
    ctx.telemetry.record_decision(&PolicyLabels::of(policy), &rules, observed.replicas, &decision, now);

    // Act.
    if let Some(scale) = scale {
        // Report, then act (R7): the scale event is in status before the scale is written, so an
        // operator killed between the two writes comes back knowing the step it took, and its
        // rate limits cannot allow that step a second time.
        // The intent's flips are announced once the step is taken (or was not refused): a write
        // refused on every retry must not flip Ready back and forth in Events.
        report(ctx, policy, &mut version, &previous, status.clone(), Vec::new(), None).await?;
        // Test-only, in debug builds: crash exactly between the two writes (the R7 e2e scenario).
        #[cfg(debug_assertions)]
        if std::env::var_os(CRASH_AFTER_INTENT).is_some() {
            tracing::error!(policy = %policy.name_any(), "{CRASH_AFTER_INTENT}: aborting between the status and the scale write");
            std::process::abort();
        }
        match write_scale(ctx, policy, observed.resource_version.clone(), scale.to).await {
            Ok(()) => {
                tracing::info!(
                    policy = %policy.name_any(),
                    namespace = ?policy.namespace(),
                    from = scale.from,
                    to = scale.to,
                    reason = %decision.reason,
                    limited_by = %decision.limited_by,
                    "scaled"
                );
                for event in plan::flip_events(&flips) {
                    publish(ctx, policy, event).await;
                }
                publish(ctx, policy, scale.scaled).await;
            }
            Err(error) => {
                // The step was not taken: take its event back out of status.
                if let Error::Kube(kube::Error::Api(refused)) = &error
                    && refused.code == 409
                {
                    report(ctx, policy, &mut version, &status, scale.unscaled, flips, None).await?;
                    return Ok(Action::requeue(CONFLICT_RETRY));
                }
                // Said on the policy in the same write, with the text the failed round reports.
                let (refused, refused_flips) = plan::scale_refused(&input, &scale, &flips, &failed_round_text(&error));
                report(ctx, policy, &mut version, &status, refused, refused_flips, None).await?;
                let note = format!("{}: {error}", scale.failed);
                publish(
                    ctx,
                    policy,
                    PlannedEvent::warning(Reason::ScaleFailed, Act::Scale { from: scale.from, to: scale.to }, note),
                )
                .await;
                return Err(error);
            }
        }
    } else {
        report(ctx, policy, &mut version, &previous, status, flips, would_scale).await?;
    }
    // Only once status holds this round's recommendation may the open run be taken as recommended
    // through it.
    ctx.rounds.update(policy, |r| r.last_round = Some(now));
    // Evictions go after status says where new pods go (the webhook reads it).
    evict_pods(ctx, policy, &evictions).await;

    Ok(Action::requeue(backoff::jittered(rules.interval)))
}

/// Evicts through the Eviction API, so PodDisruptionBudgets are respected; a refusal waits for the
/// next round.
async fn evict_pods(ctx: &Context, policy: &ScalingPolicy, evictions: &[Eviction]) {
    if evictions.is_empty() {
        return;
    }
    let pods: Api<Pod> = Api::namespaced(ctx.client_for(policy), &policy.namespace().unwrap_or_default());
    for Eviction { pod: name, doomed } in evictions {
        let reason = if *doomed { "spot_reclaimed" } else { "rebalance" };
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
                let note = format!("Evicted pod {name} to move replicas towards the target split");
                publish(ctx, policy, PlannedEvent::normal(Reason::Rebalanced, Act::Evict { pod: name.clone() }, note)).await
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
    scaled: Option<PlannedEvent>,
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
        ctx.rounds.update(policy, |r| r.written_over = policy.resource_version());
    }
    for event in scaled.into_iter().chain(plan::flip_events(&flips)) {
        publish(ctx, policy, event).await;
    }
    Ok(())
}

/// The API server refuses an Event whose note is over 1 KiB.
const EVENT_NOTE_LIMIT: usize = 1024;

/// Events are best effort: failing to publish one never fails the round. A note over the API's
/// limit (a long Prometheus error, say) is cut there; the whole text goes to the log.
async fn publish(ctx: &Context, policy: &ScalingPolicy, mut event: PlannedEvent) {
    if event.note.len() > EVENT_NOTE_LIMIT {
        tracing::info!(policy = %policy.name_any(), reason = %event.reason, note = %event.note, "Event note cut to the API's 1 KiB");
        event.note = cut_to(&event.note, EVENT_NOTE_LIMIT);
    }
    let event = events::event(event, &policy.namespace().unwrap_or_default());
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

    #[test]
    fn a_round_failed_by_a_refusal_is_reported_and_one_failed_by_an_unreachable_or_overloaded_api_server_is_not() {
        let api = |code: u16| {
            let status: kube::core::Status = serde_json::from_value(serde_json::json!({"code": code})).expect("a Status");
            Error::Kube(kube::Error::Api(Box::new(status)))
        };
        for code in [400, 403, 404, 422, 500] {
            assert!(api_server_takes_reports(&api(code)), "{code} is reported on the policy");
        }
        for code in [429, 503, 504] {
            assert!(!api_server_takes_reports(&api(code)), "{code} asks for fewer requests");
        }
        let cut = Error::Kube(kube::Error::Service(Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused))));
        assert!(!api_server_takes_reports(&cut), "an unreachable API server cannot take the report");
        assert!(api_server_takes_reports(&Error::RoundPanicked("boom".into())));
    }

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
    fn a_round_reads_the_api_server_only_while_the_cache_has_not_seen_this_process_own_last_write() {
        let rounds = Rounds::default();
        let policy = cached("5", 2);
        assert!(!rounds.cache_lags(&policy), "nothing written: the cache's status is the one");
        rounds.update(&policy, |r| r.written_over = Some("5".into()));
        assert!(rounds.cache_lags(&policy), "the cache still shows the version the write was built over");
        assert!(rounds.cache_lags(&policy), "and keeps saying so until it catches up");
        // The cache has seen the write (or someone else's after it): the write is forgotten.
        assert!(!rounds.cache_lags(&cached("6", 3)));
        assert!(!rounds.cache_lags(&policy), "forgotten: an older cached version is not taken for a lag");
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
