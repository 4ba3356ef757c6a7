//! A seeded synthetic resident who lives at home (the population the water rules are for): used to
//! show what the adaptive rules do on a regular life, next to the real recordings. Not a tuning
//! target: it is a plain behaviour model with the variations DOMAIN.md names (waking time, outings,
//! naps, night toilet visits, the occasional night away).

use chrono::{Offset, TimeZone};

use super::recordings::MinuteSeries;

/// Deterministic pseudo-random numbers (SplitMix64).
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi` (minutes).
    pub fn between(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % (hi - lo).max(1) as u64) as i64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// `days` days of a resident living alone at home, starting at local midnight of 2024-01-01.
pub fn resident_at_home(days: i64, seed: u64, tz: chrono_tz::Tz) -> MinuteSeries {
    let mut rng = SplitMix(seed);
    let start = tz
        .with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
        .earliest()
        .map_or(1_704_067_200, |t| t.timestamp());
    let minutes = days * 1440;
    let mut litres = vec![0.0f64; minutes as usize];
    let mut away_until_day = -1;
    for day in 0..days {
        // The local offset of that day (the series is in UTC minutes).
        let noon = start + day * 86_400 + 12 * 3600;
        let offset = tz
            .offset_from_utc_datetime(
                &chrono::DateTime::from_timestamp(noon, 0)
                    .unwrap_or_default()
                    .naive_utc(),
            )
            .fix()
            .local_minus_utc() as i64;
        let base = (day * 1440) - (offset - tz_offset_at_start(tz, start)) / 60;
        if day <= away_until_day {
            continue;
        }
        if rng.chance(1.0 / 60.0) {
            // A night away (visiting family): leaves after breakfast, back the next evening.
            away_until_day = day;
        }
        let wake = rng.between(6 * 60 + 30, 8 * 60);
        let sleep = rng.between(21 * 60 + 30, 23 * 60 + 30);
        let outing = rng.chance(0.6).then(|| {
            let from = rng.between(9 * 60, 17 * 60);
            (from, from + rng.between(120, 240))
        });
        let nap = rng.chance(0.4).then(|| {
            let from = rng.between(13 * 60, 15 * 60);
            (from, from + rng.between(60, 150))
        });
        let use_at = |minute_of_day: i64, amount: f64, litres: &mut Vec<f64>| {
            let i = base + minute_of_day;
            if (0..minutes).contains(&i) {
                litres[i as usize] += amount;
            }
        };
        let day_end = if away_until_day == day {
            wake + 120
        } else {
            sleep
        };
        let mut t = wake + rng.between(0, 10);
        while t < day_end {
            let busy = outing.is_some_and(|(a, b)| (a..b).contains(&t))
                || nap.is_some_and(|(a, b)| (a..b).contains(&t));
            if !busy {
                let amount = match rng.between(0, 10) {
                    0..=4 => 0.5 + rng.between(0, 20) as f64 / 10.0, // tap
                    5..=8 => 6.0,                                    // flush
                    _ => 8.0 + rng.between(0, 40) as f64 / 2.0,      // washing up, shower
                };
                use_at(t, amount, &mut litres);
            }
            t += rng.between(15, 120);
        }
        if away_until_day != day && rng.chance(0.5) {
            use_at(rng.between(0, 5 * 60) + 1440, 6.0, &mut litres); // a night toilet visit
        }
    }
    MinuteSeries {
        household: format!("synthetic resident at home (seed {seed})"),
        timezone: tz,
        minutes: litres
            .into_iter()
            .enumerate()
            .map(|(i, l)| (start + i as i64 * 60, l))
            .collect(),
    }
}

fn tz_offset_at_start(tz: chrono_tz::Tz, start: i64) -> i64 {
    tz.offset_from_utc_datetime(
        &chrono::DateTime::from_timestamp(start, 0)
            .unwrap_or_default()
            .naive_utc(),
    )
    .fix()
    .local_minus_utc() as i64
}
