//! A resident's habits: the per-resident distributions a day is drawn from.
//!
//! [`ResidentProfile::calibrated`] is the single occupant of the WEUSEDTO recordings (see
//! `fixture.rs` for the data and `vigil sim calibrate` for the comparison);
//! [`ResidentProfile::draw`] varies it to make a population of different residents.

use rand::Rng;
use rand_distr::{Distribution, Normal};

/// Minutes after local midnight; may exceed 24 h for a bed time after midnight.
pub type ClockMinutes = f64;

/// Per-resident distributions of daily behaviour.
#[derive(Debug, Clone, PartialEq)]
pub struct ResidentProfile {
    /// Mean wake time on weekdays and on weekends, and its day-to-day spread.
    pub wake_weekday: ClockMinutes,
    pub wake_weekend: ClockMinutes,
    pub wake_sd: f64,
    /// Mean bed time (after midnight is > 1440) and its spread.
    pub bed: ClockMinutes,
    pub bed_sd: f64,
    /// Probability of an ordinary outing (shopping, visits) on a day at home.
    pub outing_prob: f64,
    /// Median outing length in hours, and the log-normal shape of its spread.
    pub outing_median_h: f64,
    pub outing_sigma: f64,
    /// Probability of spending the whole day out (leaving after breakfast, back in the evening).
    pub day_out_prob: f64,
    /// Probability, on a day at home, of leaving for a stay away (nights away).
    pub away_prob: f64,
    /// Longest stay away, in nights (uniform 1..=max).
    pub away_max_nights: u32,
    /// Uses per hour at home and awake, outside the routines.
    pub washbasin_per_h: f64,
    pub kitchen_per_h: f64,
    pub bidet_per_h: f64,
    pub toilet_per_h: f64,
    /// Toilet visits per night.
    pub night_toilet_per_night: f64,
    /// Probability of a morning and of an evening shower.
    pub shower_morning_prob: f64,
    pub shower_evening_prob: f64,
    /// Probability of cooking lunch and dinner at home (a cluster of kitchen uses).
    pub lunch_prob: f64,
    pub dinner_prob: f64,
    /// Dishwasher cycles per day and laundry cycles per week.
    pub dishwasher_per_day: f64,
    pub laundry_per_week: f64,
}

impl ResidentProfile {
    /// The recorded single occupant.
    ///
    /// Wake ≈ 07:40 (the morning peak of every fixture is 07–09 h, Europe/Rome); bed ≈ 23:50
    /// (washbasin and toilet events keep coming until 01 h, then drop); about 11 % of days
    /// have no toilet flush at all (nights away, hospital stays); the longest dry stretch
    /// between 08 and 20 h has median 7.7 h and is ≥ 10.7 h on a quarter of the days, so
    /// this occupant is out much of most days. Event rates are set so the totals per day
    /// match the recordings (washbasin 7.9, kitchen 7.0, bidet 2.1, toilet 3.0, shower 0.8).
    pub fn calibrated() -> Self {
        Self {
            wake_weekday: 7.0 * 60.0 + 40.0,
            wake_weekend: 8.0 * 60.0 + 20.0,
            wake_sd: 35.0,
            bed: 23.0 * 60.0 + 50.0,
            bed_sd: 40.0,
            outing_prob: 0.78,
            outing_median_h: 5.0,
            outing_sigma: 0.5,
            day_out_prob: 0.18,
            away_prob: 0.05,
            away_max_nights: 4,
            washbasin_per_h: 0.66,
            kitchen_per_h: 0.3,
            bidet_per_h: 0.2,
            toilet_per_h: 0.17,
            night_toilet_per_night: 0.35,
            shower_morning_prob: 0.35,
            shower_evening_prob: 0.85,
            lunch_prob: 0.75,
            dinner_prob: 0.8,
            dishwasher_per_day: 0.22,
            laundry_per_week: 1.0,
        }
    }

    /// A different resident: every habit varied around `self` (the daily rhythm shifted by a
    /// normal σ = 45 min clamped to ± 2 h, rates ± 40 %, probabilities ± 30 %),
    /// reproducibly from `rng`.
    pub fn draw<R: Rng + ?Sized>(&self, rng: &mut R) -> Self {
        let shift = Normal::new(0.0_f64, 45.0)
            .map(|d| d.sample(rng))
            .unwrap_or(0.0)
            .clamp(-120.0, 120.0);
        let mut rate = |x: f64| x * rng.random_range(0.6..1.4);
        let washbasin_per_h = rate(self.washbasin_per_h);
        let kitchen_per_h = rate(self.kitchen_per_h);
        let bidet_per_h = rate(self.bidet_per_h);
        let toilet_per_h = rate(self.toilet_per_h);
        let night_toilet_per_night = rate(self.night_toilet_per_night);
        let dishwasher_per_day = rate(self.dishwasher_per_day);
        let laundry_per_week = rate(self.laundry_per_week);
        let outing_median_h = rate(self.outing_median_h);
        let mut prob = |p: f64| (p * rng.random_range(0.7..1.3)).clamp(0.0, 1.0);
        Self {
            wake_weekday: self.wake_weekday + shift,
            wake_weekend: self.wake_weekend + shift,
            wake_sd: self.wake_sd,
            bed: self.bed + shift,
            bed_sd: self.bed_sd,
            outing_prob: prob(self.outing_prob),
            outing_median_h,
            outing_sigma: self.outing_sigma,
            day_out_prob: prob(self.day_out_prob),
            away_prob: prob(self.away_prob),
            away_max_nights: self.away_max_nights,
            washbasin_per_h,
            kitchen_per_h,
            bidet_per_h,
            toilet_per_h,
            night_toilet_per_night,
            shower_morning_prob: prob(self.shower_morning_prob),
            shower_evening_prob: prob(self.shower_evening_prob),
            lunch_prob: prob(self.lunch_prob),
            dinner_prob: prob(self.dinner_prob),
            dishwasher_per_day,
            laundry_per_week,
        }
    }
}

/// Day of the week; day 0 of a simulation falls on `first`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Weekday(u8);

impl Weekday {
    pub const MONDAY: Weekday = Weekday(0);

    /// `index` 0 = Monday … 6 = Sunday (taken modulo 7).
    pub fn from_monday(index: u32) -> Self {
        Self((index % 7) as u8)
    }

    /// The weekday of a day given as days since 1970-01-01 (a Thursday).
    pub fn of_unix_day(day: i64) -> Self {
        Self((day + 3).rem_euclid(7) as u8)
    }

    pub fn plus_days(self, days: u32) -> Self {
        Self::from_monday(u32::from(self.0) + days % 7)
    }

    pub fn is_weekend(self) -> bool {
        self.0 >= 5
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drawn_residents_differ_but_stay_plausible() {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let base = ResidentProfile::calibrated();
        let people: Vec<_> = (0..200).map(|_| base.draw(&mut rng)).collect();
        assert!(people.windows(2).all(|w| w[0] != w[1]));
        for p in &people {
            assert!(
                (4.0 * 60.0..11.0 * 60.0).contains(&p.wake_weekday),
                "{}",
                p.wake_weekday
            );
            assert!(p.bed > p.wake_weekend + 12.0 * 60.0);
            for prob in [
                p.outing_prob,
                p.day_out_prob,
                p.away_prob,
                p.lunch_prob,
                p.dinner_prob,
            ] {
                assert!((0.0..=1.0).contains(&prob));
            }
            assert!(p.washbasin_per_h > 0.0 && p.washbasin_per_h < base.washbasin_per_h * 1.5);
        }
    }

    #[test]
    fn unix_day_zero_is_a_thursday_and_weekends_follow() {
        assert_eq!(Weekday::of_unix_day(0), Weekday::from_monday(3));
        assert!(Weekday::of_unix_day(2).is_weekend());
        assert!(Weekday::of_unix_day(3).is_weekend());
        assert!(!Weekday::of_unix_day(4).is_weekend());
        assert_eq!(Weekday::MONDAY.plus_days(13), Weekday::from_monday(6));
    }
}
