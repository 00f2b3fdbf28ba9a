//! The operator: a kube-runtime controller that reconciles every ScalingPolicy each `interval`.

mod backoff;
pub mod cached;
pub mod caches;
mod events;
pub mod index;
mod lenient;
mod observe;
mod reconcile;
pub mod telemetry;

use std::sync::Arc;

use futures::StreamExt;
use kube::Client;
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;

use crate::api::ScalingPolicy;
use crate::leases::Ownership;
use crate::metrics::MetricsSource;
use telemetry::PolicyLabels;
pub use telemetry::Telemetry;

/// The one field manager of every write Trimtab makes.
pub const FIELD_MANAGER: &str = "trimtab";
/// Rounds in flight at once. A round is mostly waiting on Prometheus, so a few dozen keep thousands
/// of policies on time, while memory and the load on Prometheus and the API server stay bounded
/// however many policies are due together.
const MAX_CONCURRENT_ROUNDS: usize = 64;
/// `trimtab.dev/paused: "true"`: decide and report, never write the target.
pub const PAUSED_ANNOTATION: &str = "trimtab.dev/paused";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("the round panicked: {0}")]
    RoundPanicked(String),
    #[error("the status write was refused (409 Conflict): the policy changed since the round read it")]
    StatusConflict,
}

pub struct Context {
    pub client: Client,
    pub metrics: Arc<dyn MetricsSource>,
    /// The shards this replica reconciles now.
    pub ownership: Arc<Ownership>,
    /// Per shard, the client and Event recorder whose writes stop when the shard is not held.
    writers: Vec<(Client, Recorder)>,
    pub telemetry: Arc<Telemetry>,
    /// The one namespace watched, or all.
    pub namespace: Option<String>,
    /// What a round reads of the cluster.
    pub caches: caches::Caches,
    /// Which series a policy's queries may read.
    pub tenancy: crate::metrics::tenancy::Tenancy,
    /// Failed rounds in a row, per policy, for the retry backoff.
    failures: backoff::Failures,
    /// What this process remembers of each policy's rounds without writing it.
    rounds: reconcile::Rounds,
    /// The round slots, handed out first due, first served (see [`reconcile_owned`]).
    round_slots: tokio::sync::Semaphore,
}

impl Context {
    pub fn new(
        client: Client,
        metrics: Arc<dyn MetricsSource>,
        telemetry: Arc<Telemetry>,
        instance: Option<String>,
        namespace: Option<String>,
        caches: caches::Caches,
        ownership: Arc<Ownership>,
    ) -> Self {
        let reporter = Reporter { controller: "trimtab".into(), instance };
        let writers = (0..ownership.shards())
            .map(|shard| {
                let writer = crate::leases::gated(client.clone(), ownership.clone(), shard);
                (writer.clone(), Recorder::new(writer, reporter.clone()))
            })
            .collect();
        let _ = telemetry.ownership.set(ownership.clone());
        Context {
            writers,
            ownership,
            client,
            metrics,
            telemetry,
            namespace,
            caches,
            tenancy: Default::default(),
            failures: backoff::Failures::default(),
            rounds: reconcile::Rounds::default(),
            round_slots: tokio::sync::Semaphore::new(MAX_CONCURRENT_ROUNDS),
        }
    }

    /// Whether this replica reconciles `policy` now (it holds the policy's shard).
    pub fn owns(&self, policy: &ScalingPolicy) -> bool {
        let namespace = kube::ResourceExt::namespace(policy).unwrap_or_default();
        self.ownership.owns_policy(&namespace, &kube::ResourceExt::name_any(policy))
    }

    fn writer(&self, policy: &ScalingPolicy) -> &(Client, Recorder) {
        let namespace = kube::ResourceExt::namespace(policy).unwrap_or_default();
        let shard = self.ownership.shard_of(&namespace, &kube::ResourceExt::name_any(policy)) as usize;
        // `shard_of` is below `shards()`, the length of `writers`.
        &self.writers[shard.min(self.writers.len() - 1)]
    }

    /// The client for the writes of `policy`'s round: refused once its shard is not held.
    pub fn client_for(&self, policy: &ScalingPolicy) -> Client {
        self.writer(policy).0.clone()
    }

    /// The Event recorder for `policy`, gated like [`Context::client_for`].
    pub fn recorder_for(&self, policy: &ScalingPolicy) -> &Recorder {
        &self.writer(policy).1
    }
}

/// Runs the controller until `shutdown` resolves. Each policy is reconciled independently: one
/// policy's error is retried with backoff and never holds up the others. Only the policies of the
/// shards this replica holds are reconciled; a shard gained wakes its policies.
pub async fn run(ctx: Arc<Context>, shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static) {
    let telemetry = ctx.telemetry.clone();
    let ctx_shards = ctx.ownership.shards();
    telemetry.set_shards(&ctx.ownership.owned(), ctx_shards);
    let sweeper = tokio::spawn(forget_deleted_policies(ctx.clone()));
    let gains = tokio::spawn(wake_gained_shards(ctx.clone()));
    // What wakes a policy: its own interval requeue (jittered), a retry after a failed round, and
    // the wake-ups the caches send (its spec or annotations changed, its target or a competing
    // autoscaler did; see `caches`), never its status, so Trimtab's own status write wakes nobody.
    // Every policy of a held shard is reconciled once when the controller starts.
    let wake_handle = ctx.caches.wakes.clone();
    let wakes = wake_handle.listen();
    for policy in ctx.caches.policies.state().iter().filter(|p| ctx.owns(p)) {
        ctx.caches.wakes.wake(ObjectRef::from_obj(policy.as_ref()));
    }
    let wakes = futures::stream::unfold(wakes, |mut wakes| async move { wakes.recv().await.map(|w| (w, wakes)) });
    // The controller's own concurrency limit is not used: the rounds it holds back wait in a set
    // with no order, and once more policies are due than the slots get through, the same ones are
    // taken again every interval and the rest never. The rounds queue for `round_slots` instead.
    Controller::for_stream(futures::stream::pending(), ctx.caches.policies.clone())
        .reconcile_on(wakes)
        .graceful_shutdown_on(shutdown)
        .run(reconcile_owned, error_policy, ctx)
        .for_each(|result| {
            telemetry.round_completed();
            async move {
                match result {
                    Ok((object, _)) => tracing::debug!(policy = %object.name, namespace = ?object.namespace, "reconciled"),
                    Err(error) => tracing::warn!(%error, "reconcile failed"),
                }
            }
        })
        .await;
    sweeper.abort();
    gains.abort();
    wake_handle.stop_listening();
    telemetry.set_shards(&[], ctx_shards);
}

/// A round for a policy of a shard held now; the policies of other shards wait for their shard to
/// be gained ([`wake_gained_shards`]), with no round and no write here.
///
/// A due round waits for one of the [`MAX_CONCURRENT_ROUNDS`] slots, first due first served (a
/// tokio semaphore is fair). When this replica cannot keep up, every policy is evaluated late by
/// the same wait, as a Kubernetes work queue would, instead of some on time and others never.
async fn reconcile_owned(policy: Arc<ScalingPolicy>, ctx: Arc<Context>) -> Result<Action, Error> {
    if !ctx.owns(&policy) {
        return Ok(Action::await_change());
    }
    let slot = {
        let _waiting = Waiting::counted(&ctx.telemetry.rounds_waiting);
        let since = std::time::Instant::now();
        let slot = ctx.round_slots.acquire().await;
        ctx.telemetry.round_wait.observe(since.elapsed().as_secs_f64());
        slot
    };
    // `round_slots` is never closed, so this branch is not taken; were it, the policy would get no
    // interval requeue and wait for the next watch event that wakes it.
    let Ok(_slot) = slot else {
        return Ok(Action::await_change());
    };
    // The policy as it is now: it may have changed, gone or moved to another shard while it waited.
    let Some(policy) = ctx.caches.policies.get(&ObjectRef::from_obj(policy.as_ref())) else {
        return Ok(Action::await_change());
    };
    if !ctx.owns(&policy) {
        return Ok(Action::await_change());
    }
    // Boxed, so that a round waiting for a slot holds a pointer, not a whole round's state.
    Box::pin(reconcile::reconcile(policy, ctx.clone())).await
}

/// Counts a round as waiting for a slot until dropped (also when the controller stops mid-wait).
struct Waiting<'a>(&'a prometheus_client::metrics::gauge::Gauge);

impl<'a> Waiting<'a> {
    fn counted(gauge: &'a prometheus_client::metrics::gauge::Gauge) -> Self {
        gauge.inc();
        Waiting(gauge)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Wakes the policies of every shard gained, so that a shard taken over is reconciled at once.
async fn wake_gained_shards(ctx: Arc<Context>) {
    let mut changes = ctx.ownership.subscribe();
    let mut held = ctx.ownership.owned();
    while changes.changed().await.is_ok() {
        let now = ctx.ownership.owned();
        ctx.telemetry.set_shards(&now, ctx.ownership.shards());
        let gained: Vec<u32> = now.iter().copied().filter(|shard| !held.contains(shard)).collect();
        if !gained.is_empty() {
            tracing::info!(?gained, held = ?now, "reconciling the policies of the shards gained");
            for policy in ctx.caches.policies.state() {
                let namespace = kube::ResourceExt::namespace(policy.as_ref()).unwrap_or_default();
                if gained.contains(&ctx.ownership.shard_of(&namespace, &kube::ResourceExt::name_any(policy.as_ref()))) {
                    ctx.caches.wakes.wake(ObjectRef::from_obj(policy.as_ref()));
                }
            }
        }
        held = now;
    }
}

/// Every minute, the metric series of policies that no longer exist, or whose shard another
/// replica now holds, are removed (so that no policy has series on two replicas).
async fn forget_deleted_policies(ctx: Arc<Context>) {
    let mut every_minute = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        every_minute.tick().await;
        let policies = ctx.caches.policies.state();
        let owned: Vec<_> = policies.iter().filter(|p| ctx.owns(p)).collect();
        let existing = owned.iter().map(|p| PolicyLabels::of(p)).collect();
        let forgotten = ctx.telemetry.forget_policies_except(&existing);
        ctx.rounds.forget_except(&owned.iter().map(|p| policy_key(p)).collect());
        ctx.failures.forget_except(&owned.iter().map(|p| policy_identity(p)).collect());
        if forgotten > 0 {
            tracing::debug!(forgotten, "removed the metric series of deleted policies");
        }
    }
}

/// A failed round is retried exponentially later, with jitter (see `backoff`).
fn error_policy(policy: Arc<ScalingPolicy>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.telemetry.reconcile_errors.inc();
    let failures = ctx.failures.record(&policy_identity(&policy));
    let interval = crate::engine::Policy::from_spec(&policy.spec).map_or(backoff::MAX_RETRY, |rules| rules.interval);
    let wait = backoff::retry_after(failures, interval);
    tracing::warn!(%error, policy = %kube::ResourceExt::name_any(policy.as_ref()), failures, retry_in = ?wait, "retrying");
    Action::requeue(wait)
}

/// `namespace/name`.
fn policy_key(policy: &ScalingPolicy) -> String {
    format!("{}/{}", kube::ResourceExt::namespace(policy).unwrap_or_default(), kube::ResourceExt::name_any(policy))
}

/// `namespace/name/uid`: a policy deleted and created again under the same name is another one,
/// and inherits nothing kept under this key (R14).
fn policy_identity(policy: &ScalingPolicy) -> String {
    format!("{}/{}", policy_key(policy), kube::ResourceExt::uid(policy).unwrap_or_default())
}
