//! The elector: watches every shard's Lease, takes, renews, hands over and releases them by the
//! rules in [`super::rules`], and grants [`Ownership`] only for as long as a renew allows.
//!
//! Expiry is judged as client-go judges it: a Lease is expired when this replica has not seen it
//! change for its `leaseDurationSeconds`, on this replica's monotonic clock. Every write to a
//! Lease is a replace with its resourceVersion, so two replicas never both take one.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher;

use super::rules::{Move, ShardView, next_move};
use super::{LEASE_DURATION, Ownership, RETRY_PERIOD};

/// The annotation by which a replica asks a Lease's holder to hand the shard over:
/// `<identity> <time>` (the time makes each ask a change that the holder observes).
const REQUESTED_BY: &str = "trimtab.dev/requested-by";
/// One Lease request may take this long: a partitioned API server must not hold up the renew of
/// the other shards, or the check of the deadline.
const CALL_TIMEOUT: Duration = Duration::from_secs(4);
/// How often the elector looks at its Leases without a watch event: renews are due each
/// [`RETRY_PERIOD`], deadlines and expiries pass by time.
const TICK: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum ElectError {
    #[error("Lease {name}: {source}")]
    Kube { name: String, source: kube::Error },
    #[error("Lease {name}: no answer within {CALL_TIMEOUT:?}")]
    Timeout { name: String },
}

/// What this replica last saw of one Lease.
struct Seen {
    lease: Option<Lease>,
    /// When its resourceVersion last changed, as observed here.
    changed_at: Instant,
    /// The newest ask to hand it over, and when it was observed.
    request: Option<(String, Instant)>,
    /// When this replica last tried to renew it.
    renew_tried: Option<Instant>,
    /// Whether the watch has reported it yet.
    watched: bool,
}

pub struct Elector {
    api: Api<Lease>,
    identity: String,
    names: Vec<String>,
    ownership: Arc<Ownership>,
    seen: Vec<Seen>,
}

impl Elector {
    /// Elects `ownership`'s shards, whose Leases are `names`, in `api`'s namespace.
    pub fn new(api: Api<Lease>, identity: String, names: Vec<String>, ownership: Arc<Ownership>) -> Elector {
        let now = Instant::now();
        let seen = names
            .iter()
            .map(|_| Seen { lease: None, changed_at: now, request: None, renew_tried: None, watched: false })
            .collect();
        Elector { api, identity, names, ownership, seen }
    }

    /// Runs until `stop` resolves; then stops writing for every shard and releases their Leases,
    /// so that another replica takes them at once rather than after they expire.
    pub async fn run(mut self, stop: impl std::future::Future<Output = ()>) {
        let watches = self.names.iter().enumerate().map(|(shard, name)| {
            watcher::watch_object(self.api.clone(), name).default_backoff().map(move |event| (shard, event)).boxed()
        });
        let mut events = futures::stream::select_all(watches);
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                biased;
                _ = &mut stop => break,
                Some((shard, event)) = events.next() => match event {
                    Ok(lease) => {
                        if !self.seen[shard].watched {
                            self.seen[shard].watched = true;
                            let holder = lease.as_ref().and_then(|l| l.spec.as_ref()?.holder_identity.clone());
                            tracing::info!(shard, lease = %self.names[shard], ?holder, "watching the Lease");
                        }
                        self.observe(shard, lease)
                    }
                    Err(error) => tracing::warn!(%error, lease = %self.names[shard], "watching the Lease"),
                },
                _ = tick.tick() => {}
            }
            self.step().await;
        }
        self.release_all().await;
    }

    /// A watch event: the Lease as it is now (`None`: deleted or never created).
    fn observe(&mut self, shard: usize, lease: Option<Lease>) {
        let version = |lease: &Option<Lease>| lease.as_ref().and_then(|l| l.metadata.resource_version.clone());
        let seen = &mut self.seen[shard];
        if version(&seen.lease) != version(&lease) {
            seen.changed_at = Instant::now();
        }
        let request = lease.as_ref().and_then(|l| l.metadata.annotations.as_ref()?.get(REQUESTED_BY).cloned());
        if request.is_some() && request.as_ref() != seen.request.as_ref().map(|(r, _)| r) {
            seen.request = request.map(|r| (r, Instant::now()));
        } else if request.is_none() {
            seen.request = None;
        }
        seen.lease = lease;
    }

    /// Who holds each shard, as far as this replica can tell now.
    fn views(&self) -> Vec<ShardView> {
        let now = Instant::now();
        self.seen
            .iter()
            .enumerate()
            .map(|(shard, seen)| {
                let spec = seen.lease.as_ref().and_then(|l| l.spec.as_ref());
                let holder = spec.and_then(|s| s.holder_identity.clone()).filter(|h| !h.is_empty());
                let duration = spec
                    .and_then(|s| s.lease_duration_seconds)
                    .map_or(LEASE_DURATION, |s| Duration::from_secs(u64::try_from(s).unwrap_or(0)));
                let fresh = now < seen.changed_at + duration;
                let holder = match holder {
                    Some(me) if me == self.identity => (fresh || self.ownership.owns(shard as u32)).then_some(me),
                    other => other.filter(|_| fresh),
                };
                let requested_by = seen
                    .request
                    .as_ref()
                    .filter(|(_, at)| now < *at + LEASE_DURATION)
                    .and_then(|(value, _)| value.split_whitespace().next().map(str::to_owned));
                ShardView { holder, requested_by }
            })
            .collect()
    }

    /// Gives up lapsed shards, then makes every shard's move at once.
    async fn step(&mut self) {
        for shard in 0..self.seen.len() as u32 {
            if self.ownership.lapsed(shard) {
                tracing::warn!(shard, lease = %self.names[shard as usize], "not renewed by the renew deadline: writes for the shard have stopped");
                self.ownership.give_up(shard);
            }
        }
        let views = self.views();
        let now = Instant::now();
        let moves: Vec<(usize, Move)> = (0..views.len())
            .map(|shard| (shard, next_move(&views, shard, &self.identity)))
            .filter(|(shard, m)| match m {
                Move::Keep => self.seen[*shard].renew_tried.is_none_or(|at| now >= at + RETRY_PERIOD),
                Move::Wait => false,
                Move::Take | Move::Release | Move::Request => true,
            })
            .collect();
        if moves.is_empty() {
            return;
        }
        for (shard, m) in &moves {
            if matches!(m, Move::Take | Move::Keep) {
                self.seen[*shard].renew_tried = Some(now);
            }
        }
        let calls = moves.iter().map(|&(shard, m)| self.act(shard, m));
        let results: BTreeMap<usize, (Instant, Result<Option<Lease>, ElectError>)> =
            moves.iter().map(|(shard, _)| *shard).zip(futures::future::join_all(calls).await).collect();
        for (shard, (started, result)) in results {
            let m = moves.iter().find(|(s, _)| *s == shard).map(|(_, m)| *m);
            match result {
                Ok(Some(lease)) => {
                    let mine = lease.spec.as_ref().and_then(|s| s.holder_identity.as_deref()) == Some(self.identity.as_str());
                    if mine {
                        if m == Some(Move::Take) {
                            tracing::info!(shard, lease = %self.names[shard], "took the shard's Lease");
                        }
                        self.ownership.renewed(shard as u32, started);
                    }
                    self.observe(shard, Some(lease));
                }
                Ok(None) => {}
                Err(ElectError::Kube { source: kube::Error::Api(status), .. }) if status.code == 409 => {
                    tracing::debug!(shard, "the Lease changed meanwhile; the watch brings the new one");
                }
                Err(error) => tracing::warn!(%error, shard, "Lease request failed"),
            }
        }
    }

    /// One shard's move, timed from before the request: a renew counts from when it was sent.
    async fn act(&self, shard: usize, m: Move) -> (Instant, Result<Option<Lease>, ElectError>) {
        let started = Instant::now();
        let result: futures::future::BoxFuture<'_, _> = match m {
            Move::Take => Box::pin(self.write(shard, |spec, previous| {
                let now = MicroTime(jiff::Timestamp::now());
                let transitions = spec.lease_transitions.unwrap_or(0);
                spec.lease_transitions = Some(if previous.is_some() { transitions + 1 } else { transitions });
                spec.holder_identity = Some(self.identity.clone());
                spec.acquire_time = Some(now.clone());
                spec.renew_time = Some(now);
            })),
            Move::Keep => Box::pin(self.write(shard, |spec, _| spec.renew_time = Some(MicroTime(jiff::Timestamp::now())))),
            Move::Release => {
                tracing::info!(shard, lease = %self.names[shard], "handing the shard over to the replica that asked");
                self.ownership.give_up(shard as u32);
                Box::pin(self.write(shard, release))
            }
            Move::Request => Box::pin(self.request(shard)),
            Move::Wait => return (started, Ok(None)),
        };
        let result = match tokio::time::timeout(CALL_TIMEOUT, result).await {
            Ok(result) => result,
            Err(_) => Err(ElectError::Timeout { name: self.names[shard].clone() }),
        };
        (started, result)
    }

    /// Replaces the Lease as last seen (with its resourceVersion, so that a change made meanwhile
    /// fails the write), or creates it when none was seen. Clears any ask to hand it over.
    async fn write(&self, shard: usize, change: impl FnOnce(&mut LeaseSpec, Option<&str>)) -> Result<Option<Lease>, ElectError> {
        let name = &self.names[shard];
        let error = |source| ElectError::Kube { name: name.clone(), source };
        let mut lease = self.seen[shard]
            .lease
            .clone()
            .unwrap_or_else(|| Lease { metadata: ObjectMeta { name: Some(name.clone()), ..ObjectMeta::default() }, spec: None });
        let mut spec = lease.spec.take().unwrap_or_default();
        let previous = spec.holder_identity.clone().filter(|h| !h.is_empty());
        change(&mut spec, previous.as_deref());
        if spec.holder_identity.is_some() {
            spec.lease_duration_seconds = Some(LEASE_DURATION.as_secs() as i32);
        }
        lease.spec = Some(spec);
        if let Some(annotations) = lease.metadata.annotations.as_mut() {
            annotations.remove(REQUESTED_BY);
        }
        let written = if lease.metadata.resource_version.is_some() {
            self.api.replace(name, &PostParams::default(), &lease).await
        } else {
            self.api.create(&PostParams::default(), &lease).await
        };
        written.map(Some).map_err(error)
    }

    /// Asks the holder to hand the shard over.
    async fn request(&self, shard: usize) -> Result<Option<Lease>, ElectError> {
        let name = &self.names[shard];
        tracing::info!(shard, lease = %name, "asking the holder of more than its share for the shard");
        let value = format!("{} {}", self.identity, jiff::Timestamp::now());
        let patch = serde_json::json!({"metadata": {"annotations": {REQUESTED_BY: value}}});
        let patched = self.api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await;
        patched.map(Some).map_err(|source| ElectError::Kube { name: name.clone(), source })
    }

    /// Stops writing for every shard, then releases the Leases it held.
    async fn release_all(self) {
        let held: Vec<usize> = (0..self.seen.len()).filter(|&s| self.ownership.owns(s as u32)).collect();
        for &shard in &held {
            self.ownership.give_up(shard as u32);
        }
        let this = &self;
        let releases = held.iter().map(|&shard| async move {
            let released = tokio::time::timeout(CALL_TIMEOUT, this.write(shard, release)).await;
            match released {
                Ok(Ok(_)) => tracing::info!(shard, lease = %this.names[shard], "released the shard's Lease"),
                Ok(Err(error)) => tracing::warn!(%error, shard, "could not release the Lease: it expires instead"),
                Err(_) => tracing::warn!(shard, "releasing the Lease timed out: it expires instead"),
            }
        });
        futures::future::join_all(releases).await;
    }
}

/// A released Lease: no holder, and a duration of 1 s for clients that judge by renewTime.
fn release(spec: &mut LeaseSpec, _: Option<&str>) {
    spec.holder_identity = None;
    spec.lease_duration_seconds = Some(1);
    spec.renew_time = Some(MicroTime(jiff::Timestamp::now()));
}
