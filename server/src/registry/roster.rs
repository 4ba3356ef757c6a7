//! Who is on duty when: shifts evaluated against an instant in the site's own timezone.
//!
//! Weekly shifts are wall-clock rules ("Mon–Fri 08:00–20:00 local"), so the instant is turned
//! into the site's local date and time first; a shift therefore follows daylight-saving changes
//! the way the people on the rota do.

use chrono::{DateTime, Datelike, Utc};
use chrono_tz::Tz;

use super::model::{Shift, ShiftSchedule};

/// Whether `shift` covers instant `at` at a site in timezone `tz`.
pub fn covers(schedule: &ShiftSchedule, tz: Tz, at: DateTime<Utc>) -> bool {
    match schedule {
        ShiftSchedule::Dated { start, end } => *start <= at && at < *end,
        ShiftSchedule::Weekly { days, start, end } => {
            let local = at.with_timezone(&tz);
            let day = local.weekday();
            let time = local.time();
            if start < end {
                days.contains(&day) && *start <= time && time < *end
            } else {
                // Past midnight: the evening part belongs to `day`, the morning part to the
                // shift that started the day before.
                (days.contains(&day) && time >= *start)
                    || (days.contains(&day.pred()) && time < *end)
            }
        }
    }
}

/// The shifts of one site that are on duty at `at`, in the order given.
pub fn on_duty(shifts: &[Shift], tz: Tz, at: DateTime<Utc>) -> Vec<&Shift> {
    shifts
        .iter()
        .filter(|s| covers(&s.schedule, tz, at))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveTime, TimeZone, Weekday};

    fn weekly(days: &[Weekday], start: &str, end: &str) -> ShiftSchedule {
        ShiftSchedule::Weekly {
            days: days.to_vec(),
            start: start.parse::<NaiveTime>().unwrap(),
            end: end.parse::<NaiveTime>().unwrap(),
        }
    }

    #[test]
    fn weekday_day_shift_is_evaluated_in_the_site_timezone() {
        let s = weekly(&[Weekday::Mon], "08:00", "20:00");
        // Monday 2026-11-30 07:30 in Shanghai is Monday 23:30 UTC the day before.
        let tz = chrono_tz::Asia::Shanghai;
        let at = Utc.with_ymd_and_hms(2026, 11, 29, 23, 30, 0).unwrap();
        assert!(!covers(&s, tz, at));
        let at = Utc.with_ymd_and_hms(2026, 11, 30, 0, 30, 0).unwrap(); // 08:30 local
        assert!(covers(&s, tz, at));
        let at = Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap(); // 20:00 local
        assert!(!covers(&s, tz, at), "end is exclusive");
    }

    #[test]
    fn night_shift_runs_past_midnight_into_the_next_day() {
        let s = weekly(&[Weekday::Fri], "22:00", "06:00");
        let tz = chrono_tz::UTC;
        let fri_23 = Utc.with_ymd_and_hms(2026, 12, 4, 23, 0, 0).unwrap();
        let sat_05 = Utc.with_ymd_and_hms(2026, 12, 5, 5, 0, 0).unwrap();
        let sat_07 = Utc.with_ymd_and_hms(2026, 12, 5, 7, 0, 0).unwrap();
        let fri_05 = Utc.with_ymd_and_hms(2026, 12, 4, 5, 0, 0).unwrap();
        assert!(covers(&s, tz, fri_23));
        assert!(covers(&s, tz, sat_05));
        assert!(!covers(&s, tz, sat_07));
        assert!(
            !covers(&s, tz, fri_05),
            "Friday morning belongs to Thursday's night"
        );
    }

    #[test]
    fn weekly_shift_follows_daylight_saving_wall_clock() {
        let s = weekly(&[Weekday::Mon], "08:00", "09:00");
        let tz = chrono_tz::Europe::Berlin;
        // Winter: 08:30 local = 07:30 UTC; summer: 08:30 local = 06:30 UTC.
        assert!(covers(
            &s,
            tz,
            Utc.with_ymd_and_hms(2026, 1, 5, 7, 30, 0).unwrap()
        ));
        assert!(covers(
            &s,
            tz,
            Utc.with_ymd_and_hms(2026, 7, 6, 6, 30, 0).unwrap()
        ));
        assert!(!covers(
            &s,
            tz,
            Utc.with_ymd_and_hms(2026, 7, 6, 7, 30, 0).unwrap()
        ));
    }

    #[test]
    fn dated_shift_is_half_open() {
        let start = Utc.with_ymd_and_hms(2026, 12, 24, 18, 0, 0).unwrap();
        let end = Utc.with_ymd_and_hms(2026, 12, 25, 6, 0, 0).unwrap();
        let s = ShiftSchedule::Dated { start, end };
        assert!(covers(&s, chrono_tz::UTC, start));
        assert!(!covers(&s, chrono_tz::UTC, end));
    }
}
