//! The simulator: load traces, the service model, and replaying them through the engine.

pub mod service_model;
