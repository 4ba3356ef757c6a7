//! The household's recent rhythm: which local 15-minute slots of the last days had water use, and
//! which had data at all.
//!
//! Design: a 96-bit use mask per local day in a ring of `DAYS` days (348 bytes), and which slots
//! had data as the few stretches without it; rebuilt by replaying stored readings. Slots are local wall-clock slots, so
//! "07:00–07:15" means the same to the resident on a DST day: on the spring-forward day the
//! skipped hour's slots stay unknown, on the fall-back day the repeated hour's two passes are
//! merged into the same slots.

use chrono::{Offset, TimeZone};
use chrono_tz::Tz;

/// Slots per local day.
pub const SLOTS_PER_DAY: u32 = 96;
/// Minutes per slot.
pub const SLOT_MINUTES: i64 = 15;
/// Days kept: today plus the 28 days the adaptive rules learn from.
pub const DAYS: usize = 29;
/// Past days the adaptive rules compare with.
pub const HISTORY_DAYS: i32 = 28;

/// A local wall-clock slot: the local date (days since 1970-01-01) and the slot of that day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LocalSlot {
    pub day: i32,
    pub slot: u32,
}

impl LocalSlot {
    /// The local slot containing the UTC minute `minute` (minutes since the Unix epoch).
    pub fn of_minute(tz: Tz, minute: i64) -> Self {
        let secs = minute * 60;
        let offset = match tz.timestamp_opt(secs, 0) {
            chrono::LocalResult::Single(dt) => i64::from(dt.offset().fix().local_minus_utc()),
            // A UTC instant always maps to exactly one local time; keep UTC if chrono disagrees.
            chrono::LocalResult::Ambiguous(dt, _) => i64::from(dt.offset().fix().local_minus_utc()),
            chrono::LocalResult::None => 0,
        };
        let local = secs + offset;
        Self {
            day: local.div_euclid(86_400) as i32,
            slot: (local.rem_euclid(86_400) / (SLOT_MINUTES * 60)) as u32,
        }
    }

    /// Local minutes since the start of the local day.
    pub fn minute_of_day(self) -> u32 {
        self.slot * SLOT_MINUTES as u32
    }

    pub fn ordinal(self) -> i64 {
        i64::from(self.day) * i64::from(SLOTS_PER_DAY) + i64::from(self.slot)
    }

    pub fn from_ordinal(ordinal: i64) -> Self {
        Self {
            day: ordinal.div_euclid(i64::from(SLOTS_PER_DAY)) as i32,
            slot: ordinal.rem_euclid(i64::from(SLOTS_PER_DAY)) as u32,
        }
    }

    pub fn shifted_slots(self, slots: i64) -> Self {
        Self::from_ordinal(self.ordinal() + slots)
    }

    pub fn shifted_days(self, days: i32) -> Self {
        Self {
            day: self.day + days,
            slot: self.slot,
        }
    }
}

fn mask_get(words: &[u32; 3], slot: u32) -> bool {
    words[(slot / 32) as usize] & (1 << (slot % 32)) != 0
}

fn mask_set(words: &mut [u32; 3], slot: u32, on: bool) {
    let bit = 1 << (slot % 32);
    let word = &mut words[(slot / 32) as usize];
    if on {
        *word |= bit;
    } else {
        *word &= !bit;
    }
}

/// What the history says about one past stretch of local slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PastStretch {
    /// Some slot had no data (a gap or an absence that was forgotten): not comparable.
    Unknown,
    Dry,
    Used,
}

/// Per-slot use and data coverage of the last `DAYS` local days.
///
/// Design: coverage is nearly always whole (boards report every slot), so it is kept as the
/// exceptions: the span from the first to the newest recorded slot, minus the stretches without
/// data inside it (gaps, forgotten absences), which are few and usually none. That keeps a
/// household's history at the use masks' 348 bytes plus a few words, instead of a second mask
/// per day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UseHistory {
    /// The newest local day recorded (`None` before the first slot).
    newest_day: Option<i32>,
    /// Slots with use, one 96-bit mask per local day of the ring.
    used: [[u32; 3]; DAYS],
    /// First and newest slot recorded (ordinals); nothing outside is known.
    first: i64,
    newest: i64,
    /// Stretches without data between `first` and `newest`, inclusive, sorted and disjoint.
    unknown: Vec<(i64, i64)>,
}

impl Default for UseHistory {
    fn default() -> Self {
        Self::new()
    }
}

impl UseHistory {
    pub fn new() -> Self {
        Self {
            newest_day: None,
            used: [[0; 3]; DAYS],
            first: 0,
            newest: -1,
            unknown: Vec::new(),
        }
    }

    fn index(day: i32) -> usize {
        day.rem_euclid(DAYS as i32) as usize
    }

    fn holds(&self, day: i32) -> bool {
        match self.newest_day {
            Some(newest) => day <= newest && day > newest - DAYS as i32,
            None => false,
        }
    }

    /// Whether the slot at `ordinal` had data (its day must be held).
    fn known(&self, ordinal: i64) -> bool {
        ordinal >= self.first
            && ordinal <= self.newest
            && !self
                .unknown
                .iter()
                .any(|&(from, to)| from <= ordinal && ordinal <= to)
    }

    /// Adds `from..=to` to the stretches without data, keeping them sorted and merged.
    fn mark_unknown(&mut self, from: i64, to: i64) {
        if from > to {
            return;
        }
        self.unknown.push((from, to));
        self.unknown.sort_unstable();
        let mut merged: Vec<(i64, i64)> = Vec::with_capacity(self.unknown.len());
        for &(from, to) in &self.unknown {
            match merged.last_mut() {
                Some(last) if from <= last.1 + 1 => last.1 = last.1.max(to),
                _ => merged.push((from, to)),
            }
        }
        self.unknown = merged;
    }

    /// Takes `ordinal` out of the stretches without data.
    fn mark_known(&mut self, ordinal: i64) {
        let Some(i) = self
            .unknown
            .iter()
            .position(|&(from, to)| from <= ordinal && ordinal <= to)
        else {
            return;
        };
        let (from, to) = self.unknown.remove(i);
        if ordinal < to {
            self.unknown.insert(i, (ordinal + 1, to));
        }
        if from < ordinal {
            self.unknown.insert(i, (from, ordinal - 1));
        }
    }

    /// Records a completed slot. Slots older than the ring are ignored; a newer day recycles the
    /// ring entries it passes.
    pub fn record(&mut self, at: LocalSlot, used: bool) {
        match self.newest_day {
            Some(newest) if at.day <= newest - DAYS as i32 => return,
            Some(newest) if at.day > newest => {
                let first_new = (newest + 1).max(at.day - DAYS as i32 + 1);
                for day in first_new..=at.day {
                    self.used[Self::index(day)] = [0; 3];
                }
                self.newest_day = Some(at.day);
            }
            Some(_) => {}
            None => {
                self.newest_day = Some(at.day);
                self.first = at.ordinal();
                self.newest = at.ordinal();
            }
        }
        let ordinal = at.ordinal();
        if ordinal > self.newest {
            // The slots skipped since the newest one had no data.
            self.mark_unknown(self.newest + 1, ordinal - 1);
            self.newest = ordinal;
        } else if ordinal < self.first {
            self.mark_unknown(ordinal + 1, self.first - 1);
            self.first = ordinal;
        } else {
            self.mark_known(ordinal);
        }
        // What has left the ring is forgotten.
        let newest_day = self.newest_day.unwrap_or(at.day);
        let oldest = LocalSlot {
            day: newest_day - DAYS as i32 + 1,
            slot: 0,
        }
        .ordinal();
        if self.first < oldest {
            self.first = oldest;
            self.unknown.retain(|&(_, to)| to >= oldest);
        }
        if used {
            mask_set(&mut self.used[Self::index(at.day)], at.slot, true);
        }
    }

    /// Forgets the slots from `from` to `to` inclusive: used for absences, which are not the
    /// household's rhythm.
    pub fn forget(&mut self, from: LocalSlot, to: LocalSlot) {
        let mut ordinal = from.ordinal();
        while ordinal <= to.ordinal() {
            let at = LocalSlot::from_ordinal(ordinal);
            if self.holds(at.day) {
                mask_set(&mut self.used[Self::index(at.day)], at.slot, false);
            }
            ordinal += 1;
        }
        self.mark_unknown(from.ordinal(), to.ordinal());
    }

    /// Whether the slot had data and whether it had use (`None` when unknown or not held).
    pub fn slot(&self, at: LocalSlot) -> Option<bool> {
        if !self.holds(at.day) {
            return None;
        }
        self.known(at.ordinal())
            .then(|| mask_get(&self.used[Self::index(at.day)], at.slot))
    }

    /// Which of the `len` slots from ordinal `from` on had data, and which had use, as bits
    /// (bit `i`: slot `from + i`); `len` ≤ 128.
    pub fn window(&self, from: i64, len: u32) -> (u128, u128) {
        debug_assert!(len <= 128);
        let to = from + i64::from(len) - 1;
        // Bits `a..=b` (ordinals) of the window.
        let bits = |a: i64, b: i64| -> u128 {
            let (a, b) = (a.max(from), b.min(to));
            if a > b {
                return 0;
            }
            let width = (b - a + 1) as u32;
            let ones = if width == 128 {
                u128::MAX
            } else {
                (1u128 << width) - 1
            };
            ones << (a - from) as u32
        };
        let Some(newest_day) = self.newest_day else {
            return (0, 0);
        };
        let held_from = LocalSlot {
            day: newest_day - DAYS as i32 + 1,
            slot: 0,
        }
        .ordinal();
        let mut known = bits(self.first.max(held_from), self.newest);
        for &(a, b) in &self.unknown {
            known &= !bits(a, b);
        }
        let mut used = 0u128;
        let per_day = i64::from(SLOTS_PER_DAY);
        for day in from.div_euclid(per_day)..=to.div_euclid(per_day) {
            let Ok(day) = i32::try_from(day) else {
                continue;
            };
            if !self.holds(day) {
                continue;
            }
            let w = self.used[Self::index(day)];
            let day_bits = u128::from(w[0]) | u128::from(w[1]) << 32 | u128::from(w[2]) << 64;
            let day_start = i64::from(day) * per_day;
            // Place the day's slot 0 at bit `day_start - from` of the window.
            let placed = if day_start >= from {
                day_bits.checked_shl((day_start - from) as u32).unwrap_or(0)
            } else {
                day_bits.checked_shr((from - day_start) as u32).unwrap_or(0)
            };
            used |= placed;
        }
        let all = bits(from, to);
        (known & all, used & known & all)
    }

    /// Classifies the stretch of slots `from..=to`.
    pub fn stretch(&self, from: LocalSlot, to: LocalSlot) -> PastStretch {
        let mut ordinal = from.ordinal();
        let mut result = PastStretch::Dry;
        while ordinal <= to.ordinal() {
            match self.slot(LocalSlot::from_ordinal(ordinal)) {
                None => return PastStretch::Unknown,
                Some(true) => result = PastStretch::Used,
                Some(false) => {}
            }
            ordinal += 1;
        }
        result
    }

    /// The first used slot of `day` at or after `from_slot`, if every slot before it is known and it
    /// comes before `until_slot`.
    pub fn first_use(&self, day: i32, from_slot: u32, until_slot: u32) -> Option<u32> {
        for slot in from_slot..until_slot.min(SLOTS_PER_DAY) {
            match self.slot(LocalSlot { day, slot }) {
                None => return None,
                Some(true) => return Some(slot),
                Some(false) => {}
            }
        }
        None
    }
}

/// The next UTC minute at which a new local slot starts, after `minute`.
pub fn next_slot_boundary(minute: i64) -> i64 {
    (minute.div_euclid(SLOT_MINUTES) + 1) * SLOT_MINUTES
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(day: i32, slot: u32) -> LocalSlot {
        LocalSlot { day, slot }
    }

    #[test]
    fn recorded_slots_are_known_and_skipped_ones_are_not() {
        let mut h = UseHistory::new();
        h.record(at(100, 10), true);
        h.record(at(100, 11), false);
        // Slots 12..=19 had no data.
        h.record(at(100, 20), false);
        assert_eq!(h.slot(at(100, 9)), None, "before the first record");
        assert_eq!(h.slot(at(100, 10)), Some(true));
        assert_eq!(h.slot(at(100, 11)), Some(false));
        assert_eq!(h.slot(at(100, 12)), None);
        assert_eq!(h.slot(at(100, 19)), None);
        assert_eq!(h.slot(at(100, 20)), Some(false));
        assert_eq!(h.slot(at(100, 21)), None, "after the newest record");
        assert_eq!(h.stretch(at(100, 10), at(100, 11)), PastStretch::Used);
        assert_eq!(h.stretch(at(100, 11), at(100, 12)), PastStretch::Unknown);
    }

    #[test]
    fn a_slot_recorded_again_inside_a_gap_becomes_known() {
        let mut h = UseHistory::new();
        h.record(at(5, 0), false);
        h.record(at(5, 10), false);
        // The fall-back hour's second pass, or a late slot: only that slot becomes known.
        h.record(at(5, 4), true);
        assert_eq!(h.slot(at(5, 3)), None);
        assert_eq!(h.slot(at(5, 4)), Some(true));
        assert_eq!(h.slot(at(5, 5)), None);
        assert_eq!(
            h.unknown,
            vec![(5 * 96 + 1, 5 * 96 + 3), (5 * 96 + 5, 5 * 96 + 9)]
        );
    }

    #[test]
    fn forgotten_slots_are_unknown_and_lose_their_use() {
        let mut h = UseHistory::new();
        for slot in 0..96 {
            h.record(at(7, slot), slot % 2 == 0);
        }
        h.forget(at(7, 10), at(7, 20));
        assert_eq!(h.slot(at(7, 9)), Some(false));
        assert_eq!(h.slot(at(7, 10)), None);
        assert_eq!(h.slot(at(7, 20)), None);
        assert_eq!(h.slot(at(7, 22)), Some(true));
    }

    #[test]
    fn days_leaving_the_ring_are_forgotten_with_their_gaps() {
        let mut h = UseHistory::new();
        h.record(at(0, 0), true);
        h.record(at(0, 50), true);
        for day in 1..=40 {
            for slot in 0..96 {
                h.record(at(day, slot), slot == 30);
            }
        }
        assert!(h.unknown.is_empty(), "the day-0 gap left the ring");
        assert_eq!(h.slot(at(40 - DAYS as i32, 30)), None);
        assert_eq!(h.slot(at(40 - DAYS as i32 + 1, 30)), Some(true));
        assert_eq!(h.slot(at(40 - DAYS as i32 + 1, 31)), Some(false));
        // A jump over whole days leaves them unknown, and recycled days keep no old use.
        h.record(at(45, 0), false);
        for day in 41..45 {
            assert_eq!(h.slot(at(day, 30)), None, "day {day}");
        }
        assert_eq!(h.first_use(45, 0, 1), None);
        assert!(std::mem::size_of::<UseHistory>() <= 400);
    }
}
