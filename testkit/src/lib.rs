//! What Trimtab's tests share across crates (the operator's integration tests and the e2e
//! scenarios). No dependency on Trimtab itself, so both can use it.

pub mod prometheus;
