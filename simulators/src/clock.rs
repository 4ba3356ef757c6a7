//! The run's clock: how a driver maps its real elapsed time onto the scenario's timeline.
//!
//! A run may skip the start of a long scenario (`time_offset`) and play faster than real
//! time (`acceleration`). Actions before the offset are due at once, so the system still
//! receives the history (with the frames' own times) before the part being watched.

use std::time::Duration;

use crate::scenario::Scenario;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunClock {
    /// Scenario time at the run's first instant.
    pub time_offset: Duration,
    /// Scenario seconds per real second.
    pub acceleration: f64,
}

impl RunClock {
    pub fn of(scenario: &Scenario) -> Self {
        Self {
            time_offset: scenario.time_offset,
            acceleration: scenario.acceleration,
        }
    }

    /// Scenario time after `real_elapsed` of the run.
    pub fn scenario_time(&self, real_elapsed: Duration) -> Duration {
        let scaled = Duration::try_from_secs_f64(real_elapsed.as_secs_f64() * self.acceleration);
        self.time_offset
            .saturating_add(scaled.unwrap_or(Duration::MAX))
    }

    /// Real time into the run at which scenario time `t` comes (zero for anything at or
    /// before the offset).
    pub fn real_elapsed(&self, t: Duration) -> Duration {
        let behind = t.saturating_sub(self.time_offset).as_secs_f64();
        Duration::try_from_secs_f64(behind / self.acceleration).unwrap_or(Duration::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn an_accelerated_offset_run_maps_both_ways() {
        let c = RunClock {
            time_offset: secs(6 * 3600),
            acceleration: 60.0,
        };
        assert_eq!(c.scenario_time(Duration::ZERO), secs(6 * 3600));
        assert_eq!(c.scenario_time(secs(60)), secs(7 * 3600));
        assert_eq!(c.real_elapsed(secs(7 * 3600)), secs(60));
        assert_eq!(
            c.real_elapsed(secs(3600)),
            Duration::ZERO,
            "history is due at once"
        );
    }

    #[test]
    fn a_plain_run_is_real_time() {
        let c = RunClock {
            time_offset: Duration::ZERO,
            acceleration: 1.0,
        };
        assert_eq!(c.scenario_time(secs(42)), secs(42));
        assert_eq!(c.real_elapsed(secs(42)), secs(42));
    }

    #[test]
    fn extreme_settings_saturate_instead_of_panicking() {
        let c = RunClock {
            time_offset: Duration::ZERO,
            acceleration: f64::MAX,
        };
        assert_eq!(c.scenario_time(secs(10)), Duration::MAX);
        let slow = RunClock {
            time_offset: Duration::ZERO,
            acceleration: f64::MIN_POSITIVE,
        };
        assert_eq!(slow.real_elapsed(secs(10)), Duration::MAX);
    }
}
