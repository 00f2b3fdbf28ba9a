//! Leases: which replica reconciles which ScalingPolicies.
//!
//! Policies are split into `--shards` shards by a stable hash of `namespace/name`. Each shard has
//! one Lease (`trimtab-leader` when there is one shard, as before sharding; `trimtab-shard-<i>`
//! otherwise; `-<namespace>` appended when one namespace is watched). A replica reconciles the
//! policies of the shards whose Lease it holds, and every write of a round goes through a client
//! that refuses writes once that shard's renew deadline has passed (see [`Ownership`]), which is
//! strictly before another replica can take the Lease.

mod elect;
mod gate;
pub mod rules;

use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use elect::{ElectError, Elector};
pub use gate::gated;
pub use rules::shard_of;

/// How long a Lease holds without renewal before another replica may take it (as that replica
/// observes it: from when it last saw the Lease change, on its own monotonic clock, so clock skew
/// between nodes does not matter).
pub const LEASE_DURATION: Duration = Duration::from_secs(15);
/// How long after the start of its last successful renew a holder keeps writing. Shorter than
/// [`LEASE_DURATION`] by a margin for writes already on the wire: the old holder has stopped
/// before the Lease can be taken.
pub const RENEW_DEADLINE: Duration = Duration::from_secs(10);
/// How often a holder renews, and a standby looks at expiry.
pub const RETRY_PERIOD: Duration = Duration::from_secs(2);

/// The name of shard `shard`'s Lease.
pub fn lease_name(shards: u32, shard: u32, namespace: Option<&str>) -> String {
    let base = if shards <= 1 { "trimtab-leader".to_owned() } else { format!("trimtab-shard-{shard}") };
    match namespace {
        Some(namespace) => format!("{base}-{namespace}"),
        None => base,
    }
}

/// Which shards this replica may write for, now. A held shard carries its write deadline;
/// unelected (`--leader-elect=false`), the one shard is always held.
pub struct Ownership {
    deadlines: Vec<Mutex<Option<Instant>>>,
    elected: bool,
    changed: tokio::sync::watch::Sender<u64>,
}

impl Ownership {
    /// `shards` shards, none held yet; the elector grants them.
    pub fn elected(shards: u32) -> Ownership {
        let deadlines = (0..shards.max(1)).map(|_| Mutex::new(None)).collect();
        Ownership { deadlines, elected: true, changed: tokio::sync::watch::channel(0).0 }
    }

    /// One shard, always held: the single replica without leader election.
    pub fn unelected() -> Ownership {
        Ownership { deadlines: vec![Mutex::new(None)], elected: false, changed: tokio::sync::watch::channel(0).0 }
    }

    pub fn shards(&self) -> u32 {
        self.deadlines.len() as u32
    }

    /// The shard of `namespace/name`.
    pub fn shard_of(&self, namespace: &str, name: &str) -> u32 {
        shard_of(namespace, name, self.shards())
    }

    /// Whether this replica may write for `shard` now: it holds the Lease and its renew deadline
    /// has not passed.
    pub fn owns(&self, shard: u32) -> bool {
        if !self.elected {
            return true;
        }
        let deadline = self.deadlines.get(shard as usize).map(|d| *d.lock().unwrap_or_else(|e| e.into_inner()));
        deadline.flatten().is_some_and(|deadline| Instant::now() < deadline)
    }

    /// Whether this replica reconciles policy `namespace/name`.
    pub fn owns_policy(&self, namespace: &str, name: &str) -> bool {
        self.owns(self.shard_of(namespace, name))
    }

    /// The shards held now.
    pub fn owned(&self) -> Vec<u32> {
        (0..self.shards()).filter(|&shard| self.owns(shard)).collect()
    }

    /// Notified (with a new generation) whenever a shard is gained or given up.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// A renew (or take) that started at `started` succeeded: writes may go on until
    /// `started + RENEW_DEADLINE`.
    fn renewed(&self, shard: u32, started: Instant) {
        let Some(deadline) = self.deadlines.get(shard as usize) else { return };
        let gained = deadline.lock().unwrap_or_else(|e| e.into_inner()).replace(started + RENEW_DEADLINE).is_none();
        if gained {
            self.changed.send_modify(|generation| *generation += 1);
        }
    }

    /// Whether `shard` was granted and its deadline has passed without a renew: the elector
    /// then gives it up (writes have already stopped, by time).
    fn lapsed(&self, shard: u32) -> bool {
        let deadline = self.deadlines.get(shard as usize).map(|d| *d.lock().unwrap_or_else(|e| e.into_inner()));
        deadline.flatten().is_some_and(|deadline| Instant::now() >= deadline)
    }

    /// Stops writing for `shard` at once (before its Lease is released, or after its deadline).
    fn give_up(&self, shard: u32) {
        let Some(deadline) = self.deadlines.get(shard as usize) else { return };
        let had = deadline.lock().unwrap_or_else(|e| e.into_inner()).take().is_some();
        if had {
            self.changed.send_modify(|generation| *generation += 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_shard_keeps_the_leader_lease_name_of_before_sharding() {
        assert_eq!(lease_name(1, 0, None), "trimtab-leader");
        assert_eq!(lease_name(1, 0, Some("shop")), "trimtab-leader-shop");
        assert_eq!(lease_name(4, 3, None), "trimtab-shard-3");
        assert_eq!(lease_name(4, 0, Some("shop")), "trimtab-shard-0-shop");
    }

    #[test]
    fn a_shard_is_written_for_only_until_its_renew_deadline() {
        let ownership = Ownership::elected(2);
        assert!(!ownership.owns(0) && !ownership.owns(1), "nothing is held before the elector grants it");
        ownership.renewed(1, Instant::now());
        assert_eq!(ownership.owned(), vec![1]);
        let long_ago = Instant::now().checked_sub(RENEW_DEADLINE + Duration::from_millis(1));
        if let Some(long_ago) = long_ago {
            ownership.renewed(0, long_ago);
            assert!(!ownership.owns(0), "a renew older than the deadline allows no write");
            assert!(ownership.lapsed(0) && !ownership.lapsed(1));
        }
        ownership.give_up(1);
        assert!(!ownership.owns(1));
        assert!(!ownership.owns(7), "a shard that does not exist is never held");
    }

    #[test]
    fn gaining_and_giving_up_a_shard_is_announced() {
        let ownership = Ownership::elected(1);
        let seen = ownership.subscribe();
        ownership.renewed(0, Instant::now());
        ownership.renewed(0, Instant::now());
        assert_eq!(*seen.borrow(), 1, "a renew of a held shard announces nothing");
        ownership.give_up(0);
        assert_eq!(*seen.borrow(), 2);
    }

    #[test]
    fn without_leader_election_the_one_shard_is_always_held() {
        let ownership = Ownership::unelected();
        assert_eq!(ownership.shards(), 1);
        assert!(ownership.owns_policy("any", "policy"));
    }
}
