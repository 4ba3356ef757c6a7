//! The per-household water detector: data coverage, silences and the rules' alert states.

use std::collections::VecDeque;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::config::{NoUseWindow, WaterRules};
use super::fixed::{
    no_use_deadline, to_centilitres, Centilitres, ContinuousFlow, DailyVolume, LeakSignature,
    NoUseState, RecentUses,
};
use super::history::{next_slot_boundary, LocalSlot, UseHistory, SLOT_MINUTES};

mod adaptive;
use crate::alerts::{AlertKind, Severity};

/// The most water one household meter can pass in a minute; more is a corrupt reading.
const MAX_LITRES_PER_MINUTE: f64 = 1000.0;

/// What the detector asks the alert layer to do.
#[derive(Debug, Clone, PartialEq)]
pub enum WaterAction {
    Raise {
        kind: AlertKind,
        severity: Severity,
        at: DateTime<Utc>,
        /// This rule was held back while the resident was marked away until this time.
        suppressed_while_away_until: Option<DateTime<Utc>>,
    },
    Clear {
        kind: AlertKind,
        at: DateTime<Utc>,
    },
    /// A no-use rule would have raised, but the resident is marked away.
    Suppressed {
        kind: AlertKind,
        at: DateTime<Utc>,
        away_until: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WaterInputError {
    #[error("reading for minute {minute} is not after the last one ({last}): duplicate")]
    DuplicateReading {
        minute: DateTime<Utc>,
        last: DateTime<Utc>,
    },
    #[error("reading for minute {minute} is older than the last one ({last}): late")]
    LateReading {
        minute: DateTime<Utc>,
        last: DateTime<Utc>,
    },
    #[error("volume {litres} L in one minute is not a meter reading (expected 0..={max} L)")]
    InvalidVolume { litres: f64, max: f64 },
    #[error("unknown IANA timezone {0:?}")]
    UnknownTimezone(String),
}

/// Rejected inputs, for the metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InputStats {
    pub duplicate: u32,
    pub late: u32,
    pub invalid: u32,
}

const NO_USE_FAMILY: [AlertKind; 4] = [
    AlertKind::WaterNoUse,
    AlertKind::WaterNoUseSevere,
    AlertKind::WaterUnusualSilence,
    AlertKind::WaterMorningCheck,
];

fn family_bit(kind: AlertKind) -> u8 {
    match NO_USE_FAMILY.iter().position(|k| *k == kind) {
        Some(i) => 1 << i,
        None => 0,
    }
}

fn minute_of(t: DateTime<Utc>) -> i64 {
    t.timestamp().div_euclid(60)
}

fn time_of(minute: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(minute.saturating_mul(60), 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FixedWindow {
    Regular,
    Severe,
}

/// The morning check's state for the current local day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct MorningState {
    pub(super) day: i32,
    /// `u8::MAX` when the check does not speak today (too little history, disabled).
    pub(super) due_slot: u8,
    /// The check already raised today (one morning alert a day at most).
    pub(super) raised_today: bool,
}

/// One household's water detector. About 1 KiB of state; see `memory_per_household` in the tests.
#[derive(Debug, Clone)]
pub struct WaterDetector {
    rules: Arc<WaterRules>,
    tz: Tz,
    away_until: Option<i64>,
    /// Start of the current contiguous run of data (after the last data gap), UTC minute.
    run_start: Option<i64>,
    /// End (exclusive) of the last minute with data.
    known_until: i64,
    /// The time rules were last evaluated at: deadlines up to it are done.
    evaluated_until: i64,
    /// Start of the slot being accumulated, and what it holds so far.
    slot_start: i64,
    slot_volume: Centilitres,
    slot_has_data: bool,
    /// Start of the current silence (no slot with use since), slot-aligned; `None` while the
    /// current slot already has use.
    silence_start: Option<i64>,
    /// The current silence already produced its adaptive alert (unusual silence or morning check).
    silence_alerted: bool,
    unusual_raised: bool,
    morning_raised: bool,
    morning: MorningState,
    /// No-use-family kinds suppressed during the current away period (bit per kind).
    suppressed: u8,
    /// The away period changed since the last evaluation: a deadline may now lie in the past.
    away_changed: bool,
    history: UseHistory,
    uses: RecentUses,
    no_use: NoUseState,
    severe: NoUseState,
    flow: ContinuousFlow,
    daily: DailyVolume,
    leak: LeakSignature,
    stats: InputStats,
    actions: VecDeque<WaterAction>,
}

impl WaterDetector {
    pub fn new(rules: Arc<WaterRules>, tz: Tz) -> Self {
        Self {
            rules,
            tz,
            away_until: None,
            run_start: None,
            known_until: 0,
            evaluated_until: i64::MIN,
            slot_start: 0,
            slot_volume: 0,
            slot_has_data: false,
            silence_start: None,
            silence_alerted: false,
            unusual_raised: false,
            morning_raised: false,
            morning: MorningState {
                day: i32::MIN,
                due_slot: u8::MAX,
                raised_today: false,
            },
            suppressed: 0,
            away_changed: false,
            history: UseHistory::new(),
            uses: RecentUses::default(),
            no_use: NoUseState::default(),
            severe: NoUseState::default(),
            flow: ContinuousFlow::default(),
            daily: DailyVolume::default(),
            leak: LeakSignature::default(),
            stats: InputStats::default(),
            actions: VecDeque::new(),
        }
    }

    /// Rebuilds the state after a restart by replaying stored readings (in minute order), then
    /// advances to `now`. Alerts the replay re-derives are dropped, except the ones still due at
    /// `now`, which the alert layer deduplicates against its open alerts.
    pub fn rebuild(
        rules: Arc<WaterRules>,
        tz: Tz,
        away_until: Option<DateTime<Utc>>,
        readings: impl IntoIterator<Item = (DateTime<Utc>, f64)>,
        now: DateTime<Utc>,
    ) -> Self {
        let mut detector = Self::new(rules, tz);
        detector.set_away_until(away_until);
        for (minute, litres) in readings {
            let end = minute + chrono::Duration::minutes(1);
            // Invalid or repeated stored readings were rejected when they first arrived too.
            let _ = detector.handle_reading(minute, litres, end.min(now));
        }
        detector.actions.clear();
        detector.handle_timeout(now);
        detector
    }

    pub fn stats(&self) -> InputStats {
        self.stats
    }

    pub fn history(&self) -> &UseHistory {
        &self.history
    }

    /// Marks the resident away until `until` (or not away): no-use rules are held back meanwhile
    /// and their clocks restart when the away period ends.
    pub fn set_away_until(&mut self, until: Option<DateTime<Utc>>) {
        self.away_until = until.map(minute_of);
        self.suppressed = 0;
        self.away_changed = true;
    }

    #[must_use]
    pub fn poll_action(&mut self) -> Option<WaterAction> {
        self.actions.pop_front()
    }

    /// Feeds the litres used in the minute starting at `minute_start`.
    pub fn handle_reading(
        &mut self,
        minute_start: DateTime<Utc>,
        litres: f64,
        now: DateTime<Utc>,
    ) -> Result<(), WaterInputError> {
        if !litres.is_finite() || !(0.0..=MAX_LITRES_PER_MINUTE).contains(&litres) {
            self.stats.invalid += 1;
            return Err(WaterInputError::InvalidVolume {
                litres,
                max: MAX_LITRES_PER_MINUTE,
            });
        }
        let minute = minute_of(minute_start);
        if self.run_start.is_some() && minute < self.known_until {
            let last = time_of(self.known_until - 1);
            return Err(if minute == self.known_until - 1 {
                self.stats.duplicate += 1;
                WaterInputError::DuplicateReading {
                    minute: minute_start,
                    last,
                }
            } else {
                self.stats.late += 1;
                WaterInputError::LateReading {
                    minute: minute_start,
                    last,
                }
            });
        }
        // Deadlines up to `evaluated_until` were judged already; only an away period that
        // changed since can have moved one into the past.
        if minute > self.evaluated_until || self.away_changed {
            self.evaluate(minute);
        }
        self.begin_minute(minute);
        self.apply_minute(minute, to_centilitres(litres));
        // Readings may be replayed from a backlog: judge them at their own time, not at `now`;
        // the driver's `handle_timeout(now)` moves on from there.
        self.evaluate(minute_of(now).min(minute + 1));
        Ok(())
    }

    /// Advances the virtual clock: fires every rule due by `now` that the data supports.
    pub fn handle_timeout(&mut self, now: DateTime<Utc>) {
        self.evaluate(minute_of(now));
    }

    /// When to call [`Self::handle_timeout`] next; `None` when only new data can change anything.
    pub fn next_deadline(&self) -> Option<DateTime<Utc>> {
        self.run_start?;
        let horizon = self.horizon();
        let mut next = i64::MAX;
        let mut consider = |deadline: i64| {
            if deadline <= horizon && deadline > self.evaluated_until {
                next = next.min(deadline);
            }
        };
        for (rule, state) in [
            (&self.rules.no_use, &self.no_use),
            (&self.rules.no_use_severe, &self.severe),
        ] {
            if rule.enabled && !state.raised && !(rule.only_as_backstop && self.any_no_use_open()) {
                consider(self.effective_no_use_deadline(rule, state));
            }
        }
        let adaptive = self.rules.unusual_silence.enabled || self.rules.morning_check.enabled;
        if adaptive && self.silence_start.is_some() && !self.silence_alerted {
            consider(next_slot_boundary(
                self.evaluated_until.max(self.known_until - 1),
            ));
        }
        (next != i64::MAX).then(|| time_of(next))
    }

    /// The latest minute rules may be evaluated at: data plus the bridge.
    fn horizon(&self) -> i64 {
        self.known_until + i64::from(self.rules.max_bridged_gap_minutes)
    }

    fn no_use_deadline_for(&self, rule: &NoUseWindow, state: &NoUseState) -> i64 {
        let mut earliest = self.run_start.unwrap_or(i64::MAX);
        if let Some(rearm) = state.rearm_after {
            earliest = earliest.max(rearm);
        }
        no_use_deadline(
            &self.uses,
            to_centilitres(rule.litres),
            i64::from(rule.hours) * 60,
            earliest,
        )
    }

    /// Handles the hole (if any) before a reading for `minute`.
    fn begin_minute(&mut self, minute: i64) {
        let Some(_) = self.run_start else {
            self.start_run(minute);
            return;
        };
        let hole = minute - self.known_until;
        if hole > i64::from(self.rules.max_bridged_gap_minutes) {
            self.close_slots_until(self.known_until);
            self.close_open_slot();
            self.start_run(minute);
        } else {
            if hole > 0 {
                // A missing minute is not a minute of flow.
                self.end_flow_run(self.known_until);
            }
            self.close_slots_until(minute);
        }
    }

    fn start_run(&mut self, minute: i64) {
        self.run_start = Some(minute);
        self.known_until = minute;
        self.slot_start = minute.div_euclid(SLOT_MINUTES) * SLOT_MINUTES;
        self.slot_volume = 0;
        self.slot_has_data = false;
        // The silence can only be known from the first whole slot of data on.
        self.silence_start = Some(next_slot_boundary(minute - 1));
        self.silence_alerted = false;
        self.flow.run_minutes = 0;
        self.leak.advance_to(minute);
    }

    fn apply_minute(&mut self, minute: i64, volume: Centilitres) {
        // Design: this runs for every minute of every household; it reads the rules in place
        // (no `Arc` clone), looks the local day up once per 15-minute slot (offsets are whole
        // quarter hours, as the slot history assumes), and dates an alert only when it raises.
        self.slot_has_data = true;
        self.slot_volume = self.slot_volume.saturating_add(volume);
        self.known_until = minute + 1;

        // Excessive use, per local day.
        let slot = minute.div_euclid(SLOT_MINUTES);
        if slot != self.daily.slot {
            self.daily.slot = slot;
            let day = LocalSlot::of_minute(self.tz, minute).day;
            if day != self.daily.day {
                if self.daily.raised {
                    self.actions.push_back(WaterAction::Clear {
                        kind: AlertKind::WaterExcessiveUse,
                        at: time_of(minute),
                    });
                }
                self.daily = DailyVolume {
                    day,
                    slot,
                    volume: 0,
                    raised: false,
                };
            }
        }
        self.daily.volume = self.daily.volume.saturating_add(volume);
        if let Some(limit) = self.rules.excessive_litres_per_day {
            if !self.daily.raised && self.daily.volume > to_centilitres(limit) {
                self.daily.raised = true;
                let severity = self.rules.excessive_severity;
                self.raise(
                    AlertKind::WaterExcessiveUse,
                    severity,
                    time_of(minute + 1),
                    None,
                );
            }
        }

        // Continuous flow and the leak signature.
        self.leak.advance_to(minute);
        self.close_leak_half_hours();
        if volume > 0 {
            self.leak.current_has_flow = true;
            self.flow.run_minutes += 1;
            if let Some(limit) = self.rules.continuous_flow_minutes {
                if !self.flow.raised && self.flow.run_minutes >= limit {
                    self.flow.raised = true;
                    let severity = self.rules.continuous_flow_severity;
                    self.raise(
                        AlertKind::WaterContinuousFlow,
                        severity,
                        time_of(minute + 1),
                        None,
                    );
                }
            }
            let rules = &self.rules;
            let keep_after =
                minute - i64::from(rules.no_use_severe.hours.max(rules.no_use.hours)) * 60;
            let needed = to_centilitres(rules.no_use.litres.max(rules.no_use_severe.litres));
            self.uses.push(minute, volume, keep_after, needed);
        } else {
            self.end_flow_run(minute);
        }

        // A slot with use ends the silence: the resident is up and about.
        if self.silence_start.is_some()
            && self.slot_volume >= to_centilitres(self.rules.slot_use_litres)
        {
            self.end_silence(minute, time_of(minute + 1));
        }
    }

    fn end_flow_run(&mut self, minute: i64) {
        self.flow.run_minutes = 0;
        if self.flow.raised {
            self.flow.raised = false;
            self.actions.push_back(WaterAction::Clear {
                kind: AlertKind::WaterContinuousFlow,
                at: time_of(minute),
            });
        }
    }

    fn close_leak_half_hours(&mut self) {
        let Some(hours) = self.rules.leak_hours else {
            return;
        };
        let half_hours = hours * 2;
        if !self.leak.raised && self.leak.all_flowing(half_hours) {
            self.leak.raised = true;
            let at = time_of(self.leak.half_hour * LeakSignature::HALF_HOUR);
            self.raise(AlertKind::WaterLeak, self.rules.leak_severity, at, None);
        } else if self.leak.raised && self.leak.newest_completed_dry() {
            self.leak.raised = false;
            let at = time_of(self.leak.half_hour * LeakSignature::HALF_HOUR);
            self.actions.push_back(WaterAction::Clear {
                kind: AlertKind::WaterLeak,
                at,
            });
        }
    }

    fn end_silence(&mut self, minute: i64, at: DateTime<Utc>) {
        if let Some(start) = self.silence_start.take() {
            let absence = i64::from(self.rules.unusual_silence.absence_hours) * 60;
            if minute - start >= absence {
                // An absence is not the household's rhythm: forget it, so trips do not teach the
                // model that long silences are normal.
                self.history.forget(
                    LocalSlot::of_minute(self.tz, start),
                    LocalSlot::of_minute(self.tz, minute),
                );
            }
        }
        self.silence_alerted = false;
        for (kind, raised) in [
            (AlertKind::WaterUnusualSilence, &mut self.unusual_raised),
            (AlertKind::WaterMorningCheck, &mut self.morning_raised),
        ] {
            if *raised {
                *raised = false;
                self.actions.push_back(WaterAction::Clear { kind, at });
            }
        }
        for (kind, state) in [
            (AlertKind::WaterNoUse, &mut self.no_use),
            (AlertKind::WaterNoUseSevere, &mut self.severe),
        ] {
            if state.raised {
                state.raised = false;
                // The window re-arms from this use, so a trickle below the threshold cannot
                // re-raise at once.
                state.rearm_after = Some(minute);
                self.actions.push_back(WaterAction::Clear { kind, at });
            }
        }
        self.suppressed = 0;
    }

    /// Closes the slots that end at or before `minute`, recording them in the history.
    fn close_slots_until(&mut self, minute: i64) {
        while self.slot_start + SLOT_MINUTES <= minute {
            self.close_open_slot();
            self.slot_start += SLOT_MINUTES;
        }
    }

    fn close_open_slot(&mut self) {
        if self.slot_has_data {
            let used = self.slot_volume >= to_centilitres(self.rules.slot_use_litres);
            self.history
                .record(LocalSlot::of_minute(self.tz, self.slot_start), used);
            if used {
                self.silence_start = Some(self.slot_start + SLOT_MINUTES);
                self.silence_alerted = false;
            }
        }
        self.slot_volume = 0;
        self.slot_has_data = false;
    }

    /// Fires the time-driven rules due by `now` (never beyond the data horizon).
    fn evaluate(&mut self, now: i64) {
        if self.run_start.is_none() {
            return;
        }
        let until = now.min(self.horizon());
        self.away_changed = false;
        self.evaluate_fixed(until);
        self.evaluate_adaptive(until);
        self.evaluated_until = self.evaluated_until.max(until);
    }

    fn evaluate_fixed(&mut self, until: i64) {
        for window in [FixedWindow::Regular, FixedWindow::Severe] {
            // Copied out (the rules are a few words): no `Arc` traffic per evaluated minute.
            let (rule, kind) = match window {
                FixedWindow::Regular => (self.rules.no_use, AlertKind::WaterNoUse),
                FixedWindow::Severe => (self.rules.no_use_severe, AlertKind::WaterNoUseSevere),
            };
            let state = *self.fixed_state(window);
            if !rule.enabled || state.raised {
                continue;
            }
            if rule.only_as_backstop && self.any_no_use_open() {
                continue;
            }
            let raw = self.no_use_deadline_for(&rule, &state);
            if let Some(away) = self.away_until {
                if raw <= until && raw < away {
                    self.note_suppressed(kind, raw, away);
                }
            }
            let deadline = self.away_adjusted(&rule, raw);
            if deadline <= until && self.try_raise_no_use(kind, rule.severity, deadline) {
                self.fixed_state_mut(window).raised = true;
            }
        }
    }

    fn any_no_use_open(&self) -> bool {
        self.no_use.raised || self.severe.raised || self.unusual_raised || self.morning_raised
    }

    fn fixed_state(&self, window: FixedWindow) -> &NoUseState {
        match window {
            FixedWindow::Regular => &self.no_use,
            FixedWindow::Severe => &self.severe,
        }
    }

    fn fixed_state_mut(&mut self, window: FixedWindow) -> &mut NoUseState {
        match window {
            FixedWindow::Regular => &mut self.no_use,
            FixedWindow::Severe => &mut self.severe,
        }
    }

    /// The no-use deadline once an away period is taken into account: the resident gets a whole
    /// window after coming back.
    fn effective_no_use_deadline(&self, rule: &NoUseWindow, state: &NoUseState) -> i64 {
        self.away_adjusted(rule, self.no_use_deadline_for(rule, state))
    }

    /// `raw` pushed past the away period: the resident gets a whole window after coming back.
    fn away_adjusted(&self, rule: &NoUseWindow, raw: i64) -> i64 {
        match self.away_until {
            Some(away) => raw.max(away.saturating_add(i64::from(rule.hours) * 60)),
            None => raw,
        }
    }

    pub(super) fn note_suppressed(&mut self, kind: AlertKind, at: i64, away: i64) {
        if self.suppressed & family_bit(kind) == 0 {
            self.suppressed |= family_bit(kind);
            self.actions.push_back(WaterAction::Suppressed {
                kind,
                at: time_of(at),
                away_until: time_of(away),
            });
        }
    }

    /// Raises a no-use-family alert, noting whether it was held back during the away period.
    pub(super) fn try_raise_no_use(
        &mut self,
        kind: AlertKind,
        severity: Severity,
        at: i64,
    ) -> bool {
        if let Some(away) = self.away_until {
            if at < away {
                self.note_suppressed(kind, at, away);
                return false;
            }
        }
        let after_away = match self.away_until {
            Some(away) if self.suppressed & family_bit(kind) != 0 => Some(time_of(away)),
            Some(_) | None => None,
        };
        self.raise(kind, severity, time_of(at), after_away);
        true
    }

    fn raise(
        &mut self,
        kind: AlertKind,
        severity: Severity,
        at: DateTime<Utc>,
        suppressed_while_away_until: Option<DateTime<Utc>>,
    ) {
        self.actions.push_back(WaterAction::Raise {
            kind,
            severity,
            at,
            suppressed_while_away_until,
        });
    }
}
