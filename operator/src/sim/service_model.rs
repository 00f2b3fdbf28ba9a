//! The service model: how a service's latency and errors follow its load per Ready replica. Shared
//! by `trimtab simulate` and the e2e suite's simulated app (appsim), so both behave alike.
//!
//! Each replica serves up to `capacityPerReplica` requests per second. With utilization
//! ρ = load / (replicas × capacity), a request takes `baseLatencySeconds` plus a queueing wait that
//! is exponentially distributed with mean `base × ρ / (1 − ρ)` (the M/M/1 law): flat at low load, rising
//! sharply as ρ nears 1. Beyond capacity the excess fails: error rate = (ρ − 1) / ρ, and the
//! requests that are served wait as at ρ = 0.99. Latency never exceeds `maxLatencySeconds` (a
//! client timeout). No Ready replica: every request fails.

use serde::{Deserialize, Serialize};

/// Utilization the queueing law is evaluated at, at most (it diverges at 1).
const SATURATED: f64 = 0.99;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct ServiceModel {
    /// Requests per second one Ready replica serves at full utilization. Default 50.
    pub capacity_per_replica: f64,
    /// Latency of a request that does not wait, in seconds. Default 0.05.
    pub base_latency_seconds: f64,
    /// The client timeout: no request takes longer. Default 10.
    pub max_latency_seconds: f64,
}

impl Default for ServiceModel {
    fn default() -> Self {
        ServiceModel { capacity_per_replica: 50.0, base_latency_seconds: 0.05, max_latency_seconds: 10.0 }
    }
}

/// The service at one moment: what a request experiences.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ServiceState {
    /// Load over the capacity of the Ready replicas (infinite with none).
    pub utilization: f64,
    /// Share of requests that fail.
    pub error_rate: f64,
    base: f64,
    mean_wait: f64,
    max: f64,
}

impl ServiceModel {
    /// The state of a service offered `rps` requests per second with `ready_replicas` Ready.
    pub fn evaluate(&self, rps: f64, ready_replicas: f64) -> ServiceState {
        let capacity = self.capacity_per_replica * ready_replicas.max(0.0);
        let rps = rps.max(0.0);
        let utilization = if capacity > 0.0 {
            rps / capacity
        } else if rps > 0.0 {
            f64::INFINITY
        } else {
            0.0
        };
        let error_rate = if utilization.is_infinite() {
            1.0
        } else if utilization > 1.0 {
            (utilization - 1.0) / utilization
        } else {
            0.0
        };
        let rho = utilization.min(SATURATED);
        let mean_wait = self.base_latency_seconds * rho / (1.0 - rho);
        ServiceState { utilization, error_rate, base: self.base_latency_seconds, mean_wait, max: self.max_latency_seconds }
    }
}

impl ServiceState {
    /// The latency under which a share `q` (0 < q < 1) of the served requests complete.
    pub fn latency_quantile(&self, q: f64) -> f64 {
        let q = q.clamp(0.0, 1.0 - 1e-12);
        (self.base + self.mean_wait * -(1.0 - q).ln()).min(self.max)
    }

    /// The share of served requests that complete within `seconds`.
    pub fn latency_cdf(&self, seconds: f64) -> f64 {
        if seconds >= self.max {
            return 1.0;
        }
        if seconds < self.base {
            return 0.0;
        }
        if self.mean_wait <= 0.0 {
            return 1.0;
        }
        1.0 - (-(seconds - self.base) / self.mean_wait).exp()
    }

    pub fn mean_latency(&self) -> f64 {
        (self.base + self.mean_wait).min(self.max)
    }
}

/// The latency under which a share `q` of the requests served across several states complete: the
/// quantile of the mixture of their distributions, each weighted by the requests it served (what
/// `histogram_quantile` over a rate window estimates). None when nothing was served.
pub fn mixture_quantile(parts: &[(f64, ServiceState)], q: f64) -> Option<f64> {
    let parts: Vec<&(f64, ServiceState)> = parts.iter().filter(|(weight, _)| *weight > 0.0).collect();
    let total: f64 = parts.iter().map(|(weight, _)| weight).sum();
    let first = parts.first()?;
    if parts.iter().all(|(_, state)| state == &first.1) {
        return Some(first.1.latency_quantile(q));
    }
    let q = q.clamp(0.0, 1.0 - 1e-12);
    let cdf = |x: f64| parts.iter().map(|(weight, state)| weight * state.latency_cdf(x)).sum::<f64>() / total;
    // The mixture's quantile lies between the smallest and the largest of the parts' quantiles.
    let quantiles = parts.iter().map(|(_, state)| state.latency_quantile(q));
    let (mut low, mut high) = quantiles.fold((f64::INFINITY, 0.0_f64), |(lo, hi), x| (lo.min(x), hi.max(x)));
    for _ in 0..60 {
        let mid = 0.5 * (low + high);
        if cdf(mid) < q {
            low = mid
        } else {
            high = mid
        }
        if high - low < 1e-9 {
            break;
        }
    }
    Some(high)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_rises_sharply_as_load_nears_capacity() {
        let model = ServiceModel::default();
        let p99 = |rps| model.evaluate(rps, 4.0).latency_quantile(0.99);
        assert!(p99(20.0) < 0.1, "light load is fast: {}", p99(20.0));
        assert!(p99(100.0) < p99(150.0) && p99(150.0) < p99(190.0));
        assert!(p99(190.0) > 1.0, "near capacity is slow: {}", p99(190.0));
    }

    #[test]
    fn adding_replicas_brings_latency_back_down() {
        let model = ServiceModel::default();
        let overloaded = model.evaluate(150.0, 2.0);
        let scaled = model.evaluate(150.0, 6.0);
        assert!(overloaded.error_rate > 0.3);
        assert_eq!(scaled.error_rate, 0.0);
        assert!(scaled.latency_quantile(0.99) < 0.3);
    }

    #[test]
    fn no_ready_replica_fails_every_request() {
        assert_eq!(ServiceModel::default().evaluate(10.0, 0.0).error_rate, 1.0);
    }

    #[test]
    fn a_mixture_quantile_lies_between_its_parts() {
        let model = ServiceModel::default();
        let (light, busy) = (model.evaluate(50.0, 4.0), model.evaluate(180.0, 4.0));
        let one = mixture_quantile(&[(1.0, light)], 0.99).unwrap();
        assert!((one - light.latency_quantile(0.99)).abs() < 1e-12);
        let mixed = mixture_quantile(&[(50.0, light), (180.0, busy)], 0.99).unwrap();
        assert!(light.latency_quantile(0.99) < mixed && mixed < busy.latency_quantile(0.99));
        assert_eq!(mixture_quantile(&[(0.0, light)], 0.99), None);
    }

    #[test]
    fn quantiles_and_the_cdf_agree() {
        let state = ServiceModel::default().evaluate(120.0, 4.0);
        let p95 = state.latency_quantile(0.95);
        assert!((state.latency_cdf(p95) - 0.95).abs() < 1e-9);
    }
}
