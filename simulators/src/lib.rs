//! Vigil simulators: simulated homes and facilities with incidents whose ground truth is
//! known, so testers can check that Vigil reacts as it should.
//!
//! # Layout
//!
//! - [`behaviour`]: residents' routines → fixture uses, the meter's per-minute series and an
//!   activity timeline, calibrated against real single-occupant recordings.
//! - [`calibration`]: the statistics that compare the model with those recordings.
//! - [`facility`]: floors, fire zones, rooms, and healthy sensors' background readings.
//! - [`incident`]: incidents and the alerts each must cause (ground truth).
//! - [`scenario`]: scenario files (TOML), parsed and validated with line-and-field errors.
//! - [`timeline`]: the runner's sans-IO core — a scenario as "at time t do X" actions.
//! - [`clock`]: real elapsed time ↔ scenario time (offset, acceleration).
//! - [`expect`]: the expectation checker — observed alerts → pass/fail table, exit status.
//! - [`load`]: load mode's core — many boards' numbered frame streams at a total rate.
//!
//! `docs/simulators.md` documents the scenario format and the commands.
pub mod behaviour;
pub mod calibration;
mod civil;
pub mod clock;
pub mod expect;
pub mod facility;
pub mod incident;
pub mod load;
pub mod scenario;
pub mod timeline;
