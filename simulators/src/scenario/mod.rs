//! Scenario files: sites, residents, devices, a timeline of incidents and the alerts
//! Vigil must (and must not) raise. The format is documented in `docs/simulators.md`.

mod incidents;
mod layout;
mod raw;
mod sites;
mod validate;

use std::path::Path;
use std::time::Duration;

use vigil_protocol::{DeviceId, GatewayId, SensorKind, SiteId, ZoneId};

use crate::facility::Facility;
use crate::incident::Incident;

/// Alert kinds a scenario may name: `vigil_server::alerts::AlertKind::as_str()` values
/// (kept as plain names so the simulator does not depend on the server).
pub const ALERT_KINDS: [&str; 19] = [
    "water_no_use",
    "water_no_use_severe",
    "water_unusual_silence",
    "water_morning_check",
    "water_continuous_flow",
    "water_excessive_use",
    "water_leak",
    "call",
    "fall",
    "fire_alarm",
    "fire_confirmed",
    "fire_supervisory",
    "fire_trouble",
    "electrical_hazard",
    "hazard_overdue",
    "device_offline",
    "low_battery",
    "tamper",
    "gateway_offline",
];

/// Severities, most urgent first (`vigil_server::alerts::Severity::as_str()`).
pub const SEVERITIES: [&str; 4] = ["critical", "major", "minor", "warning"];

/// A validated scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub seed: u64,
    /// Wall-clock time of the scenario's start, when the file fixes it.
    pub start: Option<WallTime>,
    pub duration: Duration,
    /// Virtual seconds per real second when run against the system (1 = real time).
    pub acceleration: f64,
    /// Skip this much of the timeline at the start of a run (for long windows).
    pub time_offset: Duration,
    pub sites: Vec<Site>,
    pub residents: Vec<Resident>,
    pub devices: Vec<Device>,
    pub incidents: Vec<Incident>,
    pub expectations: Vec<Expectation>,
    pub forbidden: Vec<Forbidden>,
}

/// A moment on the wall clock with the local offset it was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WallTime {
    pub unix_s: i64,
    pub utc_offset_min: i32,
}

impl WallTime {
    /// Seconds since local midnight.
    pub fn local_second_of_day(&self) -> u32 {
        (self.unix_s + i64::from(self.utc_offset_min) * 60).rem_euclid(86_400) as u32
    }

    /// The local day, in days since 1970-01-01.
    pub fn local_day(&self) -> i64 {
        (self.unix_s + i64::from(self.utc_offset_min) * 60).div_euclid(86_400)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SiteKind {
    Household,
    Facility,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    pub id: SiteId,
    pub kind: SiteKind,
    pub gateway: GatewayId,
    pub utc_offset_min: i32,
    /// Floors, zones and rooms of a facility (empty for a household).
    pub facility: Facility,
}

/// Which behaviour profile a resident follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileChoice {
    /// The calibrated single occupant.
    Calibrated,
    /// A resident drawn around it from the scenario's seed.
    Drawn,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Resident {
    pub id: String,
    pub site: SiteId,
    pub room: Option<String>,
    pub profile: ProfileChoice,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    pub id: DeviceId,
    pub site: SiteId,
    pub kind: DeviceKind,
    /// Battery voltage at the start, in millivolts.
    pub battery_mv: u16,
}

#[derive(Debug, Clone, PartialEq)]
pub enum DeviceKind {
    /// A household water meter, serving the resident if named.
    Meter { resident: Option<String> },
    /// A call pendant with a fall sensor, worn by a resident.
    Pendant { resident: String },
    /// A fire-safety sensor in a room (and so a zone) of a facility.
    Fire {
        sensor: SensorKind,
        room: String,
        zone: ZoneId,
    },
}

impl DeviceKind {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Meter { .. } => "meter",
            Self::Pendant { .. } => "pendant",
            Self::Fire { .. } => "fire",
        }
    }
}

/// An alert that must exist by a deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    /// Line of the `[[expect]]` entry, for the report.
    pub line: usize,
    pub alert: String,
    pub subject: String,
    pub severity: Option<String>,
    /// The alert counts only if raised at or after this time (the incident's start).
    pub not_before: Duration,
    /// It must be raised by this time (from the scenario's start).
    pub deadline: Duration,
    /// It must have been escalated at least once by the deadline.
    pub escalated: bool,
}

/// An alert that must not be raised in a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forbidden {
    pub line: usize,
    pub alert: String,
    /// Any subject when absent.
    pub subject: Option<String>,
    pub from: Duration,
    pub until: Duration,
}

/// A scenario file could not be used; the message names the line and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScenarioError {
    #[error("{file}: {message}")]
    Syntax { file: String, message: String },
    #[error("{file}:{line}: `{field}`: {message}")]
    Invalid {
        file: String,
        line: usize,
        field: &'static str,
        message: String,
    },
    #[error("{file}: cannot read: {message}")]
    Io { file: String, message: String },
}

impl Scenario {
    /// Parses and validates scenario text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self, ScenarioError> {
        let raw: raw::RawScenario = toml::from_str(text).map_err(|e| ScenarioError::Syntax {
            file: file.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        validate::validate(raw, text, file)
    }

    pub fn from_file(path: &Path) -> Result<Self, ScenarioError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError::Io {
            file: file.clone(),
            message: e.to_string(),
        })?;
        Self::parse(&text, &file)
    }

    pub fn site(&self, id: &SiteId) -> Option<&Site> {
        self.sites.iter().find(|s| &s.id == id)
    }

    pub fn device(&self, id: &DeviceId) -> Option<&Device> {
        self.devices.iter().find(|d| &d.id == id)
    }
}
