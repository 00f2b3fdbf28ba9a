//! The simulated world around a service (`--model MODEL.yaml`): the service model, how long a pod
//! takes to become Ready, what a pod requests (for its price), how the operator's metrics lag, and
//! when spot capacity is taken away. Every field is optional; the defaults are documented on each
//! field and in docs/simulate.md.

use serde::Deserialize;

use super::service_model::ServiceModel;
use crate::api::Quantity;
use crate::engine::{GIB, Requests};

/// MODEL.yaml.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ModelSpec {
    /// Requests per second one Ready replica serves at full utilization. Default 50.
    pub capacity_per_replica: f64,
    /// Latency of a request that does not wait, in seconds. Default 0.05.
    pub base_latency_seconds: f64,
    /// The client timeout, in seconds: no request takes longer. Default 10.
    pub max_latency_seconds: f64,
    /// From a pod's creation to Ready (scheduling, image pull, start, readiness probe). Default 45.
    pub startup_seconds: f64,
    /// The signals the policy sees are rates over this trailing window, like `rate(...[1m])`. Default 60.
    pub metrics_window_seconds: f64,
    /// The baselines' utilization target: HPA's averageUtilization, and the headroom static
    /// provisions above the peak. Default 0.7.
    pub hpa_target_utilization: f64,
    /// One replica's requests, Kubernetes quantities; its price is these times the pool's unit prices.
    /// Default cpu 500m, memory 1Gi.
    pub pod_requests: PodRequestsSpec,
    pub spot_interruptions: InterruptionsSpec,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PodRequestsSpec {
    /// A quantity: a number of cores (0.5) or a string ("500m").
    #[serde(deserialize_with = "crate::api::quantity::deserialize_quantity")]
    pub cpu: String,
    /// A quantity: a number of bytes or a string ("1Gi").
    #[serde(deserialize_with = "crate::api::quantity::deserialize_quantity")]
    pub memory: String,
}

/// Spot interruptions: the cloud takes spot nodes back, with their pods, and spot capacity stays
/// unavailable for a while.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct InterruptionsSpec {
    /// Random interruptions, a Poisson process with this many events per hour, drawn from `--seed`.
    /// Default 0.04 (about one a day).
    pub per_hour: f64,
    /// Interruptions at these minutes of the window (0 is its first minute), besides the random ones.
    pub at_minutes: Vec<f64>,
    /// The share of the running spot replicas one interruption takes (rounded up). Default 0.5.
    pub share: f64,
    /// How long spot capacity stays unavailable after an interruption, in minutes. Default 15.
    pub outage_minutes: f64,
}

impl Default for ModelSpec {
    fn default() -> Self {
        let service = ServiceModel::default();
        ModelSpec {
            capacity_per_replica: service.capacity_per_replica,
            base_latency_seconds: service.base_latency_seconds,
            max_latency_seconds: service.max_latency_seconds,
            startup_seconds: 45.0,
            metrics_window_seconds: 60.0,
            hpa_target_utilization: 0.7,
            pod_requests: PodRequestsSpec::default(),
            spot_interruptions: InterruptionsSpec::default(),
        }
    }
}

impl Default for PodRequestsSpec {
    fn default() -> Self {
        PodRequestsSpec { cpu: "500m".into(), memory: "1Gi".into() }
    }
}

impl Default for InterruptionsSpec {
    fn default() -> Self {
        InterruptionsSpec { per_hour: 0.04, at_minutes: Vec::new(), share: 0.5, outage_minutes: 15.0 }
    }
}

/// The model, checked and in the units the simulator uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub service: ServiceModel,
    pub startup_seconds: f64,
    pub metrics_window_seconds: f64,
    pub hpa_target_utilization: f64,
    pub requests: Requests,
    pub interruptions: Interruptions,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Interruptions {
    pub per_hour: f64,
    pub at_minutes: Vec<f64>,
    pub share: f64,
    pub outage_seconds: f64,
}

impl Default for Model {
    /// `ModelSpec::default()`, checked (a test holds the two together).
    fn default() -> Self {
        Model {
            service: ServiceModel::default(),
            startup_seconds: 45.0,
            metrics_window_seconds: 60.0,
            hpa_target_utilization: 0.7,
            requests: Requests { cpu_cores: 0.5, memory_gib: 1.0 },
            interruptions: Interruptions { per_hour: 0.04, at_minutes: Vec::new(), share: 0.5, outage_seconds: 900.0 },
        }
    }
}

/// A field of MODEL.yaml that is out of range, with the field's path.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ModelError {
    pub field: String,
    pub message: String,
}

impl ModelSpec {
    pub fn check(&self) -> Result<Model, ModelError> {
        let problem = |field: &str, message: &str| ModelError { field: field.into(), message: message.into() };
        let positive = |field: &str, value: f64| {
            if value.is_finite() && value > 0.0 { Ok(value) } else { Err(problem(field, "must be a number more than zero")) }
        };
        let non_negative = |field: &str, value: f64| {
            if value.is_finite() && value >= 0.0 { Ok(value) } else { Err(problem(field, "must be a number, zero or more")) }
        };
        let capacity = positive("capacityPerReplica", self.capacity_per_replica)?;
        let base = positive("baseLatencySeconds", self.base_latency_seconds)?;
        let max = positive("maxLatencySeconds", self.max_latency_seconds)?;
        if max < base {
            return Err(problem("maxLatencySeconds", "must be at least baseLatencySeconds"));
        }
        let startup = non_negative("startupSeconds", self.startup_seconds)?;
        let window = positive("metricsWindowSeconds", self.metrics_window_seconds)?;
        let utilization = positive("hpaTargetUtilization", self.hpa_target_utilization)?;
        if utilization > 1.0 {
            return Err(problem("hpaTargetUtilization", "must be a share of capacity, more than 0 and at most 1"));
        }
        let quantity = |field: &str, text: &str| {
            Quantity::parse(text).map(|q| q.as_f64()).map_err(|e| ModelError { field: field.into(), message: e.to_string() })
        };
        let requests = Requests {
            cpu_cores: quantity("podRequests.cpu", &self.pod_requests.cpu)?,
            memory_gib: quantity("podRequests.memory", &self.pod_requests.memory)? / GIB,
        };
        if requests.cpu_cores < 0.0 || requests.memory_gib < 0.0 {
            return Err(problem("podRequests", "requests cannot be negative"));
        }
        let spot = &self.spot_interruptions;
        let per_hour = non_negative("spotInterruptions.perHour", spot.per_hour)?;
        for (i, minute) in spot.at_minutes.iter().enumerate() {
            non_negative(&format!("spotInterruptions.atMinutes[{i}]"), *minute)?;
        }
        let share = non_negative("spotInterruptions.share", spot.share)?;
        if share > 1.0 {
            return Err(problem("spotInterruptions.share", "must be between 0 and 1"));
        }
        let outage = non_negative("spotInterruptions.outageMinutes", spot.outage_minutes)?;
        Ok(Model {
            service: ServiceModel { capacity_per_replica: capacity, base_latency_seconds: base, max_latency_seconds: max },
            startup_seconds: startup,
            metrics_window_seconds: window,
            hpa_target_utilization: utilization,
            requests,
            interruptions: Interruptions { per_hour, at_minutes: spot.at_minutes.clone(), share, outage_seconds: outage * 60.0 },
        })
    }
}

impl Interruptions {
    /// The seconds, from the window's start, at which spot capacity is interrupted within a window of
    /// `seconds`: the scheduled ones and a Poisson process drawn from `seed`, sorted.
    pub fn times(&self, seconds: f64, seed: u64) -> Vec<f64> {
        let mut times: Vec<f64> = self.at_minutes.iter().map(|m| m * 60.0).filter(|t| *t < seconds).collect();
        if self.per_hour > 0.0 {
            let mut rng = SplitMix64::new(seed);
            let mean_gap = 3600.0 / self.per_hour;
            let mut t = 0.0;
            loop {
                t += -mean_gap * (1.0 - rng.next_f64()).ln();
                if t >= seconds {
                    break;
                }
                times.push(t);
            }
        }
        times.sort_by(f64::total_cmp);
        times
    }
}

/// SplitMix64 (Steele, Lea and Flood, 2014): a tiny, fast, well-mixed PRNG; the same seed gives the
/// same sequence on every platform.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_draws_the_same_interruptions() {
        let interruptions = Interruptions { per_hour: 0.5, at_minutes: vec![30.0], share: 0.5, outage_seconds: 600.0 };
        let a = interruptions.times(86_400.0, 7);
        assert_eq!(a, interruptions.times(86_400.0, 7));
        assert_ne!(a, interruptions.times(86_400.0, 8));
        assert!(a.contains(&1800.0));
        assert!((5..=25).contains(&a.len()), "about 12 a day at 0.5 an hour: {}", a.len());
    }

    #[test]
    fn splitmix64_matches_its_reference_sequence() {
        // The first outputs for seed 1234567 of the reference implementation.
        let mut rng = SplitMix64::new(1_234_567);
        assert_eq!(rng.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(rng.next_u64(), 3_203_168_211_198_807_973);
    }

    #[test]
    fn the_default_model_is_the_default_model_file_checked() {
        assert_eq!(ModelSpec::default().check().unwrap(), Model::default());
    }

    #[test]
    fn a_model_field_out_of_range_is_named() {
        let spec = ModelSpec {
            spot_interruptions: InterruptionsSpec { share: 1.5, ..InterruptionsSpec::default() },
            ..ModelSpec::default()
        };
        assert_eq!(spec.check().unwrap_err().to_string(), "spotInterruptions.share: must be between 0 and 1");
        let spec = ModelSpec {
            pod_requests: PodRequestsSpec { cpu: "lots".into(), ..PodRequestsSpec::default() },
            ..ModelSpec::default()
        };
        assert!(spec.check().unwrap_err().to_string().starts_with("podRequests.cpu: "));
    }
}
