//! The pure rules of shard ownership: which shard a policy belongs to, how many shards a replica
//! should hold, and what a replica does next with one shard's Lease. No kube, no clock: the
//! elector passes in what it observed.

use std::collections::BTreeSet;

/// The shard of policy `namespace/name`: FNV-1a (64 bit) of the key, modulo `shards`. Stable
/// across processes, versions and platforms (std's hasher is randomized per process), so every
/// replica puts a policy in the same shard.
pub fn shard_of(namespace: &str, name: &str, shards: u32) -> u32 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0100_0000_01b3;
    let key = namespace.bytes().chain(std::iter::once(b'/')).chain(name.bytes());
    let hash = key.fold(OFFSET, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(PRIME));
    // `shards` is at least 1 (the flag's parser says so); `max` keeps a 0 from dividing.
    (hash % u64::from(shards.max(1))) as u32
}

/// What one replica knows of one shard's Lease.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardView {
    /// Who holds it and has renewed it within its duration, as this replica observed; `None`
    /// when released, never taken, or expired.
    pub holder: Option<String>,
    /// A replica that asked the holder to hand this shard over, within the last lease duration.
    pub requested_by: Option<String>,
}

/// What a replica does next with one shard's Lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    /// Take the free shard.
    Take,
    /// Keep (renew) the shard it holds.
    Keep,
    /// Hand the shard it holds over: it holds more than its share and another replica asked.
    Release,
    /// Ask the holder, who holds more than its share, to hand this shard over.
    Request,
    /// Nothing: another replica holds it fairly, or this one already holds its share.
    Wait,
}

/// The replicas known to be alive: this one, every fresh holder and every fresh requester.
pub fn replicas<'a>(views: &'a [ShardView], me: &'a str) -> BTreeSet<&'a str> {
    let mut alive: BTreeSet<&str> =
        views.iter().flat_map(|v| v.holder.iter().chain(v.requested_by.iter())).map(String::as_str).collect();
    alive.insert(me);
    alive
}

/// The most shards one replica should hold while `replicas` are alive: ceil(shards / replicas).
pub fn fair_share(shards: usize, replicas: usize) -> usize {
    shards.div_ceil(replicas.max(1))
}

/// The balancing rule, for shard `shard`, as replica `me` sees all shards:
/// - a free shard is taken by a replica holding fewer than its fair share;
/// - a replica holding fewer than its fair share asks a replica holding more than its share to
///   hand over one shard (the lowest-numbered of that holder's shards, so that one request is
///   outstanding per holder), and the holder releases it on its next renew;
/// - everything else is kept as it is: ownership never moves between replicas that both hold
///   their fair share, so a steady cluster never reshuffles.
pub fn next_move(views: &[ShardView], shard: usize, me: &str) -> Move {
    let alive = replicas(views, me);
    let fair = fair_share(views.len(), alive.len());
    let held_by = |who: &str| views.iter().filter(|v| v.holder.as_deref() == Some(who)).count();
    let mine = held_by(me);
    let view = &views[shard];
    match view.holder.as_deref() {
        Some(holder) if holder == me => match view.requested_by.as_deref() {
            Some(asker) if asker != me && mine > fair => Move::Release,
            _ => Move::Keep,
        },
        None if mine < fair => Move::Take,
        None => Move::Wait,
        Some(holder) => {
            let first_of_holder = views.iter().position(|v| v.holder.as_deref() == Some(holder)) == Some(shard);
            let unasked = view.requested_by.is_none();
            if mine < fair && held_by(holder) > fair && first_of_holder && unasked { Move::Request } else { Move::Wait }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(holders: &[Option<&str>]) -> Vec<ShardView> {
        holders.iter().map(|h| ShardView { holder: h.map(str::to_owned), requested_by: None }).collect()
    }

    #[test]
    fn a_policy_lands_in_the_same_shard_in_every_process_and_version() {
        // Pinned FNV-1a values (checked against an independent implementation): a change here moves
        // policies between shards on upgrade.
        assert_eq!(shard_of("default", "web", 1), 0);
        assert_eq!(shard_of("default", "web", 2), 1);
        assert_eq!(shard_of("default", "web", 16), 11);
        assert_eq!(shard_of("shop", "checkout", 16), 6);
        assert_eq!(shard_of("a", "b/c", 7), shard_of("a", "b/c", 7));
        assert_ne!(shard_of("a", "bc", 1 << 30), shard_of("ab", "c", 1 << 30), "the separator keeps namespace and name apart");
    }

    #[test]
    fn policies_spread_evenly_over_the_shards() {
        let mut counts = [0usize; 4];
        for i in 0..4000 {
            counts[shard_of(&format!("ns-{}", i % 7), &format!("policy-{i}"), 4) as usize] += 1;
        }
        assert!(counts.iter().all(|&c| (900..=1100).contains(&c)), "{counts:?}");
    }

    #[test]
    fn a_lone_replica_takes_every_shard() {
        assert_eq!(next_move(&held(&[None, None]), 0, "a"), Move::Take);
        assert_eq!(next_move(&held(&[Some("a"), None]), 1, "a"), Move::Take);
    }

    #[test]
    fn a_second_replica_takes_only_the_free_shard_its_share_allows() {
        // b sees a holding shard 0: two replicas, share 1 each.
        assert_eq!(next_move(&held(&[Some("a"), None]), 1, "b"), Move::Take);
        assert_eq!(next_move(&held(&[Some("a"), Some("b")]), 0, "b"), Move::Wait);
        // a, seeing b hold shard 1, does not take a third of four while b has fewer.
        assert_eq!(next_move(&held(&[Some("a"), Some("a"), Some("b"), None]), 3, "a"), Move::Wait);
        assert_eq!(next_move(&held(&[Some("a"), Some("a"), Some("b"), None]), 3, "b"), Move::Take);
    }

    #[test]
    fn a_replica_that_arrives_after_another_took_everything_gets_its_share_handed_over() {
        let views = held(&[Some("a"), Some("a")]);
        assert_eq!(next_move(&views, 0, "b"), Move::Request, "b asks for a's first shard");
        assert_eq!(next_move(&views, 1, "b"), Move::Wait, "one request per holder at a time");
        let mut asked = views.clone();
        asked[0].requested_by = Some("b".into());
        assert_eq!(next_move(&asked, 0, "b"), Move::Wait, "asked once");
        assert_eq!(next_move(&asked, 0, "a"), Move::Release, "a holds 2 of 2 with b alive");
        assert_eq!(next_move(&asked, 1, "a"), Move::Keep);
        let mut released = asked.clone();
        released[0].holder = None;
        assert_eq!(next_move(&released, 0, "b"), Move::Take);
        assert_eq!(next_move(&released, 0, "a"), Move::Wait, "a keeps its share, not more, while b is asking");
    }

    #[test]
    fn a_replica_holding_its_share_keeps_it_whoever_asks() {
        let mut views = held(&[Some("a"), Some("b")]);
        views[0].requested_by = Some("c".into());
        assert_eq!(next_move(&views, 0, "a"), Move::Keep, "three replicas, two shards: share 1, a holds 1");
        assert_eq!(next_move(&views, 1, "c"), Move::Wait, "b holds no more than its share");
    }

    #[test]
    fn the_shards_of_a_lost_replica_are_taken_once_they_expire() {
        // b's Lease expired: the elector reports it free, and a's share is both.
        assert_eq!(next_move(&held(&[Some("a"), None]), 1, "a"), Move::Take);
    }

    #[test]
    fn a_single_shard_is_never_handed_over() {
        let mut views = held(&[Some("a")]);
        views[0].requested_by = Some("b".into());
        assert_eq!(next_move(&views, 0, "a"), Move::Keep);
        assert_eq!(next_move(&held(&[Some("a")]), 0, "b"), Move::Wait);
    }
}
