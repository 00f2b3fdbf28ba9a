//! What `trimtab check` reads in a query, from its syntax tree (promql-parser, never string
//! matching): the ratios whose numerator can be empty, the `rate()` windows, the metric names.
//! Pure: no I/O.

use std::collections::BTreeSet;
use std::time::Duration;

use promql_parser::label::{MatchOp, Matchers};
use promql_parser::parser::{self, Expr, VectorSelector};

/// The parts of a query that commonly go wrong.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueryShape {
    /// Ratios whose numerator is not guarded by `or vector(...)` (nor is the ratio itself): on a
    /// healthy service the numerator's series (5xx, failures) may not exist yet, and then the ratio
    /// is empty instead of 0.
    pub unguarded_ratios: Vec<Ratio>,
    /// Every `rate()`, `irate()` and `increase()` over a range selector.
    pub windows: Vec<RateWindow>,
    /// The metric names the query selects, in order of appearance, once each.
    pub metrics: Vec<String>,
    /// Every vector selector (also those of range selectors), re-printed, once each: a query for
    /// the series it matches.
    pub selectors: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Ratio {
    /// The numerator and denominator, re-printed from the syntax tree (each a query of its own).
    pub numerator: String,
    pub denominator: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RateWindow {
    pub function: &'static str,
    pub range: Duration,
    /// The range's vector selector, re-printed: a query for the series it reads.
    pub selector: String,
    /// The job it reads, when the selector says `job="..."`.
    pub job: Option<String>,
}

/// The query's shape; an error when it does not parse (Prometheus will say why, too).
pub fn shape(query: &str) -> Result<QueryShape, String> {
    let expr = parser::parse(query)?;
    let mut shape = QueryShape::default();
    let mut metrics = BTreeSet::new();
    walk(&expr, false, &mut shape, &mut metrics);
    Ok(shape)
}

/// `guarded`: an ancestor is the left side of `or vector(...)`, so an empty result here becomes a
/// number anyway.
fn walk(expr: &Expr, guarded: bool, shape: &mut QueryShape, metrics: &mut BTreeSet<String>) {
    match expr {
        Expr::Paren(paren) => walk(&paren.expr, guarded, shape, metrics),
        Expr::Binary(binary) => {
            let op = binary.op.to_string();
            if op == "or" {
                walk(&binary.lhs, guarded || is_vector_literal(&binary.rhs), shape, metrics);
                walk(&binary.rhs, guarded, shape, metrics);
                return;
            }
            if op == "/" && !guarded && selects_series(&binary.lhs) && selects_series(&binary.rhs) && !is_guarded(&binary.lhs) {
                shape.unguarded_ratios.push(Ratio { numerator: binary.lhs.to_string(), denominator: binary.rhs.to_string() });
            }
            walk(&binary.lhs, guarded, shape, metrics);
            walk(&binary.rhs, guarded, shape, metrics);
        }
        Expr::Aggregate(aggregate) => {
            walk(&aggregate.expr, guarded, shape, metrics);
            if let Some(param) = &aggregate.param {
                walk(param, guarded, shape, metrics);
            }
        }
        Expr::Unary(unary) => walk(&unary.expr, guarded, shape, metrics),
        Expr::Subquery(subquery) => walk(&subquery.expr, guarded, shape, metrics),
        Expr::Call(call) => {
            if let ("rate" | "irate" | "increase", Some(Expr::MatrixSelector(matrix))) =
                (call.func.name, call.args.args.first().map(|a| a.as_ref()))
            {
                shape.windows.push(RateWindow {
                    function: call.func.name,
                    range: matrix.range,
                    selector: matrix.vs.to_string(),
                    job: equal_matcher(&matrix.vs.matchers, "job"),
                });
            }
            for arg in &call.args.args {
                walk(arg, guarded, shape, metrics);
            }
        }
        Expr::VectorSelector(selector) => remember_metric(selector, shape, metrics),
        Expr::MatrixSelector(matrix) => remember_metric(&matrix.vs, shape, metrics),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

fn remember_metric(selector: &VectorSelector, shape: &mut QueryShape, metrics: &mut BTreeSet<String>) {
    let printed = selector.to_string();
    if !shape.selectors.contains(&printed) {
        shape.selectors.push(printed);
    }
    let name = selector.name.clone().or_else(|| equal_matcher(&selector.matchers, "__name__"));
    if let Some(name) = name
        && metrics.insert(name.clone())
    {
        shape.metrics.push(name);
    }
}

fn equal_matcher(matchers: &Matchers, label: &str) -> Option<String> {
    matchers.matchers.iter().find(|m| m.name == label && matches!(m.op, MatchOp::Equal)).map(|m| m.value.clone())
}

fn strip_parens(expr: &Expr) -> &Expr {
    match expr {
        Expr::Paren(paren) => strip_parens(&paren.expr),
        other => other,
    }
}

/// `vector(0)` (any number), in parentheses or not.
fn is_vector_literal(expr: &Expr) -> bool {
    matches!(strip_parens(expr), Expr::Call(call) if call.func.name == "vector")
}

/// `X or vector(...)`, in parentheses or not: never empty.
fn is_guarded(expr: &Expr) -> bool {
    matches!(strip_parens(expr), Expr::Binary(b) if b.op.to_string() == "or" && is_vector_literal(&b.rhs))
}

/// Whether the expression reads any series (`x / 1000` is a unit conversion, not a ratio).
fn selects_series(expr: &Expr) -> bool {
    match expr {
        Expr::VectorSelector(_) | Expr::MatrixSelector(_) => true,
        Expr::Paren(p) => selects_series(&p.expr),
        Expr::Unary(u) => selects_series(&u.expr),
        Expr::Subquery(s) => selects_series(&s.expr),
        Expr::Aggregate(a) => selects_series(&a.expr),
        Expr::Binary(b) => selects_series(&b.lhs) || selects_series(&b.rhs),
        Expr::Call(c) => c.args.args.iter().any(|a| selects_series(a)),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => false,
    }
}

/// The unit a metric's name says its values are in, when it says one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamedUnit {
    Seconds,
    Milliseconds,
}

/// `http_request_duration_seconds_bucket` is in seconds, `istio_request_duration_milliseconds_bucket`
/// and Linkerd's `response_latency_ms_bucket` in milliseconds; a `_count` is a number of events.
pub fn named_unit(metric: &str) -> Option<NamedUnit> {
    if metric.ends_with("_count") || metric.ends_with("_total") {
        return None;
    }
    let words: Vec<&str> = metric.split('_').collect();
    if words.iter().any(|w| *w == "milliseconds" || *w == "ms") {
        Some(NamedUnit::Milliseconds)
    } else if words.contains(&"seconds") {
        Some(NamedUnit::Seconds)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ratios(query: &str) -> Vec<String> {
        shape(query).expect("parses").unguarded_ratios.into_iter().map(|r| r.numerator).collect()
    }

    #[test]
    fn a_ratio_whose_numerator_can_be_empty_is_found() {
        let query = r#"sum(rate(http_requests_total{code=~"5.."}[2m])) / sum(rate(http_requests_total[2m]))"#;
        assert_eq!(ratios(query), [r#"sum(rate(http_requests_total{code=~"5.."}[2m]))"#]);
    }

    #[test]
    fn a_numerator_or_a_ratio_guarded_by_or_vector_is_not() {
        for query in [
            r#"(sum(rate(http_requests_total{code=~"5.."}[2m])) or vector(0)) / sum(rate(http_requests_total[2m]))"#,
            r#"(sum by (app) (rate(x{code="500"}[2m])) or on() vector(0)) / sum by (app) (rate(x[2m]))"#,
            r#"(sum(rate(errors_total[2m])) / sum(rate(requests_total[2m]))) or vector(0)"#,
            r#"histogram_quantile(0.99, sum by (le) (rate(latency_ms_bucket[2m]))) / 1000"#,
        ] {
            assert_eq!(ratios(query), Vec::<String>::new(), "{query}");
        }
    }

    #[test]
    fn rate_windows_name_their_function_range_and_job() {
        let found =
            shape(r#"sum(rate(a_total{job="api"}[30s])) + sum(increase(b_total[5m])) + irate(c_total[1m])"#).expect("parses");
        let windows: Vec<_> = found.windows.iter().map(|w| (w.function, w.range.as_secs(), w.job.clone())).collect();
        assert_eq!(windows, [("rate", 30, Some("api".into())), ("increase", 300, None), ("irate", 60, None)]);
        assert_eq!(found.windows[0].selector, r#"a_total{job="api"}"#);
        assert_eq!(found.metrics, ["a_total", "b_total", "c_total"]);
        assert_eq!(found.selectors, [r#"a_total{job="api"}"#, "b_total", "c_total"]);
    }

    #[test]
    fn metric_names_say_their_unit() {
        assert_eq!(named_unit("http_request_duration_seconds_bucket"), Some(NamedUnit::Seconds));
        assert_eq!(named_unit("istio_request_duration_milliseconds_bucket"), Some(NamedUnit::Milliseconds));
        assert_eq!(named_unit("response_latency_ms_bucket"), Some(NamedUnit::Milliseconds));
        assert_eq!(named_unit("http_server_requests_seconds_count"), None);
        assert_eq!(named_unit("http_requests_total"), None);
    }

    #[test]
    fn a_query_that_does_not_parse_is_an_error() {
        assert!(shape("sum(rate(x[2m])").is_err());
    }
}
