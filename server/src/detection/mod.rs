//! Detectors: sans-IO state machines that turn readings into alert actions.

pub mod water;
