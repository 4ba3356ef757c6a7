//! A household on a virtual clock for the water detector tests.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use chrono_tz::Tz;
use vigil_server::alerts::AlertKind;
use vigil_server::detection::water::{WaterAction, WaterDetector, WaterRules};

pub struct Household {
    pub tz: Tz,
    pub detector: WaterDetector,
    pub actions: Vec<WaterAction>,
    /// The next minute to feed.
    pub clock: DateTime<Utc>,
}

pub fn local(tz: Tz, y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    tz.with_ymd_and_hms(y, mo, d, h, mi, 0)
        .earliest()
        .expect("a valid local time")
        .with_timezone(&Utc)
}

impl Household {
    pub fn new(rules: WaterRules, tz: Tz, start: DateTime<Utc>) -> Self {
        Self {
            tz,
            detector: WaterDetector::new(Arc::new(rules), tz),
            actions: Vec::new(),
            clock: start,
        }
    }

    fn drain(&mut self) {
        while let Some(action) = self.detector.poll_action() {
            self.actions.push(action);
        }
    }

    /// Feeds one minute at the clock and advances it.
    pub fn minute(&mut self, litres: f64) {
        let at = self.clock;
        self.detector
            .handle_reading(at, litres, at + Duration::minutes(1))
            .expect("a valid reading");
        self.clock = at + Duration::minutes(1);
        self.drain();
    }

    /// Feeds minutes of zero use until `until` (exclusive).
    pub fn quiet_until(&mut self, until: DateTime<Utc>) {
        while self.clock < until {
            self.minute(0.0);
        }
    }

    /// Skips minutes without data (a data gap) until `until`.
    pub fn no_data_until(&mut self, until: DateTime<Utc>) {
        self.clock = until;
    }

    pub fn timeout(&mut self, now: DateTime<Utc>) {
        self.detector.handle_timeout(now);
        self.drain();
    }

    pub fn raised(&self, kind: AlertKind) -> Vec<DateTime<Utc>> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                WaterAction::Raise { kind: k, at, .. } if *k == kind => Some(*at),
                _ => None,
            })
            .collect()
    }

    pub fn cleared(&self, kind: AlertKind) -> Vec<DateTime<Utc>> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                WaterAction::Clear { kind: k, at } if *k == kind => Some(*at),
                _ => None,
            })
            .collect()
    }

    /// A regular day: a use of `litres` every 30 minutes from `wake` to `sleep` local hour, quiet
    /// otherwise, from the clock (at local midnight) to the next local midnight.
    pub fn routine_day(&mut self, wake: u32, sleep: u32) {
        let day_start = self.clock;
        let day_end = day_start + Duration::hours(24);
        while self.clock < day_end {
            let local = self.clock.with_timezone(&self.tz);
            let minute_of_day =
                chrono::Timelike::hour(&local) * 60 + chrono::Timelike::minute(&local);
            let active = minute_of_day >= wake * 60 && minute_of_day < sleep * 60;
            let litres = if active && minute_of_day % 30 == 0 {
                3.0
            } else {
                0.0
            };
            self.minute(litres);
        }
    }
}
