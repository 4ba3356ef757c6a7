//! Validation of `[[incident]]` entries: each kind's fields, and the devices it acts on.

use vigil_protocol::{DeviceId, SensorKind, ZoneId};

use super::raw::RawIncident;
use super::validate::Ctx;
use super::{Device, DeviceKind, Resident, ScenarioError, Site};
use crate::incident::{Incident, IncidentKind, HYDRANT_DROP_KPA};

const INCIDENT_KINDS: [&str; 13] = [
    "fall",
    "call",
    "silent_emergency",
    "tap_left_running",
    "pipe_leak",
    "smoke",
    "sensor_fault",
    "hydrant_pressure_drop",
    "battery_dying",
    "board_offline",
    "gateway_offline",
    "uplink_cut",
    "away",
];

pub(super) fn incident(
    cx: &Ctx<'_>,
    r: &RawIncident,
    index: usize,
    sites: &[Site],
    residents: &[Resident],
    devices: &[Device],
) -> Result<Incident, ScenarioError> {
    let at = cx.duration(&r.at, "incident.at")?;
    let kind_name = r.kind.get_ref().as_str();
    let resident = || -> Result<&Resident, ScenarioError> {
        let t = cx.required(&r.resident, "resident", &r.kind)?;
        residents
            .iter()
            .find(|x| x.id == *t.get_ref())
            .ok_or_else(|| {
                cx.err(
                    t,
                    "incident.resident",
                    format!("no resident {:?}", t.get_ref()),
                )
            })
    };
    let worn = |res: &Resident| {
        devices
            .iter()
            .find(|d| matches!(&d.kind, DeviceKind::Pendant { resident } if *resident == res.id))
            .map(|d| d.id.clone())
    };
    let meter_of = |res: &Resident| {
        devices
            .iter()
            .find(|d| d.site == res.site && matches!(&d.kind, DeviceKind::Meter { .. }))
            .map(|d| d.id.clone())
    };
    let pendant = |res: &Resident| {
        worn(res).ok_or_else(|| {
            cx.err(
                &r.kind,
                "incident.resident",
                format!(
                    "resident {} wears no pendant: add a [[device]] kind = \"pendant\"",
                    res.id
                ),
            )
        })
    };
    let device = |kinds: &[&str]| -> Result<&Device, ScenarioError> {
        let t = cx.required(&r.device, "device", &r.kind)?;
        let d = devices
            .iter()
            .find(|d| d.id.as_str() == t.get_ref())
            .ok_or_else(|| cx.err(t, "incident.device", format!("no device {:?}", t.get_ref())))?;
        if !kinds.contains(&d.kind.name()) {
            return Err(cx.err(
                t,
                "incident.device",
                format!(
                    "a `{kind_name}` incident needs a {} device, {} is a {}",
                    kinds.join(" or "),
                    d.id,
                    d.kind.name()
                ),
            ));
        }
        Ok(d)
    };
    let fire_device = |sensor: SensorKind| -> Result<(DeviceId, ZoneId), ScenarioError> {
        let d = device(&["fire"])?;
        match &d.kind {
            DeviceKind::Fire {
                sensor: s, zone, ..
            } if *s == sensor || sensor == SensorKind::Smoke => Ok((d.id.clone(), zone.clone())),
            DeviceKind::Fire { .. } | DeviceKind::Meter { .. } | DeviceKind::Pendant { .. } => {
                Err(cx.err(
                    &r.kind,
                    "incident.device",
                    format!("{} is not a {} sensor", d.id, sensor.name()),
                ))
            }
        }
    };
    let site = || -> Result<&Site, ScenarioError> {
        let t = cx.required(&r.site, "site", &r.kind)?;
        sites
            .iter()
            .find(|s| s.id.as_str() == t.get_ref())
            .ok_or_else(|| {
                cx.err(
                    t,
                    "incident.site",
                    format!("no [[site]] with id {:?}", t.get_ref()),
                )
            })
    };
    let flow = |default: f64| -> Result<u32, ScenarioError> {
        match &r.flow_l_per_min {
            Some(f)
                if !(f.get_ref().is_finite() && *f.get_ref() > 0.0 && *f.get_ref() <= 100.0) =>
            {
                Err(cx.err(
                    f,
                    "incident.flow_l_per_min",
                    format!("expected 0 < flow ≤ 100 L/min, found {}", f.get_ref()),
                ))
            }
            Some(f) => Ok((f.get_ref() * 1000.0).round() as u32),
            None => Ok((default * 1000.0) as u32),
        }
    };
    let duration = |field| {
        cx.required(&r.duration, field, &r.kind)
            .and_then(|t| cx.duration(t, "incident.duration"))
    };
    let kind = match kind_name {
        "fall" => {
            let res = resident()?;
            IncidentKind::Fall {
                resident: res.id.clone(),
                pendant: pendant(res)?,
                meter: meter_of(res),
                room: r.room.as_ref().map(|x| x.get_ref().clone()),
                cancel_after: cx.opt_duration(&r.cancel_after, "incident.cancel_after")?,
            }
        }
        "call" => {
            let res = resident()?;
            IncidentKind::Call {
                resident: res.id.clone(),
                pendant: pendant(res)?,
            }
        }
        "silent_emergency" => {
            let res = resident()?;
            IncidentKind::SilentEmergency {
                resident: res.id.clone(),
                meter: meter_of(res),
            }
        }
        "tap_left_running" => IncidentKind::TapLeftRunning {
            meter: device(&["meter"])?.id.clone(),
            flow_ml_per_min: flow(6.0)?,
            duration: duration("duration")?,
        },
        "pipe_leak" => IncidentKind::PipeLeak {
            meter: device(&["meter"])?.id.clone(),
            flow_ml_per_min: flow(0.2)?,
            duration: cx.opt_duration(&r.duration, "incident.duration")?,
        },
        "smoke" => {
            let s = site()?;
            let room_t = cx.required(&r.room, "room", &r.kind)?;
            let zone = s
                .facility
                .zone_of_room(room_t.get_ref())
                .cloned()
                .ok_or_else(|| {
                    cx.err(
                        room_t,
                        "incident.room",
                        format!("no room {:?} in site {}", room_t.get_ref(), s.id),
                    )
                })?;
            let detectors: Vec<(&DeviceId, bool)> = devices
                .iter()
                .filter_map(|d| match &d.kind {
                    DeviceKind::Fire {
                        sensor: SensorKind::Smoke,
                        room,
                        zone: z,
                    } if d.site == s.id && *z == zone => Some((&d.id, room == room_t.get_ref())),
                    DeviceKind::Fire { .. }
                    | DeviceKind::Meter { .. }
                    | DeviceKind::Pendant { .. } => None,
                })
                .collect();
            let mut in_room = detectors.iter().filter(|d| d.1).map(|d| d.0.clone());
            let mut elsewhere = detectors.iter().filter(|d| !d.1).map(|d| d.0.clone());
            let first = in_room.next().ok_or_else(|| {
                cx.err(
                    room_t,
                    "incident.room",
                    format!("no smoke detector in room {:?}", room_t.get_ref()),
                )
            })?;
            let second = match cx.opt_duration(&r.second_after, "incident.second_after")? {
                Some(after) => {
                    let other = in_room.next().or_else(|| elsewhere.next()).ok_or_else(|| {
                        cx.err(
                            room_t,
                            "incident.second_after",
                            format!("no second smoke detector in zone {zone}"),
                        )
                    })?;
                    Some((other, after))
                }
                None => None,
            };
            IncidentKind::Smoke {
                site: s.id.clone(),
                zone,
                room: room_t.get_ref().clone(),
                first,
                second,
            }
        }
        "sensor_fault" => {
            let d = device(&["fire"])?;
            let DeviceKind::Fire { zone, .. } = &d.kind else {
                return Err(cx.err(&r.kind, "incident.device", "not a fire device".into()));
            };
            IncidentKind::SensorFault {
                device: d.id.clone(),
                zone: zone.clone(),
            }
        }
        "hydrant_pressure_drop" => {
            let site = device(&["fire"])?.site.clone();
            let (device, zone) = fire_device(SensorKind::HydrantPressure)?;
            let kpa = r
                .pressure_kpa
                .as_ref()
                .map_or(HYDRANT_DROP_KPA, |p| *p.get_ref());
            IncidentKind::HydrantPressureDrop {
                site,
                device,
                zone,
                kpa,
            }
        }
        "battery_dying" => IncidentKind::BatteryDying {
            device: device(&["meter", "pendant", "fire"])?.id.clone(),
            over: duration("duration")?,
        },
        "board_offline" => IncidentKind::BoardOffline {
            device: device(&["meter", "pendant", "fire"])?.id.clone(),
            duration: cx.opt_duration(&r.duration, "incident.duration")?,
        },
        "gateway_offline" => {
            let s = site()?;
            IncidentKind::GatewayOffline {
                site: s.id.clone(),
                gateway: s.gateway.clone(),
                duration: duration("duration")?,
            }
        }
        "uplink_cut" => {
            let s = site()?;
            IncidentKind::UplinkCut {
                site: s.id.clone(),
                gateway: s.gateway.clone(),
                duration: duration("duration")?,
            }
        }
        "away" => {
            let res = resident()?;
            let until = cx.duration(cx.required(&r.until, "until", &r.kind)?, "incident.until")?;
            IncidentKind::Away {
                resident: res.id.clone(),
                meter: meter_of(res),
                until,
            }
        }
        other => {
            return Err(cx.err(
                &r.kind,
                "incident.kind",
                format!(
                    "unknown incident kind {other:?}; expected one of {}",
                    INCIDENT_KINDS.join(", ")
                ),
            ))
        }
    };
    if let IncidentKind::HydrantPressureDrop { device, .. } = &kind {
        let is_hydrant = devices.iter().any(|d| {
            &d.id == device
                && matches!(
                    d.kind,
                    DeviceKind::Fire {
                        sensor: SensorKind::HydrantPressure,
                        ..
                    }
                )
        });
        if !is_hydrant {
            return Err(cx.err(
                &r.kind,
                "incident.device",
                format!("{device} is not a hydrant_pressure sensor"),
            ));
        }
    }
    Ok(Incident {
        id: r
            .id
            .as_ref()
            .map(|i| i.get_ref().clone())
            .unwrap_or_else(|| format!("incident-{}", index + 1)),
        at,
        kind,
    })
}
