//! Water-use detection for one household: a sans-IO state machine fed per-minute volumes.
//!
//! # Inputs and time
//! - [`WaterDetector::handle_reading`]: the litres used in one UTC minute (`minute_start`), with the
//!   current time. Readings arrive in order; a repeated or older minute is rejected with a typed
//!   error (the store keeps it; a [`WaterDetector::rebuild`] replays stored readings in order).
//! - A minute without a reading is *not* a minute without use. Holes up to
//!   [`WaterRules::max_bridged_gap_minutes`] are bridged (boards batch their readings); a longer
//!   hole is a data gap: the no-use clocks restart when data resumes, nothing is learned about the
//!   gap's slots, and no no-use rule fires in it.
//! - [`WaterDetector::handle_timeout`] advances the clock; [`WaterDetector::next_deadline`] says
//!   when. Deadlines never run ahead of the data by more than the bridge: without new data nothing
//!   fires (the device-health detector reports a silent board).
//! - All day and time-of-day rules run on the household's IANA timezone.
//!
//! # Outputs
//! [`WaterAction`]s drained with [`WaterDetector::poll_action`].

mod config;
mod detector;
mod fixed;
mod history;
mod rhythm;

pub mod eval;
pub mod recordings;
pub mod synthetic;

pub use config::{MorningCheck, NoUseWindow, UnusualSilence, WaterRules};
pub use detector::{InputStats, WaterAction, WaterDetector, WaterInputError};
pub use history::{LocalSlot, UseHistory};
pub use rhythm::PastSilences;

/// Parses an IANA timezone name such as `Europe/Rome`.
pub fn parse_timezone(name: &str) -> Result<chrono_tz::Tz, WaterInputError> {
    name.parse::<chrono_tz::Tz>()
        .map_err(|_| WaterInputError::UnknownTimezone(name.to_owned()))
}
