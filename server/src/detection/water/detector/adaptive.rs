//! The adaptive rules' part of the detector: judging the current silence at slot boundaries.

use super::{MorningState, WaterDetector};
use crate::alerts::AlertKind;
use crate::detection::water::history::{next_slot_boundary, LocalSlot, SLOT_MINUTES};
use crate::detection::water::rhythm::{morning_due_slot, PastSilences};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AdaptiveRule {
    UnusualSilence,
    MorningCheck,
}

impl AdaptiveRule {
    fn kind(self) -> AlertKind {
        match self {
            Self::UnusualSilence => AlertKind::WaterUnusualSilence,
            Self::MorningCheck => AlertKind::WaterMorningCheck,
        }
    }
}

impl WaterDetector {
    pub(super) fn evaluate_adaptive(&mut self, until: i64) {
        let Some(start) = self.silence_start else {
            return;
        };
        // Judge at the last slot boundary reached: whole slots only, like the history.
        let at = until.div_euclid(SLOT_MINUTES) * SLOT_MINUTES;
        // Judged once per slot boundary: an earlier evaluation already reached this one.
        if self.silence_alerted || self.evaluated_until >= at {
            return;
        }
        let away = self.away_until.unwrap_or(i64::MIN);
        if at < away {
            // Only to record that a rule was held back; the clock restarts when the away ends.
            if let Some(rule) = self.adaptive_verdict(start, at) {
                self.note_suppressed(rule.kind(), at, away);
            }
            return;
        }
        let start = start.max(next_slot_boundary(away.max(i64::MIN + 1) - 1));
        let Some(rule) = self.adaptive_verdict(start, at) else {
            return;
        };
        let severity = match rule {
            AdaptiveRule::MorningCheck => self.rules.morning_check.severity,
            AdaptiveRule::UnusualSilence => self.rules.unusual_silence.severity,
        };
        if self.try_raise_no_use(rule.kind(), severity, at) {
            self.silence_alerted = true;
            match rule {
                AdaptiveRule::MorningCheck => {
                    self.morning_raised = true;
                    self.morning.raised_today = true;
                }
                AdaptiveRule::UnusualSilence => self.unusual_raised = true,
            }
        }
    }

    /// Which adaptive rule (if any) the silence from `start` judged at `at` calls for.
    fn adaptive_verdict(&mut self, start: i64, at: i64) -> Option<AdaptiveRule> {
        if at <= start {
            return None;
        }
        let first = LocalSlot::of_minute(self.tz, start);
        let last = LocalSlot::of_minute(self.tz, at - 1);
        let rule = &self.rules.unusual_silence;
        let length = at - start;
        if rule.enabled
            && length >= i64::from(rule.min_silence_minutes)
            && length < i64::from(rule.absence_hours) * 60
            && PastSilences::over(
                &self.history,
                first,
                last,
                i64::from(rule.time_tolerance_minutes) / SLOT_MINUTES,
            )
            .is_unusual(rule)
        {
            return Some(AdaptiveRule::UnusualSilence);
        }
        let morning = self.rules.morning_check;
        if !morning.enabled {
            return None;
        }
        let now_slot = LocalSlot::of_minute(self.tz, at);
        if now_slot.day != self.morning.day {
            self.morning = MorningState {
                day: now_slot.day,
                due_slot: morning_due_slot(&self.history, now_slot.day, &morning)
                    .map_or(u8::MAX, |s| s as u8),
                raised_today: false,
            };
        }
        let day_start = LocalSlot {
            day: now_slot.day,
            slot: morning.day_starts_at_hour * 60 / SLOT_MINUTES as u32,
        };
        (self.morning.due_slot != u8::MAX
            && !self.morning.raised_today
            && now_slot.slot >= u32::from(self.morning.due_slot)
            && first <= day_start)
            .then_some(AdaptiveRule::MorningCheck)
    }
}
