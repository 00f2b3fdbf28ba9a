//! Which pods to evict so the actual split moves towards the target. Pure.
//!
//! Doomed spot pods (on a reclaimed node, or stuck unschedulable) go first: they are lost anyway.
//! Otherwise, while one pool is over its target and the other under it, one pod of the pool that is
//! over goes per round, and only while every desired replica is Ready: a rebalance never starts on
//! a workload that is already short. Evictions go through the Eviction API, so the workload's
//! PodDisruptionBudget decides how far below the desired count a move may dip.

use jiff::{SignedDuration, Timestamp};

use super::{PodView, PoolOf};
use crate::engine::Split;

/// While the newest pod is this young and was not placed by the webhook, the webhook is not
/// placing pods: an eviction would only be replaced by another unplaced pod, so drift waits.
pub const WEBHOOK_SILENCE: SignedDuration = SignedDuration::from_secs(60);

pub fn evictions(target: Split, pods: &[PodView], doomed: &[String], desired: i32, now: Timestamp) -> Vec<String> {
    let live: Vec<&PodView> = pods.iter().filter(|p| !p.deleting).collect();
    let doomed: Vec<String> = live.iter().filter(|p| doomed.contains(&p.name)).map(|p| p.name.clone()).collect();
    if !doomed.is_empty() {
        return doomed;
    }
    let newest = live.iter().filter(|p| p.created.is_some()).max_by_key(|p| p.created);
    if newest.is_some_and(|p| !p.labelled && p.created.is_some_and(|c| now.duration_since(c) < WEBHOOK_SILENCE)) {
        return Vec::new();
    }
    let ready = live.iter().filter(|p| p.ready).count() as i32;
    if ready < desired {
        return Vec::new();
    }
    let count = |pool| live.iter().filter(|p| p.pool == pool).count() as i32;
    let (spot, on_demand) = (count(PoolOf::Spot), count(PoolOf::OnDemand));
    let over = if spot > target.spot && on_demand < target.on_demand {
        PoolOf::Spot
    } else if on_demand > target.on_demand && spot < target.spot {
        PoolOf::OnDemand
    } else {
        return Vec::new();
    };
    // The first to go is the one the ReplicaSet would remove first: the lowest deletion cost.
    live.iter()
        .filter(|p| p.pool == over)
        .min_by_key(|p| (p.ready, p.deletion_cost.unwrap_or(0)))
        .map(|p| vec![p.name.clone()])
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pods(spot: i32, on_demand: i32) -> Vec<PodView> {
        let make =
            |pool, i| PodView { name: format!("{pool:?}-{i}"), pool, ready: true, node: Some("n".into()), ..PodView::default() };
        (0..spot).map(|i| make(PoolOf::Spot, i)).chain((0..on_demand).map(|i| make(PoolOf::OnDemand, i))).collect()
    }

    fn now() -> Timestamp {
        Timestamp::from_second(1_700_000_000).expect("timestamp")
    }

    #[test]
    fn drift_waits_while_new_pods_arrive_unplaced() {
        let mut unplaced = pods(1, 5);
        unplaced[5].labelled = false;
        unplaced[5].created = Some(now() - SignedDuration::from_secs(10));
        assert!(evictions(Split { spot: 4, on_demand: 2 }, &unplaced, &[], 6, now()).is_empty());
        unplaced[5].created = Some(now() - SignedDuration::from_secs(120));
        assert_eq!(evictions(Split { spot: 4, on_demand: 2 }, &unplaced, &[], 6, now()).len(), 1);
    }

    #[test]
    fn drift_towards_on_demand_evicts_one_on_demand_pod_per_round() {
        let evicted = evictions(Split { spot: 4, on_demand: 2 }, &pods(1, 5), &[], 6, now());
        assert_eq!(evicted.len(), 1);
        assert!(evicted[0].starts_with("OnDemand"));
    }

    #[test]
    fn a_split_on_target_evicts_nothing() {
        assert!(evictions(Split { spot: 4, on_demand: 2 }, &pods(4, 2), &[], 6, now()).is_empty());
    }

    #[test]
    fn nothing_is_evicted_while_replicas_are_missing() {
        assert!(evictions(Split { spot: 4, on_demand: 2 }, &pods(1, 4), &[], 6, now()).is_empty());
    }

    #[test]
    fn doomed_pods_go_whatever_the_counts() {
        let evicted = evictions(Split { spot: 4, on_demand: 2 }, &pods(4, 2), &["Spot-0".into()], 6, now());
        assert_eq!(evicted, ["Spot-0"]);
    }
}
