//! What a simulation writes: `summary.json` (totals per run) and `timeline.csv` (one row a minute).
//! Both depend only on the inputs and the seed, so they are stable run after run.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use super::run::{MinuteRecord, Run};
use super::signals::{Feed, Signal};
use super::{Outcome, Simulation};
use crate::api::format_decimal;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub policy: RunSummary,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hpa: Option<RunSummary>,
    #[serde(rename = "static", skip_serializing_if = "Option::is_none")]
    pub static_: Option<RunSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oracle: Option<RunSummary>,
    pub simulation: SimulationSummary,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    /// Pod-hours, counting pods from creation (starting pods are paid for).
    pub replica_hours: f64,
    /// At the pools' prices.
    pub cost: f64,
    /// Minutes in which each objective of the policy was violated.
    pub slo_violation_minutes: BTreeMap<String, u64>,
    /// Minutes in which any service-level objective (a Ceiling; any objective when there is none)
    /// was violated.
    pub any_slo_violation_minutes: u64,
    /// Changes of the replica count.
    pub scale_events: u64,
    pub max_replicas: i32,
    /// The share of replica-hours on spot.
    pub spot_share: f64,
    /// The oracle's cost over this run's (1 is the physical limit); present when the oracle ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub efficiency: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SimulationSummary {
    pub trace: String,
    pub start_minute: usize,
    pub minutes: usize,
    pub scale: f64,
    pub seed: u64,
    pub peak_rps: f64,
    /// The signal that fed each objective.
    pub signals: BTreeMap<String, String>,
    /// Minutes of the window at which spot capacity was interrupted.
    pub spot_interruption_minutes: Vec<f64>,
    pub hpa_target_rps_per_replica: f64,
    pub static_replicas: i32,
}

/// Where the simulated load came from, for the summary.
#[derive(Debug, Clone)]
pub struct Source {
    pub trace: String,
    pub scale: f64,
}

fn round(value: f64, decimals: i32) -> f64 {
    let factor = 10f64.powi(decimals);
    (value * factor).round() / factor
}

pub fn run_summary(run: &Run, feeds: &[Feed]) -> RunSummary {
    let t = &run.totals;
    RunSummary {
        replica_hours: round(t.replica_hours, 3),
        cost: round(t.cost, 4),
        slo_violation_minutes: feeds.iter().zip(&t.violation_minutes).map(|(f, n)| (f.objective.clone(), *n)).collect(),
        any_slo_violation_minutes: t.any_violation_minutes,
        scale_events: t.scale_events,
        max_replicas: t.max_replicas,
        spot_share: if t.replica_hours > 0.0 { round(t.spot_replica_hours / t.replica_hours, 4) } else { 0.0 },
        efficiency: None,
    }
}

/// Oracle cost over run cost: how close a run comes to the physical limit. None without an oracle
/// run or when the run cost nothing.
pub fn efficiency(run: &Run, oracle: Option<&Run>) -> Option<f64> {
    let oracle = oracle?;
    (run.totals.cost > 0.0).then(|| round(oracle.totals.cost / run.totals.cost, 4))
}

pub fn summary(simulation: &Simulation, outcome: &Outcome, source: &Source) -> Summary {
    let oracle = outcome.run("oracle");
    let of = |name: &str| {
        outcome.run(name).map(|run| RunSummary { efficiency: efficiency(run, oracle), ..run_summary(run, &simulation.feeds) })
    };
    Summary {
        policy: of("policy").unwrap_or_else(|| run_summary(&empty_run(simulation.feeds.len()), &simulation.feeds)),
        hpa: of("hpa"),
        static_: of("static"),
        oracle: of("oracle"),
        simulation: SimulationSummary {
            trace: source.trace.clone(),
            start_minute: simulation.first_minute,
            minutes: simulation.load_rps.len(),
            scale: source.scale,
            seed: simulation.seed,
            peak_rps: round(simulation.load_rps.iter().copied().fold(0.0, f64::max), 3),
            signals: simulation.feeds.iter().map(|f| (f.objective.clone(), f.signal.name().to_owned())).collect(),
            spot_interruption_minutes: outcome.interruptions.iter().map(|t| round(t / 60.0, 2)).collect(),
            hpa_target_rps_per_replica: round(outcome.hpa_target_rps, 3),
            static_replicas: outcome.static_replicas,
        },
    }
}

fn empty_run(objectives: usize) -> Run {
    Run {
        minutes: Vec::new(),
        totals: super::run::Totals {
            replica_hours: 0.0,
            spot_replica_hours: 0.0,
            cost: 0.0,
            violation_minutes: vec![0; objectives],
            any_violation_minutes: 0,
            scale_events: 0,
            max_replicas: 0,
        },
    }
}

/// `timeline.csv`: `minute` (of the trace), `load_rps`, then for each run `RUN_desired`, `RUN_spot`,
/// `RUN_on_demand`, `RUN_ready` (mean over the minute), each objective's value `RUN_OBJECTIVE`,
/// `RUN_cost_per_hour` and the cumulative `RUN_cost`. Empty cells are values Prometheus would not
/// have (a latency with no request served).
pub fn timeline_csv(simulation: &Simulation, outcome: &Outcome) -> String {
    let mut out = String::with_capacity(simulation.load_rps.len() * 64 * outcome.runs.len().max(1));
    out.push_str("minute,load_rps");
    for run in &outcome.runs {
        let name = run.name;
        let _ = write!(out, ",{name}_desired,{name}_spot,{name}_on_demand,{name}_ready");
        for feed in &simulation.feeds {
            let _ = write!(out, ",{name}_{}", feed.objective.replace([',', '"', '\n'], "_"));
        }
        let _ = write!(out, ",{name}_cost_per_hour,{name}_cost");
    }
    out.push('\n');
    for (i, load) in simulation.load_rps.iter().enumerate() {
        let _ = write!(out, "{},{}", simulation.first_minute + i, number(*load, 3));
        for run in &outcome.runs {
            let Some(m) = run.run.minutes.get(i) else { continue };
            let _ = write!(out, ",{},{},{},{}", m.desired, m.spot, m.on_demand, number(m.mean_ready, 2));
            for feed in &simulation.feeds {
                let _ = write!(out, ",{}", number(objective_value(m, feed), 4));
            }
            let _ = write!(out, ",{},{}", number(m.cost_per_hour, 4), number(m.cumulative_cost, 4));
        }
        out.push('\n');
    }
    out
}

/// The objective's value in a minute: its signal's value.
pub fn objective_value(minute: &MinuteRecord, feed: &Feed) -> f64 {
    minute.signal(feed.signal)
}

fn number(value: f64, decimals: usize) -> String {
    if value.is_finite() { format_decimal(value, decimals) } else { String::new() }
}

/// The latency signal to plot against its target: the first latency objective's, or p99.
pub fn plotted_latency(feeds: &[Feed]) -> (Signal, Option<f64>, String) {
    match feeds.iter().find(|f| f.signal.is_latency()) {
        Some(feed) => (feed.signal, Some(feed.target), feed.objective.clone()),
        None => (Signal::LatencyP99, None, Signal::LatencyP99.name().to_owned()),
    }
}
