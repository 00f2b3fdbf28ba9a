//! The Events a round publishes, as data: the caller sends them.

use super::conditions::{self, Flip};
use crate::api::Reason;

/// An Event's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

/// What an Event says Trimtab did. It becomes the Event's action, which is what tells one
/// occurrence from another: Events with the same action are folded into one series (see
/// `controller/events.rs`), so each step, would-be step, condition flip and evicted pod is its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Act {
    /// Scaled the target (or failed to: the reason says which).
    Scale { from: i32, to: i32 },
    /// In DryRun, the scale a real round would have made.
    WouldScale { from: i32, to: i32 },
    /// Evicted a pod of the target.
    Evict { pod: String },
    /// Set a condition to a new status.
    Set { condition: &'static str, status: bool },
}

/// One Event to publish on the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedEvent {
    pub type_: EventType,
    pub reason: Reason,
    pub act: Act,
    pub note: String,
}

impl PlannedEvent {
    pub fn normal(reason: Reason, act: Act, note: String) -> PlannedEvent {
        PlannedEvent { type_: EventType::Normal, reason, act, note }
    }

    pub fn warning(reason: Reason, act: Act, note: String) -> PlannedEvent {
        PlannedEvent { type_: EventType::Warning, reason, act, note }
    }
}

/// One Event per condition flip; a new policy's conditions appearing is not news, unless they are
/// bad news.
pub fn flip_events(flips: &[Flip]) -> impl Iterator<Item = PlannedEvent> + '_ {
    flips.iter().filter_map(|flip| {
        let warning = conditions::is_warning(flip);
        if flip.appeared && !warning {
            return None;
        }
        let type_ = if warning { EventType::Warning } else { EventType::Normal };
        let state = if flip.status { "True" } else { "False" };
        let act = Act::Set { condition: flip.type_, status: flip.status };
        Some(PlannedEvent { type_, reason: flip.reason, act, note: format!("{} is {state}: {}", flip.type_, flip.message) })
    })
}
