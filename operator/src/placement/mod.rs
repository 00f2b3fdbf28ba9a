//! Placement: each pod on the right pool. A mutating webhook places new pods (assign, mutate); the
//! reconciler watches spot health and evicts to correct drift (spot_health, rebalance).
//!
//! The pure rules (`assign`, `spot_health`, `rebalance`, and `PodView`) live in `trimtab-core`
//! and are re-exported here; this module adds the webhook and its TLS.

pub mod certs;
pub mod mutate;
pub mod tls;
pub mod webhook;

pub use trimtab_core::placement::{PodView, PoolOf, assign, rebalance, spot_health};
