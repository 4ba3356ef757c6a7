//! The measured statistics of a water-use record.

use crate::behaviour::{spread, Fixture, HouseholdTrace, DAY_S};

/// Fixtures whose real feeds cover the calibration days (the appliances do not: the
/// washing-machine feed covers another year, the dishwasher is an event list).
pub const COMPARED: [Fixture; 5] = [
    Fixture::Toilet,
    Fixture::Washbasin,
    Fixture::Bidet,
    Fixture::Shower,
    Fixture::KitchenFaucet,
];

/// Flow pauses up to this long belong to the same event.
pub const EVENT_MERGE_GAP_S: u32 = 60;

/// A minute with less than this much water counts as dry (a household meter resolves
/// about half a litre).
pub const DRY_MINUTE_ML: u32 = 500;

/// Smallest volume that counts as an event: sensor blips of a few millilitres are not use.
pub fn min_event_ml(fixture: Fixture) -> u32 {
    match fixture {
        Fixture::Shower => 2_000,
        Fixture::Toilet
        | Fixture::Washbasin
        | Fixture::Bidet
        | Fixture::KitchenFaucet
        | Fixture::Dishwasher
        | Fixture::WashingMachine => 100,
    }
}

/// One event of one fixture within a local day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageEvent {
    pub fixture: Fixture,
    /// Seconds after local midnight.
    pub start_s: u32,
    pub duration_s: u32,
    pub volume_ml: u32,
}

/// One local day of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageDay {
    pub events: Vec<UsageEvent>,
    /// Millilitres per minute of the compared fixtures, 1440 entries.
    pub minutes_ml: Vec<u32>,
}

/// Merges runs of flow `(fixture, start, end, ml)` (absolute seconds, any order) into
/// events: same fixture, pauses ≤ [`EVENT_MERGE_GAP_S`], at least [`min_event_ml`].
pub(crate) fn merge_runs(mut runs: Vec<(Fixture, i64, i64, u32)>) -> Vec<(Fixture, i64, i64, u32)> {
    runs.sort_by_key(|r| (r.0, r.1));
    let mut out: Vec<(Fixture, i64, i64, u32)> = Vec::new();
    for run in runs {
        match out.last_mut() {
            Some(last) if last.0 == run.0 && run.1 - last.2 <= i64::from(EVENT_MERGE_GAP_S) => {
                last.2 = last.2.max(run.2);
                last.3 = last.3.saturating_add(run.3);
            }
            _ => out.push(run),
        }
    }
    out.retain(|e| e.3 >= min_event_ml(e.0));
    out.sort_by_key(|e| e.1);
    out
}

/// Reduces a simulated household to usage days, exactly as the real feeds are reduced.
pub fn simulated_days(trace: &HouseholdTrace) -> Vec<UsageDay> {
    let runs = trace
        .uses
        .iter()
        .filter(|u| COMPARED.contains(&u.fixture))
        .map(|u| {
            (
                u.fixture,
                i64::from(u.start_s),
                i64::from(u.end_s()),
                u.volume_ml,
            )
        })
        .collect();
    let mut days: Vec<UsageDay> = (0..trace.days)
        .map(|_| UsageDay {
            events: Vec::new(),
            minutes_ml: vec![0; 1440],
        })
        .collect();
    for (fixture, start, end, volume_ml) in merge_runs(runs) {
        let day = (start / i64::from(DAY_S)) as usize;
        if let Some(d) = days.get_mut(day) {
            d.events.push(UsageEvent {
                fixture,
                start_s: (start % i64::from(DAY_S)) as u32,
                duration_s: (end - start).max(1) as u32,
                volume_ml,
            });
        }
    }
    let mut minutes = vec![0u32; (trace.days * 1440) as usize];
    for u in trace.uses.iter().filter(|u| COMPARED.contains(&u.fixture)) {
        spread(&mut minutes, u.start_s, u.duration_s.max(1), u.volume_ml);
    }
    for (day, chunk) in days.iter_mut().zip(minutes.chunks(1440)) {
        day.minutes_ml = chunk.to_vec();
    }
    days
}

/// Quarters of the day in which events are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeBlock {
    Night,
    Morning,
    Afternoon,
    Evening,
}

impl TimeBlock {
    pub const ALL: [TimeBlock; 4] = [Self::Night, Self::Morning, Self::Afternoon, Self::Evening];

    pub fn of(second_of_day: u32) -> Self {
        match second_of_day / 3600 {
            0..=5 => Self::Night,
            6..=11 => Self::Morning,
            12..=17 => Self::Afternoon,
            _ => Self::Evening,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Night => "00-06h",
            Self::Morning => "06-12h",
            Self::Afternoon => "12-18h",
            Self::Evening => "18-24h",
        }
    }
}

/// What one fixture's events look like.
#[derive(Debug, Clone, PartialEq)]
pub struct FixtureStats {
    pub fixture: Fixture,
    pub events_per_day: f64,
    pub volume_p50_l: f64,
    pub volume_p90_l: f64,
    pub duration_p50_s: f64,
    /// Share of the events starting in each [`TimeBlock`].
    pub block_share: [f64; 4],
}

/// The statistics the model is calibrated on.
#[derive(Debug, Clone, PartialEq)]
pub struct Statistics {
    pub days: usize,
    pub fixtures: Vec<FixtureStats>,
    /// Daily volume of the compared fixtures, litres: 10th, 50th, 90th percentile.
    pub daily_total_l: [f64; 3],
    /// Longest dry stretch between 08:00 and 20:00, hours: 25th, 50th, 75th percentile.
    pub longest_dry_h: [f64; 3],
    /// Share of days with a dry stretch of 3 h or more between 08:00 and 20:00.
    pub share_days_dry_3h: f64,
}

impl Statistics {
    pub fn measure(days: &[UsageDay]) -> Self {
        let n = days.len().max(1) as f64;
        let fixtures = COMPARED
            .iter()
            .map(|&fixture| {
                let events: Vec<&UsageEvent> = days
                    .iter()
                    .flat_map(|d| d.events.iter())
                    .filter(|e| e.fixture == fixture)
                    .collect();
                let mut vols: Vec<f64> = events
                    .iter()
                    .map(|e| f64::from(e.volume_ml) / 1000.0)
                    .collect();
                let mut durs: Vec<f64> = events.iter().map(|e| f64::from(e.duration_s)).collect();
                let mut block_share = [0.0; 4];
                for e in &events {
                    let i = TimeBlock::ALL
                        .iter()
                        .position(|&b| b == TimeBlock::of(e.start_s))
                        .unwrap_or(0);
                    block_share[i] += 1.0 / events.len().max(1) as f64;
                }
                FixtureStats {
                    fixture,
                    events_per_day: events.len() as f64 / n,
                    volume_p50_l: quantile(&mut vols, 0.5),
                    volume_p90_l: quantile(&mut vols, 0.9),
                    duration_p50_s: quantile(&mut durs, 0.5),
                    block_share,
                }
            })
            .collect();
        let mut totals: Vec<f64> = days
            .iter()
            .map(|d| d.minutes_ml.iter().map(|&m| f64::from(m)).sum::<f64>() / 1000.0)
            .collect();
        let mut dry: Vec<f64> = days.iter().map(longest_daytime_dry_h).collect();
        let share_days_dry_3h = dry.iter().filter(|&&h| h >= 3.0).count() as f64 / n;
        Self {
            days: days.len(),
            fixtures,
            daily_total_l: [
                quantile(&mut totals, 0.1),
                quantile(&mut totals, 0.5),
                quantile(&mut totals, 0.9),
            ],
            longest_dry_h: [
                quantile(&mut dry, 0.25),
                quantile(&mut dry, 0.5),
                quantile(&mut dry, 0.75),
            ],
            share_days_dry_3h,
        }
    }

    pub fn fixture(&self, fixture: Fixture) -> Option<&FixtureStats> {
        self.fixtures.iter().find(|f| f.fixture == fixture)
    }
}

fn longest_daytime_dry_h(day: &UsageDay) -> f64 {
    let (mut best, mut run) = (0u32, 0u32);
    for &ml in day.minutes_ml.iter().take(20 * 60).skip(8 * 60) {
        if ml >= DRY_MINUTE_ML {
            run = 0;
        } else {
            run += 1;
            best = best.max(run);
        }
    }
    f64::from(best) / 60.0
}

/// The `q` quantile (nearest rank below); 0 for an empty sample.
pub(crate) fn quantile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_closer_than_a_minute_merge_and_blips_are_dropped() {
        let runs = vec![
            (Fixture::Washbasin, 0, 10, 300),
            (Fixture::Washbasin, 50, 60, 300),
            (Fixture::Washbasin, 200, 201, 5),
            (Fixture::KitchenFaucet, 20, 30, 400),
        ];
        let events = merge_runs(runs);
        assert_eq!(
            events,
            vec![
                (Fixture::Washbasin, 0, 60, 600),
                (Fixture::KitchenFaucet, 20, 30, 400)
            ]
        );
    }

    #[test]
    fn a_day_with_one_use_at_noon_has_a_four_hour_dry_stretch_before_it() {
        let mut minutes_ml = vec![0; 1440];
        minutes_ml[12 * 60] = 5_000;
        let day = UsageDay {
            events: vec![],
            minutes_ml,
        };
        assert_eq!(longest_daytime_dry_h(&day), 8.0 - 1.0 / 60.0);
        let stats = Statistics::measure(&[day]);
        assert_eq!(stats.share_days_dry_3h, 1.0);
        assert_eq!(stats.daily_total_l[1], 5.0);
    }
}
