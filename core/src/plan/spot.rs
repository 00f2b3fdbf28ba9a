//! Spot health for a round, and the doomed spot pods to replace, from what was observed.

use jiff::Timestamp;

use super::Spot;
use crate::api::ScalingPolicyStatus;
use crate::engine::{Policy, Split};
use crate::placement::spot_health::{self, Previous, SpotNode};
use crate::placement::{PodView, PoolOf};

/// The workload's pods and the spot nodes, when the policy places replicas.
#[derive(Debug, Clone, Default)]
pub struct PlacementObserved {
    pub pods: Vec<PodView>,
    pub spot_nodes: Vec<SpotNode>,
}

/// Spot health and the pods actually on each pool, when the policy places replicas.
#[derive(Debug, Clone, Default)]
pub struct SpotReport {
    pub healthy: bool,
    pub available_since: Option<Timestamp>,
    pub problem: Option<String>,
    pub actual: Option<Split>,
}

/// This round's spot report and the doomed spot pods.
pub fn report(rules: &Policy, previous: &ScalingPolicyStatus, spot: &Spot, now: Timestamp) -> (SpotReport, Vec<String>) {
    let observed = match spot {
        Spot::Known(healthy) => return (SpotReport { healthy: *healthy, ..SpotReport::default() }, Vec::new()),
        Spot::Observed(observed) => observed,
    };
    let (Some(placement), Some(observed)) = (&rules.placement, observed) else {
        return (SpotReport { healthy: true, ..SpotReport::default() }, Vec::new());
    };
    let before = Previous {
        healthy: previous.placement.as_ref().is_none_or(|p| p.spot_healthy),
        available_since: previous.placement.as_ref().and_then(|p| p.spot_available_since.as_ref().map(|t| t.0)),
    };
    let spot_pods: Vec<PodView> = observed.pods.iter().filter(|p| p.pool == PoolOf::Spot).cloned().collect();
    let health =
        spot_health::assess(&before, &observed.spot_nodes, &spot_pods, placement.fallback_after, placement.return_after, now);
    let count = |pool| observed.pods.iter().filter(|p| p.pool == pool && !p.deleting).count() as i32;
    let actual = Split { spot: count(PoolOf::Spot), on_demand: count(PoolOf::OnDemand) };
    let report = SpotReport {
        healthy: health.healthy,
        available_since: health.available_since,
        problem: health.problem,
        actual: Some(actual),
    };
    (report, health.doomed)
}
