//! `trimtab simulate`: replay a load trace through a policy, against the service model, beside HPA
//! and static provisioning. Reads the files, runs `sim::Simulation`, writes summary.json,
//! timeline.csv, report.svg and report.png into `--out`. See docs/simulate.md for the contract.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use super::input::{InputError, of_kind, only_of_kind, parse_strict, read_source};
use crate::api::{CapacityPool, ScalingPolicy};
use crate::engine::{Policy, PolicyError, PolicyPools, Pricing, Requests, UnitPrice, policy_pools};
use crate::sim::model::{ModelError, ModelSpec};
use crate::sim::plot::{self, Labels, PlotError};
use crate::sim::report::{self, Source, Summary};
use crate::sim::signals::{self, SignalError};
use crate::sim::trace::{Trace, TraceError};
use crate::sim::{Baseline, Simulation};

#[derive(clap::Args, Debug)]
pub struct SimulateArgs {
    /// The ScalingPolicy to replay (YAML or JSON).
    #[arg(long, value_name = "POLICY.yaml")]
    pub policy: PathBuf,
    /// A per-minute request-count CSV; the last column is the count.
    #[arg(long, value_name = "TRACE.csv")]
    pub trace: PathBuf,
    /// CapacityPools whose prices cost the replicas (default: the prices of examples/capacity-pools.yaml).
    #[arg(long, value_name = "POOLS.yaml")]
    pub pools: Option<PathBuf>,
    /// The service model (default: docs/simulate.md lists every default).
    #[arg(long, value_name = "MODEL.yaml")]
    pub model: Option<PathBuf>,
    /// Also run a baseline through the same model: hpa (HPA at 70% of capacity), static (the peak),
    /// oracle (perfect foresight: the physical limit; adds each run's efficiency).
    #[arg(long = "baseline", value_enum, value_name = "hpa|static|oracle")]
    pub baselines: Vec<BaselineArg>,
    /// The first trace minute to replay.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub start: usize,
    /// How many minutes to replay (default: to the end of the trace).
    #[arg(long, value_name = "M")]
    pub minutes: Option<usize>,
    /// Multiply each minute's count by this; the load is count × scale / 60 requests per second.
    #[arg(long, default_value_t = 1.0, value_name = "F")]
    pub scale: f64,
    /// Feed an objective with a named signal (rps, rpsPerReplica, latencyP50, latencyP95, latencyP99,
    /// errorRate, utilization). Repeatable.
    #[arg(long = "signal", value_name = "OBJECTIVE=SIGNAL")]
    pub signals: Vec<String>,
    /// Seed of the spot interruptions.
    #[arg(long, default_value_t = 1, value_name = "S")]
    pub seed: u64,
    /// The directory to write summary.json, timeline.csv, report.svg and report.png into.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum BaselineArg {
    Hpa,
    Static,
    Oracle,
}

#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    #[error("{0}")]
    Input(#[from] InputError),
    #[error("{path}: {source}")]
    Policy { path: String, source: PolicyError },
    #[error("{0}")]
    Trace(#[from] TraceError),
    #[error("{path}: {source}")]
    Model { path: String, source: ModelError },
    #[error("{0}")]
    Signal(#[from] SignalError),
    #[error("{0}")]
    Pools(String),
    #[error("cannot write {path}: {source}")]
    Write { path: String, source: std::io::Error },
    #[error("{0}")]
    Plot(#[from] PlotError),
    #[error("cannot render summary.json: {0}")]
    Json(#[from] serde_json::Error),
}

/// The unit prices used without `--pools`: those of examples/capacity-pools.yaml.
pub const DEFAULT_SPOT_PRICE: UnitPrice = UnitPrice { cpu_core_hour: 0.0105, memory_gib_hour: 0.0014 };
pub const DEFAULT_ON_DEMAND_PRICE: UnitPrice = UnitPrice { cpu_core_hour: 0.0350, memory_gib_hour: 0.0047 };

pub fn run(args: &SimulateArgs) -> Result<(), SimulateError> {
    let (simulation, source) = load(args)?;
    for feed in &simulation.feeds {
        eprintln!("objective {} <- signal {} ({})", feed.objective, feed.signal, feed.mapping.describe());
    }
    let summary = simulate_into(&simulation, &source, &args.out, progress_wanted(&simulation))?;
    print_table(&summary);
    Ok(())
}

/// Reads every input and checks it: the simulation to run, and where its load came from.
pub fn load(args: &SimulateArgs) -> Result<(Simulation, Source), SimulateError> {
    let policy_name = args.policy.display().to_string();
    let resource: ScalingPolicy = only_of_kind(&policy_name, &read_source(&args.policy)?, "ScalingPolicy")?;
    let policy =
        Policy::from_spec(&resource.spec).map_err(|source| SimulateError::Policy { path: policy_name.clone(), source })?;
    let feeds = signals::feeds(&policy, &args.signals)?;

    let model_spec = match &args.model {
        None => ModelSpec::default(),
        Some(path) => parse_strict::<ModelSpec>(&path.display().to_string(), &read_source(path)?)?,
    };
    let model = model_spec.check().map_err(|source| SimulateError::Model {
        path: args.model.as_ref().map_or("the default model".into(), |p| p.display().to_string()),
        source,
    })?;

    let pricing = match &args.pools {
        None => Pricing {
            spot: Some(DEFAULT_SPOT_PRICE.replica_cost(&model.requests)),
            on_demand: Some(DEFAULT_ON_DEMAND_PRICE.replica_cost(&model.requests)),
        },
        Some(path) => {
            let name = path.display().to_string();
            let pools: Vec<CapacityPool> = of_kind(&name, &read_source(path)?, "CapacityPool")?;
            pricing(&policy, &policy_name, &name, &pools, &model.requests)?
        }
    };

    let trace_name = args.trace.display().to_string();
    let trace_text = read_source(&args.trace)?;
    let trace = Trace::parse(&trace_name, &trace_text)?;
    let load_rps = trace.window_rps(&trace_name, args.start, args.minutes, args.scale)?;

    let mut baselines: Vec<Baseline> = args
        .baselines
        .iter()
        .map(|b| match b {
            BaselineArg::Hpa => Baseline::Hpa,
            BaselineArg::Static => Baseline::Static,
            BaselineArg::Oracle => Baseline::Oracle,
        })
        .collect();
    baselines.sort();
    baselines.dedup();

    let simulation = Simulation {
        spec: resource.spec,
        policy,
        feeds,
        model,
        pricing,
        load_rps,
        first_minute: args.start,
        seed: args.seed,
        baselines,
    };
    Ok((simulation, Source { trace: trace_name, scale: args.scale }))
}

/// Runs the simulation and writes its four outputs into `out`; returns the summary.
pub fn simulate_into(
    simulation: &Simulation,
    source: &Source,
    out: &Path,
    show_progress: bool,
) -> Result<Summary, SimulateError> {
    let write_error = |path: &Path| {
        let path = path.display().to_string();
        move |source| SimulateError::Write { path: path.clone(), source }
    };
    std::fs::create_dir_all(out).map_err(write_error(out))?;

    let progress = AtomicUsize::new(0);
    let done = AtomicBool::new(false);
    let total = simulation.load_rps.len() * (1 + simulation.baselines.len());
    let outcome = std::thread::scope(|scope| {
        if show_progress {
            scope.spawn(|| progress_bar(&progress, &done, total));
        }
        let outcome = simulation.run(Some(&progress));
        done.store(true, Ordering::Relaxed);
        outcome
    })
    .map_err(|source| SimulateError::Policy { path: "the HPA baseline".into(), source })?;

    let summary = report::summary(simulation, &outcome, source);
    let summary_path = out.join("summary.json");
    let mut json = serde_json::to_string_pretty(&summary)?;
    json.push('\n');
    std::fs::write(&summary_path, json).map_err(write_error(&summary_path))?;

    let timeline_path = out.join("timeline.csv");
    std::fs::write(&timeline_path, report::timeline_csv(simulation, &outcome)).map_err(write_error(&timeline_path))?;

    let labels = labels(simulation, source, &summary);
    plot::write(&out.join("report.svg"), &out.join("report.png"), simulation, &outcome, &labels)?;
    Ok(summary)
}

/// A replica's hourly price in the policy's pools (or the only OnDemand pool, without placement):
/// the operator's choice of pools, with fixed prices, since the simulator cannot run a priceQuery.
fn pricing(
    policy: &Policy,
    policy_name: &str,
    pools_name: &str,
    pools: &[CapacityPool],
    requests: &Requests,
) -> Result<Pricing, SimulateError> {
    let price = |pool: &CapacityPool| -> Result<f64, SimulateError> {
        let name = pool.metadata.name.clone().unwrap_or_default();
        let Some(price) = &pool.spec.price else {
            return Err(SimulateError::Pools(format!(
                "{pools_name}: CapacityPool {name:?} has no spec.price; the simulator cannot run a priceQuery, give fixed unit prices"
            )));
        };
        let unit = UnitPrice::from_price(price).map_err(|(field, e)| {
            SimulateError::Pools(format!("{pools_name}: CapacityPool {name:?}: spec.price.{field}: {e}"))
        })?;
        Ok(unit.replica_cost(requests))
    };
    match policy_pools(policy, pools) {
        Ok(PolicyPools::Unplaced { on_demand: None }) => Err(SimulateError::Pools(format!(
            "{pools_name}: a policy without placement runs on the only OnDemand CapacityPool, and there is not exactly one"
        ))),
        Ok(pools) => pools.pricing(|pool| price(pool).map(Some)),
        Err(unknown) => {
            let names: Vec<String> = pools.iter().filter_map(|p| p.metadata.name.clone()).collect();
            Err(SimulateError::Pools(format!("{policy_name}: {unknown} in {pools_name} (it defines: {})", names.join(", "))))
        }
    }
}

fn labels(simulation: &Simulation, source: &Source, summary: &Summary) -> Labels {
    let trace = Path::new(&source.trace).file_name().map_or(source.trace.clone(), |f| f.to_string_lossy().into_owned());
    let last = simulation.first_minute + simulation.load_rps.len().saturating_sub(1);
    let mut parts =
        vec![format!("policy: cost {:.2}, {} min over an SLO", summary.policy.cost, summary.policy.any_slo_violation_minutes)];
    if let Some(hpa) = &summary.hpa {
        parts.push(format!("hpa: {:.2}, {} min", hpa.cost, hpa.any_slo_violation_minutes));
    }
    if let Some(fixed) = &summary.static_ {
        parts.push(format!(
            "static ({} replicas): {:.2}, {} min",
            summary.simulation.static_replicas, fixed.cost, fixed.any_slo_violation_minutes
        ));
    }
    if let Some(oracle) = &summary.oracle {
        parts.push(format!("oracle: {:.2}, {} min", oracle.cost, oracle.any_slo_violation_minutes));
    }
    if let Some(efficiency) = summary.policy.efficiency {
        parts.push(format!("policy efficiency {efficiency:.2}"));
    }
    Labels {
        title: format!(
            "trimtab simulate: {trace}, minutes {}–{last} × {}",
            simulation.first_minute,
            crate::api::format_decimal(source.scale, 6)
        ),
        subtitle: parts.join("   ·   "),
    }
}

fn print_table(summary: &Summary) {
    // The efficiency column comes last, and only with the oracle, so scripts reading the first
    // seven columns keep working.
    let with_oracle = summary.oracle.is_some();
    print!(
        "{:<8} {:>10} {:>14} {:>18} {:>13} {:>13} {:>11}",
        "run", "cost", "replica-hours", "slo-violation-min", "scale-events", "max-replicas", "spot-share"
    );
    if with_oracle {
        print!(" {:>11}", "efficiency");
    }
    println!();
    let runs = [
        ("policy", Some(&summary.policy)),
        ("hpa", summary.hpa.as_ref()),
        ("static", summary.static_.as_ref()),
        ("oracle", summary.oracle.as_ref()),
    ];
    for (name, run) in runs {
        let Some(run) = run else { continue };
        print!(
            "{:<8} {:>10.2} {:>14.1} {:>18} {:>13} {:>13} {:>11.2}",
            name, run.cost, run.replica_hours, run.any_slo_violation_minutes, run.scale_events, run.max_replicas, run.spot_share
        );
        if with_oracle {
            print!(" {:>11.3}", run.efficiency.unwrap_or(f64::NAN));
        }
        println!();
    }
}

/// A progress bar on stderr, only when stderr is a terminal and the run is long enough to wait for.
fn progress_wanted(simulation: &Simulation) -> bool {
    std::io::stderr().is_terminal() && simulation.load_rps.len() * (1 + simulation.baselines.len()) >= 20_000
}

fn progress_bar(progress: &AtomicUsize, done: &AtomicBool, total: usize) {
    const WIDTH: usize = 40;
    let draw = |n: usize| {
        let filled = (n * WIDTH).checked_div(total).unwrap_or(WIDTH).min(WIDTH);
        eprint!(
            "\rsimulating [{}{}] {:>3}%",
            "#".repeat(filled),
            " ".repeat(WIDTH - filled),
            (n * 100).checked_div(total).unwrap_or(100)
        );
    };
    while !done.load(Ordering::Relaxed) {
        draw(progress.load(Ordering::Relaxed));
        std::thread::sleep(Duration::from_millis(100));
    }
    draw(total);
    eprintln!();
}
