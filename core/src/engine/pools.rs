//! Which CapacityPools a policy's replicas run on, and what a replica costs there. Pure: the
//! operator, `trimtab decide` and the simulator all price replicas this one way.

use super::decision::{Pricing, Requests, UnitPrice};
use super::policy::Policy;
use crate::api::{CapacityPool, CapacityType, Price, Quantity};

/// Bytes in a GiB: memory requests are priced per GiB-hour.
pub const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// The pools a policy's replicas run on.
#[derive(Debug, Clone, Copy)]
pub enum PolicyPools<'a> {
    /// The policy's placement names both pools.
    Placed { spot: &'a CapacityPool, on_demand: &'a CapacityPool },
    /// Without placement, replicas run on the only OnDemand pool, if there is exactly one.
    Unplaced { on_demand: Option<&'a CapacityPool> },
}

/// A placement that names a pool the cluster (or the file) does not have.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("spec.placement.{field}: CapacityPool {name:?} does not exist")]
pub struct UnknownPool {
    pub field: &'static str,
    pub name: String,
}

pub fn policy_pools<'a>(policy: &Policy, pools: &'a [CapacityPool]) -> Result<PolicyPools<'a>, UnknownPool> {
    let named = |field: &'static str, name: &str| {
        pools
            .iter()
            .find(|p| p.metadata.name.as_deref() == Some(name))
            .ok_or_else(|| UnknownPool { field, name: name.to_owned() })
    };
    match &policy.placement {
        Some(placement) => Ok(PolicyPools::Placed {
            spot: named("spotPool", &placement.spot_pool)?,
            on_demand: named("onDemandPool", &placement.on_demand_pool)?,
        }),
        None => {
            let mut on_demand = pools.iter().filter(|p| p.spec.capacity_type == CapacityType::OnDemand);
            let only = match (on_demand.next(), on_demand.next()) {
                (Some(pool), None) => Some(pool),
                _ => None,
            };
            Ok(PolicyPools::Unplaced { on_demand: only })
        }
    }
}

impl PolicyPools<'_> {
    /// A replica's hourly cost in each of the pools, `cost` giving each pool's (none where it is
    /// unknown): the spot pool first, then the on-demand one. A pool that is not there is unpriced.
    pub fn pricing<E>(self, mut cost: impl FnMut(&CapacityPool) -> Result<Option<f64>, E>) -> Result<Pricing, E> {
        Ok(match self {
            PolicyPools::Placed { spot, on_demand } => Pricing { spot: cost(spot)?, on_demand: cost(on_demand)? },
            PolicyPools::Unplaced { on_demand } => Pricing { spot: None, on_demand: on_demand.map(cost).transpose()?.flatten() },
        })
    }
}

impl UnitPrice {
    /// A pool's fixed prices; the error names the field (`cpuCoreHour` or `memoryGiBHour`).
    /// Negative prices, and both prices zero, are refused: either makes every cost meaningless.
    /// The error names the field and says what is wrong.
    pub fn from_price(price: &Price) -> Result<UnitPrice, (&'static str, String)> {
        let parse = |field, text: &str| {
            let value = Quantity::parse(text).map(|q| q.as_f64()).map_err(|e| (field, e.to_string()))?;
            if value < 0.0 {
                return Err((field, format!("{text:?} is negative: a price is zero or more")));
            }
            Ok(value)
        };
        let unit = UnitPrice {
            cpu_core_hour: parse("cpuCoreHour", &price.cpu_core_hour)?,
            memory_gib_hour: parse("memoryGiBHour", &price.memory_gi_b_hour)?,
        };
        if !unit.is_meaningful() {
            return Err((
                "cpuCoreHour",
                "cpuCoreHour and memoryGiBHour are both zero: give at least one a price above zero".into(),
            ));
        }
        Ok(unit)
    }

    /// Prices that can be right: finite, each zero or more, not both zero.
    pub fn is_meaningful(&self) -> bool {
        let valid = |p: f64| p.is_finite() && p >= 0.0;
        valid(self.cpu_core_hour) && valid(self.memory_gib_hour) && self.cpu_core_hour + self.memory_gib_hour > 0.0
    }
}

impl Requests {
    /// Requests from CPU cores and memory bytes, as a pod spec gives them.
    pub fn from_cores_and_bytes(cpu_cores: f64, memory_bytes: f64) -> Requests {
        Requests { cpu_cores, memory_gib: memory_bytes / GIB }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ScalingPolicySpec;

    fn pool(name: &str, capacity_type: &str) -> CapacityPool {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "trimtab.dev/v1alpha1", "kind": "CapacityPool", "metadata": {"name": name},
            "spec": {"capacityType": capacity_type, "price": {"cpuCoreHour": "1", "memoryGiBHour": "0"}}
        }))
        .expect("valid pool")
    }

    fn policy(placement: serde_json::Value) -> Policy {
        let mut spec = serde_json::json!({
            "targetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 4,
            "objectives": [{"name": "rps", "kind": "AverageValue", "query": "q", "target": "1"}]
        });
        if !placement.is_null() {
            spec["placement"] = placement;
        }
        let spec: ScalingPolicySpec = serde_json::from_value(spec).expect("valid spec");
        Policy::from_spec(&spec).expect("valid policy")
    }

    #[test]
    fn without_placement_replicas_run_on_the_only_on_demand_pool() {
        let pools = [pool("spot", "Spot"), pool("on-demand", "OnDemand")];
        let Ok(PolicyPools::Unplaced { on_demand: Some(only) }) = policy_pools(&policy(serde_json::Value::Null), &pools) else {
            panic!("the on-demand pool");
        };
        assert_eq!(only.metadata.name.as_deref(), Some("on-demand"));
        let two = [pool("a", "OnDemand"), pool("b", "OnDemand")];
        assert!(matches!(policy_pools(&policy(serde_json::Value::Null), &two), Ok(PolicyPools::Unplaced { on_demand: None })));
    }

    #[test]
    fn a_placement_naming_an_unknown_pool_names_the_field() {
        let placement = serde_json::json!({"spotPool": "spot", "onDemandPool": "gone", "spotPercentage": 50});
        let error = policy_pools(&policy(placement), &[pool("spot", "Spot")]).expect_err("unknown pool");
        assert_eq!(error.to_string(), "spec.placement.onDemandPool: CapacityPool \"gone\" does not exist");
    }
}
