//! Vigil simulators.
pub mod fall_check;
pub mod fall_classic;
pub mod fall_eval;
pub mod fall_report;
pub mod fall_traces;
