//! Statistics that compare the behaviour model with real single-occupant recordings.
//!
//! Both sides are reduced to the same thing — a list of local days, each with its fixture
//! events and its per-minute metered volume — and measured by the same code, so a
//! difference in the report is a difference in behaviour, not in bookkeeping.

mod real;
mod report;
mod stats;

pub use real::{
    default_data_dir, load_weusedto, load_weusedto_series, RealDataError, RecordedSeries,
};
pub use report::{compare, Comparison, ComparisonRow};
pub use stats::{
    simulated_days, FixtureStats, Statistics, TimeBlock, UsageDay, UsageEvent, DRY_MINUTE_ML,
};
