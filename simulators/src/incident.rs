//! Incidents with ground truth: what happens, when, and which alerts Vigil must raise.
//!
//! An incident changes what the simulated boards report (the timeline applies it) and
//! records the alerts it must cause, named as `vigil_server::alerts::AlertKind::as_str()`
//! names them, with their subject written as in scenario files (`resident:ID`, …).

use std::time::Duration;

use vigil_protocol::{DeviceId, GatewayId, SiteId, ZoneId};

/// One incident of a scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    pub id: String,
    /// When it starts, from the scenario's start.
    pub at: Duration,
    pub kind: IncidentKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum IncidentKind {
    /// A fall; without `cancel_after` the wearer lies still and does nothing more.
    Fall {
        resident: String,
        pendant: DeviceId,
        meter: Option<DeviceId>,
        room: Option<String>,
        cancel_after: Option<Duration>,
    },
    /// The resident presses the call button.
    Call { resident: String, pendant: DeviceId },
    /// From `at` on, the resident neither moves nor uses water.
    SilentEmergency {
        resident: String,
        meter: Option<DeviceId>,
    },
    /// A tap runs at `flow_ml_per_min` for `duration`.
    TapLeftRunning {
        meter: DeviceId,
        flow_ml_per_min: u32,
        duration: Duration,
    },
    /// A small continuous flow, until the end of the scenario or for `duration`.
    PipeLeak {
        meter: DeviceId,
        flow_ml_per_min: u32,
        duration: Option<Duration>,
    },
    /// Smoke in a room: one detector goes into alarm, then maybe a second in the same zone.
    Smoke {
        site: SiteId,
        zone: ZoneId,
        room: String,
        first: DeviceId,
        second: Option<(DeviceId, Duration)>,
    },
    /// A fire sensor reports itself faulty.
    SensorFault { device: DeviceId, zone: ZoneId },
    /// A hydrant's pressure falls to `kpa`.
    HydrantPressureDrop {
        site: SiteId,
        device: DeviceId,
        zone: ZoneId,
        kpa: i32,
    },
    /// A board's battery runs down over `over`, then the board falls silent.
    BatteryDying { device: DeviceId, over: Duration },
    /// A board stops reporting, for `duration` or for good.
    BoardOffline {
        device: DeviceId,
        duration: Option<Duration>,
    },
    /// A site's gateway goes down for `duration`.
    GatewayOffline {
        site: SiteId,
        gateway: GatewayId,
        duration: Duration,
    },
    /// A site's internet link is cut for `duration`; the gateway keeps everything, and the
    /// server sees the gateway go silent.
    UplinkCut {
        site: SiteId,
        gateway: GatewayId,
        duration: Duration,
    },
    /// The operator marks the resident away until `until` (from the scenario's start); the
    /// resident is indeed away and uses no water.
    Away {
        resident: String,
        meter: Option<DeviceId>,
        until: Duration,
    },
}

/// An alert an incident must cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedAlert {
    /// `AlertKind::as_str()` of the alert.
    pub kind: &'static str,
    /// `resident:ID`, `device:ID`, `zone:SITE/ZONE`, `gateway:ID` or `site:ID`.
    pub subject: String,
    /// When the condition the alert reports exists, from the scenario's start.
    pub from: Duration,
}

/// What happened, for the ground-truth record of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroundTruth {
    pub incident: String,
    pub what: &'static str,
    pub at: Duration,
    pub alerts: Vec<ExpectedAlert>,
}

impl IncidentKind {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Fall { .. } => "fall",
            Self::Call { .. } => "call",
            Self::SilentEmergency { .. } => "silent_emergency",
            Self::TapLeftRunning { .. } => "tap_left_running",
            Self::PipeLeak { .. } => "pipe_leak",
            Self::Smoke { .. } => "smoke",
            Self::SensorFault { .. } => "sensor_fault",
            Self::HydrantPressureDrop { .. } => "hydrant_pressure_drop",
            Self::BatteryDying { .. } => "battery_dying",
            Self::BoardOffline { .. } => "board_offline",
            Self::GatewayOffline { .. } => "gateway_offline",
            Self::UplinkCut { .. } => "uplink_cut",
            Self::Away { .. } => "away",
        }
    }
}

/// A hydrant pressure drop's pressure unless the scenario says: well below the fire node's
/// supervisory threshold (≤ 100 kPa, `vigil_firmware::fire::ChannelConfig::standard`, after
/// GB 50974's minimum static pressure), so that the node reports it.
pub const HYDRANT_DROP_KPA: i32 = 80;

/// How long a pendant waits for the wearer to cancel before it reports a fall.
pub const FALL_CANCEL_WINDOW: Duration = Duration::from_secs(30);

/// The fixed no-use rules' windows (DOMAIN.md: < 10 L in 12 h; severe: in 24 h).
pub const NO_USE_WINDOW: Duration = Duration::from_secs(12 * 3600);
pub const NO_USE_SEVERE_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// The battery voltage below which a board reports itself low (the boards' threshold).
pub const LOW_BATTERY_MV: u16 = 2_500;

impl Incident {
    /// The ground truth: what happened and the alerts it must cause.
    pub fn ground_truth(&self) -> GroundTruth {
        let at = self.at;
        let alert = |kind: &'static str, subject: String, from: Duration| ExpectedAlert {
            kind,
            subject,
            from,
        };
        let alerts = match &self.kind {
            // Cancelled within the pendant's window, a fall is reported for the record but
            // needs nobody; cancelled later, the alert exists and the cancel follows it.
            IncidentKind::Fall {
                resident,
                cancel_after,
                ..
            } => match cancel_after {
                Some(c) if *c <= FALL_CANCEL_WINDOW => vec![],
                Some(_) | None => vec![alert("fall", format!("resident:{resident}"), at)],
            },
            IncidentKind::Call { resident, .. } => {
                vec![alert("call", format!("resident:{resident}"), at)]
            }
            // The adaptive rule may see the silence at once; the fixed rules' conditions
            // hold once their whole window is silent (defaults: 12 h and 24 h).
            IncidentKind::SilentEmergency { resident, .. } => {
                let subject = format!("resident:{resident}");
                vec![
                    alert("water_unusual_silence", subject.clone(), at),
                    alert("water_no_use", subject.clone(), at + NO_USE_WINDOW),
                    alert("water_no_use_severe", subject, at + NO_USE_SEVERE_WINDOW),
                ]
            }
            IncidentKind::TapLeftRunning { meter, .. } => vec![alert(
                "water_continuous_flow",
                format!("device:{meter}"),
                at,
            )],
            IncidentKind::PipeLeak { meter, .. } => {
                vec![alert("water_leak", format!("device:{meter}"), at)]
            }
            IncidentKind::Smoke {
                site, zone, second, ..
            } => {
                let subject = format!("zone:{site}/{zone}");
                let mut v = vec![alert("fire_alarm", subject.clone(), at)];
                if let Some((_, after)) = second {
                    v.push(alert("fire_confirmed", subject, at + *after));
                }
                v
            }
            IncidentKind::SensorFault { device, .. } => {
                vec![alert("fire_trouble", format!("device:{device}"), at)]
            }
            IncidentKind::HydrantPressureDrop {
                site, zone, kpa, ..
            } => {
                // The fire node reports a pressure at or below its threshold only.
                let threshold = vigil_firmware::fire::ChannelConfig::standard(
                    vigil_protocol::SensorKind::HydrantPressure,
                    zone.clone(),
                )
                .on;
                // A supervisory signal is the zone's alert (docs/alerts.md).
                if *kpa <= threshold {
                    vec![alert("fire_supervisory", format!("zone:{site}/{zone}"), at)]
                } else {
                    vec![]
                }
            }
            IncidentKind::BatteryDying { device, over } => vec![
                // The voltage falls linearly; it crosses the threshold half-way (see timeline).
                alert("low_battery", format!("device:{device}"), at + *over / 2),
                alert("device_offline", format!("device:{device}"), at + *over),
            ],
            IncidentKind::BoardOffline { device, .. } => {
                vec![alert("device_offline", format!("device:{device}"), at)]
            }
            IncidentKind::GatewayOffline { gateway, .. } => {
                vec![alert("gateway_offline", format!("gateway:{gateway}"), at)]
            }
            IncidentKind::UplinkCut { gateway, .. } => {
                vec![alert("gateway_offline", format!("gateway:{gateway}"), at)]
            }
            IncidentKind::Away { .. } => vec![],
        };
        GroundTruth {
            incident: self.id.clone(),
            what: self.kind.name(),
            at,
            alerts,
        }
    }
}
