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
    /// The value was NaN or infinite (a ratio over zero traffic, say).
    NaN,
    /// The newest sample is too old to describe now.
    Stale,
    /// The query returned more than one series; which one is meant is unclear.
    MultipleSeries,
    /// Prometheus could not be reached or answered with an error.
    Unreachable,
    /// Prometheus did not answer in time.
    Timeout,
}

impl Absence {
    pub fn as_str(&self) -> &'static str {
        match self {
            Absence::Empty => "Empty",
            Absence::NaN => "NaN",
            Absence::Stale => "Stale",
            Absence::MultipleSeries => "MultipleSeries",
            Absence::Unreachable => "Unreachable",
            Absence::Timeout => "Timeout",
        }
    }
}

impl Sample {
    /// A value that is not finite is an absence, never a number.
    pub fn from_value(value: f64) -> Sample {
        if value.is_finite() { Sample::Value(value) } else { Sample::Absent(Absence::NaN) }
    }

    pub fn value(&self) -> Option<f64> {
        match self {
            Sample::Value(v) => Some(*v),
            Sample::Absent(_) => None,
        }
    }
}
