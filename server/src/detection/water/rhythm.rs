//! The adaptive rules: judge the current silence, and the morning, against the household's own
//! last 28 days.
//!
//! Unusual silence: the current silence began at local time `s` and it is now `t`. On each of the
//! last 28 days the history says whether a silence as long as `s..t` started within the time
//! tolerance (±1 h) of `s`, whether the day had use then, or whether it is not comparable (data
//! missing, an absence that was forgotten, or an interval that would overlap the current silence). With `dry` of `comparable` days dry, the smoothed share
//! `(dry + 1) / (comparable + 2)` estimates how often this household is silent over that
//! interval; when it falls below `max_dry_share` the silence is unusual. A household that is
//! always out on weekday afternoons has many dry afternoons and is left alone; one that always
//! uses water by 09:00 is noticed soon after.

use super::config::{MorningCheck, UnusualSilence};
use super::history::{
    LocalSlot, PastStretch, UseHistory, HISTORY_DAYS, SLOTS_PER_DAY, SLOT_MINUTES,
};

/// How the current silence compares with the same clock interval on past days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PastSilences {
    pub comparable: u32,
    pub dry: u32,
}

impl PastSilences {
    /// Counts past days that had a silence as long as `first..=last` starting within
    /// `tolerance_slots` of the same clock time (people do not keep to the minute).
    pub fn over(
        history: &UseHistory,
        first: LocalSlot,
        last: LocalSlot,
        tolerance_slots: i64,
    ) -> Self {
        let mut counts = Self::default();
        for days_back in 1..=HISTORY_DAYS {
            let past_first = first.shifted_days(-days_back);
            let past_last = last.shifted_days(-days_back);
            if past_last.shifted_slots(tolerance_slots) >= first {
                // The past interval would overlap the current silence itself.
                continue;
            }
            let mut comparable = false;
            let mut dry = false;
            for shift in (0..=tolerance_slots).flat_map(|k| [k, -k]) {
                match history.stretch(
                    past_first.shifted_slots(shift),
                    past_last.shifted_slots(shift),
                ) {
                    PastStretch::Unknown => {}
                    PastStretch::Dry => {
                        comparable = true;
                        dry = true;
                        break;
                    }
                    PastStretch::Used => comparable |= shift == 0,
                }
            }
            if comparable || dry {
                counts.comparable += 1;
                counts.dry += u32::from(dry);
            }
        }
        counts
    }

    /// The smoothed share of comparable days that were dry (Laplace's rule of succession).
    pub fn dry_share(self) -> f64 {
        f64::from(self.dry + 1) / f64::from(self.comparable + 2)
    }

    pub fn is_unusual(self, rule: &UnusualSilence) -> bool {
        self.comparable >= rule.min_history_days && self.dry_share() < rule.max_dry_share
    }
}

/// The slot by which the household usually has used water on a day, plus the rule's margin; `None`
/// until enough past days show a morning first use.
pub fn morning_due_slot(history: &UseHistory, today: i32, rule: &MorningCheck) -> Option<u32> {
    let from = rule.day_starts_at_hour * 60 / SLOT_MINUTES as u32;
    let until = rule.latest_usual_hour * 60 / SLOT_MINUTES as u32;
    let mut firsts = [0u32; HISTORY_DAYS as usize];
    let mut n = 0;
    for days_back in 1..=HISTORY_DAYS {
        if let Some(slot) = history.first_use(today - days_back, from, until) {
            firsts[n] = slot;
            n += 1;
        }
    }
    if (n as u32) < rule.min_history_days || n == 0 {
        return None;
    }
    let firsts = &mut firsts[..n];
    firsts.sort_unstable();
    let median = firsts[n / 2];
    // The alert slot is the one that *starts* margin after the usual first-use slot ends.
    let due = median + 1 + rule.margin_minutes.div_ceil(SLOT_MINUTES as u32);
    (due < SLOTS_PER_DAY).then_some(due)
}
