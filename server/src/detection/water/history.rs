//! The household's recent rhythm: which local 15-minute slots of the last days had water use, and
//! which had data at all.
//!
//! Design: two 96-bit masks per local day (used, known) in a ring of `DAYS` days: 24 bytes a day,
//! 696 bytes in all, rebuilt by replaying stored readings. Slots are local wall-clock slots, so
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

    fn ordinal(self) -> i64 {
        i64::from(self.day) * i64::from(SLOTS_PER_DAY) + i64::from(self.slot)
    }

    fn from_ordinal(ordinal: i64) -> Self {
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

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct DayMasks {
    used: [u32; 3],
    known: [u32; 3],
}

impl DayMasks {
    fn get(words: &[u32; 3], slot: u32) -> bool {
        words[(slot / 32) as usize] & (1 << (slot % 32)) != 0
    }
    fn set(words: &mut [u32; 3], slot: u32, on: bool) {
        let bit = 1 << (slot % 32);
        let word = &mut words[(slot / 32) as usize];
        if on {
            *word |= bit;
        } else {
            *word &= !bit;
        }
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UseHistory {
    /// The newest local day recorded (`None` before the first slot).
    newest_day: Option<i32>,
    days: [DayMasks; DAYS],
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
            days: [DayMasks::default(); DAYS],
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

    /// Records a completed slot. Slots older than the ring are ignored; a newer day recycles the
    /// ring entries it passes.
    pub fn record(&mut self, at: LocalSlot, used: bool) {
        match self.newest_day {
            Some(newest) if at.day <= newest - DAYS as i32 => return,
            Some(newest) if at.day > newest => {
                let first_new = (newest + 1).max(at.day - DAYS as i32 + 1);
                for day in first_new..=at.day {
                    self.days[Self::index(day)] = DayMasks::default();
                }
                self.newest_day = Some(at.day);
            }
            Some(_) => {}
            None => {
                self.newest_day = Some(at.day);
            }
        }
        let masks = &mut self.days[Self::index(at.day)];
        DayMasks::set(&mut masks.known, at.slot, true);
        if used {
            DayMasks::set(&mut masks.used, at.slot, true);
        }
    }

    /// Forgets the slots from `from` to `to` inclusive: used for absences, which are not the
    /// household's rhythm.
    pub fn forget(&mut self, from: LocalSlot, to: LocalSlot) {
        let mut ordinal = from.ordinal();
        while ordinal <= to.ordinal() {
            let at = LocalSlot::from_ordinal(ordinal);
            if self.holds(at.day) {
                let masks = &mut self.days[Self::index(at.day)];
                DayMasks::set(&mut masks.known, at.slot, false);
                DayMasks::set(&mut masks.used, at.slot, false);
            }
            ordinal += 1;
        }
    }

    /// Whether the slot had data and whether it had use (`None` when unknown or not held).
    pub fn slot(&self, at: LocalSlot) -> Option<bool> {
        if !self.holds(at.day) {
            return None;
        }
        let masks = &self.days[Self::index(at.day)];
        DayMasks::get(&masks.known, at.slot).then(|| DayMasks::get(&masks.used, at.slot))
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
