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
//! - [`board`]: firmware in the loop — boards running the real `vigil-firmware` logic on
//!   simulated hardware, and the rack that connects them to a broker over TCP.
//! - [`clock`]: real elapsed time ↔ scenario time (offset, acceleration).
//! - [`expect`]: the expectation checker — observed alerts → pass/fail table, exit status.
//! - [`demo`]: `vigil demo`'s district, its people and the looping incident script.
//! - [`load`]: load mode's core — many boards' numbered frame streams at a total rate.
//! - [`fall_eval`], [`fall_report`], [`fall_classic`], [`fall_traces`], [`fall_check`]: the pendant's
//!   fall detector evaluated on SisFall and synthetic traces against the classic baseline.
//!
//! `docs/simulators.md` documents the scenario format and the commands.
pub mod behaviour;
pub mod board;
pub mod calibration;
mod civil;
pub mod clock;
pub mod demo;
pub mod expect;
pub mod facility;
pub mod fall_check;
pub mod fall_classic;
pub mod fall_eval;
pub mod fall_report;
pub mod fall_traces;
pub mod incident;
pub mod load;
pub mod scenario;
pub mod timeline;
