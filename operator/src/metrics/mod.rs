//! Reading service-level indicators from Prometheus: one client behind a trait, strict parsing into
//! a number or a typed absence, and one request per distinct query per round.

mod credentials;
mod freshness;
mod prometheus;
pub mod promql;
pub mod tenancy;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

pub use prometheus::{
    DEFAULT_MAX_CONCURRENCY, DEFAULT_MAX_RESPONSE_BYTES, PrometheusClient, PrometheusSettings, QueryReport, SettingsError,
    classify, parse_range,
};

use crate::engine::{Observations, Policy, Sample};

/// What one query gave.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryOutcome {
    /// A number or a typed absence.
    Sample(Sample),
    /// Prometheus refused the query itself (it does not parse, say): the policy must be fixed.
    Rejected(String),
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where samples come from: Prometheus in the operator, a fake in unit tests.
pub trait MetricsSource: Send + Sync {
    fn query<'a>(&'a self, promql: &'a str) -> BoxFuture<'a, QueryOutcome>;
    /// The query evaluated at every whole minute of the last `minutes`, now included.
    fn query_range<'a>(&'a self, promql: &'a str, minutes: u32) -> BoxFuture<'a, RangeOutcome>;
}

/// What one range query gave.
#[derive(Debug, Clone, PartialEq)]
pub enum RangeOutcome {
    /// The value at each minute that has one, by Unix time (a multiple of 60).
    Minutes(BTreeMap<i64, f64>),
    /// No series, several, or no answer.
    Absent(crate::engine::Absence),
    /// Prometheus refused the query itself.
    Rejected(String),
}

/// Runs each distinct query once, concurrently, and returns the outcome of every query.
pub async fn query_all<'a>(
    source: &dyn MetricsSource,
    queries: impl IntoIterator<Item = &'a str>,
) -> BTreeMap<String, QueryOutcome> {
    let distinct: std::collections::BTreeSet<&str> = queries.into_iter().collect();
    let outcomes = futures::future::join_all(distinct.iter().map(|q| source.query(q))).await;
    distinct.into_iter().map(str::to_owned).zip(outcomes).collect()
}

/// A query of the policy that Prometheus refused: the policy must be fixed.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectedQuery {
    /// The objective's index in spec.objectives.
    pub index: usize,
    pub message: String,
}

impl std::fmt::Display for RejectedQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "spec.objectives[{}].query: Prometheus rejected it: {}", self.index, self.message)
    }
}

/// Each objective's sample from the outcomes of its query, as the decision takes them; the first
/// query Prometheus rejected, if any. What the operator and `trimtab check` both decide on.
pub fn samples(rules: &Policy, outcomes: &BTreeMap<String, QueryOutcome>) -> Result<Observations, RejectedQuery> {
    let mut samples = Observations::new();
    for (index, objective) in rules.objectives.iter().enumerate() {
        match outcomes.get(&objective.query) {
            Some(QueryOutcome::Sample(sample)) => {
                samples.insert(objective.name.clone(), *sample);
            }
            Some(QueryOutcome::Rejected(message)) => return Err(RejectedQuery { index, message: message.clone() }),
            None => {}
        }
    }
    Ok(samples)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    struct CountingSource(Mutex<Vec<String>>);

    impl MetricsSource for CountingSource {
        fn query<'a>(&'a self, promql: &'a str) -> BoxFuture<'a, QueryOutcome> {
            self.0.lock().expect("lock").push(promql.to_owned());
            Box::pin(async { QueryOutcome::Sample(Sample::Value(1.0)) })
        }

        fn query_range<'a>(&'a self, promql: &'a str, _minutes: u32) -> BoxFuture<'a, RangeOutcome> {
            self.0.lock().expect("lock").push(promql.to_owned());
            Box::pin(async { RangeOutcome::Minutes(BTreeMap::new()) })
        }
    }

    #[tokio::test]
    async fn identical_queries_in_one_round_are_sent_once() {
        let source = CountingSource(Mutex::new(Vec::new()));
        let outcomes = query_all(&source, ["up", "sum(rate(x[1m]))", "up"]).await;
        assert_eq!(outcomes.len(), 2);
        assert_eq!(source.0.lock().expect("lock").len(), 2);
    }
}
