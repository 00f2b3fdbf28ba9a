//! One round, planned: everything a round observed in, everything it will do out. Pure: no kube
//! client, no HTTP, no clock, no tokio. The operator (`controller::reconcile`), `trimtab decide` and
//! `trimtab simulate` all call [`plan`], so the three cannot drift apart.
//!
//! The plan holds the decision, why writes are held (DryRun, paused, another autoscaler, another
//! writer's hold), the scale write if any, the status this round leaves (with the scale event, and
//! the one without it for when the write fails), the conditions that flipped, the Events to publish
//! and the pods to evict. The caller only carries it out. `tests/pure_boundary.rs` keeps this tree
//! (and `engine`) free of I/O.

pub mod conditions;
mod events;
mod spot;
pub mod status;

use jiff::Timestamp;

pub use events::{Act, EventType, PlannedEvent, flip_events};
pub use spot::{PlacementObserved, SpotReport};
pub use status::Hold;

use crate::api::{Mode, Reason, ScalingPolicyStatus};
use crate::engine::{self, Current, Decision, LoadHistory, Observations, Policy, Pricing, ReplicasOwner};
use crate::placement::rebalance;
use conditions::Flip;
use status::Round;

/// What every round starts from, whether it can decide or not.
#[derive(Debug, Clone, Copy)]
pub struct RoundInput<'a> {
    /// The one clock read of the round.
    pub now: Timestamp,
    /// The policy's metadata.generation.
    pub generation: Option<i64>,
    /// The status the round starts from.
    pub previous: &'a ScalingPolicyStatus,
    /// The newest round that recorded a recommendation, as this process remembers it (see
    /// `engine::recall`); none after a restart.
    pub last_round: Option<Timestamp>,
}

/// What the cluster and Prometheus said this round, for a valid policy.
pub struct Observation<'a> {
    pub rules: &'a Policy,
    pub target: Target<'a>,
    pub spot: Spot<'a>,
    pub pricing: Pricing,
    /// Each objective's sample.
    pub samples: &'a Observations,
    /// What the range queries of `spec.forecast` returned; empty without it.
    pub load: &'a LoadHistory,
    /// Another autoscaler on the same target, described for a message.
    pub conflict: Option<String>,
    /// The `trimtab.dev/paused: "true"` annotation.
    pub paused: bool,
}

/// The target as observed.
pub struct Target<'a> {
    /// spec.targetRef.name, for messages.
    pub name: &'a str,
    /// spec.replicas (its scale subresource's).
    pub replicas: i32,
    /// Ready replicas; unknown counts as all of them.
    pub ready_replicas: Option<i32>,
    /// A Deployment deleted and created again under the same name is another one.
    pub uid: Option<String>,
    /// Who last set spec.replicas.
    pub replicas_owner: ReplicasOwner,
}

/// Where spot health comes from.
pub enum Spot<'a> {
    /// The operator: the workload's pods and the spot nodes (when the policy places replicas); spot
    /// health is assessed from them and the previous status, and doomed pods are replaced.
    Observed(Option<&'a PlacementObserved>),
    /// Given: `trimtab decide`'s `spotHealthy`, the simulator's spot pool. Nothing to evict.
    Known(bool),
}

/// Everything one round will do.
#[derive(Debug, Clone)]
pub struct RoundPlan {
    pub decision: Decision,
    pub hold: Hold,
    /// The target was deleted and created again since the last round: a new history starts (R14).
    pub recreated: bool,
    /// The status to write (with the scale event, when there is a scale write: it is written first,
    /// R7) and the conditions it flipped.
    pub status: ScalingPolicyStatus,
    pub flips: Vec<Flip>,
    /// Published with the status: what a real scale would have announced (DryRun).
    pub would_scale: Option<PlannedEvent>,
    pub scale: Option<ScaleWrite>,
    /// Pods to evict, after the status (and scale) writes.
    pub evictions: Vec<Eviction>,
}

/// The scale write of a round, and what follows it either way.
#[derive(Debug, Clone)]
pub struct ScaleWrite {
    pub from: i32,
    pub to: i32,
    /// Published once the write succeeded.
    pub scaled: PlannedEvent,
    /// The status when the write failed: the round without its scale event.
    pub unscaled: ScalingPolicyStatus,
    /// The Warning's note when the write failed, before ": {error}".
    pub failed: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eviction {
    pub pod: String,
    /// The pod is on reclaimed spot capacity (else it moves the split).
    pub doomed: bool,
}

impl RoundPlan {
    /// The Events to publish with the status write, in order.
    pub fn events(&self) -> Vec<PlannedEvent> {
        self.would_scale.iter().cloned().chain(flip_events(&self.flips)).collect()
    }
}

/// A round that cannot decide (the policy is invalid, its target is missing): Ready=False with
/// `reason`, and the conditions that flipped.
pub fn blocked(input: &RoundInput, reason: Reason, message: &str) -> (ScalingPolicyStatus, Vec<Flip>) {
    status::blocked(input.previous, input.generation, input.now, reason, message)
}

/// The status when the planned scale write was refused: the round without its scale event, and
/// Ready/ScalingActive False (`RoundFailed`, `message`). Flips are counted from the status before
/// the round, not from the intent written just before the scale: a write refused on every retry
/// then sends its Warning once, rather than a Ready=True and a Ready=False Event per retry.
pub fn scale_refused(
    input: &RoundInput,
    scale: &ScaleWrite,
    planned: &[Flip],
    message: &str,
) -> (ScalingPolicyStatus, Vec<Flip>) {
    let gated = [conditions::READY, conditions::SCALING_ACTIVE];
    let mut base = scale.unscaled.clone();
    base.conditions.retain(|c| !gated.contains(&c.type_.as_str()));
    base.conditions.extend(input.previous.conditions.iter().filter(|c| gated.contains(&c.type_.as_str())).cloned());
    let (status, refused) = status::blocked(&base, input.generation, input.now, Reason::RoundFailed, message);
    let flips = planned.iter().filter(|f| !gated.contains(&f.type_)).cloned().chain(refused).collect();
    (status, flips)
}

/// Plans one round of a valid policy from what it observed.
pub fn plan(input: &RoundInput, observed: &Observation) -> RoundPlan {
    let previous = input.previous;
    let (rules, target, now) = (observed.rules, &observed.target, input.now);
    let current_replicas = target.replicas;
    // A target deleted and created again under the same name is a new workload (R14): the old one's
    // recommendations, scale events and writers must not hold or pace it. `previous` stays what
    // status holds, so the write that forgets them is not skipped.
    let recreated = previous.target_uid.is_some() && previous.target_uid != target.uid;
    let base = if recreated { status::for_new_target(previous) } else { previous.clone() };
    let last_round = if recreated { None } else { input.last_round };
    let (spot, doomed) = spot::report(rules, previous, &observed.spot, now);
    let current = Current {
        replicas: current_replicas,
        ready_replicas: target.ready_replicas,
        consecutive_failures: previous.consecutive_failures,
        spot_healthy: spot.healthy,
        pricing: observed.pricing,
    };

    let decision = engine::decide_with(
        rules,
        observed.samples,
        &current,
        &engine::recall(&base.history, last_round, now),
        now,
        observed.load,
    );

    // Another field manager's write of the replicas is answered at most once per window.
    let external = engine::arbitrate(
        rules,
        base.external_write.as_ref(),
        base.last_scale_time.as_ref().map(|t| t.0),
        &target.replicas_owner,
        current_replicas,
        now,
    );
    let hold = if let Some(message) = &observed.conflict {
        Hold::Conflict(message.clone())
    } else if observed.paused {
        Hold::Paused
    } else if rules.mode == Mode::DryRun {
        Hold::DryRun
    } else if let Some(until) = external.hold_until {
        Hold::External(until)
    } else {
        Hold::None
    };
    let change = decision.desired_replicas - current_replicas;
    let scaling = hold == Hold::None && change != 0;
    let message = decision.reasons.first().map(|s| s.message.as_str()).unwrap_or_default();
    let name = target.name;
    // The status of this round, with or without its scale event.
    let reported = |applied_change: i32| {
        let history = engine::remember(&base.history, last_round, rules, now, decision.recommendation, applied_change);
        let round = Round {
            generation: input.generation,
            now,
            current: current_replicas,
            decision: &decision,
            hold: &hold,
            spot: spot.clone(),
            has_budget: rules.budget.is_some(),
            scaled: applied_change != 0,
            external: &external,
        };
        let (mut status, flips) = status::decided(&base, &round, history);
        status.target_uid = target.uid.clone();
        (status, flips)
    };

    let desired = decision.desired_replicas;
    let (status, flips) = reported(if scaling { change } else { 0 });
    let scale = scaling.then(|| {
        let mut note = format!("Scaled {name} from {current_replicas} to {desired}: {message}");
        if let Some(write) = &external.external_write {
            note.push_str(&format!(" (re-asserted after {} set {})", write.manager, write.replicas));
        }
        ScaleWrite {
            from: current_replicas,
            to: desired,
            scaled: PlannedEvent::normal(decision.reason, Act::Scale { from: current_replicas, to: desired }, note),
            unscaled: reported(0).0,
            failed: format!("Failed to scale {name} to {desired}"),
        }
    });
    // What a real scale would have announced, once per new would-be count (the count is never
    // applied, so announcing every round would repeat it every interval).
    let would_scale = (hold == Hold::DryRun && change != 0 && previous.desired_replicas != Some(desired)).then(|| {
        let note = format!("Would scale {name} from {current_replicas} to {desired} (mode: DryRun): {message}");
        PlannedEvent::normal(decision.reason, Act::WouldScale { from: current_replicas, to: desired }, note)
    });
    // Rebalance, after status says where new pods go (the webhook reads it): replace doomed spot
    // pods, then move one pod per round towards the target split.
    let evictions = match (&hold, &observed.spot, decision.placement) {
        (Hold::None, Spot::Observed(Some(placement)), Some(split)) => {
            rebalance::evictions(split, &placement.pods, &doomed, desired, now)
                .into_iter()
                .map(|pod| Eviction { doomed: doomed.contains(&pod), pod })
                .collect()
        }
        _ => Vec::new(),
    };
    RoundPlan { decision, hold, recreated, status, flips, would_scale, scale, evictions }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Sample;
    use crate::placement::spot_health::SpotNode;
    use crate::placement::{PodView, PoolOf};

    fn rules(extra: serde_json::Value) -> Policy {
        let mut spec = serde_json::json!({
            "targetRef": {"kind": "Deployment", "name": "web"},
            "minReplicas": 1, "maxReplicas": 20,
            "objectives": [{"name": "rps", "kind": "AverageValue", "query": "q", "target": "50"}]
        });
        if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
            spec.extend(extra.clone());
        }
        Policy::from_spec(&serde_json::from_value(spec).expect("a spec")).expect("a valid spec")
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + seconds).expect("timestamp")
    }

    /// 400 rps on 4 replicas of a 50-per-replica objective: 8 wanted.
    fn round(rules: &Policy, previous: &ScalingPolicyStatus, spot: Spot, paused: bool) -> RoundPlan {
        let samples: Observations = [("rps".to_owned(), Sample::Value(400.0))].into_iter().collect();
        let load = LoadHistory::default();
        let observed = Observation {
            rules,
            target: Target {
                name: "web",
                replicas: 4,
                ready_replicas: Some(4),
                uid: Some("t1".into()),
                replicas_owner: ReplicasOwner::Trimtab,
            },
            spot,
            pricing: Pricing::default(),
            samples: &samples,
            load: &load,
            conflict: None,
            paused,
        };
        plan(&RoundInput { now: at(100), generation: Some(1), previous, last_round: None }, &observed)
    }

    #[test]
    fn a_scale_is_planned_with_its_event_in_status_and_a_fallback_status_without_it() {
        let plan = round(&rules(serde_json::json!({})), &ScalingPolicyStatus::default(), Spot::Known(true), false);
        let scale = plan.scale.expect("a scale write");
        assert_eq!((scale.from, scale.to), (4, 8));
        assert_eq!(plan.status.last_scale_time.map(|t| t.0), Some(at(100)), "the intent is written first (R7)");
        assert_eq!(plan.status.history.scale_events.len(), 1);
        assert_eq!(scale.unscaled.last_scale_time, None, "a failed write takes the event back out");
        assert!(scale.unscaled.history.scale_events.is_empty());
        assert!(scale.scaled.note.starts_with("Scaled web from 4 to 8: "), "{}", scale.scaled.note);
        assert_eq!(scale.failed, "Failed to scale web to 8");
        assert_eq!(plan.status.target_uid.as_deref(), Some("t1"));
    }

    #[test]
    fn a_scale_write_refused_on_every_retry_says_ready_false_once_and_keeps_no_scale_event() {
        let rules = rules(serde_json::json!({}));
        let ready = |status: &ScalingPolicyStatus| {
            status.conditions.iter().find(|c| c.type_ == conditions::READY).map(|c| (c.status.clone(), c.reason.clone()))
        };
        let mut previous = ScalingPolicyStatus::default();
        let mut warnings = 0;
        for retry in 0..3 {
            let plan = round(&rules, &previous, Spot::Known(true), false);
            let scale = plan.scale.expect("the step is planned again");
            let (refused, flips) = scale_refused(
                &RoundInput { now: at(100), generation: Some(1), previous: &previous, last_round: None },
                &scale,
                &plan.flips,
                "this round failed: 403",
            );
            assert_eq!(ready(&refused), Some(("False".into(), "RoundFailed".into())), "retry {retry}");
            assert!(refused.history.scale_events.is_empty() && refused.last_scale_time.is_none());
            let events: Vec<_> = flip_events(&flips).collect();
            assert!(events.iter().all(|e| e.type_ == EventType::Warning), "no Ready=True in between: {events:?}");
            warnings += events.iter().filter(|e| e.note.starts_with("Ready is False")).count();
            previous = refused;
        }
        assert_eq!(warnings, 1, "one Warning for a write refused three times");
    }

    #[test]
    fn a_dry_run_plans_no_write_and_announces_each_new_would_be_count_once() {
        let rules = rules(serde_json::json!({"mode": "DryRun"}));
        let first = round(&rules, &ScalingPolicyStatus::default(), Spot::Known(true), false);
        assert_eq!(first.hold, Hold::DryRun);
        assert!(first.scale.is_none());
        let note = first.would_scale.clone().expect("announced").note;
        assert!(note.starts_with("Would scale web from 4 to 8 (mode: DryRun): "), "{note}");
        assert_eq!(first.events().first().map(|e| e.note.as_str()), Some(note.as_str()));
        let again = round(&rules, &first.status, Spot::Known(true), false);
        assert!(again.would_scale.is_none(), "the same would-be count is not announced again");
    }

    #[test]
    fn doomed_spot_pods_are_evicted_only_while_writes_go_through() {
        let rules = rules(serde_json::json!({"placement": {"spotPool": "spot", "onDemandPool": "od", "spotPercentage": 50}}));
        let pod = |name: &str, pool, node: &str| PodView {
            name: name.into(),
            pool,
            node: Some(node.into()),
            ready: true,
            labelled: true,
            ..PodView::default()
        };
        let observed = PlacementObserved {
            pods: vec![pod("web-1", PoolOf::Spot, "spot-1"), pod("web-2", PoolOf::OnDemand, "od-1")],
            spot_nodes: vec![SpotNode { name: "spot-1".into(), interrupted: true }],
        };
        let plan = round(&rules, &ScalingPolicyStatus::default(), Spot::Observed(Some(&observed)), false);
        assert_eq!(plan.evictions, [Eviction { pod: "web-1".into(), doomed: true }]);
        assert!(!plan.decision.reasons.is_empty());
        let placement = plan.status.placement.expect("placement status");
        assert!(!placement.spot_healthy, "the interruption taint loses spot");
        assert_eq!((placement.actual_spot, placement.actual_on_demand), (1, 1));
        let paused = round(&rules, &ScalingPolicyStatus::default(), Spot::Observed(Some(&observed)), true);
        assert_eq!(paused.hold, Hold::Paused);
        assert!(paused.evictions.is_empty() && paused.scale.is_none());
    }
}
