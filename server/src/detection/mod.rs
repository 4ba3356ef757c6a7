//! Detectors: per-subject sans-IO state machines that turn readings into alert actions.

pub mod action;
pub mod call;
pub mod fire;
pub mod health;

#[cfg(test)]
mod testkit;
