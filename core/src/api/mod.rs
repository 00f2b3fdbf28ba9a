//! The Trimtab API, group `trimtab.dev`, version `v1alpha1`: resource types, their generated CRDs,
//! and the reason vocabulary. No I/O.

mod capacity_pool;
pub mod crd;
mod duration;
pub mod quantity;
pub mod reason;
mod scaling_policy;

pub use capacity_pool::*;
pub use duration::{
    DurationBounds, DurationError, FORECAST_STEP_BOUNDS, FORECAST_WINDOW_BOUNDS, INTERVAL_BOUNDS, SPOT_WAIT_BOUNDS, cel_rule,
    format_duration, parse_duration,
};
pub use quantity::{Quantity, QuantityError, format_decimal, milli_ceil_of};
pub use reason::Reason;
pub use scaling_policy::*;

/// The API group of every Trimtab resource.
pub const GROUP: &str = "trimtab.dev";
