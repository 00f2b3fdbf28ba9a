//! Keeping `status.history`: what the next decisions need, and no more.

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::policy::Policy;
use crate::api::{History, Recommendation, ScaleEvent};

/// Appends this round's recommendation and applied change (if any), and drops what no stabilization
/// window or rate-limit period can see any more.
pub fn remember(history: &History, policy: &Policy, now: Timestamp, recommendation: i32, applied_change: i32) -> History {
    let window = policy.scale_up.stabilization_window_seconds.max(policy.scale_down.stabilization_window_seconds);
    let period = policy.scale_up.policies.iter().chain(&policy.scale_down.policies).map(|p| p.period_seconds).max().unwrap_or(0);
    let recommendations_cutoff = now - SignedDuration::from_secs(window);
    // Twice the longest period: HPA overwrites an event only once it is older than its direction's
    // longest period, so which one it overwrites can depend on events up to one period older.
    let events_cutoff = now - SignedDuration::from_secs(2 * period);
    let mut recommendations: Vec<Recommendation> =
        history.recommendations.iter().filter(|r| r.time.0 > recommendations_cutoff).cloned().collect();
    recommendations.push(Recommendation { time: Time(now), replicas: recommendation });
    let mut scale_events: Vec<ScaleEvent> = history.scale_events.iter().filter(|e| e.time.0 > events_cutoff).cloned().collect();
    if applied_change != 0 {
        scale_events.push(ScaleEvent { time: Time(now), change: applied_change });
    }
    History { recommendations, scale_events }
}
