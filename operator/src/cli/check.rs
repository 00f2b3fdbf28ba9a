//! `trimtab check -f POLICY.yaml --prometheus-url URL`: a policy's queries run against a real
//! Prometheus before anyone applies it. Per objective: the value or the typed absence, the number of
//! series, what it proposes at the current replicas, and warnings naming the field and the fix; then
//! the decision `trimtab decide` would make. The queries go through the operator's client and the
//! decision through the same engine and the same sample mapping as a round of the operator.
//!
//! Exit status: 0 when every objective has a usable value, 1 when one has not, 2 on bad input.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::Deployment;
use serde::Serialize;

use super::CliError;
use super::decide::{DecideOutput, output};
use super::input::{only_of_kind, read_source};
use super::run::{PrometheusArgs, TenancyArgs};
use crate::api::{History, ObjectiveKind, ScalingPolicy, WhenEmpty, format_decimal};
use crate::engine::{self, Absence, Current, Decision, ObjectiveRule, Policy, Pricing, Sample};
use crate::metrics::promql::{self, NamedUnit, QueryShape};
use crate::metrics::{PrometheusClient, QueryOutcome, QueryReport, samples};

/// A `rate()` window should span at least this many scrapes (Prometheus's own advice: four).
pub const SCRAPES_PER_WINDOW: u32 = 4;
/// Prometheus's default `scrape_interval`, assumed when it does not say.
pub const DEFAULT_SCRAPE_INTERVAL: Duration = Duration::from_secs(60);
/// How long reading the target Deployment may take before `check` goes on without it.
const CLUSTER_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// The ScalingPolicy to check (YAML or JSON), or - for stdin.
    #[arg(short = 'f', long = "file", value_name = "POLICY.yaml")]
    pub file: PathBuf,
    #[command(flatten)]
    pub prometheus: PrometheusArgs,
    #[command(flatten)]
    pub tenancy: TenancyArgs,
    /// The target's current replicas. Without it, they are read from the target Deployment when a
    /// kubeconfig (or the in-cluster config) is available, and are minReplicas otherwise.
    #[arg(long, value_name = "N")]
    pub current: Option<u32>,
    /// text (for people) or json (one object: objectives, decision).
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
    pub output: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("Prometheus settings: {0}")]
    Settings(#[from] crate::metrics::SettingsError),
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    #[error("metadata.namespace: --enforce-namespace-label confines the queries to the policy's namespace: set it")]
    NoNamespace,
    #[error("{0} (the operator would report PolicyInvalid)")]
    Refused(#[from] crate::metrics::tenancy::FieldError),
}

/// What `check` found, and what `-o json` prints.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report<'a> {
    pub objectives: Vec<ObjectiveReport>,
    /// What `trimtab decide` would decide; null when Prometheus rejected a query (the operator
    /// would report PolicyInvalid and not decide).
    pub decision: Option<DecideOutput<'a>>,
    pub current: CurrentReport,
    /// Warnings about the policy as a whole.
    pub warnings: Vec<Warning>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectiveReport {
    pub name: String,
    /// The query as sent: confined to the policy's namespace under --enforce-namespace-label.
    pub query: String,
    pub kind: ObjectiveKind,
    pub target: f64,
    /// The value the decision uses (0 when an absence is read as zero).
    pub value: Option<f64>,
    /// The typed absence, when the query gave no usable number.
    pub absent: Option<Absence>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_as_zero: Option<Absence>,
    /// The series the answer held; null when Prometheus gave no answer to count.
    pub series: Option<usize>,
    /// The replicas this objective asks for at the current count (null: none asked).
    pub proposal: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected: Option<String>,
    pub warnings: Vec<Warning>,
}

impl ObjectiveReport {
    /// A number to decide on (or an absence the objective reads as 0): what exit status 0 needs of
    /// every objective.
    pub fn usable(&self) -> bool {
        self.value.is_some() && self.rejected.is_none()
    }
}

/// Something that commonly goes wrong: the field to change, and what to write.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Warning {
    pub field: String,
    pub message: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CurrentReport {
    pub replicas: i32,
    pub ready_replicas: Option<i32>,
    /// Where the count came from: --current, the Deployment, or minReplicas.
    pub source: String,
}

/// Runs `check`; `Ok(true)` when every objective has a usable value.
pub fn run(args: &CheckArgs) -> Result<bool, CliError> {
    let source_name = args.file.display().to_string();
    let resource: ScalingPolicy = only_of_kind(&source_name, &read_source(&args.file)?, "ScalingPolicy")?;
    let policy = Policy::from_spec(&resource.spec)?;
    // The queries as the operator would send them; one it would refuse is bad input, never sent.
    let tenancy = args.tenancy.tenancy();
    let namespace = match (&tenancy.namespace_label, &resource.metadata.namespace) {
        (Some(_), None) => return Err(CheckError::NoNamespace.into()),
        (_, namespace) => namespace.clone().unwrap_or_default(),
    };
    let policy = tenancy.policy(&policy, &namespace).map_err(CheckError::from)?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = PrometheusClient::new(args.prometheus.settings()).map_err(CheckError::from)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(CheckError::Runtime)?;
    let (current, current_source) = runtime.block_on(current_replicas(&resource, &policy, args.current));
    let checked = runtime.block_on(check(&client, &policy, current.clone()));
    let report = checked.report(current, current_source);
    match args.output {
        Format::Json => println!("{}", serde_json::to_string(&report)?),
        Format::Text => print!("{}", text(&report, &args.prometheus.prometheus_url)),
    }
    Ok(report.objectives.iter().all(ObjectiveReport::usable))
}

/// The count to propose from: `--current`, else the target Deployment, else minReplicas.
async fn current_replicas(resource: &ScalingPolicy, policy: &Policy, given: Option<u32>) -> (Current, String) {
    let current = |replicas: i32, ready: Option<i32>| Current {
        replicas,
        ready_replicas: ready,
        consecutive_failures: 0,
        spot_healthy: true,
        pricing: Pricing::default(),
    };
    if let Some(n) = given {
        return (current(i32::try_from(n).unwrap_or(i32::MAX), None), "--current".into());
    }
    match tokio::time::timeout(CLUSTER_TIMEOUT, deployment(resource)).await {
        Ok(Ok((name, replicas, ready))) => (current(replicas, Some(ready)), format!("Deployment {name}")),
        Ok(Err(why)) => (current(policy.min_replicas, None), format!("minReplicas ({why}; pass --current N)")),
        Err(_) => (
            current(policy.min_replicas, None),
            format!("minReplicas (the cluster did not answer within {}s; pass --current N)", CLUSTER_TIMEOUT.as_secs()),
        ),
    }
}

/// The target Deployment's spec.replicas and Ready replicas, through the kubeconfig.
async fn deployment(resource: &ScalingPolicy) -> Result<(String, i32, i32), String> {
    let config = kube::Config::infer().await.map_err(|e| format!("no kubeconfig: {e}"))?;
    let namespace = resource.metadata.namespace.clone().unwrap_or_else(|| config.default_namespace.clone());
    let client = kube::Client::try_from(config).map_err(|e| format!("cannot connect to Kubernetes: {e}"))?;
    let name = &resource.spec.target_ref.name;
    let deployments: kube::Api<Deployment> = kube::Api::namespaced(client, &namespace);
    let found = deployments.get_opt(name).await.map_err(|e| format!("cannot read Deployment {namespace}/{name}: {e}"))?;
    let deployment = found.ok_or_else(|| format!("Deployment {namespace}/{name} (spec.targetRef) does not exist"))?;
    let replicas = deployment.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let ready = deployment.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0);
    Ok((format!("{namespace}/{name}"), replicas, ready))
}

/// Everything Prometheus answered, and the decision on it.
pub struct Checked {
    pub rules: Vec<ObjectiveRule>,
    pub reports: BTreeMap<String, QueryReport>,
    pub decision: Option<Decision>,
    pub rejected: Option<crate::metrics::RejectedQuery>,
    pub warnings: Vec<Vec<Warning>>,
    pub policy_warnings: Vec<Warning>,
}

/// Runs each objective's query (each distinct query once), the queries the warnings need, and the
/// decision.
pub async fn check(client: &PrometheusClient, policy: &Policy, current: Current) -> Checked {
    let queries: BTreeSet<&str> = policy.objectives.iter().map(|o| o.query.as_str()).collect();
    let answered = futures::future::join_all(queries.iter().map(|q| client.report(q))).await;
    let reports: BTreeMap<String, QueryReport> = queries.into_iter().map(str::to_owned).zip(answered).collect();
    let outcomes: BTreeMap<String, QueryOutcome> = reports.iter().map(|(q, r)| (q.clone(), r.outcome.clone())).collect();

    // decide (pure): the operator's mapping from answers to samples, then the engine.
    let (decision, rejected) = match samples(policy, &outcomes) {
        Ok(observations) => (Some(engine::decide(policy, &observations, &current, &History::default(), Timestamp::now())), None),
        Err(rejected) => (None, Some(rejected)),
    };

    let scrape_intervals = client.scrape_intervals().await.ok();
    let mut warnings = Vec::with_capacity(policy.objectives.len());
    for (index, rule) in policy.objectives.iter().enumerate() {
        let report = reports.get(&rule.query);
        warnings.push(objective_warnings(client, index, rule, report, scrape_intervals.as_ref()).await);
    }
    let policy_warnings = policy_warnings(policy);
    Checked { rules: policy.objectives.clone(), reports, decision, rejected, warnings, policy_warnings }
}

impl Checked {
    pub fn report(&self, current: Current, source: String) -> Report<'_> {
        let objectives = self
            .decision_objectives()
            .into_iter()
            .enumerate()
            .map(|(index, (rule, outcome))| {
                let report = self.reports.get(&rule.query);
                let rejected = self.rejected.as_ref().filter(|r| r.index == index).map(|r| r.message.clone()).or_else(|| {
                    match report.map(|r| &r.outcome) {
                        Some(QueryOutcome::Rejected(message)) => Some(message.clone()),
                        _ => None,
                    }
                });
                let absent = match report.map(|r| &r.outcome) {
                    Some(QueryOutcome::Sample(Sample::Absent(absence))) => Some(*absence),
                    _ => outcome.and_then(|o| o.absent),
                };
                ObjectiveReport {
                    name: rule.name.clone(),
                    query: rule.query.clone(),
                    kind: rule.kind,
                    target: rule.target,
                    value: outcome.and_then(|o| o.value),
                    absent,
                    read_as_zero: outcome.and_then(|o| o.read_as_zero),
                    series: report.and_then(|r| r.series),
                    proposal: outcome.and_then(|o| o.proposal),
                    rejected,
                    warnings: self.warnings.get(index).cloned().unwrap_or_default(),
                }
            })
            .collect();
        Report {
            objectives,
            decision: self.decision.as_ref().map(output),
            current: CurrentReport { replicas: current.replicas, ready_replicas: current.ready_replicas, source },
            warnings: self.policy_warnings.clone(),
        }
    }

    fn decision_objectives(&self) -> Vec<(&ObjectiveRule, Option<&engine::ObjectiveOutcome>)> {
        let outcome =
            |rule: &ObjectiveRule| self.decision.as_ref().and_then(|d| d.objectives.iter().find(|o| o.name == rule.name));
        self.rules.iter().map(|rule| (rule, outcome(rule))).collect()
    }
}

/// What commonly goes wrong with one objective, each naming the field and the fix.
async fn objective_warnings(
    client: &PrometheusClient,
    index: usize,
    rule: &ObjectiveRule,
    report: Option<&QueryReport>,
    scrape_intervals: Option<&BTreeMap<String, Duration>>,
) -> Vec<Warning> {
    let field = |name: &str| format!("spec.objectives[{index}].{name}");
    let mut warnings = Vec::new();
    let outcome = report.map(|r| &r.outcome);

    match outcome {
        Some(QueryOutcome::Sample(Sample::Absent(Absence::MultipleSeries))) => {
            let count = report.and_then(|r| r.series).map_or("several".to_owned(), |n| n.to_string());
            let example = report.and_then(|r| r.labels.first()).map(|l| format!(" (such as {})", labels(l))).unwrap_or_default();
            warnings.push(Warning {
                field: field("query"),
                message: format!(
                    "returns {count} series{example}, and an objective needs one number: aggregate it, with sum(...) for a total or \
                     histogram_quantile(q, sum by (le) (rate(..._bucket[w]))) for a latency"
                ),
            });
        }
        Some(QueryOutcome::Sample(Sample::Absent(Absence::Empty))) => {
            let why = why_empty(client, &rule.query).await;
            let message = match rule.when_empty {
                WhenEmpty::MissingData => format!(
                    "the query returns no series, which this objective reads as missing data (scale up only, never down); \
                     {why}. If no series means nothing happened (no errors yet, no traffic), set whenEmpty: Zero"
                ),
                WhenEmpty::Zero => format!(
                    "the query returns no series, which whenEmpty: Zero reads as 0; {why}. A misspelled metric or label \
                     reads 0 too: make sure no series is what nothing happening looks like"
                ),
            };
            warnings.push(Warning { field: field("whenEmpty"), message });
        }
        Some(QueryOutcome::Sample(Sample::Absent(Absence::NaN))) if rule.when_empty == WhenEmpty::MissingData => {
            warnings.push(Warning {
                field: field("whenEmpty"),
                message: "the query is NaN (0/0: a ratio or histogram_quantile over no traffic), which this objective reads as \
                          missing data, so an idle service holds its replicas. To let it scale down to minReplicas, set \
                          whenEmpty: Zero"
                    .into(),
            });
        }
        Some(QueryOutcome::Sample(Sample::Absent(Absence::Infinite))) => {
            warnings.push(Warning {
                field: field("query"),
                message: "the query is infinite (x/0: a ratio whose denominator is 0 while its numerator is not): check that \
                          the numerator counts a subset of what the denominator counts"
                    .into(),
            });
        }
        _ => {}
    }

    let Ok(shape) = promql::shape(&rule.query) else { return warnings };
    if rule.when_empty == WhenEmpty::MissingData {
        warnings.extend(ratio_warnings(client, &field("query"), &shape).await);
    }
    warnings.extend(unit_warnings(&field("target"), rule, &shape));
    warnings.extend(window_warnings(client, &field("query"), &shape, scrape_intervals).await);
    warnings
}

/// Why a query is empty: the selectors that match no series, or, when all match, the expression.
async fn why_empty(client: &PrometheusClient, query: &str) -> String {
    let Ok(shape) = promql::shape(query) else { return "check the metric names and labels".into() };
    let queries: Vec<String> = shape.selectors.iter().map(|s| format!("count({s})")).collect();
    let counts = futures::future::join_all(queries.iter().map(|q| client.report(q))).await;
    let unmatched: Vec<&str> = shape
        .selectors
        .iter()
        .zip(&counts)
        .filter(|(_, report)| matches!(report.outcome, QueryOutcome::Sample(Sample::Absent(Absence::Empty))))
        .map(|(selector, _)| selector.as_str())
        .collect();
    if unmatched.is_empty() {
        "every selector matches series, so the expression empties them (a ratio's numerator, a filter, or a rate() \
         window holding fewer than two samples)"
            .into()
    } else {
        format!(
            "no series match {}: check the metric name and labels (or that the app has served this yet)",
            unmatched.join(", ")
        )
    }
}

/// A ratio whose numerator can be empty, and whether it is empty right now.
async fn ratio_warnings(client: &PrometheusClient, field: &str, shape: &QueryShape) -> Vec<Warning> {
    let mut warnings = Vec::new();
    for ratio in &shape.unguarded_ratios {
        let (numerator, denominator) = futures::join!(client.report(&ratio.numerator), client.report(&ratio.denominator));
        let now = match (&numerator.outcome, denominator.series) {
            (QueryOutcome::Sample(Sample::Absent(Absence::Empty)), Some(n)) if n > 0 => {
                format!("right now it returns no series while the denominator returns {n}, so the ratio is empty. ")
            }
            _ => String::new(),
        };
        let fix = if ratio.numerator.contains(" by (") {
            format!("({} or on () vector(0)) / {}", ratio.numerator, ratio.denominator)
        } else {
            format!("({} or vector(0)) / {}", ratio.numerator, ratio.denominator)
        };
        warnings.push(Warning {
            field: field.to_owned(),
            message: format!(
                "the numerator of a ratio can be empty: client libraries create a series (code=\"500\", say) only when it is \
                 first observed, and an empty numerator makes the ratio empty, not 0, so a healthy service never scales down. \
                 {now}Write {fix}"
            ),
        });
    }
    warnings
}

/// A target that looks like the wrong unit for the metric it is compared with.
fn unit_warnings(field: &str, rule: &ObjectiveRule, shape: &QueryShape) -> Vec<Warning> {
    let target = format_decimal(rule.target, 6);
    shape
        .metrics
        .iter()
        .filter_map(|metric| match promql::named_unit(metric)? {
            NamedUnit::Milliseconds if rule.target < 1.0 => Some(Warning {
                field: field.to_owned(),
                message: format!(
                    "{target} is under 1, but {metric} is in milliseconds, so this is {target} ms: write the target in \
                     milliseconds (\"300\" for 300 ms)"
                ),
            }),
            NamedUnit::Seconds if rule.target > 100.0 => Some(Warning {
                field: field.to_owned(),
                message: format!(
                    "{target} is over 100, but {metric} is in seconds, so this is {target} s: write the target in seconds \
                     (\"0.3\" or \"300m\" for 300 ms)"
                ),
            }),
            _ => None,
        })
        .collect()
}

/// A `rate()` window that spans fewer than four scrapes of the series it reads.
async fn window_warnings(
    client: &PrometheusClient,
    field: &str,
    shape: &QueryShape,
    scrape_intervals: Option<&BTreeMap<String, Duration>>,
) -> Vec<Warning> {
    let mut warnings = Vec::new();
    for window in &shape.windows {
        let jobs: Vec<String> = match &window.job {
            Some(job) => vec![job.clone()],
            None => {
                let report = client.report(&format!("count by (job) ({})", window.selector)).await;
                report.labels.iter().filter_map(|l| l.get("job").cloned()).collect()
            }
        };
        let known = scrape_intervals.map(|intervals| {
            let of_jobs = jobs.iter().filter_map(|j| intervals.get(j).map(|i| (j.clone(), *i))).max_by_key(|(_, i)| *i);
            of_jobs.map(|(job, interval)| (interval, format!("job {job:?}"))).or_else(|| {
                intervals.values().max().map(|i| (*i, "the longest of the active targets: no series tell the job".to_owned()))
            })
        });
        let (interval, source) = match known.flatten() {
            Some(found) => found,
            None => (DEFAULT_SCRAPE_INTERVAL, "Prometheus did not say; assuming its default of 1m".to_owned()),
        };
        let needed = interval * SCRAPES_PER_WINDOW;
        if window.range < needed {
            warnings.push(Warning {
                field: field.to_owned(),
                message: format!(
                    "{}({}[{}]) spans fewer than {SCRAPES_PER_WINDOW} scrapes (scrape interval {}, {source}): it jitters, or is \
                     empty when a scrape is missed. Use [{}] or more",
                    window.function,
                    window.selector,
                    crate::api::format_duration(window.range),
                    crate::api::format_duration(interval),
                    crate::api::format_duration(needed),
                ),
            });
        }
    }
    warnings
}

/// Warnings about the objectives together.
fn policy_warnings(policy: &Policy) -> Vec<Warning> {
    let mut warnings = Vec::new();
    if policy.objectives.iter().all(|o| o.when_empty == WhenEmpty::Zero) {
        warnings.push(Warning {
            field: "spec.objectives".into(),
            message: "every objective reads no series as 0: when the scrape breaks, every value is 0 and Trimtab scales down \
                      to minReplicas. Keep whenEmpty: MissingData on one that always has a series while the app is scraped \
                      (its request rate: sum(rate(...)) is 0, not empty, at zero traffic)"
                .into(),
        });
    }
    warnings
}

fn labels(labels: &BTreeMap<String, String>) -> String {
    let parts: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", parts.join(", "))
}

/// The report for people.
fn text(report: &Report<'_>, url: &str) -> String {
    let mut out = format!("Checked against {url}, at {} replicas (from {}).\n", report.current.replicas, report.current.source);
    for objective in &report.objectives {
        let target = format_decimal(objective.target, 6);
        let series = objective.series.map_or(String::new(), |n| format!(" from {n} series"));
        let value = match (objective.value, objective.read_as_zero, objective.absent, &objective.rejected) {
            (_, _, _, Some(message)) => format!("rejected by Prometheus: {message}"),
            (Some(_), Some(absence), _, _) => format!("0 ({} read as 0: whenEmpty Zero){series}", absence.as_str()),
            (Some(value), None, _, _) => format!("{}{series}", format_decimal(value, 6)),
            (None, _, Some(absence), _) => format!("no value: {}{series}", absence.as_str()),
            (None, _, None, _) => "no value".to_owned(),
        };
        let proposal = match objective.proposal {
            Some(n) => format!("proposes {n}"),
            None if objective.usable() => "does not object to fewer".to_owned(),
            None => "proposes nothing (missing data)".to_owned(),
        };
        out.push_str(&format!("\n{} ({:?}, target {target}): {value}; {proposal}\n", objective.name, objective.kind));
        for warning in &objective.warnings {
            out.push_str(&format!("  warning: {}: {}\n", warning.field, warning.message));
        }
    }
    for warning in &report.warnings {
        out.push_str(&format!("\nwarning: {}: {}\n", warning.field, warning.message));
    }
    match &report.decision {
        Some(decision) => {
            out.push_str(&format!(
                "\nDecision: {} -> {} replicas ({}; limited by {})\n",
                report.current.replicas,
                decision.desired_replicas,
                decision.reason.as_str(),
                decision.limited_by.as_str()
            ));
            for step in decision.reasons {
                out.push_str(&format!("  {}: {}\n", step.reason.as_str(), step.message));
            }
        }
        None => out.push_str("\nNo decision: Prometheus rejected a query, so the policy would be PolicyInvalid.\n"),
    }
    out
}
