//! The pure placement rules: which pool a new pod goes to (assign), whether spot is healthy
//! (spot_health), and which pods to evict to correct drift (rebalance). The operator's
//! `placement` module re-exports them beside the webhook.

pub mod assign;
pub mod rebalance;
pub mod spot_health;

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
