//! Whether the spot pool is usable for a workload right now. Pure.
//!
//! Spot is lost when a spot node carries one of the pool's interruption taints, when no spot node is
//! left, or when one of the workload's spot pods has been unschedulable longer than `fallbackAfter`.
//! It is back once none of that has been true for `returnAfter`.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::PodView;

#[derive(Debug, Clone, PartialEq)]
pub struct SpotNode {
    pub name: String,
    /// The node carries one of the pool's interruption taints.
    pub interrupted: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SpotHealth {
    pub healthy: bool,
    /// Since when spot has looked usable, while it is not yet trusted again.
    pub available_since: Option<Timestamp>,
    /// Why spot is lost, when it is.
    pub problem: Option<String>,
    /// Spot pods to replace now: on interrupted nodes, or stuck unschedulable.
    pub doomed: Vec<String>,
}

pub struct Previous {
    pub healthy: bool,
    pub available_since: Option<Timestamp>,
}

pub fn assess(
    previous: &Previous,
    nodes: &[SpotNode],
    spot_pods: &[PodView],
    fallback_after: Duration,
    return_after: Duration,
    now: Timestamp,
) -> SpotHealth {
    let fallback_after = SignedDuration::try_from(fallback_after).unwrap_or(SignedDuration::MAX);
    let return_after = SignedDuration::try_from(return_after).unwrap_or(SignedDuration::MAX);
    let interrupted: Vec<&SpotNode> = nodes.iter().filter(|n| n.interrupted).collect();
    let stuck: Vec<&PodView> = spot_pods
        .iter()
        .filter(|p| p.unschedulable_since.is_some_and(|since| now.duration_since(since) >= fallback_after))
        .collect();
    // On a reclaimed node, or on a node that is gone: these pods will not come back by themselves.
    let mut doomed: Vec<String> = spot_pods
        .iter()
        .filter(|p| !p.deleting)
        .filter(|p| {
            p.node
                .as_ref()
                .is_some_and(|node| interrupted.iter().any(|n| &n.name == node) || !nodes.iter().any(|n| &n.name == node))
        })
        .map(|p| p.name.clone())
        .collect();
    doomed.extend(stuck.iter().map(|p| p.name.clone()));

    let problem = if let Some(node) = interrupted.first() {
        Some(format!("spot node {} is being reclaimed (interruption taint)", node.name))
    } else if nodes.is_empty() {
        Some("no spot node is left".to_owned())
    } else {
        stuck.first().map(|p| format!("spot pod {} has been unschedulable for more than {}", p.name, humanize(fallback_after)))
    };

    match problem {
        Some(problem) => SpotHealth { healthy: false, available_since: None, problem: Some(problem), doomed },
        None if previous.healthy => SpotHealth { healthy: true, available_since: None, problem: None, doomed },
        None => {
            let since = previous.available_since.unwrap_or(now);
            let healthy = now.duration_since(since) >= return_after;
            SpotHealth { healthy, available_since: (!healthy).then_some(since), problem: None, doomed }
        }
    }
}

fn humanize(duration: SignedDuration) -> String {
    format!("{}s", duration.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + seconds).expect("timestamp")
    }

    fn node(name: &str, interrupted: bool) -> SpotNode {
        SpotNode { name: name.into(), interrupted }
    }

    fn pod(name: &str, node: Option<&str>, unschedulable_since: Option<Timestamp>) -> PodView {
        PodView {
            name: name.into(),
            node: node.map(str::to_owned),
            ready: node.is_some(),
            unschedulable_since,
            ..PodView::default()
        }
    }

    const FALLBACK: Duration = Duration::from_secs(90);
    const RETURN: Duration = Duration::from_secs(600);
    const HEALTHY: Previous = Previous { healthy: true, available_since: None };

    #[test]
    fn a_spot_pod_unschedulable_longer_than_fallback_after_loses_spot() {
        let pods = [pod("web-1", None, Some(at(0)))];
        let nodes = [node("spot-1", false)];
        assert!(assess(&HEALTHY, &nodes, &pods, FALLBACK, RETURN, at(60)).healthy, "60 s is not yet 90 s");
        let lost = assess(&HEALTHY, &nodes, &pods, FALLBACK, RETURN, at(91));
        assert!(!lost.healthy);
        assert_eq!(lost.doomed, ["web-1"], "the stuck pod is replaced");
    }

    #[test]
    fn an_interruption_taint_loses_spot_and_dooms_the_pods_on_that_node() {
        let pods = [pod("web-1", Some("spot-1"), None), pod("web-2", Some("spot-2"), None)];
        let lost = assess(&HEALTHY, &[node("spot-1", true), node("spot-2", false)], &pods, FALLBACK, RETURN, at(0));
        assert!(!lost.healthy);
        assert_eq!(lost.doomed, ["web-1"]);
    }

    #[test]
    fn no_spot_node_left_loses_spot_at_once_and_dooms_the_pods_that_were_on_them() {
        let lost = assess(&HEALTHY, &[], &[pod("web-1", Some("spot-gone"), None)], FALLBACK, RETURN, at(0));
        assert!(!lost.healthy);
        assert_eq!(lost.doomed, ["web-1"]);
    }

    #[test]
    fn spot_comes_back_only_after_return_after_of_health() {
        let lost = Previous { healthy: false, available_since: None };
        let nodes = [node("spot-1", false)];
        let first = assess(&lost, &nodes, &[], FALLBACK, RETURN, at(0));
        assert!(!first.healthy);
        assert_eq!(first.available_since, Some(at(0)));
        let waiting = Previous { healthy: false, available_since: first.available_since };
        assert!(!assess(&waiting, &nodes, &[], FALLBACK, RETURN, at(599)).healthy);
        assert!(assess(&waiting, &nodes, &[], FALLBACK, RETURN, at(600)).healthy);
    }
}
