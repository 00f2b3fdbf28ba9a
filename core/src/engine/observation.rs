//! What an objective's query returned this round: a number, or a typed absence. An absence is never
//! a zero: a zero would scale a service down exactly when nobody can see it.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sample {
    Value(f64),
    Absent(Absence),
}

/// Why an objective has no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Absence {
    /// The query returned no series.
    Empty,
    /// The value was NaN: 0/0, what a ratio or a histogram_quantile gives over zero traffic.
    NaN,
    /// The value was +Inf or -Inf (x/0 with x not 0): never a number, whatever `whenEmpty` says.
    Infinite,
    /// The newest sample is too old to describe now.
    Stale,
    /// The query returned more than one series; which one is meant is unclear.
    MultipleSeries,
    /// Prometheus could not be reached or answered with an error.
    Unreachable,
    /// Prometheus did not answer in time.
    Timeout,
    /// The value was negative, which no objective's signal can be (latency, an error rate, a
    /// throughput or a queue length): a broken query, not a reason to scale to minReplicas.
    Negative,
}

impl Absence {
    pub fn as_str(&self) -> &'static str {
        match self {
            Absence::Empty => "Empty",
            Absence::NaN => "NaN",
            Absence::Infinite => "Infinite",
            Absence::Stale => "Stale",
            Absence::MultipleSeries => "MultipleSeries",
            Absence::Unreachable => "Unreachable",
            Absence::Timeout => "Timeout",
            Absence::Negative => "Negative",
        }
    }
}

impl Sample {
    /// A value that is not finite, or negative, is an absence, never a number.
    pub fn from_value(value: f64) -> Sample {
        if value.is_nan() {
            Sample::Absent(Absence::NaN)
        } else if value.is_infinite() {
            Sample::Absent(Absence::Infinite)
        } else if value < 0.0 {
            Sample::Absent(Absence::Negative)
        } else {
            Sample::Value(value)
        }
    }

    /// The same check for a sample from anywhere (a situation file, a simulator), so that the
    /// decision never sees a number that cannot be right.
    pub fn checked(self) -> Sample {
        match self {
            Sample::Value(value) => Sample::from_value(value),
            absent => absent,
        }
    }

    pub fn value(&self) -> Option<f64> {
        match self {
            Sample::Value(v) => Some(*v),
            Sample::Absent(_) => None,
        }
    }
}
