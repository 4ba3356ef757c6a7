//! Raw scenario → validated [`Scenario`], with errors that name the line and the field.

use std::collections::HashSet;
use std::time::Duration;

use toml::Spanned;
use vigil_protocol::{DeviceId, SensorKind, SiteId};

use super::raw::{RawDevice, RawScenario, Text};
use super::{
    Device, DeviceKind, Expectation, Forbidden, ProfileChoice, Resident, Scenario, ScenarioError,
    Site, SiteKind, ALERT_KINDS, SEVERITIES,
};
use crate::incident::Incident;

/// Longest duration a scenario may state: a simulated year is plenty, and every sum of a
/// few such durations stays far from overflowing.
const MAX_DURATION: Duration = Duration::from_secs(366 * 86_400);

/// Playing slower than 1/1000 or faster than 100 000 × real time makes no sense.
const MIN_ACCELERATION: f64 = 0.001;
const MAX_ACCELERATION: f64 = 100_000.0;

/// A full battery of the boards (2 × AA lithium ≈ 3.0 V).
const FULL_BATTERY_MV: u16 = 3_000;

pub(super) struct Ctx<'a> {
    text: &'a str,
    file: &'a str,
}

impl Ctx<'_> {
    pub(super) fn line(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())]
            .matches('\n')
            .count()
            + 1
    }

    pub(super) fn err<T>(
        &self,
        at: &Spanned<T>,
        field: &'static str,
        message: String,
    ) -> ScenarioError {
        ScenarioError::Invalid {
            file: self.file.to_owned(),
            line: self.line(at.span().start),
            field,
            message,
        }
    }

    pub(super) fn duration(
        &self,
        t: &Text,
        field: &'static str,
    ) -> Result<Duration, ScenarioError> {
        let d = humantime::parse_duration(t.get_ref()).map_err(|e| {
            self.err(
                t,
                field,
                format!(
                    "expected a duration like \"90s\", \"2h 30m\", found {:?}: {e}",
                    t.get_ref()
                ),
            )
        })?;
        if d > MAX_DURATION {
            return Err(self.err(t, field, format!("{} is longer than a year", t.get_ref())));
        }
        Ok(d)
    }

    pub(super) fn opt_duration(
        &self,
        t: &Option<Text>,
        field: &'static str,
    ) -> Result<Option<Duration>, ScenarioError> {
        t.as_ref().map(|t| self.duration(t, field)).transpose()
    }

    pub(super) fn id<T>(
        &self,
        t: &Text,
        field: &'static str,
        make: fn(&str) -> Result<T, vigil_protocol::ids::InvalidId>,
    ) -> Result<T, ScenarioError> {
        make(t.get_ref()).map_err(|_| {
            self.err(
                t,
                field,
                format!(
                    "expected 1–32 characters of A-Z a-z 0-9 . _ -, found {:?}",
                    t.get_ref()
                ),
            )
        })
    }

    pub(super) fn required<'t>(
        &self,
        t: &'t Option<Text>,
        field: &'static str,
        kind: &Text,
    ) -> Result<&'t Text, ScenarioError> {
        t.as_ref().ok_or_else(|| {
            self.err(
                kind,
                field,
                format!("a `{}` incident needs `{field}`", kind.get_ref()),
            )
        })
    }
}

pub(super) fn validate(
    raw: RawScenario,
    text: &str,
    file: &str,
) -> Result<Scenario, ScenarioError> {
    let cx = Ctx { text, file };
    if raw.name.get_ref().trim().is_empty() {
        return Err(cx.err(&raw.name, "name", "must not be empty".into()));
    }
    let duration = cx.duration(&raw.duration, "duration")?;
    let start = raw
        .start
        .as_ref()
        .map(|s| super::sites::wall_time(&cx, s))
        .transpose()?;
    let acceleration = match &raw.acceleration {
        Some(a) if !(MIN_ACCELERATION..=MAX_ACCELERATION).contains(a.get_ref()) => {
            let range = format!("{MIN_ACCELERATION} to {MAX_ACCELERATION}");
            let found = a.get_ref();
            return Err(cx.err(
                a,
                "acceleration",
                format!("expected {range}, found {found}"),
            ));
        }
        Some(a) => *a.get_ref(),
        None => 1.0,
    };
    let time_offset = cx
        .opt_duration(&raw.time_offset, "time_offset")?
        .unwrap_or_default();
    if let (Some(t), true) = (&raw.time_offset, time_offset >= duration) {
        return Err(cx.err(t, "time_offset", "must be shorter than `duration`".into()));
    }

    let mut sites = Vec::new();
    for s in &raw.sites {
        let site = super::sites::site(&cx, s)?;
        if sites.iter().any(|x: &Site| x.id == site.id) {
            return Err(cx.err(
                &s.id,
                "site.id",
                format!("site {:?} is defined twice", site.id.as_str()),
            ));
        }
        sites.push(site);
    }
    let find_site = |t: &Text, field| -> Result<&Site, ScenarioError> {
        sites
            .iter()
            .find(|s| s.id.as_str() == t.get_ref())
            .ok_or_else(|| cx.err(t, field, format!("no [[site]] with id {:?}", t.get_ref())))
    };

    let mut residents: Vec<Resident> = Vec::new();
    for r in &raw.residents {
        let site = find_site(&r.site, "resident.site")?;
        cx.id(&r.id, "resident.id", SiteId::new)?;
        if residents.iter().any(|x| x.id == *r.id.get_ref()) {
            return Err(cx.err(
                &r.id,
                "resident.id",
                format!("resident {:?} is defined twice", r.id.get_ref()),
            ));
        }
        if let Some(room) = &r.room {
            if site.kind == SiteKind::Facility
                && site.facility.zone_of_room(room.get_ref()).is_none()
            {
                return Err(cx.err(
                    room,
                    "resident.room",
                    format!("no room {:?} in site {}", room.get_ref(), site.id),
                ));
            }
        }
        let profile = match r.profile.as_ref().map(|p| p.get_ref().as_str()) {
            None | Some("calibrated") => ProfileChoice::Calibrated,
            Some("drawn") => ProfileChoice::Drawn,
            Some(other) => {
                return Err(cx.err(
                    r.profile.as_ref().unwrap_or(&r.id),
                    "resident.profile",
                    format!("expected \"calibrated\" or \"drawn\", found {other:?}"),
                ))
            }
        };
        residents.push(Resident {
            id: r.id.get_ref().clone(),
            site: site.id.clone(),
            room: r.room.as_ref().map(|x| x.get_ref().clone()),
            profile,
        });
    }

    let mut devices: Vec<Device> = Vec::new();
    for d in &raw.devices {
        let dev = device(&cx, d, &sites, &residents)?;
        if devices.iter().any(|x| x.id == dev.id) {
            return Err(cx.err(
                &d.id,
                "device.id",
                format!("device {:?} is defined twice", d.id.get_ref()),
            ));
        }
        devices.push(dev);
    }
    for (raw_site, site) in raw.sites.iter().zip(&sites) {
        for dev in super::layout::generated_devices(&cx, raw_site, site)? {
            if devices.iter().any(|x| x.id == dev.id) {
                let message = format!("generated device {} is also defined by hand", dev.id);
                return Err(cx.err(&raw_site.id, "device.id", message));
            }
            devices.push(dev);
        }
    }

    let mut incidents = Vec::new();
    let mut ids = HashSet::new();
    for (i, r) in raw.incidents.iter().enumerate() {
        let inc = super::incidents::incident(&cx, r, i, &sites, &residents, &devices)?;
        if inc.at > duration {
            return Err(cx.err(
                &r.at,
                "incident.at",
                format!(
                    "{} is after the scenario ends ({})",
                    r.at.get_ref(),
                    raw.duration.get_ref()
                ),
            ));
        }
        if !ids.insert(inc.id.clone()) {
            return Err(cx.err(
                r.id.as_ref().unwrap_or(&r.kind),
                "incident.id",
                format!("incident {:?} is defined twice", inc.id),
            ));
        }
        incidents.push(inc);
    }

    let mut expectations = Vec::new();
    for e in &raw.expectations {
        alert_kind(&cx, &e.alert, "expect.alert")?;
        subject(
            &cx,
            &e.subject,
            "expect.subject",
            &sites,
            &residents,
            &devices,
        )?;
        if let Some(s) = &e.severity {
            if !SEVERITIES.contains(&s.get_ref().as_str()) {
                return Err(cx.err(
                    s,
                    "expect.severity",
                    format!("expected one of {SEVERITIES:?}, found {:?}", s.get_ref()),
                ));
            }
        }
        let not_before = match &e.after {
            Some(a) => incidents
                .iter()
                .find(|i: &&Incident| i.id == *a.get_ref())
                .map(|i| i.at)
                .ok_or_else(|| {
                    cx.err(
                        a,
                        "expect.after",
                        format!("no incident with id {:?}", a.get_ref()),
                    )
                })?,
            None => Duration::ZERO,
        };
        expectations.push(Expectation {
            line: cx.line(e.alert.span().start),
            alert: e.alert.get_ref().clone(),
            subject: e.subject.get_ref().clone(),
            severity: e.severity.as_ref().map(|s| s.get_ref().clone()),
            not_before,
            deadline: not_before + cx.duration(&e.within, "expect.within")?,
            escalated: e.escalated,
        });
    }

    let mut forbidden = Vec::new();
    for f in &raw.forbidden {
        alert_kind(&cx, &f.alert, "expect_not.alert")?;
        if let Some(s) = &f.subject {
            subject(&cx, s, "expect_not.subject", &sites, &residents, &devices)?;
        }
        let from = cx
            .opt_duration(&f.from, "expect_not.from")?
            .unwrap_or_default();
        let until = cx
            .opt_duration(&f.until, "expect_not.until")?
            .unwrap_or(duration);
        if until <= from {
            return Err(cx.err(
                f.until.as_ref().unwrap_or(&f.alert),
                "expect_not.until",
                "must be after `from`".into(),
            ));
        }
        forbidden.push(Forbidden {
            line: cx.line(f.alert.span().start),
            alert: f.alert.get_ref().clone(),
            subject: f.subject.as_ref().map(|s| s.get_ref().clone()),
            from,
            until,
        });
    }

    Ok(Scenario {
        name: raw.name.into_inner(),
        description: raw.description,
        seed: raw.seed,
        start,
        duration,
        acceleration,
        time_offset,
        sites,
        residents,
        devices,
        incidents,
        expectations,
        forbidden,
    })
}

fn device(
    cx: &Ctx<'_>,
    d: &RawDevice,
    sites: &[Site],
    residents: &[Resident],
) -> Result<Device, ScenarioError> {
    let id = cx.id(&d.id, "device.id", DeviceId::new)?;
    let site = sites
        .iter()
        .find(|s| s.id.as_str() == d.site.get_ref())
        .ok_or_else(|| {
            cx.err(
                &d.site,
                "device.site",
                format!("no [[site]] with id {:?}", d.site.get_ref()),
            )
        })?;
    let resident = |t: &Text| -> Result<String, ScenarioError> {
        residents
            .iter()
            .find(|r| r.id == *t.get_ref() && r.site == site.id)
            .map(|r| r.id.clone())
            .ok_or_else(|| {
                cx.err(
                    t,
                    "device.resident",
                    format!("no resident {:?} at site {}", t.get_ref(), site.id),
                )
            })
    };
    let kind = match d.kind.get_ref().as_str() {
        "meter" => DeviceKind::Meter {
            resident: d.resident.as_ref().map(resident).transpose()?,
        },
        "pendant" => {
            let r = d.resident.as_ref().ok_or_else(|| {
                cx.err(
                    &d.kind,
                    "device.resident",
                    "a pendant is worn by a resident: name it".into(),
                )
            })?;
            DeviceKind::Pendant {
                resident: resident(r)?,
            }
        }
        "fire" => {
            let s = d.sensor.as_ref().ok_or_else(|| {
                cx.err(
                    &d.kind,
                    "device.sensor",
                    "a fire device needs `sensor`".into(),
                )
            })?;
            let sensor = SensorKind::ALL
                .into_iter()
                .find(|k| k.name() == s.get_ref())
                .ok_or_else(|| {
                    let names: Vec<_> = SensorKind::ALL.iter().map(|k| k.name()).collect();
                    cx.err(
                        s,
                        "device.sensor",
                        format!("expected one of {names:?}, found {:?}", s.get_ref()),
                    )
                })?;
            let room = d.room.as_ref().ok_or_else(|| {
                cx.err(&d.kind, "device.room", "a fire device needs `room`".into())
            })?;
            let zone = site
                .facility
                .zone_of_room(room.get_ref())
                .cloned()
                .ok_or_else(|| {
                    cx.err(
                        room,
                        "device.room",
                        format!(
                            "no room {:?} in the zones of site {}",
                            room.get_ref(),
                            site.id
                        ),
                    )
                })?;
            DeviceKind::Fire {
                sensor,
                room: room.get_ref().clone(),
                zone,
            }
        }
        other => {
            return Err(cx.err(
                &d.kind,
                "device.kind",
                format!("expected \"meter\", \"pendant\" or \"fire\", found {other:?}"),
            ))
        }
    };
    Ok(Device {
        id,
        site: site.id.clone(),
        kind,
        battery_mv: d
            .battery_mv
            .as_ref()
            .map(|b| *b.get_ref())
            .unwrap_or(FULL_BATTERY_MV),
    })
}

fn alert_kind(cx: &Ctx<'_>, t: &Text, field: &'static str) -> Result<(), ScenarioError> {
    if ALERT_KINDS.contains(&t.get_ref().as_str()) {
        Ok(())
    } else {
        Err(cx.err(
            t,
            field,
            format!(
                "unknown alert kind {:?}; expected one of {}",
                t.get_ref(),
                ALERT_KINDS.join(", ")
            ),
        ))
    }
}

/// Checks `resident:ID`, `device:ID`, `zone:SITE/ZONE`, `gateway:ID` or `site:ID`.
fn subject(
    cx: &Ctx<'_>,
    t: &Text,
    field: &'static str,
    sites: &[Site],
    residents: &[Resident],
    devices: &[Device],
) -> Result<(), ScenarioError> {
    let s = t.get_ref();
    let known = match s.split_once(':') {
        Some(("resident", id)) => residents.iter().any(|r| r.id == id),
        Some(("device", id)) => devices.iter().any(|d| d.id.as_str() == id),
        Some(("gateway", id)) => sites.iter().any(|x| x.gateway.as_str() == id),
        Some(("site", id)) => sites.iter().any(|x| x.id.as_str() == id),
        Some(("zone", path)) => match path.split_once('/') {
            Some((site, zone)) => sites
                .iter()
                .filter(|x| x.id.as_str() == site)
                .any(|x| x.facility.zones().any(|z| z.id.as_str() == zone)),
            None => false,
        },
        _ => {
            let expected = "resident:ID, device:ID, zone:SITE/ZONE, gateway:ID or site:ID";
            return Err(cx.err(t, field, format!("expected {expected}, found {s:?}")));
        }
    };
    if known {
        Ok(())
    } else {
        Err(cx.err(
            t,
            field,
            format!("{s:?} names nothing defined in this scenario"),
        ))
    }
}
