//! Whether the series a query reads are still being written (R4: a remote-written or federated
//! series that froze). An instant query's answer carries Prometheus's evaluation time, never its
//! samples' times, and Prometheus keeps returning a series' last sample for its lookback delta (5m
//! by default) after the series stops: so the age is asked for separately, with one query per
//! objective query, derived from its syntax tree: for each vector selector, how long ago the
//! freshest series it matches was last written. Pure: no I/O.

use std::time::Duration;

use prometheus_http_query::response::Data;
use promql_parser::parser::{self, Expr, VectorSelector};
use promql_parser::util::{ExprVisitor, walk_expr};

/// The label of the age query's answer naming which selector (its index in [`selectors`]) an age is of.
const SELECTOR_LABEL: &str = "trimtab_selector";

/// The query asking, for each vector selector of `query`, `time() - max(timestamp(selector))`:
/// the age in seconds of the freshest sample any matching series has, one series per selector
/// that matches something. None when the query reads no series (`vector(1)`) or does not parse
/// (Prometheus says why when it runs the query itself).
///
/// The freshest series, not the oldest: one pod's series that stopped (a pod deleted, remote-written
/// without staleness markers) is not a frozen signal, but a selector none of whose series is being
/// written is. A selector matching nothing has no age: the query's own answer says what that means
/// (`Empty`, or 0 through `or vector(0)`).
pub fn age_query(query: &str) -> Option<String> {
    let selectors = selectors(query)?;
    let ages: Vec<String> = selectors
        .iter()
        .enumerate()
        .map(|(index, selector)| {
            format!(r#"label_replace(time() - max(timestamp({selector})), "{SELECTOR_LABEL}", "{index}", "", "")"#)
        })
        .collect();
    (!ages.is_empty()).then(|| ages.join(" or "))
}

/// Every vector selector of the query (those inside range selectors and subqueries too), without
/// `offset` and `@`: the question is whether the series is still written now, whatever time the
/// query looks at. Each once, in order of appearance. None when the query does not parse.
pub fn selectors(query: &str) -> Option<Vec<String>> {
    let expr = parser::parse(query).ok()?;
    let mut found = Selectors(Vec::new());
    walk_expr(&mut found, &expr).ok()?;
    Some(found.0)
}

struct Selectors(Vec<String>);

impl Selectors {
    fn add(&mut self, selector: &VectorSelector) {
        let live = VectorSelector { offset: None, at: None, ..selector.clone() };
        let printed = live.to_string();
        if !self.0.contains(&printed) {
            self.0.push(printed);
        }
    }
}

impl ExprVisitor for Selectors {
    type Error = std::convert::Infallible;

    fn pre_visit(&mut self, expr: &Expr) -> Result<bool, Self::Error> {
        match expr {
            Expr::VectorSelector(selector) => self.add(selector),
            Expr::MatrixSelector(matrix) => self.add(&matrix.vs),
            // walk_expr does not descend into an aggregation's parameter (`topk(scalar(k), ...)`).
            Expr::Aggregate(aggregate) => {
                if let Some(param) = &aggregate.param {
                    walk_expr(self, param)?;
                }
            }
            _ => {}
        }
        Ok(true)
    }
}

/// The selector whose freshest sample is older than the bound, from the age query's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Frozen {
    /// The selector, re-printed.
    pub selector: String,
    /// Seconds since its freshest sample.
    pub age: f64,
}

/// The oldest selector of `query` whose age in `answer` is over `bound`, if any. An answer that
/// is not the age query's (a scalar, a series without the label) says nothing about staleness.
pub fn frozen(query: &str, answer: &Data, bound: Duration) -> Option<Frozen> {
    let Data::Vector(ages) = answer else { return None };
    let selectors = selectors(query)?;
    ages.iter()
        .filter_map(|series| {
            let index: usize = series.metric().get(SELECTOR_LABEL)?.parse().ok()?;
            Some((selectors.get(index)?, series.sample().value()))
        })
        .filter(|(_, age)| *age > bound.as_secs_f64())
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(selector, age)| Frozen { selector: selector.clone(), age })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_selector_of_a_query_is_asked_its_age_once_without_offset() {
        let query = r#"sum(rate(errors_total{app="a"}[2m] offset 5m)) / sum(rate(requests_total{app="a"}[2m])) + sum(rate(errors_total{app="a"}[5m]))"#;
        assert_eq!(selectors(query).expect("parses"), [r#"errors_total{app="a"}"#, r#"requests_total{app="a"}"#]);
        assert_eq!(
            age_query("queue_depth").expect("one selector"),
            r#"label_replace(time() - max(timestamp(queue_depth)), "trimtab_selector", "0", "", "")"#
        );
        let two = age_query(query).expect("two selectors");
        assert_eq!(two.matches(" or ").count(), 1, "{two}");
    }

    #[test]
    fn a_query_that_reads_no_series_or_does_not_parse_has_no_age_query() {
        assert_eq!(age_query("vector(1)"), None);
        assert_eq!(age_query("3.5"), None);
        assert_eq!(age_query("sum(rate(x[2m])"), None);
    }

    #[test]
    fn selectors_in_subqueries_and_aggregation_parameters_are_found() {
        let query = "topk(scalar(k), max_over_time(rate(x[1m])[10m:1m]))";
        assert_eq!(selectors(query).expect("parses"), ["k", "x"]);
    }

    fn ages(json: &str) -> Data {
        serde_json::from_str(json).expect("test data parses")
    }

    #[test]
    fn the_oldest_selector_past_the_bound_is_frozen_and_the_rest_are_not() {
        let query = "sum(a) + sum(b)";
        let answer = ages(
            r#"{"resultType":"vector","result":[
                {"metric":{"trimtab_selector":"0"},"value":[1700000000,"3"]},
                {"metric":{"trimtab_selector":"1"},"value":[1700000000,"150.5"]}]}"#,
        );
        assert_eq!(frozen(query, &answer, Duration::from_secs(120)), Some(Frozen { selector: "b".into(), age: 150.5 }));
        assert_eq!(frozen(query, &answer, Duration::from_secs(200)), None);
    }

    #[test]
    fn an_answer_that_is_not_the_age_querys_says_nothing() {
        let bound = Duration::from_secs(1);
        assert_eq!(frozen("a", &ages(r#"{"resultType":"scalar","result":[1700000000,"900"]}"#), bound), None);
        assert_eq!(frozen("a", &ages(r#"{"resultType":"vector","result":[]}"#), bound), None);
        let unlabelled = ages(r#"{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"900"]}]}"#);
        assert_eq!(frozen("a", &unlabelled, bound), None);
        let out_of_range =
            ages(r#"{"resultType":"vector","result":[{"metric":{"trimtab_selector":"7"},"value":[1700000000,"900"]}]}"#);
        assert_eq!(frozen("a", &out_of_range, bound), None);
    }
}
