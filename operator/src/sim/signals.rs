//! The signals the simulated service produces, and which one feeds each objective.
//!
//! A simulator cannot run PromQL, so each objective of the policy is fed by one named signal:
//! 1. `--signal OBJECTIVE=SIGNAL`, when given;
//! 2. else the signal named like the objective, ignoring case, separators and word order
//!    (`p99-latency` is `latencyP99`, `error_rate` is `errorRate`);
//! 3. an `AverageValue` objective wants a total, which the engine divides by the replicas itself: a
//!    per-replica name (`rps-per-replica`) is fed the total (`rps`), and an `AverageValue` objective
//!    named like no signal is fed `rps`;
//! 4. anything else is an error that lists the signals.

use std::fmt;

use super::service_model::{ServiceState, mixture_quantile};
use crate::api::ObjectiveKind;
use crate::engine::Policy;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signal {
    /// Offered load, requests per second (a total).
    Rps,
    /// Offered load per Ready replica.
    RpsPerReplica,
    /// Latency percentiles of the served requests, in seconds.
    LatencyP50,
    LatencyP95,
    LatencyP99,
    /// Failed requests over all requests, 0 to 1.
    ErrorRate,
    /// Offered load over the capacity of the Ready replicas (1 is full; above 1 the excess fails).
    Utilization,
}

impl Signal {
    pub const ALL: [Signal; 7] = [
        Signal::Rps,
        Signal::RpsPerReplica,
        Signal::LatencyP50,
        Signal::LatencyP95,
        Signal::LatencyP99,
        Signal::ErrorRate,
        Signal::Utilization,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Signal::Rps => "rps",
            Signal::RpsPerReplica => "rpsPerReplica",
            Signal::LatencyP50 => "latencyP50",
            Signal::LatencyP95 => "latencyP95",
            Signal::LatencyP99 => "latencyP99",
            Signal::ErrorRate => "errorRate",
            Signal::Utilization => "utilization",
        }
    }

    /// The signal with exactly this name.
    pub fn from_name(name: &str) -> Option<Signal> {
        Signal::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The signal named like `name`, ignoring case, separators and word order.
    pub fn named_like(name: &str) -> Option<Signal> {
        let wanted = words(name);
        Signal::ALL.into_iter().find(|s| words(s.name()) == wanted)
    }

    pub fn is_latency(self) -> bool {
        matches!(self, Signal::LatencyP50 | Signal::LatencyP95 | Signal::LatencyP99)
    }

    fn latency_quantile(self) -> Option<f64> {
        match self {
            Signal::LatencyP50 => Some(0.50),
            Signal::LatencyP95 => Some(0.95),
            Signal::LatencyP99 => Some(0.99),
            _ => None,
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Every signal name, comma-separated, for error messages.
pub fn signal_names() -> String {
    Signal::ALL.map(Signal::name).join(", ")
}

/// Lowercase words of a name, split at separators and camelCase humps, sorted.
fn words(name: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut previous_lower = false;
    for c in name.chars() {
        if !c.is_alphanumeric() {
            if !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            previous_lower = false;
            continue;
        }
        if c.is_uppercase() && previous_lower && !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
        previous_lower = c.is_lowercase() || c.is_ascii_digit();
        word.extend(c.to_lowercase());
    }
    if !word.is_empty() {
        words.push(word);
    }
    words.sort();
    words
}

/// Why an objective is fed the signal it is fed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mapping {
    /// `--signal OBJECTIVE=SIGNAL`.
    Given,
    /// The objective is named like the signal.
    Name,
    /// An AverageValue objective named like a per-replica signal: fed that signal's total.
    TotalOfPerReplica,
    /// An AverageValue objective named like no signal: fed `rps`.
    AverageValueDefault,
}

impl Mapping {
    pub fn describe(self) -> &'static str {
        match self {
            Mapping::Given => "given by --signal",
            Mapping::Name => "named like the objective",
            Mapping::TotalOfPerReplica => "the total: AverageValue divides by the replicas itself",
            Mapping::AverageValueDefault => "the default total for an AverageValue objective",
        }
    }
}

/// One objective and the signal that feeds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Feed {
    pub objective: String,
    pub kind: ObjectiveKind,
    pub target: f64,
    pub signal: Signal,
    pub mapping: Mapping,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SignalError {
    #[error("--signal {given:?}: write it as OBJECTIVE=SIGNAL, for example p99-latency=latencyP99")]
    Malformed { given: String },
    #[error("--signal {given:?}: the policy has no objective {objective:?} (its objectives: {objectives})")]
    UnknownObjective { given: String, objective: String, objectives: String },
    #[error("--signal {given:?}: there is no signal {signal:?}; the signals are: {signals}", signals = signal_names())]
    UnknownSignal { given: String, signal: String },
    #[error(
        "objective {objective:?} ({kind:?}) has no signal: no signal is named like it. Pass --signal {objective}=SIGNAL with one of the signals: {signals}",
        signals = signal_names()
    )]
    Unfed { objective: String, kind: ObjectiveKind },
}

/// Which signal feeds each objective of `policy`, in the policy's order; `given` holds the
/// `--signal OBJECTIVE=SIGNAL` flags.
pub fn feeds(policy: &Policy, given: &[String]) -> Result<Vec<Feed>, SignalError> {
    let objectives = || policy.objectives.iter().map(|o| o.name.as_str()).collect::<Vec<_>>().join(", ");
    let mut chosen: Vec<(String, Signal)> = Vec::new();
    for flag in given {
        let Some((objective, signal)) = flag.split_once('=') else {
            return Err(SignalError::Malformed { given: flag.clone() });
        };
        let (objective, signal) = (objective.trim(), signal.trim());
        if policy.objective(objective).is_none() {
            return Err(SignalError::UnknownObjective {
                given: flag.clone(),
                objective: objective.to_owned(),
                objectives: objectives(),
            });
        }
        let Some(signal) = Signal::from_name(signal) else {
            return Err(SignalError::UnknownSignal { given: flag.clone(), signal: signal.to_owned() });
        };
        chosen.push((objective.to_owned(), signal));
    }
    policy
        .objectives
        .iter()
        .map(|rule| {
            let (signal, mapping) = if let Some((_, signal)) = chosen.iter().rev().find(|(name, _)| name == &rule.name) {
                (*signal, Mapping::Given)
            } else {
                match (Signal::named_like(&rule.name), rule.kind) {
                    (Some(Signal::RpsPerReplica), ObjectiveKind::AverageValue) => (Signal::Rps, Mapping::TotalOfPerReplica),
                    (Some(signal), _) => (signal, Mapping::Name),
                    (None, ObjectiveKind::AverageValue) => (Signal::Rps, Mapping::AverageValueDefault),
                    (None, kind) => return Err(SignalError::Unfed { objective: rule.name.clone(), kind }),
                }
            };
            Ok(Feed { objective: rule.name.clone(), kind: rule.kind, target: rule.target, signal, mapping })
        })
        .collect()
}

/// The traffic of a span of time: what the signals are computed from.
#[derive(Debug, Clone, Default)]
pub struct Traffic {
    seconds: f64,
    requests: f64,
    errors: f64,
    /// Requests the Ready replicas could have served.
    capacity: f64,
    /// Ready replicas × seconds.
    replica_seconds: f64,
    /// Requests served in each state the service went through.
    served: Vec<(f64, ServiceState)>,
}

impl Traffic {
    /// `seconds` of `rps` offered to `ready` replicas, in `state`.
    pub fn add(&mut self, seconds: f64, rps: f64, ready: f64, capacity_per_replica: f64, state: ServiceState) {
        let requests = rps * seconds;
        self.seconds += seconds;
        self.requests += requests;
        self.errors += requests * state.error_rate;
        self.capacity += capacity_per_replica * ready * seconds;
        self.replica_seconds += ready * seconds;
        let served = requests * (1.0 - state.error_rate);
        match self.served.last_mut() {
            Some((weight, last)) if *last == state => *weight += served,
            _ => self.served.push((served, state)),
        }
    }

    pub fn clear(&mut self) {
        self.seconds = 0.0;
        self.requests = 0.0;
        self.errors = 0.0;
        self.capacity = 0.0;
        self.replica_seconds = 0.0;
        self.served.clear();
    }

    /// Mean Ready replicas over the span.
    pub fn mean_ready(&self) -> f64 {
        if self.seconds > 0.0 { self.replica_seconds / self.seconds } else { 0.0 }
    }

    /// The signal over this span; NaN where Prometheus would have no number (a ratio over no
    /// traffic, a quantile of no requests). `replicas` divides per-replica signals.
    pub fn signal(&self, signal: Signal, replicas: f64) -> f64 {
        let rps = if self.seconds > 0.0 { self.requests / self.seconds } else { f64::NAN };
        match signal {
            Signal::Rps => rps,
            Signal::RpsPerReplica => ratio(rps, replicas),
            Signal::ErrorRate => ratio(self.errors, self.requests),
            Signal::Utilization => ratio(self.requests, self.capacity),
            latency => {
                let q = latency.latency_quantile().unwrap_or(0.99);
                mixture_quantile(&self.served, q).unwrap_or(f64::NAN)
            }
        }
    }
}

fn ratio(numerator: f64, denominator: f64) -> f64 {
    if denominator > 0.0 { numerator / denominator } else { f64::NAN }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ScalingPolicySpec;

    fn policy(objectives: serde_json::Value) -> Policy {
        let spec: ScalingPolicySpec = serde_json::from_value(serde_json::json!({
            "targetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 1, "maxReplicas": 10, "objectives": objectives,
        }))
        .unwrap();
        Policy::from_spec(&spec).unwrap()
    }

    #[test]
    fn objectives_named_like_a_signal_are_fed_by_it_and_average_values_get_the_total() {
        let policy = policy(serde_json::json!([
            {"name": "p99-latency", "kind": "Ceiling", "query": "q", "target": "300m"},
            {"name": "error_rate", "kind": "Ceiling", "query": "q", "target": "0.01"},
            {"name": "rps-per-replica", "kind": "AverageValue", "query": "q", "target": "50"},
            {"name": "messages-per-replica", "kind": "AverageValue", "query": "q", "target": "20"},
        ]));
        let feeds = feeds(&policy, &[]).unwrap();
        let signals: Vec<Signal> = feeds.iter().map(|f| f.signal).collect();
        assert_eq!(signals, [Signal::LatencyP99, Signal::ErrorRate, Signal::Rps, Signal::Rps]);
        assert_eq!(feeds[2].mapping, Mapping::TotalOfPerReplica);
        assert_eq!(feeds[3].mapping, Mapping::AverageValueDefault);
    }

    #[test]
    fn an_objective_with_no_signal_is_an_error_listing_the_signals() {
        let policy = policy(serde_json::json!([{"name": "queue-depth", "kind": "Ceiling", "query": "q", "target": "5"}]));
        let error = feeds(&policy, &[]).unwrap_err().to_string();
        assert!(error.contains("objective \"queue-depth\" (Ceiling) has no signal"), "{error}");
        assert!(error.contains("rps, rpsPerReplica, latencyP50, latencyP95, latencyP99, errorRate, utilization"), "{error}");
        let fed = feeds(&policy, &["queue-depth=latencyP95".into()]).unwrap();
        assert_eq!((fed[0].signal, fed[0].mapping), (Signal::LatencyP95, Mapping::Given));
    }

    #[test]
    fn a_signal_flag_naming_nothing_known_is_an_error() {
        let policy = policy(serde_json::json!([{"name": "p99-latency", "kind": "Ceiling", "query": "q", "target": "1"}]));
        let error = feeds(&policy, &["p99=latencyP99".into()]).unwrap_err().to_string();
        assert!(error.contains("the policy has no objective \"p99\" (its objectives: p99-latency)"), "{error}");
        let error = feeds(&policy, &["p99-latency=p99".into()]).unwrap_err().to_string();
        assert!(error.contains("there is no signal \"p99\"; the signals are: rps,"), "{error}");
        assert!(matches!(feeds(&policy, &["p99-latency".into()]), Err(SignalError::Malformed { .. })));
    }
}
