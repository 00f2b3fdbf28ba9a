//! Stage 6: the split between spot and on-demand.
//! on-demand = min(n, base) + ceil((n − base)⁺ × (1 − spot%)), spot = the rest; everything on-demand
//! while the spot pool is unavailable.

use super::decision::Split;
use super::policy::Policy;

pub fn split(policy: &Policy, spot_healthy: bool, replicas: i32) -> Option<Split> {
    let placement = policy.placement.as_ref()?;
    let n = replicas.max(0);
    if !spot_healthy {
        return Some(Split { spot: 0, on_demand: n });
    }
    let base = n.min(placement.on_demand_base);
    let above_base = i64::from(n - base);
    let on_demand_share = 100 - i64::from(placement.spot_percentage);
    // Integer ceiling of above_base × on_demand_share / 100, so 70% is exact.
    let on_demand_above = (above_base * on_demand_share + 99) / 100;
    let on_demand = base + on_demand_above as i32;
    Some(Split { spot: n - on_demand, on_demand })
}
