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
    fn quantiles_and_the_cdf_agree() {
        let state = ServiceModel::default().evaluate(120.0, 4.0);
        let p95 = state.latency_quantile(0.95);
        assert!((state.latency_cdf(p95) - 0.95).abs() < 1e-9);
    }
}
