//! Someone else writes the target's replicas (R12): a person's `kubectl scale`, or a GitOps tool
//! that resets spec.replicas to what Git says at every sync. HPA simply writes again on its next
//! round, and two controllers that each do that flap the workload as fast as both loop. Trimtab
//! instead holds: once it sees spec.replicas owned by another field manager after its own write,
//! it waits a whole window before it writes again, so it re-asserts at most once per window
//! however often the other writer writes, and a person's deliberate change stands for that long.
//!
//! The facts come in as data (who owns spec.replicas, from the target's managedFields; when
//! Trimtab last wrote it and what it saw before, from status), so this is as pure as the decision.

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::policy::Policy;
use crate::api::ExternalWrite;

/// The shortest hold, whatever the policy's scale-down stabilization window: a policy without one
/// (0 s) would otherwise answer every write at once, which is the fight this prevents.
pub const MIN_HOLD_SECONDS: i64 = 60;

/// Who last set the target's spec.replicas, per its managedFields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicasOwner {
    /// Trimtab's own field manager.
    Trimtab,
    /// Other field managers (comma-separated when several share the field), and when the newest
    /// of them wrote it (managedFields' `time`; none when the API server did not say).
    Other { managers: String, written: Option<Timestamp> },
    /// No field manager owns it (a target without managedFields): no writer to speak of.
    Unknown,
}

/// What to do about other writers this round.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Arbitration {
    /// What status keeps: the other manager's write while it matters, none otherwise.
    pub external_write: Option<ExternalWrite>,
    /// No write of the target before this time.
    pub hold_until: Option<Timestamp>,
    /// For the ExternalWriteDetected condition, when there is an external write.
    pub message: Option<String>,
}

/// How long Trimtab holds after another manager's write, and watches after re-asserting: the
/// policy's scale-down stabilization window (the time it already takes to trust a lower count), at
/// least [`MIN_HOLD_SECONDS`].
pub fn hold_window(policy: &Policy) -> SignedDuration {
    SignedDuration::from_secs(policy.scale_down.stabilization_window_seconds.max(MIN_HOLD_SECONDS))
}

/// This round's answer to other writers. `previous` is status' `externalWrite`, `last_scale` its
/// `lastScaleTime` (Trimtab's newest write), `replicas` the target's count now.
///
/// Another manager owning spec.replicas counts only after Trimtab has written it: before, that
/// manager is whoever created the target, and Trimtab takes over as HPA does. The hold starts when
/// Trimtab first sees a foreign write after its own, and further foreign writes before Trimtab
/// writes again do not extend it (else a writer every 10 s would hold Trimtab for ever). After
/// re-asserting, Trimtab keeps the record for one more window, so a writer that comes back within it
/// keeps the condition True instead of flipping it (and sending an Event) every cycle.
pub fn arbitrate(
    policy: &Policy,
    previous: Option<&ExternalWrite>,
    last_scale: Option<Timestamp>,
    owner: &ReplicasOwner,
    replicas: i32,
    now: Timestamp,
) -> Arbitration {
    let window = hold_window(policy);
    let seconds = window.as_secs();
    match (owner, last_scale) {
        // A write before Trimtab's own newest is no answer to it: that is the target's creator
        // still owning a field Trimtab's write never reached (it recorded a scale, then crashed
        // before writing it: R7).
        (ReplicasOwner::Other { managers: manager, written }, Some(last_scale))
            if written.is_none_or(|written| written >= last_scale) =>
        {
            let since = match previous {
                // The same hold: no write of Trimtab's since it began.
                Some(p) if p.since.0 >= last_scale => p.since.clone(),
                _ => Time(now),
            };
            let hold_until = since.0 + window;
            let message = if now < hold_until {
                format!(
                    "spec.replicas was set to {replicas} by {manager}, not Trimtab: holding until {hold_until} \
                     (at most one write per {seconds}s window); remove spec.replicas from what {manager} applies to stop the fight"
                )
            } else {
                format!(
                    "spec.replicas was set to {replicas} by {manager}, not Trimtab; held {seconds}s since {}: \
                     Trimtab writes again when its decision differs",
                    since.0
                )
            };
            let external_write = ExternalWrite { manager: manager.clone(), replicas, since };
            Arbitration {
                external_write: Some(external_write),
                hold_until: (now < hold_until).then_some(hold_until),
                message: Some(message),
            }
        }
        _ => match (previous, last_scale) {
            // Re-asserted after a foreign write: watch for one window whether it comes back.
            (Some(p), Some(last_scale)) if p.since.0 < last_scale && now < last_scale + window => {
                let message = format!(
                    "Trimtab wrote spec.replicas again at {last_scale}, {seconds}s after {} set it to {}; watching until {}",
                    p.manager,
                    p.replicas,
                    last_scale + window
                );
                Arbitration { external_write: Some(p.clone()), hold_until: None, message: Some(message) }
            }
            _ => Arbitration { external_write: None, hold_until: None, message: None },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(scale_down_window: i64) -> Policy {
        let spec = serde_json::from_value(serde_json::json!({
            "targetRef": {"kind": "Deployment", "name": "web"},
            "minReplicas": 1, "maxReplicas": 20,
            "objectives": [{"name": "p99", "kind": "Ceiling", "query": "p99", "target": "300m"}],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": scale_down_window}}
        }))
        .expect("a spec");
        Policy::from_spec(&spec).expect("a valid spec")
    }

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + second).expect("timestamp")
    }

    fn other(manager: &str) -> ReplicasOwner {
        ReplicasOwner::Other { managers: manager.into(), written: None }
    }

    #[test]
    fn a_scale_recorded_but_never_written_is_no_external_write_of_whoever_created_the_target() {
        let policy = policy(300);
        // Trimtab recorded a scale at 100 and crashed before writing it: spec.replicas is still
        // owned by the creator, who wrote it at 10.
        let creator = ReplicasOwner::Other { managers: "kubectl-create".into(), written: Some(at(10)) };
        let answer = arbitrate(&policy, None, Some(at(100)), &creator, 2, at(110));
        assert_eq!(answer, Arbitration::default(), "Trimtab writes as usual");
        let later = ReplicasOwner::Other { managers: "kubectl".into(), written: Some(at(105)) };
        let answer = arbitrate(&policy, None, Some(at(100)), &later, 2, at(110));
        assert!(answer.hold_until.is_some(), "a write after Trimtab's is one: {answer:?}");
    }

    /// Simulates a writer that resets replicas to 3 every `every` seconds while the policy wants 5,
    /// round by round (every 5 s) for `duration`, and returns the times Trimtab wrote.
    fn fight(policy: &Policy, every: i64, duration: i64) -> Vec<i64> {
        let (mut replicas, mut owner) = (5, ReplicasOwner::Trimtab);
        let mut last_scale = Some(at(0));
        let mut state: Option<ExternalWrite> = None;
        let mut writes = Vec::new();
        for second in (1..=duration).filter(|s| s % 5 == 0) {
            if second % every == 0 {
                (replicas, owner) = (3, other("gitops-fighter"));
            }
            let now = at(second);
            let verdict = arbitrate(policy, state.as_ref(), last_scale, &owner, replicas, now);
            state = verdict.external_write.clone();
            if verdict.hold_until.is_none() && replicas != 5 {
                (replicas, owner, last_scale) = (5, ReplicasOwner::Trimtab, Some(now));
                writes.push(second);
            }
        }
        writes
    }

    #[test]
    fn a_writer_resetting_replicas_every_ten_seconds_gets_at_most_one_answer_per_window() {
        let policy = policy(60);
        let writes = fight(&policy, 10, 180);
        assert!(writes.len() <= 180 / 60 + 1, "writes at {writes:?}");
        assert!(writes.windows(2).all(|w| w[1] - w[0] >= 60), "two writes inside a window: {writes:?}");
        assert!(!writes.is_empty(), "Trimtab re-asserts after the window");
    }

    #[test]
    fn a_policy_without_a_scale_down_window_still_holds_a_minute() {
        let writes = fight(&policy(0), 10, 180);
        assert!(writes.windows(2).all(|w| w[1] - w[0] >= MIN_HOLD_SECONDS), "{writes:?}");
    }

    #[test]
    fn a_single_kubectl_scale_is_held_for_the_window_then_reasserted_and_watched_for_one_more() {
        let policy = policy(300);
        let held = arbitrate(&policy, None, Some(at(0)), &other("kubectl"), 8, at(100));
        assert_eq!(held.hold_until, Some(at(400)));
        let state = held.external_write.clone().expect("recorded");
        assert_eq!((state.manager.as_str(), state.replicas, state.since.0), ("kubectl", 8, at(100)));
        assert!(held.message.as_deref().is_some_and(|m| m.contains("kubectl")), "{:?}", held.message);
        // Later rounds keep the same hold.
        let still = arbitrate(&policy, Some(&state), Some(at(0)), &other("kubectl"), 8, at(390));
        assert_eq!(still.hold_until, Some(at(400)));
        let due = arbitrate(&policy, Some(&state), Some(at(0)), &other("kubectl"), 8, at(400));
        assert_eq!(due.hold_until, None, "the window has passed");
        // Trimtab wrote at 400: the record stays for one window, then goes.
        let watching = arbitrate(&policy, Some(&state), Some(at(400)), &ReplicasOwner::Trimtab, 5, at(405));
        assert_eq!(watching.external_write.as_ref(), Some(&state));
        assert!(watching.message.is_some());
        let gone = arbitrate(&policy, Some(&state), Some(at(400)), &ReplicasOwner::Trimtab, 5, at(700));
        assert_eq!(gone, Arbitration { external_write: None, hold_until: None, message: None });
    }

    #[test]
    fn whoever_created_the_target_is_no_external_writer_before_trimtab_has_written() {
        let verdict = arbitrate(&policy(300), None, None, &other("kubectl-client-side-apply"), 2, at(0));
        assert_eq!(verdict, Arbitration { external_write: None, hold_until: None, message: None });
        let unknown = arbitrate(&policy(300), None, Some(at(0)), &ReplicasOwner::Unknown, 2, at(10));
        assert_eq!(unknown.external_write, None);
    }
}
