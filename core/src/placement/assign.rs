//! Which pool a new pod goes to, and its deletion cost. Pure.
//!
//! Both pools' target counts grow one at a time as replicas grow (the split formula is monotone in
//! each pool), so every pod has a place in the fill order: the n-th replica of the workload goes to
//! the pool whose target count grew from n−1 to n. A new pod goes to the pool furthest under its
//! target. Its `controller.kubernetes.io/pod-deletion-cost` is minus its place in the fill order,
//! so a ReplicaSet scaling in removes pods in reverse fill order and keeps the split at every count.

use crate::engine::{Policy, Split, split};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pool {
    Spot,
    OnDemand,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assignment {
    pub pool: Pool,
    pub deletion_cost: i32,
}

/// The pool for one more pod, given the desired replicas and the pods each pool already has.
pub fn assign(policy: &Policy, spot_healthy: bool, desired: i32, existing: Split) -> Option<Assignment> {
    // Place for the replica that is being added (at least the desired count).
    let n = desired.max(existing.spot + existing.on_demand + 1);
    let target = split(policy, spot_healthy, n)?;
    let spot_gap = target.spot - existing.spot;
    let on_demand_gap = target.on_demand - existing.on_demand;
    // Ties go on-demand: the safe side when spot might be going away.
    let pool = if spot_healthy && spot_gap > on_demand_gap { Pool::Spot } else { Pool::OnDemand };
    let rank = match pool {
        Pool::Spot => existing.spot + 1,
        Pool::OnDemand => existing.on_demand + 1,
    };
    Some(Assignment { pool, deletion_cost: -fill_index(policy, pool, rank) })
}

/// The replica count at which `pool` gets its `rank`-th pod (with spot healthy), in closed form
/// (constant time for any maxReplicas: it runs on every admission). With base b and on-demand share
/// p % above it, n replicas have m = (n − b)⁺ above the base, of which ceil(m·p/100) are on-demand
/// and floor(m·(100 − p)/100) spot; each is monotone in n, so the smallest n reaching a rank solves
/// one inequality. A rank the pool never reaches (spot at 0 %, on-demand above the base at 100 %
/// spot) sorts after every reachable one.
pub fn fill_index(policy: &Policy, pool: Pool, rank: i32) -> i32 {
    let never = i64::from(policy.max_replicas.max(rank)) * 2 + 200;
    let Some(placement) = policy.placement.as_ref() else { return rank };
    let (base, rank) = (i64::from(placement.on_demand_base.max(0)), i64::from(rank.max(1)));
    let on_demand_share = 100 - i64::from(placement.spot_percentage.clamp(0, 100));
    let index = match pool {
        Pool::OnDemand if rank <= base => rank,
        // ceil(m·p/100) ≥ rank − b  ⇔  m·p > 100·(rank − b − 1)
        Pool::OnDemand if on_demand_share > 0 => base + 100 * (rank - base - 1) / on_demand_share + 1,
        // floor(m·q/100) ≥ rank  ⇔  m ≥ ceil(100·rank / q)
        Pool::Spot if on_demand_share < 100 => base + (100 * rank + 99 - on_demand_share) / (100 - on_demand_share),
        _ => never,
    };
    i32::try_from(index.min(never)).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ScalingPolicySpec;

    fn policy(base: i32, spot_percentage: i32) -> Policy {
        let spec: ScalingPolicySpec = serde_json::from_value(serde_json::json!({
            "targetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 1, "maxReplicas": 40,
            "objectives": [{"name": "rps", "kind": "AverageValue", "query": "q", "target": "1"}],
            "placement": {"spotPool": "spot", "onDemandPool": "on-demand", "onDemandBase": base, "spotPercentage": spot_percentage}
        }))
        .expect("valid spec");
        Policy::from_spec(&spec).expect("valid policy")
    }

    fn fill(policy: &Policy, replicas: i32, spot_healthy: bool) -> Split {
        let mut existing = Split { spot: 0, on_demand: 0 };
        for _ in 0..replicas {
            match assign(policy, spot_healthy, replicas, existing).expect("placement").pool {
                Pool::Spot => existing.spot += 1,
                Pool::OnDemand => existing.on_demand += 1,
            }
        }
        existing
    }

    #[test]
    fn a_burst_of_new_pods_lands_on_the_split_formula() {
        let policy = policy(2, 70);
        for n in 1..=30 {
            assert_eq!(Some(fill(&policy, n, true)), split(&policy, true, n), "{n} replicas");
        }
    }

    #[test]
    fn removing_pods_by_deletion_cost_keeps_the_split_at_every_count() {
        let policy = policy(2, 70);
        // Every pod of a 12-replica fill, with its deletion cost.
        let mut pods = Vec::new();
        let mut existing = Split { spot: 0, on_demand: 0 };
        for _ in 0..12 {
            let a = assign(&policy, true, 12, existing).expect("placement");
            match a.pool {
                Pool::Spot => existing.spot += 1,
                Pool::OnDemand => existing.on_demand += 1,
            }
            pods.push(a);
        }
        // A ReplicaSet removes the lowest deletion cost first.
        pods.sort_by_key(|a| std::cmp::Reverse(a.deletion_cost));
        for n in (1..=12).rev() {
            let kept = &pods[..n as usize];
            let spot = kept.iter().filter(|a| a.pool == Pool::Spot).count() as i32;
            assert_eq!(Some(Split { spot, on_demand: n - spot }), split(&policy, true, n), "after scaling in to {n}");
        }
    }

    /// The fill order as the definition says: the first count at which the pool has `rank` pods.
    fn fill_index_by_search(policy: &Policy, pool: Pool, rank: i32) -> i32 {
        let never = policy.max_replicas.max(rank) * 2 + 200;
        (1..=never)
            .find(|&n| {
                split(policy, true, n).is_some_and(|s| match pool {
                    Pool::Spot => s.spot >= rank,
                    Pool::OnDemand => s.on_demand >= rank,
                })
            })
            .unwrap_or(never)
    }

    #[test]
    fn the_closed_form_fill_order_is_the_first_count_that_reaches_each_rank() {
        for base in [0, 1, 2, 5] {
            for spot_percentage in [0, 1, 30, 50, 70, 99, 100] {
                let policy = policy(base, spot_percentage);
                for rank in 1..=40 {
                    for pool in [Pool::Spot, Pool::OnDemand] {
                        assert_eq!(
                            fill_index(&policy, pool, rank),
                            fill_index_by_search(&policy, pool, rank),
                            "base {base}, spot {spot_percentage} %, {pool:?} rank {rank}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn with_spot_unavailable_every_new_pod_goes_on_demand() {
        assert_eq!(fill(&policy(2, 70), 10, false), Split { spot: 0, on_demand: 10 });
    }
}
