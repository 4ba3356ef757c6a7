//! Fire safety for one care facility, per zone.
//!
//! - **alarm** (smoke, heat, gas, manual call point) → `fire_alarm` (major) on the zone;
//! - **confirmed**: a second device in alarm in the same zone, or smoke plus heat in the zone,
//!   or an operated manual call point (a person saw it) → `fire_confirmed` (critical);
//! - **supervisory** → `fire_supervisory` (major) on the zone; **trouble** → `fire_trouble`
//!   (minor) on the device;
//! - **electrical hazards**: residual current > 300 mA or cable temperature > 70 °C →
//!   `electrical_hazard` (major) on the device, with a rectification deadline (72 h); past it
//!   `hazard_overdue` (major). A hazard stays until someone records it rectified
//!   ([`FireDetector::handle_rectified`]): a reading that drops back is recorded on the alert
//!   but does not stop the clock, or a flickering fault would never be due.
//! - A return to normal clears the signal (recorded on the alert; the operator closes it).
//!
//! Actions are emitted on changes only, so a sensor repeating its state changes nothing and
//! a duplicate frame is harmless; a report older than the sensor's last one is ignored.

use std::collections::VecDeque;

use vigil_protocol::{FireReport, SensorKind, SignalClass};

use crate::alerts::{AlertKind, Severity, Subject, Timestamp};
use crate::detection::action::{
    details, AlertKey, ClearReason, Details, DetectorAction, FrameContext,
};
use crate::ids::{DeviceId, SiteId, ZoneId};

mod config;
pub use config::FireConfig;

/// What one sensor currently says, after the electrical limits are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    Normal,
    Alarm,
    Supervisory,
    Trouble,
    Hazard,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct SensorEntry {
    device: DeviceId,
    #[serde(with = "sensor_kind_name")]
    sensor: SensorKind,
    zone: ZoneId,
    condition: Condition,
    last_report: Timestamp,
}

/// An electrical hazard awaiting rectification.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Hazard {
    pub device: DeviceId,
    #[serde(with = "sensor_kind_name")]
    pub sensor: SensorKind,
    pub zone: ZoneId,
    pub found_at: Timestamp,
    pub deadline: Timestamp,
    /// The worst value seen, in the sensor's unit.
    pub worst_value: i32,
    pub overdue: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FireCounters {
    pub self_tests: u64,
    pub stale_reports: u64,
    pub unknown_rectifications: u64,
}

/// The detector's whole state, serialisable so it survives a restart.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FireState {
    site: SiteId,
    sensors: Vec<SensorEntry>,
    hazards: Vec<Hazard>,
    confirmed_zones: Vec<ZoneId>,
    pub counters: FireCounters,
}

impl FireState {
    pub fn new(site: SiteId) -> Self {
        Self {
            site,
            sensors: Vec::new(),
            hazards: Vec::new(),
            confirmed_zones: Vec::new(),
            counters: FireCounters::default(),
        }
    }

    pub fn hazards(&self) -> &[Hazard] {
        &self.hazards
    }
}

/// A facility's fire-safety state at a glance, for the district's supervision board.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct FireSafetyStatus {
    pub zones_in_alarm: Vec<ZoneId>,
    pub zones_confirmed: Vec<ZoneId>,
    pub supervisory_zones: Vec<ZoneId>,
    pub troubled_devices: Vec<DeviceId>,
    pub open_hazards: usize,
    pub overdue_hazards: usize,
    /// The earliest rectification deadline not yet passed.
    pub next_rectification_due: Option<Timestamp>,
}

#[derive(Debug)]
pub struct FireDetector {
    config: FireConfig,
    state: FireState,
    actions: VecDeque<DetectorAction>,
}

impl FireDetector {
    pub fn new(config: FireConfig, site: SiteId) -> Self {
        Self::restore(config, FireState::new(site))
    }

    pub fn restore(config: FireConfig, state: FireState) -> Self {
        Self {
            config,
            state,
            actions: VecDeque::new(),
        }
    }

    pub fn state(&self) -> &FireState {
        &self.state
    }

    pub fn status(&self) -> FireSafetyStatus {
        let zones = |c: Condition| {
            let mut v: Vec<ZoneId> = self
                .state
                .sensors
                .iter()
                .filter(|s| s.condition == c)
                .map(|s| s.zone.clone())
                .collect();
            v.sort();
            v.dedup();
            v
        };
        let zones_in_alarm = zones(Condition::Alarm);
        let supervisory_zones = zones(Condition::Supervisory);
        let mut troubled_devices: Vec<DeviceId> = self
            .state
            .sensors
            .iter()
            .filter(|s| s.condition == Condition::Trouble)
            .map(|s| s.device.clone())
            .collect();
        troubled_devices.sort();
        troubled_devices.dedup();
        let mut zones_confirmed = self.state.confirmed_zones.clone();
        zones_confirmed.sort();
        FireSafetyStatus {
            zones_in_alarm,
            zones_confirmed,
            supervisory_zones,
            troubled_devices,
            open_hazards: self.state.hazards.len(),
            overdue_hazards: self.state.hazards.iter().filter(|h| h.overdue).count(),
            next_rectification_due: self.next_deadline(),
        }
    }

    pub fn poll_action(&mut self) -> Option<DetectorAction> {
        let action = self.actions.pop_front();
        if action.is_none() {
            // Outputs are rare; a drained queue should not keep its buffer for every subject.
            self.actions = VecDeque::new();
        }
        action
    }

    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.state
            .hazards
            .iter()
            .filter(|h| !h.overdue)
            .map(|h| h.deadline)
            .min()
    }

    pub fn handle_timeout(&mut self, now: Timestamp) {
        let site = self.state.site.clone();
        for h in self.state.hazards.iter_mut() {
            if h.overdue || now < h.deadline {
                continue;
            }
            h.overdue = true;
            self.actions.push_back(DetectorAction::Raise {
                site: site.clone(),
                key: AlertKey::new(Subject::Device(h.device.clone()), AlertKind::HazardOverdue),
                severity: Severity::Major,
                at: h.deadline,
                origin: None,
                details: hazard_details(h),
            });
        }
    }

    /// Someone recorded that the hazard on `device`'s `sensor` was fixed.
    pub fn handle_rectified(&mut self, device: &DeviceId, sensor: SensorKind, now: Timestamp) {
        let before = self.state.hazards.len();
        self.state
            .hazards
            .retain(|h| !(&h.device == device && h.sensor == sensor));
        if self.state.hazards.len() == before {
            self.state.counters.unknown_rectifications += 1;
            return;
        }
        if self.state.hazards.iter().any(|h| &h.device == device) {
            return;
        }
        for kind in [AlertKind::ElectricalHazard, AlertKind::HazardOverdue] {
            self.clear(
                Subject::Device(device.clone()),
                kind,
                now,
                ClearReason::Rectified,
                details([("sensor", sensor.name().into())]),
            );
        }
    }

    pub fn handle_report(&mut self, ctx: &FrameContext, report: &FireReport, now: Timestamp) {
        self.handle_timeout(now);
        if report.self_test {
            self.state.counters.self_tests += 1;
            return;
        }
        let device = &ctx.frame.device;
        // A node whose clock runs ahead must not make every later report look stale.
        let at = ctx.occurred_at.min(now);
        let condition = self.condition_of(report);
        let idx = match self
            .state
            .sensors
            .iter()
            .position(|s| &s.device == device && s.sensor == report.sensor)
        {
            Some(i) => i,
            None => {
                self.state.sensors.push(SensorEntry {
                    device: device.clone(),
                    sensor: report.sensor,
                    zone: report.zone.clone(),
                    condition: Condition::Normal,
                    last_report: at,
                });
                self.state.sensors.len() - 1
            }
        };
        let entry = &mut self.state.sensors[idx];
        if at < entry.last_report {
            self.state.counters.stale_reports += 1;
            return;
        }
        entry.last_report = at;
        let old = entry.clone();
        if old.condition == condition && old.zone == report.zone {
            if condition == Condition::Hazard {
                self.note_hazard_value(device, report);
            }
            return;
        }
        entry.condition = condition;
        entry.zone = report.zone.clone();
        self.leave(&old, at, report);
        self.enter(idx, at, report);
    }

    fn condition_of(&self, r: &FireReport) -> Condition {
        let limit = match r.sensor {
            SensorKind::ResidualCurrent => Some(self.config.residual_current_limit_ma),
            SensorKind::CableTemperature => Some(self.config.cable_temperature_limit_dc),
            SensorKind::Smoke
            | SensorKind::Heat
            | SensorKind::Gas
            | SensorKind::HydrantPressure
            | SensorKind::DoorContact
            | SensorKind::ManualCallPoint
            | SensorKind::SprinklerValve => None,
        };
        match (r.signal, limit) {
            (SignalClass::Trouble, _) => Condition::Trouble,
            // An electrical monitor's alarm is a hazard, whatever its own limit was.
            (SignalClass::Alarm, Some(_)) => Condition::Hazard,
            (SignalClass::Normal | SignalClass::Supervisory, Some(limit)) if r.value > limit => {
                Condition::Hazard
            }
            (SignalClass::Normal, _) => Condition::Normal,
            (SignalClass::Supervisory, _) => Condition::Supervisory,
            (SignalClass::Alarm, None) => Condition::Alarm,
        }
    }

    fn zone_has(&self, zone: &ZoneId, c: Condition) -> bool {
        self.state
            .sensors
            .iter()
            .any(|s| &s.zone == zone && s.condition == c)
    }

    fn device_has(&self, device: &DeviceId, c: Condition) -> bool {
        self.state
            .sensors
            .iter()
            .any(|s| &s.device == device && s.condition == c)
    }

    fn zone_subject(&self, zone: &ZoneId) -> Subject {
        Subject::Zone {
            site: self.state.site.clone(),
            zone: zone.clone(),
        }
    }

    /// The sensor left `old.condition`: clear what no other sensor still holds up.
    fn leave(&mut self, old: &SensorEntry, at: Timestamp, r: &FireReport) {
        let d = || sensor_details(old.device.as_str(), r);
        match old.condition {
            Condition::Normal => {}
            Condition::Alarm => {
                if !self.zone_has(&old.zone, Condition::Alarm) {
                    let subject = self.zone_subject(&old.zone);
                    self.clear(
                        subject.clone(),
                        AlertKind::FireAlarm,
                        at,
                        ClearReason::ReturnedToNormal,
                        d(),
                    );
                    if let Some(i) = self
                        .state
                        .confirmed_zones
                        .iter()
                        .position(|z| z == &old.zone)
                    {
                        self.state.confirmed_zones.swap_remove(i);
                        self.clear(
                            subject,
                            AlertKind::FireConfirmed,
                            at,
                            ClearReason::ReturnedToNormal,
                            d(),
                        );
                    }
                }
            }
            Condition::Supervisory => {
                if !self.zone_has(&old.zone, Condition::Supervisory) {
                    let subject = self.zone_subject(&old.zone);
                    self.clear(
                        subject,
                        AlertKind::FireSupervisory,
                        at,
                        ClearReason::ReturnedToNormal,
                        d(),
                    );
                }
            }
            Condition::Trouble => {
                if !self.device_has(&old.device, Condition::Trouble) {
                    let subject = Subject::Device(old.device.clone());
                    self.clear(
                        subject,
                        AlertKind::FireTrouble,
                        at,
                        ClearReason::ReturnedToNormal,
                        d(),
                    );
                }
            }
            Condition::Hazard => {
                // Recorded only: the hazard itself stays until rectified.
                if !self.device_has(&old.device, Condition::Hazard) {
                    let subject = Subject::Device(old.device.clone());
                    self.clear(
                        subject,
                        AlertKind::ElectricalHazard,
                        at,
                        ClearReason::ReturnedToNormal,
                        d(),
                    );
                }
            }
        }
    }

    fn enter(&mut self, idx: usize, at: Timestamp, r: &FireReport) {
        let entry = self.state.sensors[idx].clone();
        let d = sensor_details(entry.device.as_str(), r);
        match entry.condition {
            Condition::Normal => {}
            Condition::Alarm => {
                let subject = self.zone_subject(&entry.zone);
                self.raise(subject, AlertKind::FireAlarm, Severity::Major, at, d);
                self.check_confirmation(&entry.zone, at);
            }
            Condition::Supervisory => {
                let subject = self.zone_subject(&entry.zone);
                self.raise(subject, AlertKind::FireSupervisory, Severity::Major, at, d);
            }
            Condition::Trouble => {
                let subject = Subject::Device(entry.device.clone());
                self.raise(subject, AlertKind::FireTrouble, Severity::Minor, at, d);
            }
            Condition::Hazard => {
                let existing = self
                    .state
                    .hazards
                    .iter()
                    .position(|h| h.device == entry.device && h.sensor == entry.sensor);
                let hazard = match existing {
                    Some(i) => {
                        let h = &mut self.state.hazards[i];
                        h.worst_value = h.worst_value.max(r.value);
                        h.clone()
                    }
                    None => {
                        let h = Hazard {
                            device: entry.device.clone(),
                            sensor: entry.sensor,
                            zone: entry.zone.clone(),
                            found_at: at,
                            deadline: at + self.config.rectification_deadline,
                            worst_value: r.value,
                            overdue: false,
                        };
                        self.state.hazards.push(h.clone());
                        h
                    }
                };
                let mut d = d;
                d.extend(hazard_details(&hazard));
                let subject = Subject::Device(entry.device.clone());
                self.raise(subject, AlertKind::ElectricalHazard, Severity::Major, at, d);
            }
        }
    }

    fn note_hazard_value(&mut self, device: &DeviceId, r: &FireReport) {
        if let Some(h) = self
            .state
            .hazards
            .iter_mut()
            .find(|h| &h.device == device && h.sensor == r.sensor)
        {
            h.worst_value = h.worst_value.max(r.value);
        }
    }

    fn check_confirmation(&mut self, zone: &ZoneId, at: Timestamp) {
        if self.state.confirmed_zones.contains(zone) {
            return;
        }
        let in_alarm: Vec<&SensorEntry> = self
            .state
            .sensors
            .iter()
            .filter(|s| &s.zone == zone && s.condition == Condition::Alarm)
            .collect();
        let devices = {
            let mut v: Vec<&DeviceId> = in_alarm.iter().map(|s| &s.device).collect();
            v.sort();
            v.dedup();
            v
        };
        let has = |k: SensorKind| in_alarm.iter().any(|s| s.sensor == k);
        let reason = if devices.len() >= 2 {
            "two detectors in the zone"
        } else if has(SensorKind::Smoke) && has(SensorKind::Heat) {
            "smoke and heat"
        } else if self.config.manual_call_point_confirms && has(SensorKind::ManualCallPoint) {
            "manual call point operated"
        } else {
            return;
        };
        let sensors = in_alarm
            .iter()
            .map(|s| format!("{}:{}", s.device, s.sensor.name()))
            .collect::<Vec<_>>()
            .join(",");
        self.state.confirmed_zones.push(zone.clone());
        let subject = self.zone_subject(zone);
        let d = details([("confirmed_by", reason.into()), ("sensors", sensors)]);
        self.raise(subject, AlertKind::FireConfirmed, Severity::Critical, at, d);
    }

    fn raise(
        &mut self,
        subject: Subject,
        kind: AlertKind,
        severity: Severity,
        at: Timestamp,
        details: Details,
    ) {
        self.actions.push_back(DetectorAction::Raise {
            site: self.state.site.clone(),
            key: AlertKey::new(subject, kind),
            severity,
            at,
            origin: None,
            details,
        });
    }

    fn clear(
        &mut self,
        subject: Subject,
        kind: AlertKind,
        at: Timestamp,
        reason: ClearReason,
        details: Details,
    ) {
        self.actions.push_back(DetectorAction::Clear {
            site: self.state.site.clone(),
            key: AlertKey::new(subject, kind),
            at,
            reason,
            details,
        });
    }
}

fn sensor_details(device: &str, r: &FireReport) -> Details {
    details([
        ("device", device.to_owned()),
        ("sensor", r.sensor.name().to_owned()),
        ("signal", r.signal.name().to_owned()),
        ("value", format!("{} {}", r.value, r.unit.symbol())),
        ("zone", r.zone.to_string()),
    ])
}

fn hazard_details(h: &Hazard) -> Details {
    details([
        ("hazard_sensor", h.sensor.name().to_owned()),
        ("found_at", h.found_at.to_string()),
        ("rectify_by", h.deadline.to_string()),
        ("worst_value", h.worst_value.to_string()),
    ])
}

/// Sensor kinds are stored by their protocol name.
mod sensor_kind_name {
    use vigil_protocol::SensorKind;

    pub fn serialize<S: serde::Serializer>(k: &SensorKind, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(k.name())
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SensorKind, D::Error> {
        let name = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
        SensorKind::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .ok_or_else(|| serde::de::Error::unknown_variant(&name, &["smoke", "heat", "…"]))
    }
}

#[cfg(test)]
#[path = "fire_tests.rs"]
mod tests;
