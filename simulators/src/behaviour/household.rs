//! One household's days: the resident's routine turned into fixture uses and activities.

use rand::Rng;
use rand_distr::{Distribution, LogNormal, Normal, Poisson};

use super::fixture::{Fixture, FixtureUse};
use super::resident::{ResidentProfile, Weekday};

pub(crate) const DAY_S: u32 = 86_400;

/// What the resident is doing; the pendant's and the meter's view follow from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    Asleep,
    /// At home and awake.
    Home,
    /// Out for part of a day.
    Out,
    /// A stay away with nights elsewhere.
    Away,
    /// Lying on the floor after a fall (set by an incident).
    Fallen,
    /// At home but unable to act (set by an incident: a silent emergency).
    Incapacitated,
}

impl Activity {
    pub fn name(self) -> &'static str {
        match self {
            Self::Asleep => "asleep",
            Self::Home => "home",
            Self::Out => "out",
            Self::Away => "away",
            Self::Fallen => "fallen",
            Self::Incapacitated => "incapacitated",
        }
    }
}

/// `[start_s, end_s)` of one activity, in seconds since local midnight of day 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActivitySpan {
    pub start_s: u32,
    pub end_s: u32,
    pub activity: Activity,
}

/// The ground truth of a simulated household over some days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HouseholdTrace {
    pub days: u32,
    pub first_weekday: Weekday,
    /// Every use, sorted by start.
    pub uses: Vec<FixtureUse>,
    /// Consecutive, non-overlapping spans covering `[0, days × 86 400)`.
    pub activity: Vec<ActivitySpan>,
}

impl HouseholdTrace {
    /// What the household meter sees: millilitres per local minute, one entry per minute.
    pub fn water_per_minute(&self) -> Vec<u32> {
        let mut out = vec![0u32; (self.days * 1440) as usize];
        for u in &self.uses {
            spread(&mut out, u.start_s, u.duration_s.max(1), u.volume_ml);
        }
        out
    }

    /// From `from_s` until `until_s` the resident does `activity` instead of the routine
    /// (a fall, a silent emergency, a stay away): no use starts in that window.
    pub fn override_activity(&mut self, from_s: u32, until_s: u32, activity: Activity) {
        let until_s = until_s.min(self.days * DAY_S);
        if from_s >= until_s {
            return;
        }
        self.uses
            .retain(|u| u.start_s < from_s || u.start_s >= until_s);
        let mut spans = Vec::with_capacity(self.activity.len() + 2);
        for s in &self.activity {
            if s.end_s <= from_s || s.start_s >= until_s {
                spans.push(*s);
                continue;
            }
            if s.start_s < from_s {
                spans.push(ActivitySpan {
                    end_s: from_s,
                    ..*s
                });
            }
            if s.end_s > until_s {
                spans.push(ActivitySpan {
                    start_s: until_s,
                    ..*s
                });
            }
        }
        spans.push(ActivitySpan {
            start_s: from_s,
            end_s: until_s,
            activity,
        });
        spans.sort_by_key(|s| s.start_s);
        self.activity = spans;
    }

    /// The activity at `t_s` (seconds since local midnight of day 0).
    pub fn activity_at(&self, t_s: u32) -> Option<Activity> {
        let i = self.activity.partition_point(|s| s.end_s <= t_s);
        self.activity
            .get(i)
            .filter(|s| s.start_s <= t_s)
            .map(|s| s.activity)
    }
}

/// Adds `volume_ml` spread evenly over `[start_s, start_s + duration_s)` into minute bins.
pub(crate) fn spread(bins: &mut [u32], start_s: u32, duration_s: u32, volume_ml: u32) {
    let mut given = 0u64;
    let end = u64::from(start_s) + u64::from(duration_s);
    let mut t = u64::from(start_s);
    while t < end {
        let minute_end = (t / 60 + 1) * 60;
        let upto = minute_end.min(end);
        // Cumulative share rounded, so the parts always add up to the whole volume.
        let share_to = u64::from(volume_ml) * (upto - u64::from(start_s)) / u64::from(duration_s);
        if let Some(bin) = bins.get_mut((t / 60) as usize) {
            *bin = bin.saturating_add((share_to - given) as u32);
        }
        given = share_to;
        t = upto;
    }
}

/// Simulates `days` days of one resident living alone, from local midnight of day 0.
pub fn simulate_household<R: Rng + ?Sized>(
    profile: &ResidentProfile,
    first_weekday: Weekday,
    days: u32,
    rng: &mut R,
) -> HouseholdTrace {
    let mut sim = DaySim {
        p: profile,
        uses: Vec::new(),
        spans: Vec::new(),
        asleep_since: 0,
    };
    let end = days * DAY_S;
    let mut wake = sim.draw_wake(first_weekday.is_weekend(), rng);
    let mut day = 0;
    while day < days {
        let base = day * DAY_S;
        let tomorrow_weekend = first_weekday.plus_days(day + 1).is_weekend();
        let next_wake = DAY_S + sim.draw_wake(tomorrow_weekend, rng);
        let plan = sim.plan_day(wake, next_wake, rng);
        sim.span(sim.asleep_since, base + plan.wake, Activity::Asleep);
        if rng.random_bool(profile.away_prob.clamp(0.0, 1.0)) {
            // Leaves after breakfast for some nights; comes back in the afternoon.
            let nights = rng.random_range(1..=profile.away_max_nights.max(1));
            let leave = plan.wake + rng.random_range(60..180) * 60;
            sim.morning(base, plan.wake, rng);
            sim.home_block(base, plan.wake + 3600, leave, rng);
            sim.span(base + plan.wake, base + leave, Activity::Home);
            let back_day = day + nights;
            let b = back_day * DAY_S;
            let back = rng.random_range(14..19) * 3600;
            sim.span(base + leave, (b + back).min(end), Activity::Away);
            if back_day < days {
                let bed = plan.bed;
                sim.home_block(b, back, bed, rng);
                sim.evening(b, bed, rng);
                sim.span(b + back, b + bed, Activity::Home);
                sim.night(b, bed, plan.next_wake, rng);
                sim.asleep_since = b + bed;
            } else {
                sim.asleep_since = end;
            }
            wake = plan.next_wake - DAY_S;
            day = back_day + 1;
            continue;
        }
        sim.ordinary_day(base, &plan, rng);
        sim.asleep_since = base + plan.bed;
        wake = plan.next_wake - DAY_S;
        day += 1;
    }
    sim.span(sim.asleep_since, end, Activity::Asleep);
    let DaySim {
        mut uses,
        mut spans,
        ..
    } = sim;
    for s in &mut spans {
        s.end_s = s.end_s.min(end);
    }
    spans.retain(|s| s.start_s < s.end_s);
    spans.sort_by_key(|s| s.start_s);
    let mut trace = HouseholdTrace {
        days,
        first_weekday,
        uses: Vec::new(),
        activity: spans,
    };
    // Nobody home, no water: routines drawn near an outing's edges are dropped.
    uses.retain(|u| {
        u.start_s < end
            && matches!(
                trace.activity_at(u.start_s),
                Some(Activity::Home | Activity::Asleep)
            )
    });
    uses.sort_by_key(|u| u.start_s);
    trace.uses = uses;
    trace
}

/// Seconds after local midnight of the day the plan is for.
struct DayPlan {
    wake: u32,
    /// Bed time, may be after midnight (> 86 400).
    bed: u32,
    next_wake: u32,
    /// `[start, end)` of the time out of home, if any.
    out: Option<(u32, u32)>,
}

struct DaySim<'p> {
    p: &'p ResidentProfile,
    uses: Vec<FixtureUse>,
    spans: Vec<ActivitySpan>,
    /// When the current sleep began, in seconds since local midnight of day 0.
    asleep_since: u32,
}

impl DaySim<'_> {
    fn draw_wake<R: Rng + ?Sized>(&self, weekend: bool, rng: &mut R) -> u32 {
        let p = self.p;
        let mean = if weekend {
            p.wake_weekend
        } else {
            p.wake_weekday
        };
        minutes(normal(rng, mean, p.wake_sd).clamp(240.0, 720.0))
    }

    fn plan_day<R: Rng + ?Sized>(&self, wake: u32, next_wake: u32, rng: &mut R) -> DayPlan {
        let p = self.p;
        let bed = minutes(normal(rng, p.bed, p.bed_sd).clamp(1200.0, 1440.0 + 180.0));
        let bed = bed.min(next_wake - 3 * 3600);
        let out = if rng.random_bool(p.day_out_prob.clamp(0.0, 1.0)) {
            let start = wake + rng.random_range(50..120) * 60;
            let end = rng.random_range(19 * 60..22 * 60) * 60;
            Some((start, end.min(bed - 1800)))
        } else if rng.random_bool(p.outing_prob.clamp(0.0, 1.0)) {
            let hours = LogNormal::new(p.outing_median_h.ln(), p.outing_sigma)
                .map(|d| d.sample(rng))
                .unwrap_or(p.outing_median_h);
            let start = rng.random_range((wake + 3600).max(9 * 3600)..17 * 3600);
            let end = start + (hours * 3600.0) as u32;
            Some((start, end.min(bed - 1800)))
        } else {
            None
        };
        DayPlan {
            wake,
            bed,
            next_wake,
            out: out.filter(|(s, e)| s < e),
        }
    }

    fn ordinary_day<R: Rng + ?Sized>(&mut self, base: u32, plan: &DayPlan, rng: &mut R) {
        let p = self.p;
        self.morning(base, plan.wake, rng);
        let after_morning = plan.wake + 3600;
        match plan.out {
            Some((s, e)) => {
                self.span(base + plan.wake, base + s, Activity::Home);
                self.span(base + s, base + e, Activity::Out);
                self.span(base + e, base + plan.bed, Activity::Home);
                self.home_block(base, after_morning, s, rng);
                self.home_block(base, e, plan.bed, rng);
            }
            None => {
                self.span(base + plan.wake, base + plan.bed, Activity::Home);
                self.home_block(base, after_morning, plan.bed, rng);
            }
        }
        let at_home = |t: u32| plan.out.is_none_or(|(s, e)| t < s || t >= e);
        let lunch = minutes(normal(rng, 13.0 * 60.0, 30.0));
        if at_home(lunch) && lunch > after_morning && rng.random_bool(p.lunch_prob) {
            self.cluster(base + lunch, Fixture::KitchenFaucet, 2..=5, rng);
        }
        let dinner = minutes(normal(rng, 20.5 * 60.0, 40.0));
        if at_home(dinner) && dinner < plan.bed && rng.random_bool(p.dinner_prob) {
            self.cluster(base + dinner, Fixture::KitchenFaucet, 2..=5, rng);
            if rng.random_bool(p.dishwasher_per_day.clamp(0.0, 1.0)) {
                self.appliance(base + dinner + 3600, Fixture::Dishwasher, 3, 25 * 60, rng);
            }
        }
        if rng.random_bool((p.laundry_per_week / 7.0).clamp(0.0, 1.0)) {
            let start = plan.wake + rng.random_range(30..150) * 60;
            if at_home(start) {
                let fills = rng.random_range(2..=6);
                self.appliance(base + start, Fixture::WashingMachine, fills, 12 * 60, rng);
            }
        }
        self.evening(base, plan.bed, rng);
        self.night(base, plan.bed, plan.next_wake, rng);
    }

    /// Toilet, washbasin, maybe a shower and breakfast, in the first hour after waking.
    fn morning<R: Rng + ?Sized>(&mut self, base: u32, wake: u32, rng: &mut R) {
        let t = base + wake;
        if rng.random_bool(0.7) {
            self.one(t + rng.random_range(60..600), Fixture::Toilet, rng);
        }
        if rng.random_bool(0.9) {
            self.cluster(
                t + rng.random_range(120..900),
                Fixture::Washbasin,
                1..=2,
                rng,
            );
        }
        if rng.random_bool(0.45) {
            self.one(t + rng.random_range(300..1200), Fixture::Bidet, rng);
        }
        if rng.random_bool(self.p.shower_morning_prob.clamp(0.0, 1.0)) {
            self.one(t + rng.random_range(600..2400), Fixture::Shower, rng);
        }
        if rng.random_bool(0.85) {
            self.cluster(
                t + rng.random_range(1200..3300),
                Fixture::KitchenFaucet,
                1..=2,
                rng,
            );
        }
    }

    /// Washing up, maybe a shower, toilet and washbasin before bed.
    fn evening<R: Rng + ?Sized>(&mut self, base: u32, bed: u32, rng: &mut R) {
        let t = base + bed;
        if rng.random_bool(self.p.shower_evening_prob.clamp(0.0, 1.0)) {
            // Any time from mid-afternoon (back from an outing) until shortly before bed.
            let latest = bed.saturating_sub(2700).max(14 * 3600 + 1);
            self.one(
                base + rng.random_range(14 * 3600..latest),
                Fixture::Shower,
                rng,
            );
        }
        if rng.random_bool(0.7) {
            self.one(t - rng.random_range(300..1200), Fixture::Toilet, rng);
        }
        if rng.random_bool(0.85) {
            self.cluster(
                t - rng.random_range(120..900),
                Fixture::Washbasin,
                1..=2,
                rng,
            );
        }
    }

    /// Night toilet visits between bed and the next wake.
    fn night<R: Rng + ?Sized>(&mut self, base: u32, bed: u32, next_wake: u32, rng: &mut R) {
        let visits = poisson(rng, self.p.night_toilet_per_night);
        for _ in 0..visits {
            let t = base + rng.random_range(bed + 1800..next_wake.max(bed + 1801));
            self.one(t, Fixture::Toilet, rng);
            if rng.random_bool(0.6) {
                self.one(t + 90, Fixture::Washbasin, rng);
            }
        }
    }

    /// Uses scattered over `[from, to)` at home, awake.
    fn home_block<R: Rng + ?Sized>(&mut self, base: u32, from: u32, to: u32, rng: &mut R) {
        if to <= from {
            return;
        }
        let hours = f64::from(to - from) / 3600.0;
        let p = self.p;
        for (fixture, rate) in [
            (Fixture::Washbasin, p.washbasin_per_h),
            (Fixture::KitchenFaucet, p.kitchen_per_h),
            (Fixture::Bidet, p.bidet_per_h),
            (Fixture::Toilet, p.toilet_per_h),
        ] {
            // Thinning: uniform candidates at the peak rate, kept by the hour's weight.
            for _ in 0..poisson(rng, rate * hours * PEAK_WEIGHT) {
                let t = rng.random_range(from..to);
                if rng.random_bool(hour_weight(t) / PEAK_WEIGHT) {
                    self.one(base + t, fixture, rng);
                }
            }
        }
    }

    fn cluster<R: Rng + ?Sized>(
        &mut self,
        t: u32,
        fixture: Fixture,
        count: std::ops::RangeInclusive<u32>,
        rng: &mut R,
    ) {
        let mut at = t;
        for _ in 0..rng.random_range(count) {
            let end = self.one(at, fixture, rng);
            // Pauses longer than a minute, so each use is an event of its own.
            at = end + rng.random_range(70..400);
        }
    }

    fn appliance<R: Rng + ?Sized>(
        &mut self,
        t: u32,
        fixture: Fixture,
        fills: u32,
        spacing_s: u32,
        rng: &mut R,
    ) {
        for i in 0..fills {
            self.one(t + i * spacing_s + rng.random_range(0..120), fixture, rng);
        }
    }

    fn one<R: Rng + ?Sized>(&mut self, start_s: u32, fixture: Fixture, rng: &mut R) -> u32 {
        let (volume_ml, duration_s) = fixture.use_shape().draw(rng);
        self.uses.push(FixtureUse {
            fixture,
            start_s,
            duration_s,
            volume_ml,
        });
        start_s + duration_s
    }

    fn span(&mut self, start_s: u32, end_s: u32, activity: Activity) {
        if start_s < end_s {
            self.spans.push(ActivitySpan {
                start_s,
                end_s,
                activity,
            });
        }
    }
}

/// How busy an hour at home is, relative to the resident's average: the recordings show
/// most use in the morning and a quieter evening (share of events 06–12 h ≈ 0.4 for the
/// toilet, 0.48 for the bidet, against ≈ 0.2–0.3 for 18–24 h).
fn hour_weight(second_of_day: u32) -> f64 {
    match (second_of_day / 3600) % 24 {
        6..=11 => PEAK_WEIGHT,
        12..=17 => 1.0,
        _ => 0.6,
    }
}

const PEAK_WEIGHT: f64 = 1.6;

fn minutes(m: f64) -> u32 {
    (m.max(0.0) * 60.0) as u32
}

fn normal<R: Rng + ?Sized>(rng: &mut R, mean: f64, sd: f64) -> f64 {
    Normal::new(mean, sd).map(|d| d.sample(rng)).unwrap_or(mean)
}

fn poisson<R: Rng + ?Sized>(rng: &mut R, mean: f64) -> u32 {
    if mean <= 0.0 {
        return 0;
    }
    Poisson::new(mean)
        .map(|d| d.sample(rng) as u32)
        .unwrap_or(0)
}
