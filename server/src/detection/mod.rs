//! Detectors: per-subject sans-IO state machines that turn readings into alert actions.

pub mod action;
pub mod call;
pub mod fire;
pub mod health;
pub mod water;

#[cfg(test)]
mod testkit;
