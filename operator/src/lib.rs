//! Trimtab: a Kubernetes autoscaler that keeps service-level objectives met at the lowest cost a
//! budget allows, and places replicas on spot and on-demand capacity.
//!
//! Layout: `api` (resource types, no I/O), `engine` (the pure decision), `plan` (one
//! pure round: decision, holds, status, Events, evictions), `cli` (commands).

pub mod api;
pub mod cli;
pub mod controller;
pub mod engine;
pub mod leases;
pub mod metrics;
pub mod placement;
pub mod plan;
pub mod sim;
