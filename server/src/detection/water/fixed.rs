//! The fixed rules: no use in a trailing window, continuous flow, excessive daily use and the leak
//! signature. Times are UTC minutes since the Unix epoch.

/// Centilitres: the fixed rules' volume unit inside the state (fits a minute of any real meter).
pub type Centilitres = u32;

pub fn to_centilitres(litres: f64) -> Centilitres {
    (litres * 100.0).round().clamp(0.0, f64::from(u32::MAX)) as Centilitres
}

/// Recent minutes with use, newest last, enough to find when a trailing window will hold less than
/// a threshold.
///
/// Design: a fixed array of `RECENT_USES` (minute, volume) entries. Only the newest uses that
/// together reach the largest threshold matter (older ones can never decide a deadline again), so
/// older entries are dropped. Only when more than `RECENT_USES` separate uses are still below the
/// threshold are the two closest in time merged, stamped with the later minute: that can only make
/// a no-use alert later (by at most their distance), never earlier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentUses {
    len: u8,
    minutes: [u32; RECENT_USES],
    volumes: [Centilitres; RECENT_USES],
}

pub const RECENT_USES: usize = 8;

impl Default for RecentUses {
    fn default() -> Self {
        Self {
            len: 0,
            minutes: [0; RECENT_USES],
            volumes: [0; RECENT_USES],
        }
    }
}

impl RecentUses {
    pub fn push(&mut self, minute: i64, volume: Centilitres, keep_after: i64, needed: Centilitres) {
        self.drop_before(keep_after);
        if let Some(oldest_needed) = self.latest_reaching(needed) {
            self.drop_before(oldest_needed);
        }
        if usize::from(self.len) == RECENT_USES {
            // Merge the two uses closest in time into the later one: the error is at most their
            // distance, and a no-use alert can only come later for it.
            let closest = (1..RECENT_USES)
                .min_by_key(|&i| self.minutes[i] - self.minutes[i - 1])
                .unwrap_or(1);
            self.volumes[closest] = self.volumes[closest].saturating_add(self.volumes[closest - 1]);
            self.minutes.copy_within(closest.., closest - 1);
            self.volumes.copy_within(closest.., closest - 1);
            self.len -= 1;
        }
        let i = usize::from(self.len);
        self.minutes[i] = minute.clamp(0, i64::from(u32::MAX)) as u32;
        self.volumes[i] = volume;
        self.len += 1;
    }

    fn drop_before(&mut self, minute: i64) {
        let n = usize::from(self.len);
        let keep_from = self.minutes[..n]
            .iter()
            .position(|&m| i64::from(m) >= minute)
            .unwrap_or(n);
        self.minutes.copy_within(keep_from..n, 0);
        self.volumes.copy_within(keep_from..n, 0);
        self.len = (n - keep_from) as u8;
    }

    /// The latest minute `m` such that the uses from `m` on add up to at least `threshold`.
    pub fn latest_reaching(&self, threshold: Centilitres) -> Option<i64> {
        let mut sum: Centilitres = 0;
        for i in (0..usize::from(self.len)).rev() {
            sum = sum.saturating_add(self.volumes[i]);
            if sum >= threshold {
                return Some(i64::from(self.minutes[i]));
            }
        }
        None
    }
}

/// One fixed no-use window's alert state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoUseState {
    pub raised: bool,
    /// A use cleared the alert at this minute; the window re-arms from there.
    pub rearm_after: Option<i64>,
}

/// When a "less than `threshold` in `window` minutes" condition becomes true, given the recent uses
/// and the earliest minute the window may start (data run start, end of an away period, re-arm).
pub fn no_use_deadline(
    uses: &RecentUses,
    threshold: Centilitres,
    window: i64,
    earliest_start: i64,
) -> i64 {
    let last_heavy = uses.latest_reaching(threshold).map_or(i64::MIN, |m| m + 1);
    last_heavy.max(earliest_start).saturating_add(window)
}

/// Flow in every minute: the length of the current run of minutes with flow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContinuousFlow {
    pub run_minutes: u32,
    pub raised: bool,
}

/// Litres used in the current local day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DailyVolume {
    pub day: i32,
    /// The UTC 15-minute slot (minutes / 15) `day` was last looked up for.
    pub slot: i64,
    pub volume: Centilitres,
    pub raised: bool,
}

/// The leak signature: which of the last half-hours had some flow.
///
/// Design: bit 0 is the newest completed half-hour; a half-hour without data counts as without
/// flow, so a data gap can never complete a leak signature.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LeakSignature {
    pub half_hour: i64,
    pub current_has_flow: bool,
    pub completed: u64,
    pub raised: bool,
}

impl LeakSignature {
    pub const HALF_HOUR: i64 = 30;

    /// Closes the half-hours before `minute`'s one; returns true if any were closed.
    pub fn advance_to(&mut self, minute: i64) {
        let half_hour = minute.div_euclid(Self::HALF_HOUR);
        if half_hour <= self.half_hour {
            return;
        }
        let closed = half_hour - self.half_hour;
        let mut completed = if closed >= 64 {
            0
        } else {
            self.completed << closed
        };
        // The half-hour just closed is bit (closed - 1); later ones had no data: bit 0.
        if self.current_has_flow && closed <= 64 {
            completed |= 1 << (closed - 1);
        }
        self.completed = completed;
        self.half_hour = half_hour;
        self.current_has_flow = false;
    }

    pub fn all_flowing(&self, half_hours: u32) -> bool {
        let mask = if half_hours >= 64 {
            u64::MAX
        } else {
            (1u64 << half_hours) - 1
        };
        self.completed & mask == mask
    }

    pub fn newest_completed_dry(&self) -> bool {
        self.completed & 1 == 0
    }
}
