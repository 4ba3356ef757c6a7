//! Detection quality on a simulated population (`vigil sim evaluate`): the server's water
//! detector (`vigil_server::detection::water::WaterDetector`, the same code the server runs) over
//! households drawn from the calibrated behaviour model (`vigil_sim::behaviour`), on a virtual
//! clock, with incidents injected at random.
//!
//! # Layout
//! - [`household`]: one household's life and incidents, and the detector run over them.
//! - [`incident`]: the injected incidents and the alerts that answer them.
//! - [`report`]: the figures per rule set, their table, and the real-recording replay line.
//!
//! Sans-IO and deterministic: a population is a function of its [`PopulationSetup`]; household
//! `i` is drawn from `(seed, i)` alone, so the thread count never changes a figure.

pub mod household;
pub mod incident;
pub mod report;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use vigil_server::detection::water::WaterRules;

pub use report::{Evaluation, RealReplay};

use household::HouseholdOutcome;
use incident::Incident;

/// What to simulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PopulationSetup {
    pub households: u32,
    pub days: u32,
    pub seed: u64,
    /// Incidents start after this many days: the history the adaptive rules learn from.
    pub warmup_days: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetupError {
    #[error("--households must be at least 1, found 0")]
    NoHouseholds,
    #[error(
        "--days must leave {needed} day(s) after the {warmup} warm-up day(s) for incidents \
         to be followed to their end, found {days}"
    )]
    TooFewDays { days: u32, warmup: u32, needed: u32 },
}

impl PopulationSetup {
    pub fn validate(&self) -> Result<(), SetupError> {
        if self.households == 0 {
            return Err(SetupError::NoHouseholds);
        }
        let needed = Incident::longest_horizon_minutes().div_ceil(1440) as u32 + 1;
        if self.days < self.warmup_days.saturating_add(needed) {
            return Err(SetupError::TooFewDays {
                days: self.days,
                warmup: self.warmup_days,
                needed,
            });
        }
        Ok(())
    }

    /// About one incident of each kind per household-month of the incident period, at least one.
    pub fn incidents_per_class(&self) -> usize {
        let period = self.days.saturating_sub(self.warmup_days) as f64;
        ((period / 30.0).round() as usize).max(1)
    }
}

/// A named water configuration to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSet {
    pub name: String,
    pub rules: Arc<WaterRules>,
}

impl RuleSet {
    pub fn new(name: &str, rules: WaterRules) -> Self {
        Self {
            name: name.to_owned(),
            rules: Arc::new(rules),
        }
    }
}

/// The name of the default configuration's row; the targets are judged on it.
pub const DEFAULT_RULES: &str = "vigil default";

/// Vigil's defaults beside the fixed district rules alone: the adaptive rules' gain.
pub fn compared_rule_sets() -> Vec<RuleSet> {
    vec![
        RuleSet::new(DEFAULT_RULES, WaterRules::default()),
        RuleSet::new("fixed < 10 L in 12 h", WaterRules::fixed_only(12)),
        RuleSet::new("fixed < 10 L in 24 h", WaterRules::fixed_only(24)),
    ]
}

/// Simulates the population and runs every rule set over it, on `threads` threads.
pub fn evaluate(
    setup: &PopulationSetup,
    rule_sets: &[RuleSet],
    threads: usize,
) -> Result<Evaluation, SetupError> {
    setup.validate()?;
    let next = AtomicU32::new(0);
    let per_class = setup.incidents_per_class();
    let work = || {
        let mut done: Vec<(u32, Vec<HouseholdOutcome>)> = Vec::new();
        loop {
            let index = next.fetch_add(1, Ordering::Relaxed);
            if index >= setup.households {
                return done;
            }
            let home =
                household::simulate(setup.seed, index, setup.days, setup.warmup_days, per_class);
            let outcomes = rule_sets
                .iter()
                .map(|set| household::run(&home, &set.rules))
                .collect();
            done.push((index, outcomes));
        }
    };
    let mut households: Vec<(u32, Vec<HouseholdOutcome>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.max(1)).map(|_| scope.spawn(work)).collect();
        workers
            .into_iter()
            .flat_map(|w| match w.join() {
                Ok(done) => done,
                // A worker only panics on a bug; carry the panic to the caller.
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    });
    households.sort_by_key(|(index, _)| *index);
    Ok(report::aggregate(*setup, rule_sets, &households))
}

#[cfg(test)]
mod tests;
