//! The simulator: load traces, the service model, and replaying them through the engine, with HPA
//! and static provisioning as baselines. `trimtab simulate` is a thin shell around [`Simulation`];
//! docs/simulate.md is the user's guide.

pub mod model;
pub mod oracle;
pub mod plot;
pub mod report;
pub mod run;
pub mod service_model;
pub mod signals;
pub mod trace;

use std::sync::atomic::AtomicUsize;

use model::Model;
use run::{Controller, Run, Scenario};
use signals::{Feed, Mapping, Signal};

use crate::api::{Objective, ObjectiveKind, ScalingPolicySpec, format_decimal};
use crate::engine::{Policy, PolicyError, Pricing};

/// A run besides the policy's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Baseline {
    /// HPA autoscaling/v2 with its default behavior, on a utilization target.
    Hpa,
    /// The window's peak, provisioned from the start.
    Static,
    /// Perfect foresight through the same model: each minute exactly the Ready replicas that keep
    /// the service-level objectives met, pods started `startupSeconds` ahead. The physical limit.
    Oracle,
}

impl Baseline {
    pub fn name(self) -> &'static str {
        match self {
            Baseline::Hpa => "hpa",
            Baseline::Static => "static",
            Baseline::Oracle => "oracle",
        }
    }
}

/// Everything one simulation needs.
#[derive(Debug, Clone)]
pub struct Simulation {
    pub spec: ScalingPolicySpec,
    pub policy: Policy,
    /// The signal feeding each of the policy's objectives.
    pub feeds: Vec<Feed>,
    pub model: Model,
    /// One replica's hourly price in each pool.
    pub pricing: Pricing,
    /// Offered load per minute, in requests per second.
    pub load_rps: Vec<f64>,
    /// The trace minute of `load_rps[0]`.
    pub first_minute: usize,
    pub seed: u64,
    pub baselines: Vec<Baseline>,
}

/// A finished run and its name: `policy`, `hpa` or `static`.
#[derive(Debug, Clone)]
pub struct NamedRun {
    pub name: &'static str,
    pub run: Run,
}

#[derive(Debug, Clone)]
pub struct Outcome {
    /// The policy's run first, then the baselines'.
    pub runs: Vec<NamedRun>,
    /// When spot capacity was interrupted, in seconds from the window's start.
    pub interruptions: Vec<f64>,
    /// The HPA baseline's target, requests per second per replica.
    pub hpa_target_rps: f64,
    /// The static baseline's replicas.
    pub static_replicas: i32,
}

impl Outcome {
    /// The run named `name`, if it was asked for.
    pub fn run(&self, name: &str) -> Option<&Run> {
        self.runs.iter().find(|r| r.name == name).map(|r| &r.run)
    }
}

impl Simulation {
    /// Runs the policy and the baselines (in parallel; each run is deterministic). `progress` counts
    /// simulated minutes across all runs.
    pub fn run(&self, progress: Option<&AtomicUsize>) -> Result<Outcome, PolicyError> {
        let interruptions = self.model.interruptions.times(self.load_rps.len() as f64 * 60.0, self.seed);
        let scenario = Scenario {
            load_rps: &self.load_rps,
            first_minute: self.first_minute,
            model: &self.model,
            pricing: self.pricing,
            interruptions: &interruptions,
        };
        let hpa_target_rps = self.model.hpa_target_utilization * self.model.service.capacity_per_replica;
        let static_replicas = self.static_replicas();
        let initial = self.initial_replicas();

        let mut controllers = vec![("policy", Controller::Engine { policy: self.policy.clone(), feeds: self.feeds.clone() })];
        for baseline in &self.baselines {
            let controller = match baseline {
                Baseline::Hpa => {
                    let (policy, feeds) = hpa(&self.spec, hpa_target_rps)?;
                    Controller::Engine { policy, feeds }
                }
                Baseline::Static => Controller::Static { replicas: static_replicas, policy: self.policy.clone() },
                Baseline::Oracle => Controller::Schedule {
                    replicas: oracle::schedule(&self.model, &self.feeds, &self.load_rps, self.policy.min_replicas),
                    policy: self.policy.clone(),
                },
            };
            controllers.push((baseline.name(), controller));
        }
        let runs = std::thread::scope(|scope| {
            let handles: Vec<_> = controllers
                .iter()
                .map(|(name, controller)| {
                    let scenario = &scenario;
                    let feeds = &self.feeds;
                    (*name, scope.spawn(move || run::simulate(scenario, controller, feeds, initial, progress)))
                })
                .collect();
            handles
                .into_iter()
                .map(|(name, handle)| {
                    // A run that panicked is a bug; carry the panic to the caller.
                    let run = handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                    NamedRun { name, run }
                })
                .collect()
        });
        Ok(Outcome { runs, interruptions, hpa_target_rps, static_replicas })
    }

    /// What the engine-driven runs start from: the first minute's load at the HPA target
    /// utilization, within min and max, every replica Ready.
    pub fn initial_replicas(&self) -> i32 {
        let first = self.load_rps.first().copied().unwrap_or(0.0);
        let per_replica = self.model.hpa_target_utilization * self.model.service.capacity_per_replica;
        let wanted = (first / per_replica).ceil() as i32;
        wanted.clamp(self.policy.min_replicas, self.policy.max_replicas)
    }

    /// The static baseline: the window's peak at the HPA target utilization, at least minReplicas
    /// (and not capped at maxReplicas: it is what peak provisioning would take).
    pub fn static_replicas(&self) -> i32 {
        let peak = self.load_rps.iter().copied().fold(0.0, f64::max);
        let per_replica = self.model.hpa_target_utilization * self.model.service.capacity_per_replica;
        ((peak / per_replica).ceil() as i32).max(self.policy.min_replicas)
    }
}

/// The HPA baseline as a policy for the same engine: one AverageValue objective on the offered load
/// (`rps`) with a target of `target_rps` per replica, HPA's defaults for everything else (15 s sync,
/// default behavior and tolerance, no budget), on the policy's min, max and placement. The engine's
/// AverageValue and behavior stages are HPA's own arithmetic, so this is what HPA would do.
pub fn hpa(spec: &ScalingPolicySpec, target_rps: f64) -> Result<(Policy, Vec<Feed>), PolicyError> {
    let target = format_decimal(target_rps, 3);
    let hpa_spec = ScalingPolicySpec {
        interval: None,
        objectives: vec![Objective {
            name: "rps".into(),
            query: "sum(rate(http_requests_total[1m]))".into(),
            target,
            kind: ObjectiveKind::AverageValue,
            when_empty: None,
        }],
        missing_data: None,
        behavior: None,
        budget: None,
        mode: None,
        forecast: None,
        ..spec.clone()
    };
    let policy = Policy::from_spec(&hpa_spec)?;
    let feeds = vec![Feed {
        objective: "rps".into(),
        kind: ObjectiveKind::AverageValue,
        target: policy.objectives.first().map_or(target_rps, |o| o.target),
        signal: Signal::Rps,
        mapping: Mapping::Given,
    }];
    Ok((policy, feeds))
}
