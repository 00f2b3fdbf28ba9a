//! Trimtab: a Kubernetes autoscaler that keeps service-level objectives met at the lowest cost a
//! budget allows, and places replicas on spot and on-demand capacity.
//!
//! Layout: `api` (resource types, no I/O), `engine` (the pure decision), `plan` (one
//! pure round: decision, holds, status, Events, evictions), `cli` (commands).
//!
//! `api`, `engine`, `plan` and the pure placement rules live in the `trimtab-core` crate, which
//! depends on no kube client or runtime, no async runtime and no HTTP client; they are re-exported
//! here under their old paths.

pub mod cli;
pub mod controller;
pub mod leases;
pub mod metrics;
pub mod placement;
pub mod sim;

pub use trimtab_core::{api, engine, plan};
