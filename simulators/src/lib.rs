//! Vigil simulators.
//!
//! # Layout
//!
//! - [`behaviour`]: residents' routines → fixture uses, the meter's per-minute series and an
//!   activity timeline, calibrated against real single-occupant recordings.
//! - [`calibration`]: the statistics that compare the model with those recordings.
pub mod behaviour;
pub mod calibration;
mod civil;
pub mod expect;
pub mod facility;
pub mod incident;
pub mod load;
pub mod scenario;
pub mod timeline;
