//! Placement: each pod on the right pool. A mutating webhook places new pods (assign, mutate); the
//! reconciler watches spot health and evicts to correct drift (spot_health, rebalance).

pub mod assign;
pub mod certs;
pub mod mutate;
pub mod rebalance;
pub mod spot_health;
pub mod tls;
pub mod webhook;

use jiff::Timestamp;

/// Which of a policy's pools a pod is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PoolOf {
    Spot,
    OnDemand,
    /// Not (yet) on either pool: unscheduled and unlabelled, or on other nodes.
    #[default]
    Neither,
}

/// What placement needs to know about one pod of a workload.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PodView {
    pub name: String,
    pub pool: PoolOf,
    pub node: Option<String>,
    pub ready: bool,
    pub deleting: bool,
    /// When the scheduler last said it cannot place the pod, while that is still so.
    pub unschedulable_since: Option<Timestamp>,
    pub deletion_cost: Option<i32>,
    /// The webhook placed it (it carries the `trimtab.dev/pool` label).
    pub labelled: bool,
    pub created: Option<Timestamp>,
}
