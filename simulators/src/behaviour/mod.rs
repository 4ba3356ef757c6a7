//! Behaviour models: residents' daily routines turned into the water a meter sees and the
//! activities a pendant would feel.
//!
//! Everything is drawn from a random generator passed in, so a seed reproduces a household
//! exactly. Times are seconds since local midnight of the first simulated day; a scenario
//! places that midnight on the wall clock.

mod fixture;
mod household;
mod resident;

pub use fixture::{Fixture, FixtureUse, UseShape};
pub use household::{simulate_household, Activity, ActivitySpan, HouseholdTrace};
pub use resident::{ClockMinutes, ResidentProfile, Weekday};

pub(crate) use household::{spread, DAY_S};

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn trace(seed: u64, days: u32) -> HouseholdTrace {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        simulate_household(
            &ResidentProfile::calibrated(),
            Weekday::MONDAY,
            days,
            &mut rng,
        )
    }

    #[test]
    fn the_same_seed_reproduces_the_same_household() {
        assert_eq!(trace(11, 30), trace(11, 30));
        assert_ne!(trace(11, 30).uses, trace(12, 30).uses);
    }

    #[test]
    fn activities_cover_every_second_without_overlap() {
        for seed in 0..20 {
            let t = trace(seed, 60);
            let mut at = 0;
            for span in &t.activity {
                assert_eq!(span.start_s, at, "seed {seed}: gap or overlap at {at}");
                assert!(span.end_s > span.start_s);
                at = span.end_s;
            }
            assert_eq!(at, 60 * DAY_S, "seed {seed}");
        }
    }

    #[test]
    fn the_meter_series_holds_every_litre_of_every_use() {
        let t = trace(3, 45);
        let series = t.water_per_minute();
        assert_eq!(series.len(), 45 * 1440);
        let used: u64 = t
            .uses
            .iter()
            .filter(|u| u.end_s() <= 45 * DAY_S)
            .map(|u| u64::from(u.volume_ml))
            .sum();
        let metered: u64 = series.iter().map(|&m| u64::from(m)).sum();
        let cut: u64 = t
            .uses
            .iter()
            .filter(|u| u.end_s() > 45 * DAY_S)
            .map(|u| u64::from(u.volume_ml))
            .sum();
        assert!(
            metered <= used + cut && metered >= used,
            "{metered} vs {used}"
        );
    }

    #[test]
    fn no_water_is_used_while_the_resident_is_away_or_out() {
        let mut saw_away = false;
        for seed in 0..30 {
            let t = trace(seed, 60);
            for u in &t.uses {
                let a = t.activity_at(u.start_s);
                saw_away |= t.activity.iter().any(|s| s.activity == Activity::Away);
                assert!(
                    matches!(a, Some(Activity::Home | Activity::Asleep)),
                    "seed {seed}: {u:?} during {a:?}"
                );
            }
        }
        assert!(
            saw_away,
            "some of 30 residents × 60 days must spend nights away"
        );
    }

    #[test]
    fn an_override_replaces_the_routine_in_its_window_only() {
        let mut t = trace(8, 3);
        let (from, until) = (DAY_S + 9 * 3600, 2 * DAY_S + 9 * 3600);
        let before = t.uses.iter().filter(|u| u.start_s < from).count();
        let after = t.uses.iter().filter(|u| u.start_s >= until).count();
        t.override_activity(from, until, Activity::Incapacitated);
        assert_eq!(t.uses.len(), before + after);
        assert_eq!(t.activity_at(from), Some(Activity::Incapacitated));
        assert_eq!(t.activity_at(until - 1), Some(Activity::Incapacitated));
        assert_ne!(t.activity_at(until), Some(Activity::Incapacitated));
        let mut at = 0;
        for span in &t.activity {
            assert_eq!(span.start_s, at, "spans stay contiguous");
            at = span.end_s;
        }
        assert_eq!(at, 3 * DAY_S);
    }

    #[test]
    fn spreading_a_use_over_minutes_keeps_its_volume() {
        let mut bins = vec![0u32; 4];
        spread(&mut bins, 50, 100, 1000);
        assert_eq!(bins.iter().sum::<u32>(), 1000);
        assert_eq!(bins[0], 100);
        assert_eq!(bins[1], 600);
        assert_eq!(bins[2], 300);
    }
}
