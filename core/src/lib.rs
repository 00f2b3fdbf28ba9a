//! Trimtab's pure core: the resource types (`api`), the decision (`engine`), one policy's round
//! (`plan`) and the placement rules they use (`placement`). No kube client or runtime, no async
//! runtime, no HTTP client, no clock: the build holds that line (this crate does not depend on
//! them; `tests/pure_boundary.rs` checks its dependency graph), so the operator, `trimtab decide`
//! and `trimtab simulate`, which all call this code, cannot disagree through I/O.

pub mod api;
pub mod engine;
pub mod placement;
pub mod plan;
