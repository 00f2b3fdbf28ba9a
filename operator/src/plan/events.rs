//! The Events a round publishes, as data: the caller sends them.

use super::conditions::{self, Flip};
use crate::api::Reason;

/// An Event's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

/// One Event to publish on the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedEvent {
    pub type_: EventType,
    pub reason: Reason,
    pub note: String,
}

impl PlannedEvent {
    pub fn normal(reason: Reason, note: String) -> PlannedEvent {
        PlannedEvent { type_: EventType::Normal, reason, note }
    }

    pub fn warning(reason: Reason, note: String) -> PlannedEvent {
        PlannedEvent { type_: EventType::Warning, reason, note }
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
        Some(PlannedEvent { type_, reason: flip.reason, note: format!("{} is {state}: {}", flip.type_, flip.message) })
    })
}
