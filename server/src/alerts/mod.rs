//! The alert vocabulary shared by the detectors, the alert lifecycle, escalation and the API.

use std::fmt;

pub mod audit;
pub mod book;
pub mod kpi;
pub mod lifecycle;
mod timestamp;

pub use timestamp::{duration_secs, Timestamp};

use crate::ids::{DeviceId, GatewayId, ResidentId, SiteId, ZoneId};

/// How urgent an alert is, most urgent first (the ladder ThingsBoard and Cumulocity use).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Critical,
    Major,
    Minor,
    Warning,
}

impl Severity {
    pub const ALL: [Severity; 4] = [Self::Critical, Self::Major, Self::Minor, Self::Warning];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::Major => "major",
            Self::Minor => "minor",
            Self::Warning => "warning",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an alert is about. One alert is open at most per (subject, kind).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// Less water than the threshold over the fixed window (default < 10 L in 12 h).
    WaterNoUse,
    /// The no-use rule over the long window (default < 10 L in 24 h).
    WaterNoUseSevere,
    /// A silence that is unusual for this household at this time of day (adaptive).
    WaterUnusualSilence,
    /// No use by the household's usual first-use time + 2 h (adaptive).
    WaterMorningCheck,
    /// Flow in every minute for the threshold (default ≥ 2 h): a tap left running.
    WaterContinuousFlow,
    /// More than the daily threshold (default > 2 m³ in a day).
    WaterExcessiveUse,
    /// Some flow in every 30-minute slot over 24 h: a leak.
    WaterLeak,
    /// The resident pressed the call button.
    Call,
    /// The pendant detected a fall.
    Fall,
    /// One fire detector in alarm, not yet confirmed.
    FireAlarm,
    /// A second detector in the zone, or smoke plus heat: a confirmed fire.
    FireConfirmed,
    /// A fire-protection system is impaired (valve closed, pressure low, door held open).
    FireSupervisory,
    /// A fire sensor is faulty, disconnected or stuck.
    FireTrouble,
    /// An electrical hazard (residual current, cable temperature) awaiting rectification.
    ElectricalHazard,
    /// A hazard passed its rectification deadline.
    HazardOverdue,
    /// A board missed its heartbeats.
    DeviceOffline,
    /// A board's battery is below its threshold.
    LowBattery,
    /// A board's case was opened or a magnet was held to a meter.
    Tamper,
    /// A gateway stopped reporting: one alert for the whole site.
    GatewayOffline,
}

impl AlertKind {
    pub const ALL: [AlertKind; 19] = [
        Self::WaterNoUse,
        Self::WaterNoUseSevere,
        Self::WaterUnusualSilence,
        Self::WaterMorningCheck,
        Self::WaterContinuousFlow,
        Self::WaterExcessiveUse,
        Self::WaterLeak,
        Self::Call,
        Self::Fall,
        Self::FireAlarm,
        Self::FireConfirmed,
        Self::FireSupervisory,
        Self::FireTrouble,
        Self::ElectricalHazard,
        Self::HazardOverdue,
        Self::DeviceOffline,
        Self::LowBattery,
        Self::Tamper,
        Self::GatewayOffline,
    ];

    /// The stable name used in the API, the store, logs and `vigil water-check`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WaterNoUse => "water_no_use",
            Self::WaterNoUseSevere => "water_no_use_severe",
            Self::WaterUnusualSilence => "water_unusual_silence",
            Self::WaterMorningCheck => "water_morning_check",
            Self::WaterContinuousFlow => "water_continuous_flow",
            Self::WaterExcessiveUse => "water_excessive_use",
            Self::WaterLeak => "water_leak",
            Self::Call => "call",
            Self::Fall => "fall",
            Self::FireAlarm => "fire_alarm",
            Self::FireConfirmed => "fire_confirmed",
            Self::FireSupervisory => "fire_supervisory",
            Self::FireTrouble => "fire_trouble",
            Self::ElectricalHazard => "electrical_hazard",
            Self::HazardOverdue => "hazard_overdue",
            Self::DeviceOffline => "device_offline",
            Self::LowBattery => "low_battery",
            Self::Tamper => "tamper",
            Self::GatewayOffline => "gateway_offline",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl fmt::Display for AlertKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who or what an alert is about.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    Resident(ResidentId),
    Device(DeviceId),
    Zone { site: SiteId, zone: ZoneId },
    Gateway(GatewayId),
    Site(SiteId),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_to_the_same_value() {
        for k in AlertKind::ALL {
            assert_eq!(AlertKind::parse(k.as_str()), Some(k));
        }
        for s in Severity::ALL {
            assert_eq!(Severity::parse(s.as_str()), Some(s));
        }
        assert_eq!(AlertKind::parse("nonsense"), None);
    }

    #[test]
    fn severities_sort_most_urgent_first() {
        let mut v = vec![
            Severity::Warning,
            Severity::Critical,
            Severity::Minor,
            Severity::Major,
        ];
        v.sort();
        assert_eq!(v, Severity::ALL);
    }

    #[test]
    fn subjects_round_trip_through_json_and_invalid_ids_are_refused() {
        let s = Subject::Zone {
            site: SiteId::new("care-7").unwrap(),
            zone: ZoneId::new("f2-east").unwrap(),
        };
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, r#"{"zone":{"site":"care-7","zone":"f2-east"}}"#);
        assert_eq!(serde_json::from_str::<Subject>(&json).unwrap(), s);
        assert!(serde_json::from_str::<Subject>(r#"{"device":"a/b"}"#).is_err());
        assert!(serde_json::from_str::<Subject>(r#"{"resident":""}"#).is_err());
        assert_eq!(
            serde_json::to_string(&AlertKind::WaterNoUseSevere).unwrap(),
            "\"water_no_use_severe\""
        );
    }
}
