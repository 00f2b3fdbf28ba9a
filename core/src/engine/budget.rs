//! Stage 5: the money budget. The cap is the most replicas whose hourly cost, split the way placement
//! splits them, fits `maxCostPerHour`. It never goes below minReplicas: a minimum that does not fit is
//! reported, not hidden.

use super::decision::{Pricing, Split};
use super::placement::split;
use super::policy::Policy;

/// The hourly cost of `replicas`, placed as placement places them; none when a price is unknown.
pub fn cost_per_hour(policy: &Policy, pricing: &Pricing, spot_healthy: bool, replicas: i32) -> Option<f64> {
    match split(policy, spot_healthy, replicas) {
        Some(Split { spot, on_demand }) => {
            let spot_cost = if spot > 0 { f64::from(spot) * pricing.spot? } else { 0.0 };
            let on_demand_cost = if on_demand > 0 { f64::from(on_demand) * pricing.on_demand? } else { 0.0 };
            Some(spot_cost + on_demand_cost)
        }
        None => Some(f64::from(replicas) * pricing.on_demand?),
    }
}

/// The most replicas, up to `wanted`, whose cost fits `budget`; `None` when a price is unknown.
/// Cost grows with replicas (an extra replica never costs less than nothing), so a binary search works.
pub fn affordable_replicas(policy: &Policy, pricing: &Pricing, spot_healthy: bool, budget: f64, wanted: i32) -> Option<i32> {
    let fits = |n: i32| cost_per_hour(policy, pricing, spot_healthy, n).map(|cost| cost <= budget + 1e-9);
    if fits(wanted)? {
        return Some(wanted);
    }
    let (mut low, mut high) = (0, wanted); // fits(low) holds, fits(high) does not
    while high - low > 1 {
        let mid = low + (high - low) / 2;
        if fits(mid)? { low = mid } else { high = mid }
    }
    Some(low)
}
