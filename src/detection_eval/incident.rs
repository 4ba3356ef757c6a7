//! The incidents injected into a simulated household's life, and what each must (or must not)
//! make the water rules raise. Names follow `vigil_sim::incident::IncidentKind::name()`.

use rand::Rng;
use vigil_server::alerts::AlertKind;
use vigil_server::detection::water::eval::EMERGENCY_HORIZON_MINUTES;

/// The kinds of incident the evaluation injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentClass {
    /// From a random minute while the resident is at home and awake, no more water.
    SilentEmergency,
    /// A tap runs, on top of the household's use.
    TapLeftRunning,
    /// A small constant flow, on top of the household's use.
    PipeLeak,
    /// Water run again and again (10 minutes of every 20), on top of the household's use.
    ExcessiveUse,
    /// The operator marks the resident away, and the resident is away: no water until back.
    Away,
}

impl IncidentClass {
    pub const ALL: [IncidentClass; 5] = [
        Self::SilentEmergency,
        Self::TapLeftRunning,
        Self::PipeLeak,
        Self::ExcessiveUse,
        Self::Away,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::SilentEmergency => "silent_emergency",
            Self::TapLeftRunning => "tap_left_running",
            Self::PipeLeak => "pipe_leak",
            Self::ExcessiveUse => "excessive_use",
            Self::Away => "away",
        }
    }

    /// Whether an alert of `kind` is the one this incident must cause (for `Away`: the ones it
    /// must not cause while the resident is marked away).
    pub fn is_answered_by(self, kind: AlertKind) -> bool {
        match self {
            Self::SilentEmergency | Self::Away => is_no_use_family(kind),
            Self::TapLeftRunning => kind == AlertKind::WaterContinuousFlow,
            Self::PipeLeak => kind == AlertKind::WaterLeak,
            Self::ExcessiveUse => kind == AlertKind::WaterExcessiveUse,
        }
    }

    /// The rule(s) expected to answer, for the report.
    pub fn expected_rules(self) -> &'static str {
        match self {
            Self::SilentEmergency => "any no-use rule",
            Self::TapLeftRunning => "water_continuous_flow",
            Self::PipeLeak => "water_leak",
            Self::ExcessiveUse => "water_excessive_use",
            Self::Away => "no no-use rule while away",
        }
    }

    /// Whether the incident is something to detect (`Away` is something not to alert on).
    pub fn must_be_detected(self) -> bool {
        match self {
            Self::SilentEmergency | Self::TapLeftRunning | Self::PipeLeak | Self::ExcessiveUse => {
                true
            }
            Self::Away => false,
        }
    }
}

/// The rules that answer "no water is being used": the silent emergency's rules.
pub fn is_no_use_family(kind: AlertKind) -> bool {
    match kind {
        AlertKind::WaterNoUse
        | AlertKind::WaterNoUseSevere
        | AlertKind::WaterUnusualSilence
        | AlertKind::WaterMorningCheck => true,
        AlertKind::WaterContinuousFlow
        | AlertKind::WaterExcessiveUse
        | AlertKind::WaterLeak
        | AlertKind::Call
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
        | AlertKind::GatewayOffline => false,
    }
}

/// How long a tap is left running (it is followed that long).
pub const TAP_RUNNING_MINUTES: usize = 6 * 60;
/// How long a leak and excessive use are followed before counting as not detected.
pub const LEAK_HORIZON_MINUTES: usize = 48 * 60;
pub const EXCESSIVE_HORIZON_MINUTES: usize = 24 * 60;
/// Excessive use: the water runs `EXCESSIVE_ON_MINUTES` of every `EXCESSIVE_PERIOD_MINUTES`,
/// so it is not one continuous flow.
const EXCESSIVE_ON_MINUTES: usize = 10;
const EXCESSIVE_PERIOD_MINUTES: usize = 20;
/// A stay away lasts up to this many nights, back between 14:00 and 19:00 (the behaviour model's
/// own trips).
const AWAY_MAX_NIGHTS: usize = 4;

/// One incident in one household: from minute `at` of the household's series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Injected {
    pub at: usize,
    pub what: Incident,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Incident {
    SilentEmergency,
    TapLeftRunning {
        litres_per_minute: f64,
    },
    PipeLeak {
        litres_per_minute: f64,
    },
    ExcessiveUse {
        litres_per_minute: f64,
    },
    /// Marked away (and away) for this many minutes.
    Away {
        minutes: usize,
    },
}

impl Incident {
    pub fn class(&self) -> IncidentClass {
        match self {
            Self::SilentEmergency => IncidentClass::SilentEmergency,
            Self::TapLeftRunning { .. } => IncidentClass::TapLeftRunning,
            Self::PipeLeak { .. } => IncidentClass::PipeLeak,
            Self::ExcessiveUse { .. } => IncidentClass::ExcessiveUse,
            Self::Away { .. } => IncidentClass::Away,
        }
    }

    /// How many minutes from its start the incident is followed.
    pub fn horizon_minutes(&self) -> usize {
        match self {
            Self::SilentEmergency => EMERGENCY_HORIZON_MINUTES as usize,
            Self::TapLeftRunning { .. } => TAP_RUNNING_MINUTES,
            Self::PipeLeak { .. } => LEAK_HORIZON_MINUTES,
            Self::ExcessiveUse { .. } => EXCESSIVE_HORIZON_MINUTES,
            Self::Away { minutes } => *minutes,
        }
    }

    /// The meter's litres `k` minutes after the start, given what the household would have used.
    pub fn litres(&self, k: usize, household: f64) -> f64 {
        match self {
            Self::SilentEmergency | Self::Away { .. } => 0.0,
            Self::TapLeftRunning { litres_per_minute } | Self::PipeLeak { litres_per_minute } => {
                household + litres_per_minute
            }
            Self::ExcessiveUse { litres_per_minute } => {
                if k % EXCESSIVE_PERIOD_MINUTES < EXCESSIVE_ON_MINUTES {
                    household + litres_per_minute
                } else {
                    household
                }
            }
        }
    }

    /// The longest horizon any incident may need: incidents start at least this long before the
    /// end of the simulated days.
    pub fn longest_horizon_minutes() -> usize {
        (EMERGENCY_HORIZON_MINUTES as usize)
            .max(LEAK_HORIZON_MINUTES)
            .max((AWAY_MAX_NIGHTS + 1) * 1440)
    }
}

/// Draws one incident of `class` starting at `at` (a minute of the household's series, local
/// midnight of day 0 = minute 0).
pub fn draw<R: Rng + ?Sized>(class: IncidentClass, at: usize, rng: &mut R) -> Injected {
    let what = match class {
        IncidentClass::SilentEmergency => Incident::SilentEmergency,
        // A basin tap from a trickle to full (the scenarios' default is 6 L/min).
        IncidentClass::TapLeftRunning => Incident::TapLeftRunning {
            litres_per_minute: rng.random_range(2.0..8.0),
        },
        // A dripping cistern to a weeping joint (the scenarios' default is 0.2 L/min).
        IncidentClass::PipeLeak => Incident::PipeLeak {
            litres_per_minute: rng.random_range(0.05..0.5),
        },
        IncidentClass::ExcessiveUse => Incident::ExcessiveUse {
            litres_per_minute: rng.random_range(10.0..20.0),
        },
        IncidentClass::Away => {
            let nights = rng.random_range(1..=AWAY_MAX_NIGHTS);
            let back_day = at / 1440 + nights;
            let back = back_day * 1440 + rng.random_range(14 * 60..19 * 60);
            Incident::Away { minutes: back - at }
        }
    };
    Injected { at, what }
}
