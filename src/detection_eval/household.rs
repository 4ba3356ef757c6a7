//! One simulated household: its life drawn from the behaviour model, the incidents injected into
//! it, and the water detector run over both on a virtual clock.
//!
//! Design: the detector runs once over the household's normal life (every alert raised there is a
//! false alert). At each incident's start the detector is cloned and the clone is fed the
//! incident's version of the following minutes, so every incident starts from the state the
//! detector really had then, incidents never disturb one another, and the normal life is
//! simulated once. This is the method of `vigil_server::detection::water::eval`, which does the
//! same for silent emergencies on the real recordings.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use vigil_server::alerts::AlertKind;
use vigil_server::detection::water::{WaterAction, WaterDetector, WaterRules};
use vigil_sim::behaviour::{
    simulate_household, Activity, HouseholdTrace, ResidentProfile, Weekday,
};

use super::incident::{draw, Incident, IncidentClass, Injected};

/// The households' clock: UTC+01:00 all year. The behaviour model has no daylight-saving days;
/// the detector's DST handling is tested on its own (`server/tests/water_rules.rs`).
pub const TIMEZONE: Tz = chrono_tz::Etc::GMTMinus1;
/// Local midnight of day 0: Monday 2025-01-06 00:00 at UTC+01:00.
pub const START_EPOCH: i64 = 1_736_118_000;
const MINUTES_PER_DAY: usize = 1440;

/// One household's life and the incidents injected into it.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulatedHousehold {
    pub trace: HouseholdTrace,
    /// Litres per minute from local midnight of day 0.
    pub litres: Vec<f64>,
    /// Sorted by start.
    pub incidents: Vec<Injected>,
}

/// Household `index` of a population: reproducible from `(seed, index)` alone, whatever the
/// order households are simulated in.
pub fn simulate(
    seed: u64,
    index: u32,
    days: u32,
    warmup_days: u32,
    incidents_per_class: usize,
) -> SimulatedHousehold {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(u64::from(index));
    let profile = ResidentProfile::calibrated().draw(&mut rng);
    let trace = simulate_household(&profile, Weekday::MONDAY, days, &mut rng);
    let litres = trace
        .water_per_minute()
        .into_iter()
        .map(|ml| f64::from(ml) / 1000.0)
        .collect::<Vec<_>>();
    let total = litres.len();
    let first = warmup_days as usize * MINUTES_PER_DAY;
    let last = total.saturating_sub(Incident::longest_horizon_minutes());
    // Minutes at home and awake: when a silent emergency, a tap or excessive use can begin.
    let awake_at_home: Vec<usize> = (first..last)
        .filter(|&m| trace.activity_at((m * 60) as u32) == Some(Activity::Home))
        .collect();
    let mut incidents = Vec::new();
    for class in IncidentClass::ALL {
        for _ in 0..incidents_per_class {
            let at = match class {
                IncidentClass::PipeLeak => (first < last).then(|| rng.random_range(first..last)),
                IncidentClass::SilentEmergency
                | IncidentClass::TapLeftRunning
                | IncidentClass::ExcessiveUse
                | IncidentClass::Away => (!awake_at_home.is_empty())
                    .then(|| awake_at_home[rng.random_range(0..awake_at_home.len())]),
            };
            if let Some(at) = at {
                incidents.push(draw(class, at, &mut rng));
            }
        }
    }
    incidents.sort_by_key(|i| i.at);
    SimulatedHousehold {
        trace,
        litres,
        incidents,
    }
}

/// What the resident was doing when a false alert was raised.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Whereabouts {
    pub home: u32,
    pub asleep: u32,
    pub out: u32,
    /// On a stay away nobody marked (the behaviour model's own trips).
    pub away: u32,
}

impl Whereabouts {
    fn count(&mut self, activity: Option<Activity>) {
        match activity {
            Some(Activity::Home | Activity::Fallen | Activity::Incapacitated) | None => {
                self.home += 1
            }
            Some(Activity::Asleep) => self.asleep += 1,
            Some(Activity::Out) => self.out += 1,
            Some(Activity::Away) => self.away += 1,
        }
    }

    pub fn add(&mut self, other: &Self) {
        self.home += other.home;
        self.asleep += other.asleep;
        self.out += other.out;
        self.away += other.away;
    }
}

/// How one incident went.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IncidentOutcome {
    pub class: IncidentClass,
    /// Minutes from the start to the answering alert (0 when one was already open); for `Away`,
    /// to the first no-use alert raised while marked away. `None`: no such alert in the horizon.
    pub delay_minutes: Option<u32>,
    /// The first alert of any water rule raised after the start.
    pub first_alert: Option<AlertKind>,
}

/// One rule set on one household.
#[derive(Debug, Clone, PartialEq)]
pub struct HouseholdOutcome {
    pub days: f64,
    /// Alerts raised on the normal life: all false.
    pub false_alerts: BTreeMap<AlertKind, u32>,
    pub false_alert_whereabouts: Whereabouts,
    pub incidents: Vec<IncidentOutcome>,
}

fn time_of_minute(index: usize) -> DateTime<Utc> {
    DateTime::from_timestamp(START_EPOCH + index as i64 * 60, 0).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Minutes from the start of the series to `at`.
fn minute_index(at: DateTime<Utc>) -> i64 {
    (at.timestamp() - START_EPOCH).div_euclid(60)
}

/// Runs the detector with `rules` over the household's normal life and each incident.
pub fn run(household: &SimulatedHousehold, rules: &Arc<WaterRules>) -> HouseholdOutcome {
    let mut detector = WaterDetector::new(Arc::clone(rules), TIMEZONE);
    let mut false_alerts: BTreeMap<AlertKind, u32> = BTreeMap::new();
    let mut whereabouts = Whereabouts::default();
    let mut open: Vec<AlertKind> = Vec::new();
    let mut outcomes = Vec::with_capacity(household.incidents.len());
    let mut next_incident = household.incidents.iter().peekable();
    for (index, &litres) in household.litres.iter().enumerate() {
        while let Some(incident) = next_incident.next_if(|i| i.at == index) {
            outcomes.push(follow(household, incident, detector.clone(), &open));
        }
        // Readings of a simulated meter are in order and in range: a rejection cannot happen.
        let _ = detector.handle_reading(time_of_minute(index), litres, time_of_minute(index + 1));
        while let Some(action) = detector.poll_action() {
            match action {
                WaterAction::Raise { kind, at, .. } => {
                    *false_alerts.entry(kind).or_default() += 1;
                    let local_s = (at.timestamp() - START_EPOCH).max(0) as u32;
                    whereabouts.count(household.trace.activity_at(local_s));
                    if !open.contains(&kind) {
                        open.push(kind);
                    }
                }
                WaterAction::Clear { kind, .. } => open.retain(|k| *k != kind),
                WaterAction::Suppressed { .. } => {}
            }
        }
    }
    HouseholdOutcome {
        days: household.litres.len() as f64 / MINUTES_PER_DAY as f64,
        false_alerts,
        false_alert_whereabouts: whereabouts,
        incidents: outcomes,
    }
}

/// Feeds a clone of the detector the incident's minutes until its answer (or its horizon).
fn follow(
    household: &SimulatedHousehold,
    incident: &Injected,
    mut detector: WaterDetector,
    open: &[AlertKind],
) -> IncidentOutcome {
    let class = incident.what.class();
    let horizon = incident.what.horizon_minutes();
    let mut outcome = IncidentOutcome {
        class,
        delay_minutes: None,
        first_alert: None,
    };
    if class.must_be_detected() && open.iter().any(|k| class.is_answered_by(*k)) {
        outcome.delay_minutes = Some(0);
        return outcome;
    }
    if let Incident::Away { minutes } = incident.what {
        detector.set_away_until(Some(time_of_minute(incident.at + minutes)));
    }
    for k in 0..horizon {
        let index = incident.at + k;
        let normal = household.litres.get(index).copied().unwrap_or(0.0);
        let litres = incident.what.litres(k, normal);
        let _ = detector.handle_reading(time_of_minute(index), litres, time_of_minute(index + 1));
        while let Some(action) = detector.poll_action() {
            let (kind, at) = match action {
                WaterAction::Raise { kind, at, .. } => (kind, at),
                WaterAction::Clear { .. } | WaterAction::Suppressed { .. } => continue,
            };
            outcome.first_alert.get_or_insert(kind);
            if class.is_answered_by(kind) {
                let delay = (minute_index(at) - incident.at as i64).max(0);
                outcome.delay_minutes = Some(delay as u32);
                return outcome;
            }
        }
    }
    outcome
}
