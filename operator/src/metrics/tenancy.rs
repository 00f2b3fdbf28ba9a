//! What a tenant's query may read. Policies are written by app teams and run with the operator's
//! Prometheus credentials, so with `--enforce-namespace-label LABEL` every vector selector of a
//! tenant-written query is confined to the policy's namespace: a selector without a `LABEL`
//! matcher gets `LABEL="<namespace>"`, and one whose `LABEL` matcher could select another value is
//! refused. What is sent is the syntax tree re-printed, never the text as written, so what is
//! checked is what Prometheus runs. In every mode, ranges and subquery steps that no objective
//! needs (and that make Prometheus read far more than one number's worth) are refused.
//!
//! Pure: query text in, query text or the reason out; the caller names the field.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use promql_parser::label::{MatchOp, Matcher, Matchers};
use promql_parser::parser::{self, Expr, VectorSelector};

use crate::engine::Policy;

/// The longest range (`x[1h]`, `f(x)[1h:1m]`) a query may read: an objective is about now, and a
/// longer window makes one query read hours of every series it selects.
pub const MAX_RANGE: Duration = Duration::from_secs(3600);
/// The shortest subquery step: finer than Prometheus's own samples, it only multiplies the work.
pub const MIN_SUBQUERY_STEP: Duration = Duration::from_secs(1);

/// Why a query is not sent.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    #[error("does not parse as PromQL, so it cannot be confined to the namespace: {0}")]
    Parse(String),
    #[error(
        "{selector} selects {matcher}, which can read series of other namespaces: queries are confined to namespace \
         {namespace:?}; write {label}=\"{namespace}\" or leave {label} out (Trimtab adds it)"
    )]
    OtherNamespace { selector: String, matcher: String, label: String, namespace: String },
    #[error("the range [{range}] is longer than {max}, more than any objective needs: use a window of {max} or less")]
    RangeTooLong { range: String, max: String },
    #[error("the subquery step :{step}] is shorter than {min}, finer than any objective needs: use a step of {min} or more")]
    StepTooShort { step: String, min: String },
    #[error("uses a PromQL extension Trimtab cannot confine to the namespace")]
    Extension,
}

/// A refused query and the field it is in (`spec.objectives[0].query`): what PolicyInvalid says.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {error}")]
pub struct FieldError {
    pub field: String,
    pub error: QueryError,
}

/// How tenant-written queries are treated: `trimtab run`'s and `trimtab check`'s setting.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tenancy {
    /// The label every series carries its namespace in (`namespace`); none: queries are not confined.
    pub namespace_label: Option<String>,
    /// What was sent for the queries seen lately (shared by the clones).
    sent: Sent,
}

/// The most (query, namespace) pairs [`Sent`] keeps per generation: more than the distinct queries
/// of 10,000 policies with a few objectives each.
const SENT_CAPACITY: usize = 32_768;

/// The text sent (or the refusal) for each query seen lately, by the confining label, the query and
/// the namespace. Every policy sends the same queries every round, and parsing and re-printing one
/// is most of the cost of a round's CPU outside the decision (benches/tenancy.rs). Two generations
/// of at most [`SENT_CAPACITY`] entries: a query read every round is moved to the newer one, a query
/// no policy sends any more ages out, and memory is bounded however many queries come and go.
#[derive(Clone, Default)]
struct Sent(Arc<Mutex<Generations>>);

type SentKey = (Option<String>, String, String);

#[derive(Default)]
struct Generations {
    current: HashMap<SentKey, Result<String, QueryError>>,
    previous: HashMap<SentKey, Result<String, QueryError>>,
    /// Queries parsed, not found here (what the tests read).
    parsed: u64,
}

impl Generations {
    fn insert(&mut self, key: SentKey, sent: Result<String, QueryError>) {
        if self.current.len() >= SENT_CAPACITY {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current.insert(key, sent);
    }
}

impl Sent {
    fn get_or(&self, key: SentKey, parse: impl FnOnce() -> Result<String, QueryError>) -> Result<String, QueryError> {
        {
            let mut generations = self.0.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(hit) = generations.current.get(&key) {
                return hit.clone();
            }
            if let Some(hit) = generations.previous.remove(&key) {
                generations.insert(key, hit.clone());
                return hit;
            }
        }
        // Parsed outside the lock: other rounds' look-ups do not wait for it.
        let sent = parse();
        let mut generations = self.0.lock().unwrap_or_else(|e| e.into_inner());
        generations.parsed += 1;
        generations.insert(key, sent.clone());
        sent
    }
}

impl std::fmt::Debug for Sent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sent")
    }
}

/// A cache, not part of the setting: two Tenancies with the same label are the same setting.
impl PartialEq for Sent {
    fn eq(&self, _: &Sent) -> bool {
        true
    }
}

impl Tenancy {
    /// Queries confined to `namespace_label` (none: not confined).
    pub fn new(namespace_label: Option<String>) -> Self {
        Tenancy { namespace_label, sent: Sent::default() }
    }

    /// Queries parsed so far, not answered from what was sent before.
    pub fn parsed(&self) -> u64 {
        self.sent.0.lock().unwrap_or_else(|e| e.into_inner()).parsed
    }

    /// The query to send for a query of a policy in `namespace`.
    ///
    /// Confined: the re-printed, confined syntax tree. Not confined: the query as written, once its
    /// ranges are checked; a query promql-parser cannot parse is then sent as written, for
    /// Prometheus to judge (promql-parser may lag Prometheus's newest syntax).
    pub fn query(&self, query: &str, namespace: &str) -> Result<String, QueryError> {
        let key = (self.namespace_label.clone(), query.to_owned(), namespace.to_owned());
        self.sent.get_or(key, || self.parse(query, namespace))
    }

    fn parse(&self, query: &str, namespace: &str) -> Result<String, QueryError> {
        match &self.namespace_label {
            Some(label) => confine(query, label, namespace),
            None => match parser::parse(query) {
                Ok(mut expr) => visit(&mut expr, None).map(|()| query.to_owned()),
                Err(_) => Ok(query.to_owned()),
            },
        }
    }

    /// The policy with every tenant-written query as it is sent: each objective's, and
    /// `spec.forecast`'s range queries. The first refused names its field.
    pub fn policy(&self, rules: &Policy, namespace: &str) -> Result<Policy, FieldError> {
        let mut confined = rules.clone();
        for (i, objective) in confined.objectives.iter_mut().enumerate() {
            objective.query = self.field(&format!("spec.objectives[{i}].query"), &objective.query, namespace)?;
        }
        if let Some(forecast) = &mut confined.forecast {
            forecast.load_query = self.field("spec.forecast.loadQuery", &forecast.load_query, namespace)?;
            // The default (absent here) is Trimtab's own query of the policy's namespace and target.
            if let Some(ready) = &mut forecast.ready_replicas_query {
                *ready = self.field("spec.forecast.readyReplicasQuery", ready, namespace)?;
            }
        }
        Ok(confined)
    }

    fn field(&self, field: &str, query: &str, namespace: &str) -> Result<String, FieldError> {
        self.query(query, namespace).map_err(|error| FieldError { field: field.to_owned(), error })
    }
}

/// The query with every vector selector confined to `label="namespace"`, re-printed.
pub fn confine(query: &str, label: &str, namespace: &str) -> Result<String, QueryError> {
    let mut expr = parser::parse(query).map_err(QueryError::Parse)?;
    visit(&mut expr, Some((label, namespace)))?;
    Ok(expr.to_string())
}

/// Checks every range and subquery step and, given `(label, namespace)`, confines every selector.
fn visit(expr: &mut Expr, confinement: Option<(&str, &str)>) -> Result<(), QueryError> {
    match expr {
        Expr::Paren(paren) => visit(&mut paren.expr, confinement),
        Expr::Unary(unary) => visit(&mut unary.expr, confinement),
        Expr::Binary(binary) => {
            visit(&mut binary.lhs, confinement)?;
            visit(&mut binary.rhs, confinement)
        }
        Expr::Aggregate(aggregate) => {
            if let Some(param) = &mut aggregate.param {
                visit(param, confinement)?;
            }
            visit(&mut aggregate.expr, confinement)
        }
        Expr::Call(call) => call.args.args.iter_mut().try_for_each(|arg| visit(arg, confinement)),
        Expr::Subquery(subquery) => {
            check_range(subquery.range)?;
            if let Some(step) = subquery.step
                && step < MIN_SUBQUERY_STEP
            {
                return Err(QueryError::StepTooShort { step: duration(step), min: duration(MIN_SUBQUERY_STEP) });
            }
            visit(&mut subquery.expr, confinement)
        }
        Expr::MatrixSelector(matrix) => {
            check_range(matrix.range)?;
            confine_selector(&mut matrix.vs, confinement)
        }
        Expr::VectorSelector(selector) => confine_selector(selector, confinement),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => Ok(()),
        Expr::Extension(_) => match confinement {
            Some(_) => Err(QueryError::Extension),
            None => Ok(()),
        },
    }
}

fn check_range(range: Duration) -> Result<(), QueryError> {
    if range > MAX_RANGE {
        return Err(QueryError::RangeTooLong { range: duration(range), max: duration(MAX_RANGE) });
    }
    Ok(())
}

/// Each set of matchers of the selector (one, or each alternative of `{a="1" or b="2"}`) gets
/// `label="namespace"` when it has no `label` matcher, and is refused when it has another.
fn confine_selector(selector: &mut VectorSelector, confinement: Option<(&str, &str)>) -> Result<(), QueryError> {
    let Some((label, namespace)) = confinement else { return Ok(()) };
    let printed = selector.to_string();
    let Matchers { matchers, or_matchers } = &mut selector.matchers;
    let mut sets: Vec<&mut Vec<Matcher>> = or_matchers.iter_mut().collect();
    if sets.is_empty() || !matchers.is_empty() {
        sets.push(matchers);
    }
    for set in sets {
        let mut confined = false;
        for matcher in set.iter().filter(|m| m.name == label) {
            if !matches!(matcher.op, MatchOp::Equal) || matcher.value != namespace {
                return Err(QueryError::OtherNamespace {
                    selector: printed,
                    matcher: matcher.to_string(),
                    label: label.to_owned(),
                    namespace: namespace.to_owned(),
                });
            }
            confined = true;
        }
        if !confined {
            set.push(Matcher::new(MatchOp::Equal, label, namespace));
        }
    }
    Ok(())
}

fn duration(d: Duration) -> String {
    crate::api::format_duration(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn confined(query: &str) -> String {
        confine(query, "namespace", "a").unwrap_or_else(|e| panic!("{query}: {e}"))
    }

    fn refused(query: &str) -> QueryError {
        match confine(query, "namespace", "a") {
            Ok(sent) => panic!("{query} was confined to {sent}, not refused"),
            Err(error) => error,
        }
    }

    #[test]
    fn a_selector_without_the_label_gets_the_policys_namespace() {
        assert_eq!(confined("up"), r#"up{namespace="a"}"#);
        assert_eq!(confined(r#"http_requests_total{code="500"}"#), r#"http_requests_total{code="500",namespace="a"}"#);
        assert_eq!(confined(r#"{__name__=~".+"}"#), r#"{__name__=~".+",namespace="a"}"#);
    }

    #[test]
    fn a_matcher_on_the_policys_own_namespace_is_kept_as_it_is() {
        assert_eq!(confined(r#"up{namespace="a",job="api"}"#), r#"up{job="api",namespace="a"}"#);
    }

    #[test]
    fn every_selector_is_confined_inside_functions_operators_aggregations_and_subqueries() {
        let cases = [
            (
                r#"histogram_quantile(0.99, sum by (le) (rate(latency_seconds_bucket{app="web"}[5m])))"#,
                r#"histogram_quantile(0.99, sum by (le) (rate(latency_seconds_bucket{app="web",namespace="a"}[5m])))"#,
            ),
            (
                "sum(rate(errors_total[2m])) / sum(rate(requests_total[2m]))",
                r#"sum(rate(errors_total{namespace="a"}[2m])) / sum(rate(requests_total{namespace="a"}[2m]))"#,
            ),
            (r#"sum(x{namespace="a"}) or up"#, r#"sum(x{namespace="a"}) or up{namespace="a"}"#),
            ("topk(3, x) and on () y", r#"topk(3, x{namespace="a"}) and on () y{namespace="a"}"#),
            ("max_over_time(rate(x[1m])[10m:30s])", r#"max_over_time(rate(x{namespace="a"}[1m])[10m:30s])"#),
            ("-x offset 5m", r#"-x{namespace="a"} offset 5m"#),
            ("count_values(\"v\", x)", r#"count_values("v", x{namespace="a"})"#),
            ("quantile(scalar(q), x)", r#"quantile(scalar(q{namespace="a"}), x{namespace="a"})"#),
            ("absent(nothing)", r#"absent(nothing{namespace="a"})"#),
        ];
        for (query, expected) in cases {
            assert_eq!(confined(query), expected, "{query}");
        }
    }

    #[test]
    fn each_alternative_of_an_or_selector_is_confined() {
        let sent = confined(r#"{job="a" or job="b"}"#);
        let reparsed = parser::parse(&sent).expect("re-printed text parses");
        let Expr::VectorSelector(selector) = reparsed else { panic!("{sent}") };
        assert_eq!(selector.matchers.or_matchers.len(), 2, "{sent}");
        for set in &selector.matchers.or_matchers {
            assert!(set.iter().any(|m| m.name == "namespace" && m.value == "a"), "{sent}");
        }
        assert!(matches!(refused(r#"{job="a" or namespace="b"}"#), QueryError::OtherNamespace { .. }));
    }

    #[test]
    fn a_matcher_that_could_select_another_namespace_is_refused_naming_it() {
        for (query, matcher) in [
            (r#"up{namespace="b"}"#, r#"namespace="b""#),
            (r#"up{namespace!="a"}"#, r#"namespace!="a""#),
            (r#"up{namespace=~".+"}"#, r#"namespace=~".+""#),
            (r#"up{namespace=~"a"}"#, r#"namespace=~"a""#),
            (r#"up{namespace!~"b"}"#, r#"namespace!~"b""#),
            (r#"sum(x) or on () up{namespace="a",namespace!="b"}"#, r#"namespace!="b""#),
            (r#"max_over_time(x{namespace=""}[5m:1m])"#, r#"namespace="""#),
        ] {
            match refused(query) {
                QueryError::OtherNamespace { matcher: found, .. } => assert_eq!(found, matcher, "{query}"),
                other => panic!("{query}: {other}"),
            }
        }
        let message = refused(r#"up{namespace="b"}"#).to_string();
        assert!(message.contains(r#"write namespace="a" or leave namespace out"#), "{message}");
    }

    #[test]
    fn the_label_is_the_admins_choice() {
        assert_eq!(confine("up", "tenant", "a"), Ok(r#"up{tenant="a"}"#.to_owned()));
        assert_eq!(confine(r#"up{namespace="b"}"#, "tenant", "a"), Ok(r#"up{namespace="b",tenant="a"}"#.to_owned()));
    }

    #[test]
    fn a_query_that_does_not_parse_is_refused_when_confining_and_sent_as_written_otherwise() {
        assert!(matches!(confine("sum(rate(x[2m])", "namespace", "a"), Err(QueryError::Parse(_))));
        assert_eq!(Tenancy::default().query("sum(rate(x[2m])", "a"), Ok("sum(rate(x[2m])".to_owned()));
    }

    #[test]
    fn ranges_over_an_hour_and_subquery_steps_under_a_second_are_refused_in_every_mode() {
        let off = Tenancy::default();
        let on = Tenancy::new(Some("namespace".into()));
        for query in ["rate(x[2h])", "max_over_time(x[61m])", "max_over_time(rate(x[1m])[2h:1m])"] {
            for tenancy in [&off, &on] {
                let error = tenancy.query(query, "a").expect_err(query);
                assert!(matches!(error, QueryError::RangeTooLong { .. }), "{query}: {error}");
            }
        }
        for tenancy in [&off, &on] {
            let error = tenancy.query("max_over_time(x[5m:100ms])", "a").expect_err("a 100ms step");
            assert_eq!(
                error.to_string(),
                "the subquery step :100ms] is shorter than 1s, finer than any objective needs: use a step of 1s or more"
            );
        }
        assert_eq!(off.query("max_over_time(rate(x[1h])[1h:1s])", "a"), Ok("max_over_time(rate(x[1h])[1h:1s])".to_owned()));
    }

    #[test]
    fn unconfined_queries_are_sent_as_written() {
        let query = r#"sum(rate(x{namespace=~".+"}[5m]))"#;
        assert_eq!(Tenancy::default().query(query, "a"), Ok(query.to_owned()));
    }

    #[test]
    fn re_printed_queries_keep_durations_modifiers_and_escapes() {
        for (query, expected) in [
            ("rate(x[90s])", r#"rate(x{namespace="a"}[1m30s])"#),
            ("rate(x[1500ms] offset -1m)", r#"rate(x{namespace="a"}[1s500ms] offset -1m)"#),
            ("x @ 1700000000", r#"x{namespace="a"} @ 1700000000.000"#),
            ("x @ end()", r#"x{namespace="a"} @ end()"#),
            (r#"x{path="a\"b\\c"}"#, r#"x{namespace="a",path="a\"b\\c"}"#),
            (r#"x{path=~"\\d+\\.html"}"#, r#"x{namespace="a",path=~"\\d+\\.html"}"#),
            (r#"label_replace(x, "dst", "$1", "src", "(.*)")"#, r#"label_replace(x{namespace="a"}, "dst", "$1", "src", "(.*)")"#),
            ("x > bool 1e-3", r#"x{namespace="a"} > bool 0.001"#),
            ("x / on (pod) group_left (node) y", r#"x{namespace="a"} / on (pod) group_left (node) y{namespace="a"}"#),
        ] {
            assert_eq!(confined(query), expected, "{query}");
        }
    }

    #[test]
    fn confining_a_confined_query_again_changes_nothing() {
        for query in [
            r#"histogram_quantile(0.99, sum by (le) (rate(x_bucket{path=~"/api/.*",code!="5\\d\\d"}[5m] offset 1m)))"#,
            r#"(sum(rate(e{c="5"}[2m])) or vector(0)) / ignoring (c) sum without (pod) (rate(r[2m] @ start()))"#,
            "max_over_time(deriv(x[5m])[30m:1m] offset 10m) > bool -Inf",
            r#"sort_desc(count by ("a.b") ({"weird name"="v"}))"#,
        ] {
            let once = confined(query);
            assert_eq!(confine(&once, "namespace", "a").as_deref(), Ok(once.as_str()), "{query} -> {once}");
        }
    }

    #[test]
    fn a_policy_names_the_field_of_the_query_it_refuses() {
        let spec: crate::api::ScalingPolicySpec = serde_json::from_value(serde_json::json!({
            "targetRef": {"kind": "Deployment", "name": "web"},
            "minReplicas": 1, "maxReplicas": 5,
            "objectives": [
                {"name": "rps", "kind": "AverageValue", "query": "sum(rate(r[2m]))", "target": "50"},
                {"name": "p99", "kind": "Ceiling", "query": r#"max(x{namespace=~".+"})"#, "target": "1"}
            ]
        }))
        .expect("a spec");
        let rules = Policy::from_spec(&spec).expect("valid");
        let on = Tenancy::new(Some("namespace".into()));
        let error = on.policy(&rules, "a").expect_err("refused");
        assert_eq!(error.field, "spec.objectives[1].query");
        assert!(
            error.to_string().starts_with(r#"spec.objectives[1].query: x{namespace=~".+"} selects namespace=~".+""#),
            "{error}"
        );

        let mut fixed = spec.clone();
        fixed.objectives[1].query = "max(x)".into();
        let sent = on.policy(&Policy::from_spec(&fixed).expect("valid"), "a").expect("confined");
        let queries: Vec<&str> = sent.objectives.iter().map(|o| o.query.as_str()).collect();
        assert_eq!(queries, [r#"sum(rate(r{namespace="a"}[2m]))"#, r#"max(x{namespace="a"})"#]);
        assert_eq!(Tenancy::default().policy(&rules, "a").expect("unconfined").objectives, rules.objectives);
    }

    #[test]
    fn the_forecast_range_queries_are_confined_and_named_by_their_own_fields() {
        let spec = |ready: serde_json::Value| -> crate::api::ScalingPolicySpec {
            serde_json::from_value(serde_json::json!({
                "targetRef": {"kind": "Deployment", "name": "web"},
                "minReplicas": 1, "maxReplicas": 5,
                "objectives": [{"name": "p99", "kind": "Ceiling", "query": "max(x)", "target": "1"}],
                "forecast": {"loadQuery": "sum(rate(r[1m]))", "readyReplicasQuery": ready}
            }))
            .expect("a spec")
        };
        let on = Tenancy::new(Some("namespace".into()));
        let sent = on.policy(&Policy::from_spec(&spec("sum(ready)".into())).expect("valid"), "a").expect("confined");
        let forecast = sent.forecast.expect("a forecast");
        assert_eq!(forecast.load_query, r#"sum(rate(r{namespace="a"}[1m]))"#);
        assert_eq!(forecast.ready_replicas_query.as_deref(), Some(r#"sum(ready{namespace="a"})"#));
        let error = on.policy(&Policy::from_spec(&spec(r#"sum(ready{namespace="b"})"#.into())).expect("valid"), "a");
        assert_eq!(error.expect_err("refused").field, "spec.forecast.readyReplicasQuery");
        let default = on.policy(&Policy::from_spec(&spec(serde_json::Value::Null)).expect("valid"), "a").expect("confined");
        assert_eq!(default.forecast.expect("a forecast").ready_replicas_query, None, "Trimtab's own default is its own");
    }

    #[test]
    fn the_second_round_sends_the_text_of_the_first_without_parsing_again() {
        let on = Tenancy::new(Some("namespace".into()));
        let spec: crate::api::ScalingPolicySpec = serde_json::from_value(serde_json::json!({
            "targetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 1, "maxReplicas": 4,
            "objectives": [
                {"name": "rps", "kind": "AverageValue", "query": "sum(rate(http_requests_total[2m]))", "target": "10"},
                {"name": "bad", "kind": "Value", "query": r#"up{namespace="b"}"#, "target": "1"}
            ]
        }))
        .expect("a spec");
        let rules = Policy::from_spec(&spec).expect("valid");
        let first = on.policy(&rules, "a");
        assert_eq!(on.parsed(), 2);
        // A clone (what each round holds) shares what was sent; a refusal is remembered too.
        assert_eq!(on.clone().policy(&rules, "a"), first);
        assert_eq!(on.parsed(), 2, "the second round parsed nothing");
        assert_eq!(
            on.query("sum(rate(http_requests_total[2m]))", "a"),
            Ok(r#"sum(rate(http_requests_total{namespace="a"}[2m]))"#.into())
        );
        assert_eq!(on.parsed(), 2);
        // Another namespace's policy with the same query gets its own confinement.
        assert_eq!(
            on.query("sum(rate(http_requests_total[2m]))", "b"),
            Ok(r#"sum(rate(http_requests_total{namespace="b"}[2m]))"#.into())
        );
        assert_eq!(on.parsed(), 3);
    }

    #[test]
    fn what_was_sent_is_bounded_and_a_query_still_in_use_survives_the_turnover() {
        let on = Tenancy::new(Some("namespace".into()));
        on.query("up", "a").expect("confined");
        for i in 0..SENT_CAPACITY {
            on.query(&format!("up{i}"), "a").expect("confined");
            if i % 1000 == 0 {
                on.query("up", "a").expect("confined");
            }
        }
        let parsed = on.parsed();
        on.query("up", "a").expect("confined");
        assert_eq!(on.parsed(), parsed, "a query sent every round is kept");
        let generations = on.sent.0.lock().expect("not poisoned");
        assert!(generations.current.len() + generations.previous.len() <= 2 * SENT_CAPACITY);
    }
}
