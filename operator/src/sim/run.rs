//! One simulated run: a load trace offered to a Deployment whose replicas a controller (the engine
//! with a policy, or a fixed count) sets, through the service model, minute by minute.
//!
//! Time advances in ticks of at most 15 s that divide both the policy's interval and the minute
//! (15 s for a 15 s or 60 s interval, 5 s for a 10 s one). At the start of each tick, in order:
//! 1. spot interruptions due by then take their share of the spot pods, and put the interruption
//!    taint on the spot capacity for the outage; spot health is then the operator's own assessment
//!    (`placement::spot_health`: lost while tainted, back `returnAfter` after), every tick (the
//!    operator sees the taint at once);
//! 2. on a round (every `interval`, from the first interval on): the operator's round
//!    (`plan::plan`) decides from the signals of the trailing metrics window, with the status it
//!    plans (history, consecutive failures) carried to the next round; then one pod moves towards
//!    the target spot split if every desired replica is Ready (the rebalancer's rule);
//! 3. the ReplicaSet makes the pods match the desired count: new pods go to the pool the webhook
//!    picks (`placement::assign`) and become Ready `startupSeconds` later; scale-in removes
//!    not-Ready pods first, then pods of the pool over its target, newest first;
//! 4. the tick's load is served by the Ready pods, per the service model, and every pod is paid for.
//!
//! The load is constant within a trace minute. Each minute's objective values are computed from that
//! minute's traffic, what an SLO report would show; the engine only sees the lagging window.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};

use jiff::{SignedDuration, Timestamp};

use super::model::Model;
use super::service_model::ServiceState;
use super::signals::{Feed, Signal, Traffic};
use crate::api::{History, Mode, ObjectiveKind, ScalingPolicyStatus};
use crate::engine::{self, LoadHistory, Observations, Policy, Pricing, ReplicasOwner, Sample, Split};
use crate::placement::assign::{Pool, assign};
use crate::placement::spot_health::{self, SpotNode};
use crate::plan::{self, RoundInput, Spot, Target};

/// What every run of one simulation shares.
#[derive(Debug, Clone)]
pub struct Scenario<'a> {
    /// Offered load per minute, requests per second.
    pub load_rps: &'a [f64],
    /// The trace minute of `load_rps[0]`.
    pub first_minute: usize,
    pub model: &'a Model,
    /// One replica's hourly price in each pool.
    pub pricing: Pricing,
    /// Seconds from the window's start at which spot capacity is interrupted, sorted.
    pub interruptions: &'a [f64],
}

/// What sets the replica count.
#[derive(Debug, Clone)]
pub enum Controller {
    /// The decision engine running `policy`, each objective fed by its signal.
    Engine { policy: Policy, feeds: Vec<Feed> },
    /// A fixed count; `policy` gives the placement.
    Static { replicas: i32, policy: Policy },
    /// A count set in advance for every tick of [`SCHEDULE_TICK_SECONDS`] (the oracle's);
    /// `policy` gives the placement. Past the schedule's end its last count holds.
    Schedule { replicas: Vec<i32>, policy: Policy },
}

/// The tick of a [`Controller::Schedule`].
pub const SCHEDULE_TICK_SECONDS: u64 = 15;

impl Controller {
    fn policy(&self) -> &Policy {
        match self {
            Controller::Engine { policy, .. } | Controller::Static { policy, .. } | Controller::Schedule { policy, .. } => policy,
        }
    }
}

/// One minute of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct MinuteRecord {
    /// The Deployment's replicas (spec) at the minute's end.
    pub desired: i32,
    /// Pods per pool at the minute's end, Ready or not.
    pub spot: u32,
    pub on_demand: u32,
    /// Mean Ready pods over the minute.
    pub mean_ready: f64,
    /// The minute's value of each signal, in `Signal::ALL` order; NaN where undefined.
    pub signals: [f64; 7],
    /// The hourly cost of the pods at the minute's end.
    pub cost_per_hour: f64,
    /// Cost since the window's start, up to the minute's end.
    pub cumulative_cost: f64,
}

impl MinuteRecord {
    pub fn signal(&self, signal: Signal) -> f64 {
        self.signals[signal_index(signal)]
    }
}

fn signal_index(signal: Signal) -> usize {
    Signal::ALL.iter().position(|s| *s == signal).unwrap_or(0)
}

/// A run's totals.
#[derive(Debug, Clone, PartialEq)]
pub struct Totals {
    pub replica_hours: f64,
    pub spot_replica_hours: f64,
    pub cost: f64,
    /// Minutes in which each objective (in `feeds` order) was violated.
    pub violation_minutes: Vec<u64>,
    /// Minutes in which any service-level objective was violated: any Ceiling objective, or any
    /// objective when the policy has no Ceiling.
    pub any_violation_minutes: u64,
    /// Rounds that changed the replica count.
    pub scale_events: u64,
    pub max_replicas: i32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub minutes: Vec<MinuteRecord>,
    pub totals: Totals,
}

#[derive(Debug, Clone, Copy)]
struct Pod {
    spot: bool,
    /// Seconds from the window's start.
    ready_at: f64,
}

/// Whether the minute's `value` of the objective `feed` breaks it. AverageValue targets are per
/// Ready replica.
pub fn violates(feed: &Feed, value: f64, mean_ready: f64) -> bool {
    if value.is_nan() {
        return false;
    }
    match feed.kind {
        ObjectiveKind::Ceiling | ObjectiveKind::Value => value > feed.target,
        ObjectiveKind::AverageValue => value > feed.target * mean_ready,
    }
}

/// Runs `controller` over the scenario, starting from `initial` Ready replicas, and measures it
/// against the objectives in `slo` (the user's policy, whatever the controller). `progress` counts
/// simulated minutes.
pub fn simulate(scenario: &Scenario, controller: &Controller, slo: &[Feed], initial: i32, progress: Option<&AtomicUsize>) -> Run {
    let model = scenario.model;
    let policy = controller.policy();
    let interval = (policy.interval.as_secs_f64().round() as u64).max(1);
    // Ticks of at most 15 s that divide the interval and the minute.
    let tick = match controller {
        Controller::Engine { .. } => gcd(interval, 15),
        Controller::Static { .. } | Controller::Schedule { .. } => SCHEDULE_TICK_SECONDS,
    };
    let tick_seconds = tick as f64;
    let ticks_per_minute = 60 / tick;
    let rounds_every = match controller {
        Controller::Engine { .. } => interval / tick,
        Controller::Static { .. } | Controller::Schedule { .. } => 1,
    };
    let window_ticks = ((model.metrics_window_seconds / tick_seconds).ceil() as usize).max(1);
    let capacity = model.service.capacity_per_replica;
    let spot_price = scenario.pricing.spot.unwrap_or(0.0);
    let on_demand_price = scenario.pricing.on_demand.unwrap_or(0.0);
    let start = Timestamp::UNIX_EPOCH + SignedDuration::from_secs(scenario.first_minute as i64 * 60);
    let ceilings = slo.iter().any(|f| f.kind == ObjectiveKind::Ceiling);

    let mut desired = match controller {
        Controller::Engine { .. } => initial,
        Controller::Static { replicas, .. } => *replicas,
        Controller::Schedule { replicas, .. } => replicas.first().copied().unwrap_or(initial),
    };
    let mut pods: Vec<Pod> = Vec::with_capacity(desired.max(0) as usize * 2);
    let first_split = placement(policy, true, desired);
    for i in 0..desired.max(0) {
        pods.push(Pod { spot: first_split.is_some_and(|s| i < s.spot), ready_at: f64::NEG_INFINITY });
    }
    // The engine's policy as the operator would run it; the simulator shows what it would do
    // scaling, whatever its mode.
    let engine = match controller {
        Controller::Engine { policy, feeds } => Some((Policy { mode: Mode::Active, ..policy.clone() }, feeds)),
        _ => None,
    };
    // The status the operator would keep. As if the service had run at its initial count before the
    // window: the first rounds' stabilization sees it, instead of an empty history that lets the
    // first round scale in at once.
    let mut status = ScalingPolicyStatus {
        history: engine::remember(&History::default(), None, policy, start, desired, 0),
        ..ScalingPolicyStatus::default()
    };
    let mut last_round = Some(start);
    // Spot health as the operator assesses it (`placement::spot_health`), every tick: the
    // interruption taint is on the spot capacity until the outage ends.
    let mut spot = spot_health::Previous { healthy: true, available_since: None };
    let mut spot_node = SpotNode { name: "spot".into(), interrupted: false };
    let mut outage_until = f64::NEG_INFINITY;
    let mut next_interruption = 0;
    let mut window: VecDeque<(f64, f64, ServiceState)> = VecDeque::with_capacity(window_ticks + 1);
    let mut minute_traffic = Traffic::default();
    let mut window_traffic = Traffic::default();
    let mut observations = Observations::new();
    // What the operator's range queries would return for the predictive law (`spec.forecast`): the
    // throughput a minute apart up to now, and each Ceiling objective's minutes of the lookback as
    // (throughput per Ready replica, value) pairs.
    let forecast = match controller {
        Controller::Engine { policy, .. } => policy.forecast.as_ref(),
        _ => None,
    };
    let trend_minutes = forecast.map_or(0, |f| (f.trend_window.as_secs_f64() / 60.0).round() as usize);
    let lookback_minutes = forecast.map_or(0, |f| (f.lookback.as_secs_f64() / 60.0).round() as usize);
    let mut load_history = LoadHistory::default();
    let mut pairs: Vec<CeilingPairs> = match controller {
        Controller::Engine { feeds, .. } if forecast.is_some() => feeds
            .iter()
            .enumerate()
            .filter(|(_, f)| f.kind == ObjectiveKind::Ceiling)
            .map(|(i, f)| (i, f.objective.clone(), VecDeque::with_capacity(lookback_minutes + 1)))
            .collect(),
        _ => Vec::new(),
    };

    let mut minutes = Vec::with_capacity(scenario.load_rps.len());
    let mut totals = Totals {
        replica_hours: 0.0,
        spot_replica_hours: 0.0,
        cost: 0.0,
        violation_minutes: vec![0; slo.len()],
        any_violation_minutes: 0,
        scale_events: 0,
        max_replicas: desired,
    };

    for (minute, load) in scenario.load_rps.iter().copied().enumerate() {
        minute_traffic.clear();
        for sub in 0..ticks_per_minute {
            let k = minute as u64 * ticks_per_minute + sub;
            let t = (minute as u64 * 60 + sub * tick) as f64;

            // 1. Spot interruptions.
            while let Some(at) = scenario.interruptions.get(next_interruption).copied().filter(|at| *at <= t) {
                next_interruption += 1;
                if policy.placement.is_none() {
                    continue;
                }
                let running = pods.iter().filter(|p| p.spot).count();
                let mut lost = (running as f64 * model.interruptions.share).ceil() as usize;
                pods.retain(|p| {
                    let take = p.spot && lost > 0;
                    lost -= usize::from(take);
                    !take
                });
                outage_until = outage_until.max(at + model.interruptions.outage_seconds);
            }
            let now = start + SignedDuration::from_secs(t as i64);
            if let Some(placement) = &policy.placement {
                spot_node.interrupted = t < outage_until;
                let nodes = std::slice::from_ref(&spot_node);
                let health = spot_health::assess(&spot, nodes, &[], placement.fallback_after, placement.return_after, now);
                spot = spot_health::Previous { healthy: health.healthy, available_since: health.available_since };
            }
            let spot_healthy = spot.healthy;

            // 2. A round: decide, then rebalance.
            if k > 0 && k.is_multiple_of(rounds_every) {
                let ready = pods.iter().filter(|p| p.ready_at <= t).count() as i32;
                if let Some((policy, feeds)) = &engine {
                    window_traffic.clear();
                    for (pods_ready, rps, state) in &window {
                        window_traffic.add(tick_seconds, *rps, *pods_ready, capacity, *state);
                    }
                    observations.clear();
                    for feed in feeds.iter() {
                        let value = window_traffic.signal(feed.signal, f64::from(ready));
                        observations.insert(feed.objective.clone(), Sample::from_value(value));
                    }
                    if forecast.is_some() {
                        load_history.load.clear();
                        load_history.load.extend(
                            (0..=trend_minutes.max(lookback_minutes))
                                .rev()
                                .filter_map(|j| trailing_rate(scenario.load_rps, t - 60.0 * j as f64)),
                        );
                        load_history.capacity.clear();
                        for (_, name, seen) in &pairs {
                            load_history.capacity.insert(name.clone(), seen.iter().copied().collect());
                        }
                    }
                    let input = RoundInput { now, generation: None, previous: &status, last_round };
                    let observed = plan::Observation {
                        rules: policy,
                        target: Target {
                            name: "simulated",
                            replicas: desired,
                            ready_replicas: Some(ready),
                            uid: None,
                            replicas_owner: ReplicasOwner::Trimtab,
                        },
                        spot: Spot::Known(spot_healthy),
                        pricing: scenario.pricing,
                        samples: &observations,
                        load: &load_history,
                        conflict: None,
                        paused: false,
                    };
                    let round = plan::plan(&input, &observed);
                    status = round.status;
                    last_round = Some(now);
                    if let Some(scale) = round.scale {
                        totals.scale_events += 1;
                        desired = scale.to;
                        totals.max_replicas = totals.max_replicas.max(desired);
                    }
                }
                if let Controller::Schedule { replicas, .. } = controller {
                    let scheduled = replicas.get(k as usize).or(replicas.last()).copied().unwrap_or(desired);
                    if scheduled != desired {
                        totals.scale_events += 1;
                        desired = scheduled;
                        totals.max_replicas = totals.max_replicas.max(desired);
                    }
                }
                rebalance(policy, spot_healthy, desired, ready, &mut pods, t + model.startup_seconds);
            }

            // 3. The ReplicaSet.
            let target = placement(policy, spot_healthy, desired);
            while (pods.len() as i32) < desired {
                // The webhook's choice (`placement::assign`).
                let spot_pods = pods.iter().filter(|p| p.spot).count() as i32;
                let existing = Split { spot: spot_pods, on_demand: pods.len() as i32 - spot_pods };
                let spot = assign(policy, spot_healthy, desired, existing).is_some_and(|a| a.pool == Pool::Spot);
                pods.push(Pod { spot, ready_at: t + model.startup_seconds });
            }
            while pods.len() as i32 > desired.max(0) {
                remove_one(&mut pods, target, t);
            }

            // 4. Serve and pay.
            let ready = pods.iter().filter(|p| p.ready_at <= t).count() as f64;
            let state = model.service.evaluate(load, ready);
            if window.len() == window_ticks {
                window.pop_front();
            }
            window.push_back((ready, load, state));
            minute_traffic.add(tick_seconds, load, ready, capacity, state);
            let spot_pods = pods.iter().filter(|p| p.spot).count() as f64;
            let on_demand_pods = pods.len() as f64 - spot_pods;
            let hours = tick_seconds / 3600.0;
            totals.replica_hours += (spot_pods + on_demand_pods) * hours;
            totals.spot_replica_hours += spot_pods * hours;
            totals.cost += (spot_pods * spot_price + on_demand_pods * on_demand_price) * hours;
        }

        // The minute's record and its objectives.
        let mean_ready = minute_traffic.mean_ready();
        let signals = Signal::ALL.map(|s| minute_traffic.signal(s, mean_ready));
        let mut any = false;
        for (i, feed) in slo.iter().enumerate() {
            if violates(feed, signals[signal_index(feed.signal)], mean_ready) {
                totals.violation_minutes[i] += 1;
                any |= !ceilings || feed.kind == ObjectiveKind::Ceiling;
            }
        }
        totals.any_violation_minutes += u64::from(any);
        if mean_ready > 0.0 {
            let per_replica = signals[signal_index(Signal::Rps)] / mean_ready;
            for (i, _, seen) in &mut pairs {
                if seen.len() >= lookback_minutes.max(1) {
                    seen.pop_front();
                }
                seen.push_back((per_replica, signals[signal_index(slo_signal(controller, *i))]));
            }
        }
        let spot = pods.iter().filter(|p| p.spot).count() as u32;
        let on_demand = pods.len() as u32 - spot;
        minutes.push(MinuteRecord {
            desired,
            spot,
            on_demand,
            mean_ready,
            signals,
            cost_per_hour: f64::from(spot) * spot_price + f64::from(on_demand) * on_demand_price,
            cumulative_cost: totals.cost,
        });
        if let Some(progress) = progress {
            progress.fetch_add(1, Ordering::Relaxed);
        }
    }
    Run { minutes, totals }
}

/// A Ceiling objective's index among the feeds, its name and its recent (throughput per Ready
/// replica, value) minutes.
type CeilingPairs = (usize, String, VecDeque<(f64, f64)>);

/// The signal feeding the controller's `i`th objective.
fn slo_signal(controller: &Controller, i: usize) -> Signal {
    match controller {
        Controller::Engine { feeds, .. } => feeds.get(i).map_or(Signal::LatencyP99, |f| f.signal),
        _ => Signal::LatencyP99,
    }
}

/// The offered load averaged over the minute before `at` seconds, as `rate(...[1m])` at `at`; none
/// before the window had a whole minute (the load is constant within each trace minute).
fn trailing_rate(load_rps: &[f64], at: f64) -> Option<f64> {
    if at < 60.0 {
        return None;
    }
    let from = at - 60.0;
    let first = (from / 60.0).floor() as usize;
    let share = 1.0 - (from / 60.0 - first as f64);
    let a = load_rps.get(first).copied()?;
    let b = load_rps.get(first + 1).copied().unwrap_or(a);
    Some(a * share + b * (1.0 - share))
}

fn placement(policy: &Policy, spot_healthy: bool, replicas: i32) -> Option<Split> {
    engine::split(policy, spot_healthy, replicas)
}

/// The rebalancer (`placement::rebalance`): while every desired replica is Ready, one pod of the pool
/// over its target is replaced by one in the pool under it.
fn rebalance(policy: &Policy, spot_healthy: bool, desired: i32, ready: i32, pods: &mut Vec<Pod>, ready_at: f64) {
    let Some(target) = placement(policy, spot_healthy, desired) else { return };
    if ready < desired || pods.len() as i32 != desired {
        return;
    }
    let spot = pods.iter().filter(|p| p.spot).count() as i32;
    let on_demand = pods.len() as i32 - spot;
    let move_to_spot = if spot > target.spot && on_demand < target.on_demand {
        false
    } else if on_demand > target.on_demand && spot < target.spot {
        true
    } else {
        return;
    };
    // Evict the newest pod of the pool that is over; the ReplicaSet's replacement goes to the other.
    if let Some(i) = pods
        .iter()
        .enumerate()
        .filter(|(_, p)| p.spot != move_to_spot)
        .max_by(|a, b| a.1.ready_at.total_cmp(&b.1.ready_at))
        .map(|(i, _)| i)
    {
        pods.swap_remove(i);
        pods.push(Pod { spot: move_to_spot, ready_at });
    }
}

/// Scale-in, as the ReplicaSet ranks pods: not-Ready first, then the pool over its target (Trimtab's
/// pod-deletion-cost), then the newest.
fn remove_one(pods: &mut Vec<Pod>, target: Option<Split>, now: f64) {
    let spot = pods.iter().filter(|p| p.spot).count() as i32;
    let over_is_spot = target.is_some_and(|s| spot > s.spot);
    let rank = |p: &Pod| (p.ready_at <= now, p.spot != over_is_spot);
    let victim = pods
        .iter()
        .enumerate()
        .min_by(|(_, a), (_, b)| rank(a).cmp(&rank(b)).then(b.ready_at.total_cmp(&a.ready_at)))
        .map(|(i, _)| i);
    if let Some(i) = victim {
        pods.remove(i);
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}
