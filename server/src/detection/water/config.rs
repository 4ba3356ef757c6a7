//! The water rules' thresholds, with the defaults `vigil water-check` and the server use.

use crate::alerts::{AlertKind, Severity};

/// One fixed "less than `litres` in `hours`" no-use rule (the contract rules districts name).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoUseWindow {
    pub enabled: bool,
    /// Less than this much water in the window raises the alert.
    pub litres: f64,
    /// Length of the trailing window.
    pub hours: u32,
    pub severity: Severity,
    /// Raise only when no other no-use alert is open for the current silence (a backstop for the
    /// adaptive rules, whose open alert is escalated by the escalation policy instead).
    pub only_as_backstop: bool,
}

/// The adaptive "unusual silence" rule: how rare is a silence like the current one, at this time of
/// day, in this household's own recent history?
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UnusualSilence {
    pub enabled: bool,
    /// Silences shorter than this are never judged (a nap, an errand).
    pub min_silence_minutes: u32,
    /// A past day's silence counts as alike if it started within this many minutes of the same
    /// clock time (daily routines drift by about an hour).
    pub time_tolerance_minutes: u32,
    /// The rule stays silent until this many past days could be compared with the current silence.
    pub min_history_days: u32,
    /// Raise when the smoothed share of comparable past days that were dry over the same clock
    /// interval, `(dry + 1) / (comparable + 2)`, falls below this.
    pub max_dry_share: f64,
    /// Silences longer than this are absences (a trip, a hospital stay): they are not learned as
    /// the household's rhythm, and longer silences are left to the fixed backstop.
    pub absence_hours: u32,
    pub severity: Severity,
}

/// The adaptive morning check: no use by the household's usual first-use time plus a margin.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MorningCheck {
    pub enabled: bool,
    /// Local hour from which a day's first use counts as "the morning's" (night toilet visits before
    /// it are ignored).
    pub day_starts_at_hour: u32,
    /// First uses later than this local hour do not teach the usual time (a day out).
    pub latest_usual_hour: u32,
    /// Alert this long after the usual (median) first-use time.
    pub margin_minutes: u32,
    /// Past days with a known first use needed before the check speaks.
    pub min_history_days: u32,
    pub severity: Severity,
}

/// Every water rule of one site. `Default` is Vigil's default configuration: the one measured in
/// `docs/detection.md` and run by `vigil water-check`.
#[derive(Debug, Clone, PartialEq)]
pub struct WaterRules {
    /// Less than this much water in a 15-minute slot is not "use" for the adaptive rules (meter
    /// creep, a drip); the fixed rules count every litre.
    pub slot_use_litres: f64,
    /// A hole in the data shorter than this is bridged (boards batch readings); a longer one is a
    /// data gap: no-use clocks restart after it and nothing is learned from it.
    pub max_bridged_gap_minutes: u32,
    /// Fixed no-use rule (Shanghai: < 10 L in 12 h). Off by default: ~8–16 false alerts a month.
    pub no_use: NoUseWindow,
    /// Fixed severe no-use rule (Taicang: < 10 L in 24 h). In the default set as the backstop.
    pub no_use_severe: NoUseWindow,
    pub unusual_silence: UnusualSilence,
    pub morning_check: MorningCheck,
    /// Flow in every minute for this long (Sakaki: ≥ 2 h).
    pub continuous_flow_minutes: Option<u32>,
    pub continuous_flow_severity: Severity,
    /// More than this many litres in a local day (Jing'an: > 2 m³).
    pub excessive_litres_per_day: Option<f64>,
    pub excessive_severity: Severity,
    /// Some flow in every 30-minute slot over this many hours (Longgang: 24 h).
    pub leak_hours: Option<u32>,
    pub leak_severity: Severity,
}

impl Default for WaterRules {
    fn default() -> Self {
        Self {
            slot_use_litres: 0.5,
            max_bridged_gap_minutes: 30,
            no_use: NoUseWindow {
                enabled: false,
                litres: 10.0,
                hours: 12,
                severity: Severity::Major,
                only_as_backstop: false,
            },
            no_use_severe: NoUseWindow {
                enabled: true,
                litres: 10.0,
                hours: 24,
                severity: Severity::Critical,
                only_as_backstop: true,
            },
            unusual_silence: UnusualSilence {
                enabled: true,
                min_silence_minutes: 120,
                time_tolerance_minutes: 60,
                min_history_days: 14,
                max_dry_share: 0.06,
                absence_hours: 20,
                severity: Severity::Major,
            },
            morning_check: MorningCheck {
                enabled: true,
                day_starts_at_hour: 4,
                latest_usual_hour: 14,
                margin_minutes: 120,
                min_history_days: 14,
                severity: Severity::Major,
            },
            continuous_flow_minutes: Some(120),
            continuous_flow_severity: Severity::Major,
            excessive_litres_per_day: Some(2000.0),
            excessive_severity: Severity::Minor,
            leak_hours: Some(24),
            leak_severity: Severity::Warning,
        }
    }
}

impl WaterRules {
    /// The severity this configuration gives a water alert kind (`None` for other kinds).
    pub fn severity_of(&self, kind: AlertKind) -> Option<Severity> {
        match kind {
            AlertKind::WaterNoUse => Some(self.no_use.severity),
            AlertKind::WaterNoUseSevere => Some(self.no_use_severe.severity),
            AlertKind::WaterUnusualSilence => Some(self.unusual_silence.severity),
            AlertKind::WaterMorningCheck => Some(self.morning_check.severity),
            AlertKind::WaterContinuousFlow => Some(self.continuous_flow_severity),
            AlertKind::WaterExcessiveUse => Some(self.excessive_severity),
            AlertKind::WaterLeak => Some(self.leak_severity),
            AlertKind::Call
            | AlertKind::Fall
            | AlertKind::FireAlarm
            | AlertKind::FireConfirmed
            | AlertKind::FireSupervisory
            | AlertKind::FireTrouble
            | AlertKind::ElectricalHazard
            | AlertKind::HazardOverdue
            | AlertKind::DeviceOffline
            | AlertKind::LowBattery
            | AlertKind::Tamper
            | AlertKind::GatewayOffline => None,
        }
    }

    /// The fixed rules as district contracts name them (12 h and 24 h), without the adaptive ones.
    pub fn fixed_only(hours: u32) -> Self {
        let mut rules = Self::default();
        rules.unusual_silence.enabled = false;
        rules.morning_check.enabled = false;
        rules.no_use_severe.enabled = false;
        rules.no_use.enabled = true;
        rules.no_use.hours = hours;
        rules
    }
}
