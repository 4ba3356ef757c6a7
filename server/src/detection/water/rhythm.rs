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
use super::history::{LocalSlot, UseHistory, HISTORY_DAYS, SLOTS_PER_DAY, SLOT_MINUTES};

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
        let len = last.ordinal() - first.ordinal() + 1;
        for days_back in 1..=HISTORY_DAYS {
            let past_first = first.shifted_days(-days_back).ordinal();
            let past_last = last.shifted_days(-days_back).ordinal();
            if past_last + tolerance_slots >= first.ordinal() {
                // The past interval would overlap the current silence itself.
                continue;
            }
            let (dry, same_time_known, same_time_used) =
                compare_day(history, past_first, len, tolerance_slots);
            let comparable = dry || (same_time_known && same_time_used);
            if comparable {
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

/// The `n` lowest bits set (`n` ≤ 128).
fn low_bits(n: i64) -> u128 {
    u32::try_from(n)
        .ok()
        .and_then(|n| 1u128.checked_shl(n))
        .map_or(u128::MAX, |bit| bit - 1)
}

/// Whether a past day had a dry run of `len` slots starting within `tolerance` of `first`, and
/// whether the stretch at the same clock time was fully known and whether it had use.
fn compare_day(history: &UseHistory, first: i64, len: i64, tolerance: i64) -> (bool, bool, bool) {
    let width = len + 2 * tolerance;
    if let Ok(width @ 1..=128) = u32::try_from(width) {
        // Bit-parallel: bit `i` is slot `first - tolerance + i`.
        let (known, used) = history.window(first - tolerance, width);
        let mut runs = known & !used;
        // After the loop, bit `i` is set when slots `i..i + len` are all dry.
        let mut covered = 1;
        while covered < len && runs != 0 {
            let step = covered.min(len - covered);
            runs &= runs >> step;
            covered += step;
        }
        let starts = low_bits(2 * tolerance + 1);
        let same_time = low_bits(len) << tolerance;
        let dry = runs & starts != 0;
        return (dry, known & same_time == same_time, used & same_time != 0);
    }
    // Longer than a window: one pass, slot by slot.
    let (mut dry, mut same_time_known, mut same_time_used) = (false, true, false);
    let mut dry_run_from = None;
    for ordinal in first - tolerance..=first + len - 1 + tolerance {
        let state = history.slot(LocalSlot::from_ordinal(ordinal));
        if (first..first + len).contains(&ordinal) {
            match state {
                None => same_time_known = false,
                Some(used) => same_time_used |= used,
            }
        }
        match state {
            Some(false) => {
                let from = *dry_run_from.get_or_insert(ordinal);
                let start = ordinal - len + 1;
                if start >= from && (start - first).abs() <= tolerance {
                    dry = true;
                }
            }
            None | Some(true) => dry_run_from = None,
        }
    }
    (dry, same_time_known, same_time_used)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detection::water::history::PastStretch;
    use crate::detection::water::synthetic::SplitMix;

    /// The rule as first written: every tolerance shift checked on its own.
    fn over_by_shifts(
        history: &UseHistory,
        first: LocalSlot,
        last: LocalSlot,
        tolerance_slots: i64,
    ) -> PastSilences {
        let mut counts = PastSilences::default();
        for days_back in 1..=HISTORY_DAYS {
            let past_first = first.shifted_days(-days_back);
            let past_last = last.shifted_days(-days_back);
            if past_last.shifted_slots(tolerance_slots) >= first {
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

    #[test]
    fn one_pass_counts_the_same_days_as_checking_every_shift() {
        let mut rng = SplitMix(11);
        for _ in 0..40 {
            // A life with sparse use, some gaps and a forgotten absence.
            let mut h = UseHistory::new();
            let use_share = 0.05 + (rng.next_u64() % 400) as f64 / 1000.0;
            let mut day = 1000;
            let mut slot = 0u32;
            for _ in 0..(30 * 96) {
                if !rng.chance(0.03) {
                    h.record(LocalSlot { day, slot }, rng.chance(use_share));
                }
                slot += 1;
                if slot == 96 {
                    slot = 0;
                    day += 1;
                }
            }
            if rng.chance(0.5) {
                let from = LocalSlot::from_ordinal(1010 * 96 + (rng.next_u64() % 96) as i64);
                h.forget(from, from.shifted_slots((rng.next_u64() % 150) as i64));
            }
            for _ in 0..50 {
                let first = LocalSlot::from_ordinal(1029 * 96 + (rng.next_u64() % 96) as i64);
                let last = first.shifted_slots((rng.next_u64() % 130) as i64);
                for tolerance in [0, 1, 4] {
                    assert_eq!(
                        PastSilences::over(&h, first, last, tolerance),
                        over_by_shifts(&h, first, last, tolerance),
                        "{first:?}..{last:?} ±{tolerance}"
                    );
                }
            }
        }
    }
}
