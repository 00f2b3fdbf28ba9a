//! The oracle baseline: the physical limit a controller is measured against.
//!
//! With perfect foresight of the load, through the same service model, the oracle has in every
//! minute exactly the Ready replicas that keep the service-level objectives met at the highest
//! utilization the model allows for them: the smallest count (at least minReplicas) whose modelled
//! minute meets every objective that counts as a service-level objective (the Ceiling objectives;
//! every objective when the policy has none, as `anySloViolationMinutes` counts them). Its pods are
//! created `startupSeconds` before they are needed and paid for from creation, and it lets a pod go
//! the moment no minute within a pod's startup needs it: pods alive at a tick are the most any tick
//! of the next `startupSeconds` needs, which is the least any schedule can pay for. Nothing else
//! can be cheaper without breaking an objective, so `efficiency = oracle cost / run cost` is at most
//! about 1 (a run can undercut it only by breaking objectives, or by luck with spot interruptions,
//! which the oracle does not foresee: it is replayed through the same interruptions and fallback).

use super::model::Model;
use super::run::{SCHEDULE_TICK_SECONDS, violates};
use super::signals::{Feed, Traffic};
use crate::api::ObjectiveKind;

/// The oracle's replica count for every [`SCHEDULE_TICK_SECONDS`] tick of the window.
pub fn schedule(model: &Model, feeds: &[Feed], load_rps: &[f64], min_replicas: i32) -> Vec<i32> {
    let ticks_per_minute = (60 / SCHEDULE_TICK_SECONDS) as usize;
    let needed: Vec<i32> = load_rps
        .iter()
        .map(|load| replicas_needed(model, feeds, *load, min_replicas))
        .flat_map(|n| std::iter::repeat_n(n, ticks_per_minute))
        .collect();
    // A pod created at a tick is Ready this many ticks later (the simulator's ReplicaSet creates
    // pods on tick boundaries, Ready once `startupSeconds` have passed).
    let lead = (model.startup_seconds / SCHEDULE_TICK_SECONDS as f64).ceil() as usize;
    (0..needed.len()).map(|k| needed[k..(k + lead + 1).min(needed.len())].iter().copied().max().unwrap_or(min_replicas)).collect()
}

/// The fewest Ready replicas (at least `min_replicas`) with which a minute of `load` requests per
/// second meets every service-level objective of `feeds`, per the model. Objectives no count can
/// meet (a latency target under the base latency) ask for the count that serves the load without
/// errors, since more replicas would not help them.
pub fn replicas_needed(model: &Model, feeds: &[Feed], load: f64, min_replicas: i32) -> i32 {
    let ceilings = feeds.iter().any(|f| f.kind == ObjectiveKind::Ceiling);
    let slo: Vec<&Feed> = feeds.iter().filter(|f| !ceilings || f.kind == ObjectiveKind::Ceiling).collect();
    let capacity = model.service.capacity_per_replica;
    let meets = |n: i32| {
        let ready = f64::from(n);
        let mut minute = Traffic::default();
        minute.add(60.0, load, ready, capacity, model.service.evaluate(load, ready));
        slo.iter().all(|feed| !violates(feed, minute.signal(feed.signal, ready), ready))
    };
    let floor = min_replicas.max(0);
    if meets(floor) {
        return floor;
    }
    // Objectives only get easier with more replicas: double to a count that meets them, then bisect.
    let serves = ((load / capacity).ceil().min(f64::from(i32::MAX / 4)) as i32).max(floor);
    let mut high = serves.max(floor.saturating_add(1)).max(1);
    let limit = serves.saturating_mul(64).max(1024);
    while !meets(high) {
        if high >= limit {
            return serves;
        }
        high = high.saturating_mul(2);
    }
    let mut low = floor; // fails
    while high - low > 1 {
        let mid = low + (high - low) / 2;
        if meets(mid) { high = mid } else { low = mid }
    }
    high
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::signals::{Mapping, Signal};

    fn feed(name: &str, kind: ObjectiveKind, target: f64, signal: Signal) -> Feed {
        Feed { objective: name.into(), kind, target, signal, mapping: Mapping::Name }
    }

    fn slo() -> Vec<Feed> {
        vec![
            feed("p99-latency", ObjectiveKind::Ceiling, 1.0, Signal::LatencyP99),
            feed("error-rate", ObjectiveKind::Ceiling, 0.01, Signal::ErrorRate),
            feed("rps-per-replica", ObjectiveKind::AverageValue, 36.0, Signal::Rps),
        ]
    }

    #[test]
    fn the_oracle_runs_each_minute_at_the_highest_utilization_that_meets_the_latency_objective() {
        let model = Model::default();
        // With the defaults p99 reaches 1 s at about 80.5 % utilization: 1,000 rps needs 25 replicas
        // (80 %), not the 28 a 72 % throughput target would ask for, which is only a means.
        assert_eq!(replicas_needed(&model, &slo(), 1000.0, 2), 25);
        let p99 = model.service.evaluate(1000.0, 25.0).latency_quantile(0.99);
        assert!(p99 <= 1.0 && model.service.evaluate(1000.0, 24.0).latency_quantile(0.99) > 1.0, "{p99}");
    }

    #[test]
    fn the_oracle_never_goes_below_min_replicas_and_idles_there() {
        assert_eq!(replicas_needed(&Model::default(), &slo(), 0.0, 2), 2);
        assert_eq!(replicas_needed(&Model::default(), &slo(), 10.0, 3), 3);
    }

    #[test]
    fn a_policy_without_ceilings_is_held_to_its_throughput_target() {
        let feeds = vec![feed("rps", ObjectiveKind::AverageValue, 35.0, Signal::Rps)];
        assert_eq!(replicas_needed(&Model::default(), &feeds, 700.0, 1), 20);
    }

    #[test]
    fn an_unreachable_latency_target_asks_for_the_count_that_serves_without_errors() {
        let feeds = vec![feed("p99-latency", ObjectiveKind::Ceiling, 0.01, Signal::LatencyP99)];
        assert_eq!(replicas_needed(&Model::default(), &feeds, 500.0, 1), 10);
    }

    #[test]
    fn the_oracle_starts_pods_a_startup_ahead_and_lets_them_go_at_once() {
        // 45 s startup: three 15 s ticks ahead. Minute 1 needs more, so its pods exist from the
        // last three ticks of minute 0, and they go with the first tick of minute 2.
        let model = Model::default();
        let schedule = schedule(&model, &slo(), &[100.0, 1000.0, 100.0], 2);
        assert_eq!(schedule, [3, 25, 25, 25, 25, 25, 25, 25, 3, 3, 3, 3]);
    }
}
